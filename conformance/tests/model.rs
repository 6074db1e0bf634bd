//! The model phase against the reference server: the MODEL checks hold on the clean server,
//! and each fault of the MODEL section of `server/src/fault.rs` makes its check worse, with
//! the shortest failing sequence and the seed in the evidence.

mod support;

use mcp_auth_conformance::Report;
use mcp_auth_conformance::model::Settings;
use mcp_auth_conformance::report::Outcome;
use mcp_github_server::Fault;

const SEED: u64 = 1;

async fn run_model(faults: &[Fault], ids: &[&str]) -> Report {
    let target = support::start(faults, &[]).await;
    let mut config = target.config();
    config.ids = ids.iter().map(|id| (*id).to_owned()).collect();
    config.model = Some(Settings {
        seed: SEED,
        ..Settings::default()
    });
    support::run(config).await
}

fn outcome<'a>(report: &'a Report, id: &str) -> &'a Outcome {
    &report
        .results
        .iter()
        .find(|r| r.key == id)
        .unwrap_or_else(|| panic!("{id} did not run"))
        .outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_model_holds_on_the_clean_server() {
    let report = run_model(&[], &["MODEL-01", "MODEL-02", "MODEL-03", "MODEL-04"]).await;
    // The server also revokes a grant whose rotated-out refresh token comes back (RFC 9700
    // §4.14.2), so MODEL-02 has no warning either.
    for id in ["MODEL-01", "MODEL-02", "MODEL-03", "MODEL-04"] {
        assert!(
            matches!(outcome(&report, id), Outcome::Pass { .. }),
            "{id}: {:?}",
            outcome(&report, id)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_model_fault_breaks_its_property() {
    let cases = [
        (Fault::RevocationMissesRotatedTokens, "MODEL-01", true),
        (Fault::FirstRefreshTokenNeverRotates, "MODEL-02", true),
        (Fault::ProfileCacheSharedAcrossUsers, "MODEL-03", true),
        (Fault::StreamableSessionsAnyUser, "MODEL-04", false),
    ];
    for (fault, id, must) in cases {
        let report = run_model(&[fault], &[id]).await;
        let found = outcome(&report, id);
        let evidence = match (found, must) {
            (Outcome::Fail(e), true) | (Outcome::Warn(e), false) => e,
            _ => panic!("{} should make {id} worse: {found:?}", fault.name()),
        };
        assert!(
            evidence.message.contains("seed 1") && evidence.message.contains("sequence"),
            "the evidence names the sequence and the seed: {}",
            evidence.message
        );
    }
}

/// The phase runs beside the other checks without holding them up: checks in flight when it
/// starts must not stand still until it ends and then time out, or end with a token that
/// expired meanwhile, as when the phase blocked the task they are polled in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_checks_beside_the_model_phase_are_not_held_up() {
    let target = support::start(&[], &[]).await;
    let mut config = target.config();
    config.areas = vec!["AUTH-FLOW".into(), "MODEL".into()];
    // Shorter than the phase lasts, so that a check stood still for the whole phase would
    // time out; far longer than any answer on loopback takes.
    config.request_timeout = std::time::Duration::from_secs(3);
    config.model = Some(Settings {
        seed: SEED,
        cases: 160,
        ..Settings::default()
    });
    let report = support::run(config).await;
    let held_up: Vec<String> = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Error(_) | Outcome::Fail(_)))
        .map(|r| format!("{} [{}]: {:?}", r.key, r.transport, r.outcome))
        .collect();
    assert!(held_up.is_empty(), "{held_up:#?}");
    assert!(
        report.results.iter().any(|r| r.key == "MODEL-01"),
        "the model phase ran"
    );
}
