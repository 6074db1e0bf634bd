//! The suite against the reference server: every MUST passes on both transports.

mod support;

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
    let blocked: Vec<String> = report
        .results
        .iter()
        .filter(|r| matches!(&r.outcome, Outcome::Skip { reason } if reason.starts_with("blocked")))
        .map(|r| format!("{} [{}]", r.key, r.transport))
        .collect();
    assert!(blocked.is_empty(), "blocked: {blocked:?}");
}
