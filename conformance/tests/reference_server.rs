//! The suite against the reference server: every MUST passes on both transports, and every
//! failure the mock GitHub can inject is asked for by some check.

mod support;

use std::collections::BTreeSet;

use mcp_auth_conformance::report::Outcome;
use mcp_auth_conformance::{Transport, Version};

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

    // The server negotiates every version on each transport and speaks 2026-07-28, so it is
    // judged by the 2026-07-28 profile, the version-dependent checks run at each version, and
    // every cell of the grid is green.
    let assessment = report.assessment.as_ref().expect("the assessment");
    assert_eq!(
        assessment.profile.name(),
        "2026-07-28",
        "{}",
        assessment.line()
    );
    let negotiated = |t: Transport| {
        assessment
            .transport(t)
            .map(|v| v.negotiated.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        negotiated(Transport::Sse),
        Version::SESSION_ERA.to_vec(),
        "{}",
        assessment.line()
    );
    assert_eq!(
        negotiated(Transport::StreamableHttp),
        Version::on(Transport::StreamableHttp).to_vec()
    );
    let life_02_versions: BTreeSet<Version> = report
        .results
        .iter()
        .filter(|r| r.key == "LIFE-02" && r.transport == "streamable-http")
        .filter_map(|r| r.version)
        .collect();
    assert_eq!(
        life_02_versions.len(),
        3,
        "LIFE-02 runs at each session version of Streamable HTTP: {life_02_versions:?}"
    );
    let grid = report.grid();
    let red: Vec<String> = grid
        .rows
        .iter()
        .flat_map(|row| {
            row.cells
                .iter()
                .filter(|(_, tally)| !tally.green())
                .map(move |(v, _)| format!("{} {} {v}", row.transport, row.area))
        })
        .collect();
    assert!(red.is_empty(), "cells that are not green: {red:?}");
    assert!(
        grid.columns
            .iter()
            .all(|(_, versions)| !versions.is_empty())
    );

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
