//! The attacker's probes (`conformance/src/checks/attacks.rs`) against the reference server:
//! each passes on the clean server, and the fault that reopens its hole makes it fail (a MUST)
//! or warn (a SHOULD).

mod support;

use support::{outcomes, run_only};

use mcp_auth_conformance::report::Outcome;
use mcp_github_server::Fault;

/// Each probe, the fault that reopens its hole, and whether the probe is a MUST (fails) or a
/// SHOULD (warns).
const PROBES: [(Fault, &str, bool); 12] = [
    (
        Fault::AdoptPlantedConsentCookie,
        "AUTH-3P-05#planted-cookie",
        true,
    ),
    (
        Fault::CallbackNotBoundToBrowser,
        "AUTH-3P-07#other-browser",
        true,
    ),
    (Fault::NoRefreshReuseDetection, "AUTH-FLOW-21", false),
    (
        Fault::RedirectErrorsToAnyRegisteredUri,
        "AUTH-FLOW-22",
        false,
    ),
    (Fault::UnboundedState, "AUTH-FLOW-23", false),
    (Fault::StreamsOutliveRevocation, "AUTH-FLOW-24", false),
    (Fault::UnboundedClientMetadata, "AUTH-REG-08", false),
    (
        Fault::BasicCredentialsRefused,
        "AUTH-GEN-08#auth-methods",
        true,
    ),
    (
        Fault::BasicAndBodyClientIdsMixed,
        "AUTH-GEN-08#auth-methods",
        true,
    ),
    (
        Fault::AnyAuthorizationScheme,
        "AUTH-GEN-05#other-schemes",
        true,
    ),
    (
        Fault::NoScopeInInvalidTokenChallenge,
        "AUTH-PRM-06#invalid-token",
        false,
    ),
    (
        Fault::NoScopeInChallenge,
        "AUTH-PRM-06#invalid-token",
        false,
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_probes_pass_on_the_clean_server() {
    let mut keys: Vec<&str> = PROBES.iter().map(|(_, key, _)| *key).collect();
    keys.dedup();
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
async fn each_fault_makes_its_probe_worse() {
    for (fault, key, must) in PROBES {
        let report = run_only(&[fault], &[key]).await;
        for outcome in outcomes(&report, key) {
            let worse = if must {
                matches!(outcome, Outcome::Fail(_))
            } else {
                matches!(outcome, Outcome::Warn(_))
            };
            assert!(
                worse,
                "{} should make {key} worse: {outcome:?}",
                fault.name()
            );
        }
    }
}
