//! The suite against the reference server: every MUST passes on both transports, and every
//! failure the mock GitHub can inject is asked for by some check.

mod support;

use std::collections::BTreeSet;

use mcp_auth_conformance::report::Outcome;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reference_server_passes_every_must_on_both_transports() {
    let target = support::start(&[], &[]).await;
    let report = support::run(target.config()).await;
    let failed: Vec<String> = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Fail(_)))
        .map(|r| format!("{} [{}]", r.key, r.transport))
        .collect();
    assert!(failed.is_empty(), "failed: {failed:?}");
    let stuck: Vec<String> = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Error(_) | Outcome::Blocked { .. }))
        .map(|r| format!("{} [{}]", r.key, r.transport))
        .collect();
    assert!(stuck.is_empty(), "errors or blocked: {stuck:?}");
    assert!(report.ok(), "{}", report.summary_line());

    // The scripted browser picks a mock fault on the authorize URL, so the journal shows
    // which ones the checks (AUTH-3P-02 and its cases, TOOLS-10, AUTH-FLOW-08) asked for.
    let asked: BTreeSet<String> = target
        .mock
        .journal()
        .await
        .iter()
        .filter(|r| r.path == mock_github::AUTHORIZE_PATH)
        .filter_map(|r| {
            url::form_urlencoded::parse(r.query.as_deref().unwrap_or_default().as_bytes())
                .find(|(name, _)| name == "fault")
                .map(|(_, value)| value.into_owned())
        })
        .collect();
    let unused: Vec<&str> = mock_github::Fault::ALL
        .iter()
        .map(|fault| fault.as_str())
        .filter(|fault| !asked.contains(*fault))
        .collect();
    assert!(
        unused.is_empty(),
        "no check asks the mock GitHub for {unused:?}"
    );
}
