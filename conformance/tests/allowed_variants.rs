//! Behaviour the spec allows must not fail: each conforming variant of the reference
//! server (a fault table entry marked `allowed` in `server/src/fault.rs`: no revocation
//! endpoint, no refresh tokens, no registration, a stricter redirect-URI policy, other
//! tools, ...) runs the whole suite with the options its entry asks for, and no check may
//! fail or be blocked. The checks the variant names may warn, saying what is missing;
//! `faults.rs` and `cargo xtask faults` hold the warnings to the table as well.

mod support;

use mcp_auth_conformance::report::Outcome;
use mcp_github_server::Fault;

async fn passes_against(fault: Fault) {
    assert!(fault.allowed(), "{fault} is not marked allowed");
    let target = support::start(&[fault], fault.env()).await;
    let mut config = target.config();
    config.ids = fault.only().iter().map(|id| (*id).to_owned()).collect();
    support::apply_suite_args(&mut config, fault.suite_args());
    let report = support::run(config).await;
    let broken: Vec<String> = report
        .results
        .iter()
        .filter(|r| match &r.outcome {
            Outcome::Fail(_) => true,
            Outcome::Skip { reason } => reason.starts_with("blocked"),
            _ => false,
        })
        .map(|r| format!("{} [{}]: {}", r.key, r.transport, r.outcome.word()))
        .collect();
    assert!(
        broken.is_empty(),
        "{fault} is allowed behaviour, yet: {broken:#?}"
    );
    let warned_elsewhere: Vec<String> = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Warn(_)))
        .filter(|r| {
            !fault
                .breaks()
                .iter()
                .any(|id| r.id == *id || r.also.contains(id))
        })
        .map(|r| format!("{} [{}]", r.key, r.transport))
        .collect();
    println!("{fault}: warnings outside what it names: {warned_elsewhere:?}");
}

macro_rules! allowed_variant_tests {
    ($($test:ident => $fault:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                passes_against(Fault::$fault).await;
            }
        )*

        #[test]
        fn every_allowed_variant_has_a_test() {
            let tested = [$(Fault::$fault),*];
            for fault in Fault::ALL.iter().filter(|f| f.allowed()) {
                assert!(tested.contains(fault), "{fault} has no test here");
            }
        }
    };
}

allowed_variant_tests! {
    no_revocation_endpoint => NoRevocationEndpoint,
    revocation_unsupported_token_type => RevocationUnsupportedTokenType,
    no_refresh_tokens => NoRefreshTokens,
    no_registration_endpoint => NoRegistrationEndpoint,
    stricter_redirect_policy => StricterRedirectPolicy,
    grant_required_scope => GrantRequiredScope,
    unbound_streamable_sessions => UnboundStreamableSessions,
    unsupported_version_as_invalid_params => UnsupportedVersionAsInvalidParams,
    other_tools_only => OtherToolsOnly,
    structured_content_in_old_sessions => StructuredContentInOldSessions,
}

/// A foreign `Origin` answered 400 is a defect at 2025-11-25 (`foreign-origin-gets-400`),
/// but before it "any 4xx" was allowed (SHTTP-02). A run pinned to 2025-06-18 (its checks,
/// its Streamable HTTP sessions, as `--spec-version 2025-06-18` sets them) must therefore
/// pass against it: SHTTP-02 runs and only warns that 403 is preferred, and nothing fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn foreign_origin_gets_400_passes_a_run_pinned_to_2025_06_18() {
    use mcp_auth_conformance::Version;
    let fault = Fault::ForeignOriginGets400;
    let target = support::start(&[fault], fault.env()).await;
    let mut config = target.config();
    config.versions = vec![Version::V2025_06_18];
    config.streamable_version = Version::V2025_06_18;
    let report = support::run(config).await;
    let broken: Vec<String> = report
        .results
        .iter()
        .filter(|r| match &r.outcome {
            Outcome::Fail(_) | Outcome::Error(_) => true,
            Outcome::Skip { reason } => reason.starts_with("blocked"),
            _ => false,
        })
        .map(|r| format!("{} [{}]: {}", r.key, r.transport, r.outcome.word()))
        .collect();
    assert!(
        broken.is_empty(),
        "{fault} is allowed at 2025-06-18, yet: {broken:#?}"
    );
    let origin: Vec<&Outcome> = report
        .results
        .iter()
        .filter(|r| r.id == "SHTTP-02")
        .map(|r| &r.outcome)
        .collect();
    assert!(
        !origin.is_empty() && origin.iter().all(|o| matches!(o, Outcome::Warn(_))),
        "SHTTP-02 should run and warn that 403 is preferred: {:?}",
        origin.iter().map(|o| o.word()).collect::<Vec<_>>()
    );
}
