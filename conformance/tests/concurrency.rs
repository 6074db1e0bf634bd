//! The concurrency checks against the reference server: each passes on the clean server and
//! fails under the fault that opens its race (`server/src/fault.rs`).

mod support;

use support::{outcomes, run_only};

use mcp_auth_conformance::report::Outcome;
use mcp_github_server::Fault;

const RACES: [(Fault, &str); 3] = [
    (Fault::CodeRedemptionRace, "AUTH-FLOW-04#concurrent"),
    (Fault::RefreshRace, "AUTH-FLOW-15#concurrent"),
    (Fault::RevokeAfterAnswering, "AUTH-FLOW-19#concurrent"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_token_races_hold_on_the_clean_server() {
    let keys: Vec<&str> = RACES.iter().map(|(_, key)| *key).collect();
    let report = run_only(&[], &keys).await;
    for key in keys {
        for outcome in outcomes(&report, key) {
            assert!(
                matches!(outcome, Outcome::Pass { .. }),
                "{key}: {outcome:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_race_fault_fails_its_check() {
    for (fault, key) in RACES {
        let report = run_only(&[fault], &[key]).await;
        for outcome in outcomes(&report, key) {
            assert!(
                matches!(outcome, Outcome::Fail(_)),
                "{} should fail {key}: {outcome:?}",
                fault.name()
            );
        }
    }
}

/// Two in-flight requests with one id must both be answered: the server refuses the second
/// with a JSON-RPC error while the first is in flight. Without that refusal, rmcp's
/// Streamable HTTP service drops one reply, and on SSE one never reaches the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_ids_are_answered_and_the_fault_leaves_one_hanging() {
    let key = "RPC-02#duplicate-id";
    let clean = run_only(&[], &[key]).await;
    // The check runs once per transport and version the server negotiates.
    let transports: std::collections::BTreeSet<String> = clean
        .results
        .iter()
        .filter(|r| r.key == key)
        .map(|r| r.transport.to_string())
        .collect();
    assert_eq!(
        transports.len(),
        2,
        "results on both transports: {transports:?}"
    );
    for outcome in outcomes(&clean, key) {
        assert!(
            matches!(outcome, Outcome::Pass { .. }),
            "{key}: {outcome:?}"
        );
    }
    let faulty = run_only(&[Fault::DuplicateInFlightIdsAccepted], &[key]).await;
    for outcome in outcomes(&faulty, key) {
        assert!(matches!(outcome, Outcome::Fail(_)), "{key}: {outcome:?}");
    }
}
