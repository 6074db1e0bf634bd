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
