//! Named defects that the conformance suite's own tests switch on to prove that each
//! check fails when exactly its requirement is broken.
//!
//! This module exists only with the `fault-injection` feature, which is off by default,
//! so release builds contain neither the enum nor the branches that consult it: the
//! [`injected!`](crate::injected) macro expands to `false` without the feature.

use std::{fmt, str::FromStr};

macro_rules! faults {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal => [$($id:literal),+],)*) => {
        /// A defect the server can be told to have. Each breaks one requirement.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Fault {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Fault {
            /// Every fault, in declaration order.
            pub const ALL: &'static [Fault] = &[$(Fault::$variant,)*];

            /// The kebab-case name used on command lines and in reports.
            pub fn name(self) -> &'static str {
                match self {
                    $(Fault::$variant => $name,)*
                }
            }

            /// The requirement IDs (from the catalogue) this fault breaks: exactly
            /// the checks that must fail, and no others, when it is switched on.
            pub fn breaks(self) -> &'static [&'static str] {
                match self {
                    $(Fault::$variant => &[$($id),+],)*
                }
            }
        }
    };
}

faults! {
    /// `/authorize` issues codes without a `code_challenge` (AUTH-FLOW-01).
    AllowMissingPkce = "allow-missing-pkce" => ["AUTH-FLOW-01"],
    /// `/token` does not verify the `code_verifier` (AUTH-FLOW-03).
    SkipPkce = "skip-pkce" => ["AUTH-FLOW-03"],
    /// `/authorize` redirects to a redirect URI the client never registered (AUTH-FLOW-06).
    AcceptAnyRedirectUri = "accept-any-redirect-uri" => ["AUTH-FLOW-06"],
    /// `/register` accepts plain-http redirect URIs on public hosts (AUTH-REG-03).
    AcceptInsecureRedirectUris = "accept-insecure-redirect-uris" => ["AUTH-REG-03"],
    /// `/token` redeems the same authorization code twice (AUTH-FLOW-04).
    AcceptReusedCode = "accept-reused-code" => ["AUTH-FLOW-04"],
    /// The final redirect to the client drops the client's `state` (AUTH-FLOW-08).
    DropClientState = "drop-client-state" => ["AUTH-FLOW-08"],
    /// Refreshing keeps the old refresh token valid (AUTH-FLOW-15).
    NoRefreshRotation = "no-refresh-rotation" => ["AUTH-FLOW-15"],
    /// 401 responses carry no `WWW-Authenticate` challenge (AUTH-PRM-04).
    DropWwwAuthenticate = "drop-www-authenticate" => ["AUTH-PRM-04"],
    /// Expired access tokens are still accepted (AUTH-GEN-05).
    AcceptExpiredTokens = "accept-expired-tokens" => ["AUTH-GEN-05"],
    /// Revoked tokens are still accepted (AUTH-FLOW-19).
    AcceptRevokedTokens = "accept-revoked-tokens" => ["AUTH-FLOW-19"],
    /// Tokens issued for another resource are accepted (AUTH-TOK-02, AUTH-FLOW-10).
    AcceptForeignResourceTokens = "accept-foreign-resource-tokens" => ["AUTH-FLOW-10", "AUTH-TOK-02"],
    /// A GitHub access token is accepted as an MCP token (AUTH-TOK-03).
    AcceptGitHubTokens = "accept-github-tokens" => ["AUTH-TOK-03"],
    /// The tool sends the client's MCP token to GitHub instead of the GitHub token (AUTH-TOK-03).
    SendMcpTokenToGitHub = "send-mcp-token-to-github" => ["AUTH-TOK-03"],
    /// An access token in the query string is accepted (AUTH-GEN-03).
    AcceptQueryStringTokens = "accept-query-string-tokens" => ["AUTH-GEN-03"],
    /// The metadata `issuer` differs from the URL it is served for (AUTH-ASM-06).
    WrongIssuer = "wrong-issuer" => ["AUTH-ASM-06"],
    /// The metadata omits `S256` from `code_challenge_methods_supported` (AUTH-ASM-08).
    OmitS256 = "omit-s256" => ["AUTH-ASM-08"],
    /// `/authorize` goes straight to GitHub without the per-client consent page (AUTH-3P-03).
    SkipConsent = "skip-consent" => ["AUTH-3P-03"],
    /// The consent form is accepted without its CSRF token (AUTH-3P-04).
    SkipConsentCsrf = "skip-consent-csrf" => ["AUTH-3P-04"],
    /// Every authorization uses the same upstream `state`, and it is never consumed (AUTH-3P-07).
    ReuseUpstreamState = "reuse-upstream-state" => ["AUTH-3P-07"],
    /// Sessions are not bound to the user who opened them (AUTH-TOK-05, SSE-09).
    UnboundSessions = "unbound-sessions" => ["AUTH-TOK-05"],
    /// A foreign `Origin` is not rejected (SHTTP-02, SSE-07).
    SkipOriginCheck = "skip-origin-check" => ["SHTTP-02", "SSE-07"],
    /// `GET /sse` does not send the `endpoint` event (SSE-02).
    OmitEndpointEvent = "omit-endpoint-event" => ["SSE-02"],
    /// Notifications to `/mcp` are answered with 200 instead of 202 (SHTTP-05).
    NotificationsGet200 = "notifications-get-200" => ["SHTTP-05"],
    /// A failing tool is reported as a JSON-RPC error instead of `isError` (TOOLS-10).
    ToolFailureAsRpcError = "tool-failure-as-rpc-error" => ["TOOLS-10"],
    /// `get_user_profile` returns another user's profile (TOOLS-06).
    WrongUserProfile = "wrong-user-profile" => ["TOOLS-06"],
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .iter()
            .copied()
            .find(|fault| fault.name() == name)
            .ok_or_else(|| format!("unknown fault {name:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_round_trips_through_its_name() {
        for fault in Fault::ALL {
            assert_eq!(fault.name().parse::<Fault>(), Ok(*fault));
        }
    }
}
