//! Every check can fail: the reference server is started with each injectable fault, and the
//! checks that get worse than against the clean server must be exactly those named for the fault.
//! (Checks whose level is SHOULD get worse by warning instead of failing.)

mod support;

use std::collections::{BTreeMap, BTreeSet};

use mcp_auth_conformance::Report;
use mcp_auth_conformance::report::Outcome;
use mcp_github_server::Fault;

/// Checks that observe the same defect a second way, beyond the IDs the fault names itself
/// (`Fault::breaks`).
fn also_breaks(fault: Fault) -> &'static [&'static str] {
    match fault.name() {
        // Without a challenge the invalid-token 401 cannot say error="invalid_token" either.
        "drop-www-authenticate" => &["AUTH-TOK-06"],
        // GitHub refuses the MCP token, so the tool cannot return the profile.
        "send-mcp-token-to-github" => &["TOOLS-06", "TOOLS-08"],
        // The root document for 2025-03-26 clients and the `iss` comparison read the same issuer.
        "wrong-issuer" => &["AUTH-ASM-01", "AUTH-FLOW-18"],
        _ => &[],
    }
}

/// Variables and check filters a fault needs to be observable quickly.
fn setup(fault: Fault) -> (Vec<(&'static str, &'static str)>, Vec<String>) {
    match fault.name() {
        // Tokens that expire in a second; only the expiry check runs, as every other check's
        // tokens would expire under it.
        "accept-expired-tokens" => (
            vec![("MCP_GITHUB_ACCESS_TOKEN_TTL_SECS", "1")],
            vec!["AUTH-GEN-05".into()],
        ),
        // A shared upstream state makes concurrent logins collide, so other checks fail at random;
        // only the check that names the defect runs.
        "reuse-upstream-state" => (Vec::new(), vec!["AUTH-3P-07".into()]),
        _ => (Vec::new(), Vec::new()),
    }
}

fn outcomes(report: &Report) -> BTreeMap<(String, String), (u8, String)> {
    report
        .results
        .iter()
        .map(|r| {
            (
                (r.key.clone(), r.transport.to_owned()),
                (r.outcome.severity(), r.id.to_owned()),
            )
        })
        .collect()
}

async fn run_with(faults: &[Fault], fault_for_setup: Option<Fault>) -> Report {
    let (vars, ids) = fault_for_setup.map(setup).unwrap_or_default();
    let target = support::start(faults, &vars).await;
    let mut config = target.config();
    config.ids = ids;
    support::run(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_fault_fails_exactly_the_checks_it_names() {
    let mut problems = Vec::new();
    let mut clean_runs: BTreeMap<Vec<(&str, &str)>, Report> = BTreeMap::new();
    for &fault in Fault::ALL {
        let (vars, _) = setup(fault);
        if !clean_runs.contains_key(&vars) {
            clean_runs.insert(vars.clone(), run_with(&[], Some(fault)).await);
        }
        let clean = outcomes(&clean_runs[&vars]);
        let faulty_report = run_with(&[fault], Some(fault)).await;
        let faulty = outcomes(&faulty_report);
        let named: BTreeSet<&str> = fault
            .breaks()
            .iter()
            .chain(also_breaks(fault))
            .copied()
            .collect();
        let mut worse = BTreeSet::new();
        let ids_of = |key: &(String, String)| -> Vec<&'static str> {
            faulty_report
                .results
                .iter()
                .find(|r| r.key == key.0 && r.transport == key.1)
                .map(|r| r.also.iter().copied().chain([r.id]).collect())
                .unwrap_or_default()
        };
        for (key, (severity, id)) in &faulty {
            let before = clean.get(key).map_or(0, |(s, _)| *s);
            if *severity > before {
                worse.insert(id.clone());
                if !ids_of(key).iter().any(|i| named.contains(i)) {
                    problems.push(format!(
                        "{fault}: {} [{}] got worse but is not named",
                        key.0, key.1
                    ));
                }
            }
        }
        for id in &named {
            let observed = faulty_report
                .results
                .iter()
                .any(|r| (r.id == *id || r.also.contains(id)) && worse.contains(r.id));
            if !observed {
                let shown: Vec<String> = faulty_report
                    .results
                    .iter()
                    .filter(|r| r.id == *id || r.also.contains(id))
                    .map(|r| format!("{} [{}] {}", r.key, r.transport, r.outcome.word()))
                    .collect();
                problems.push(format!("{fault}: {id} did not get worse ({shown:?})"));
            }
        }
        // Every failure of a named check must carry evidence a reader can act on.
        for r in faulty_report
            .results
            .iter()
            .filter(|r| named.contains(r.id))
        {
            if let Outcome::Fail(e) | Outcome::Warn(e) = &r.outcome {
                assert!(!e.message.is_empty(), "{fault}: {} has no message", r.key);
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
