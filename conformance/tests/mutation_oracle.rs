//! The test `cargo xtask mutants` runs against every mutant of the reference server: the
//! whole suite on both transports, with short robustness and model phases, against the server
//! built from the mutated source. It is ignored in a plain `cargo test`, where
//! `reference_server.rs` asserts the same of the unmutated server.
//!
//! A mutant is caught when a MUST check fails or errors. The unmutated server warns too
//! (plain http on loopback, for one), so warnings are judged against its own:
//! `MCP_MUTANTS_RECORD_WARNINGS=FILE` writes the warnings of a run to FILE, and
//! `MCP_MUTANTS_DENY_WARNINGS=FILE` fails on any warning FILE does not list. A mutant that
//! only breaks a SHOULD is caught in that mode alone, and `cargo xtask mutants` reports it
//! apart.

mod support;

use mcp_auth_conformance::report::Outcome;

/// The access-token lifetime the server runs with, the one `cargo xtask conformance` uses.
const EXPIRY: &str = "5";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "the oracle of cargo xtask mutants; reference_server.rs covers the plain run"]
async fn the_suite_accepts_the_server() {
    // Tokens that expire within the run, as `cargo xtask conformance` gives them, so that
    // the expiry checks run too: a mutant that lets an expired token or its streams live on
    // is otherwise never met.
    let target = support::start(&[], &[("MCP_GITHUB_ACCESS_TOKEN_TTL_SECS", EXPIRY)]).await;
    let mut config = target.config();
    config.max_expiry_wait = std::time::Duration::from_secs(EXPIRY.parse().expect("seconds"));
    config.robustness = Some(mcp_auth_conformance::robustness::Settings {
        // Enough to reach every endpoint with every kind of garbage; the full 10,000 are for
        // the suite's own CI stage, not for each of hundreds of mutants.
        cases: 600,
        ..Default::default()
    });
    // The model phase too, short: a few interleavings of logins, refreshes, revocations and
    // calls by two users find what the single-purpose checks cannot (a revocation that
    // misses one of a grant's tokens, a session that changes hands). The seed is fixed, so
    // every mutant meets the same sequences.
    config.model = Some(mcp_auth_conformance::model::Settings {
        cases: 8,
        steps: 16,
        ..Default::default()
    });
    let report = support::run_quietly(config).await;
    let name =
        |r: &mcp_auth_conformance::report::CheckResult| format!("{} [{}]", r.key, r.transport);
    let warned: Vec<String> = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Warn(_)))
        .map(name)
        .collect();
    if let Some(path) = std::env::var_os("MCP_MUTANTS_RECORD_WARNINGS") {
        std::fs::write(&path, warned.join("\n") + "\n").expect("the warnings file is writable");
    }
    let allowed_warnings: Option<Vec<String>> =
        std::env::var_os("MCP_MUTANTS_DENY_WARNINGS").map(|path| {
            std::fs::read_to_string(path)
                .expect("the recorded warnings of the unmutated server")
                .lines()
                .map(str::to_owned)
                .collect()
        });
    let mut problems = Vec::new();
    for r in &report.results {
        let bad = match &r.outcome {
            Outcome::Fail(_) | Outcome::Error(_) | Outcome::Blocked { .. } => true,
            Outcome::Warn(_) => allowed_warnings
                .as_ref()
                .is_some_and(|allowed| !allowed.contains(&name(r))),
            _ => false,
        };
        if bad {
            problems.push(mcp_auth_conformance::report::console::line(r, true));
        }
    }
    assert!(
        problems.is_empty(),
        "the suite rejects this server:\n{}",
        problems.join("\n")
    );
}
