//! Named defects that the conformance suite's own tests switch on to prove that each
//! check fails when exactly its requirement is broken.
//!
//! This module exists only with the `fault-injection` feature, which is off by default,
//! so release builds contain neither the enum nor the branches that consult it: the
//! [`injected!`](crate::injected) macro expands to `false` without the feature.
//!
//! The table below is the one source of truth for what each fault breaks. Both the
//! in-process test (`conformance/tests/faults.rs`) and `cargo xtask faults` (which reads
//! it from `--list-faults`) hold the suite to it:
//!
//! - `=> [...]`: the requirement IDs the fault breaks. Every check named after one of
//!   them (or listing it among the IDs it also proves) may get worse, and at least one
//!   must.
//! - `also [...]`: checks that observe the same defect a second way, each explained in
//!   the fault's documentation. They must get worse too.
//! - `only [...]`: the checks the run is limited to, when the fault would make the
//!   others fail at random (for example by expiring every token within a second).
//! - `env [...]`: server variables the fault needs to be observable quickly.
//! - `args [...]`: suite options the run needs (for both the clean and the faulty run),
//!   such as the pre-registered client of a server without registration.
//!
//! No other check may get worse than in a clean run with the same `only` and `env`.
//!
//! An entry written `=> allowed [...]` is no defect but a conforming variant: behaviour
//! the spec allows that a naive check would fail (no revocation endpoint, a stricter
//! redirect-URI policy, ...). The IDs it lists are the requirements whose allowed
//! alternative it shows; their checks may warn, naming what is missing, and nothing may
//! fail, error or get worse otherwise.

use std::{fmt, str::FromStr};

macro_rules! faults {
    // The one word an entry may put before its IDs.
    (@allowed allowed) => {
        true
    };
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident = $name:literal => $($allowed:ident)? [$($id:literal),+ $(,)?]
        $(also [$($also:literal),+ $(,)?])?
        $(only [$($only:literal),+ $(,)?])?
        $(env [$($var:literal = $value:literal),+ $(,)?])?
        $(args [$($arg:literal),+ $(,)?])?
        ,
    )*) => {
        /// A defect the server can be told to have. Each breaks one requirement, or is a
        /// conforming variant ([`Fault::allowed`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Fault {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Fault {
            /// Every fault, in declaration order (the catalogue's order).
            pub const ALL: &'static [Fault] = &[$(Fault::$variant,)*];

            /// The kebab-case name used on command lines and in reports.
            pub fn name(self) -> &'static str {
                match self {
                    $(Fault::$variant => $name,)*
                }
            }

            /// The requirement IDs (from the catalogue) this fault breaks: the checks
            /// named after them are the ones that must fail, and no others may.
            pub fn breaks(self) -> &'static [&'static str] {
                match self {
                    $(Fault::$variant => &[$($id),+],)*
                }
            }

            /// Whether this is a conforming variant rather than a defect: the IDs of
            /// [`Fault::breaks`] are then the requirements whose allowed alternative it
            /// shows, and their checks may only warn.
            pub fn allowed(self) -> bool {
                match self {
                    $(Fault::$variant => false $(|| faults!(@allowed $allowed))?,)*
                }
            }

            /// Checks that see the same defect a second way; the fault's
            /// documentation says why. They must get worse as well.
            pub fn also_breaks(self) -> &'static [&'static str] {
                match self {
                    $(Fault::$variant => &[$($($also),+)?],)*
                }
            }

            /// The checks (IDs or case keys) a run with this fault is limited to;
            /// empty for all of them.
            pub fn only(self) -> &'static [&'static str] {
                match self {
                    $(Fault::$variant => &[$($($only),+)?],)*
                }
            }

            /// Server configuration variables the fault needs.
            pub fn env(self) -> &'static [(&'static str, &'static str)] {
                match self {
                    $(Fault::$variant => &[$($(($var, $value)),+)?],)*
                }
            }

            /// Suite options a run with this fault needs.
            pub fn suite_args(self) -> &'static [&'static str] {
                match self {
                    $(Fault::$variant => &[$($($arg),+)?],)*
                }
            }

            /// The fault's documentation as one paragraph of text.
            pub fn description(self) -> String {
                let lines: &[&str] = match self {
                    $(Fault::$variant => &[$($doc),*],)*
                };
                lines
                    .iter()
                    .map(|line| line.trim())
                    .collect::<Vec<_>>()
                    .join(" ")
                    .trim()
                    .to_owned()
            }
        }
    };
}

faults! {
    // AUTH-GEN: what every protected resource does.

    /// The session check runs before the bearer check: a request without credentials
    /// that names no live session (GET or DELETE on `/mcp` without `Mcp-Session-Id`, a
    /// POST to the message endpoint without a known `session_id`) gets 400 instead of
    /// 401. The requests that open a session (POST on `/mcp`, `GET /sse`) are still
    /// challenged.
    SessionCheckBeforeAuth = "session-check-before-auth" => ["AUTH-GEN-01"],
    /// A request without credentials that names a live session runs as the user who
    /// opened it: the session id stands in for the token. On SSE the endpoint URI the
    /// stream announces is a session URI, so AUTH-GEN-01's unauthenticated POST to it is
    /// the same request and fails too, and SSE-08 sees that the SSE POST endpoint does
    /// not authenticate every connection, SHTTP-25 that a session's POST, GET and
    /// DELETE go through without a token.
    SessionAuthenticates = "session-authenticates" => ["AUTH-GEN-02", "SEC-03", "SSE-08", "SHTTP-25"] also ["AUTH-GEN-01"],
    /// An access token in the query string is accepted.
    AcceptQueryStringTokens = "accept-query-string-tokens" => ["AUTH-GEN-03"],
    /// The metadata advertises an introspection endpoint over plain http on a public host.
    PlainHttpEndpoint = "plain-http-endpoint" => ["AUTH-GEN-04"],
    /// A malformed `Authorization` header (another scheme, an empty bearer token) gets
    /// 400 `invalid_request` instead of 401.
    MalformedCredentialsGet400 = "malformed-credentials-get-400" => ["AUTH-GEN-05"] also ["AUTH-TOK-01"],
    /// The bearer check takes the token after any scheme (`Token`, `DPoP`, `Basic`, ...),
    /// not only after `Bearer`.
    AnyAuthorizationScheme = "any-authorization-scheme" => ["AUTH-GEN-05"],
    /// A request that names a live session runs as the session's owner whatever its
    /// token: an unknown, altered or expired token is only refused on the request that
    /// opens a session. AUTH-TOK-04's token, invalid once GitHub refused the grant, is
    /// then still served in its session.
    SessionOverridesInvalidToken = "session-overrides-invalid-token" => ["AUTH-GEN-05", "AUTH-TOK-01"]
        also ["AUTH-TOK-04"],
    /// Expired access tokens are still accepted. Tokens live one second, so only the
    /// expiry check runs: every other check's tokens would expire under it.
    AcceptExpiredTokens = "accept-expired-tokens" => ["AUTH-GEN-05"]
        only ["AUTH-GEN-05#expired"]
        env ["MCP_GITHUB_ACCESS_TOKEN_TTL_SECS" = "1"],
    /// `/authorize` without `response_type` goes on as if it were `code`.
    DefaultResponseType = "default-response-type" => ["AUTH-GEN-06"],
    /// The challenge to a request without credentials says `error="invalid_token"`.
    ErrorInBareChallenge = "error-in-bare-challenge" => ["AUTH-GEN-07"],
    /// `/token` does not check the secrets of confidential clients.
    SkipClientSecretCheck = "skip-client-secret-check" => ["AUTH-GEN-08"],
    /// `/token` checks a confidential client's secret only when it comes by HTTP Basic:
    /// a wrong or missing `client_secret` in the body (`client_secret_post`) passes.
    SecretCheckedOnlyOverBasic = "secret-checked-only-over-basic" => ["AUTH-GEN-08"],
    /// `/token` refuses every `Authorization: Basic` header with `invalid_client`, though
    /// the metadata advertises `client_secret_basic`: only `client_secret_post` works.
    BasicCredentialsRefused = "basic-credentials-refused" => ["AUTH-GEN-08"],
    /// With HTTP Basic credentials and a different `client_id` in the body, `/token` checks
    /// the secret of the Basic client and then serves the body's client: one client's
    /// credentials redeem another client's code.
    BasicAndBodyClientIdsMixed = "basic-and-body-client-ids-mixed" => ["AUTH-GEN-08"],
    /// `/token` refuses wrong HTTP Basic credentials with `401 invalid_client` but sends no
    /// `WWW-Authenticate` header naming the scheme (RFC 6749 §5.2 requires one).
    ClientChallengeMissing = "client-challenge-missing" => ["AUTH-GEN-08"],
    /// `/token` refuses HTTP Basic credentials that come with the same `client_id` in the
    /// body (which RFC 6749 §3.2.1 lets a client send) as if the two named different clients.
    BasicWithBodyClientIdRefused = "basic-with-body-client-id-refused" => ["AUTH-GEN-08"],
    /// `/authorize` looks for the `refresh_token` grant instead of `authorization_code` among
    /// the client's grant types: a client registered with RFC 7591's default grant types
    /// (`authorization_code` alone) gets `unauthorized_client`.
    AuthorizeRequiresRefreshGrant = "authorize-requires-refresh-grant" => ["AUTH-GEN-08"],

    // AUTH-ASM: authorization server metadata.

    /// The metadata `issuer` differs from the URL it is served for (a trailing slash).
    /// The root document that 2025-03-26 clients read is the same document, and the
    /// `iss` of authorization responses is compared with the same issuer.
    WrongIssuer = "wrong-issuer" => ["AUTH-ASM-06"] also ["AUTH-ASM-01", "AUTH-FLOW-18", "AUTH-FLOW-20"],
    /// The authorization server lives under `/oauth`: its issuer is `…/oauth`, its metadata is
    /// served only at the RFC 8414 path-inserted URL (`/.well-known/oauth-authorization-server/oauth`)
    /// and its endpoints only under `/oauth/`. 2025-06-18 clients find it from the resource
    /// metadata; a 2025-03-26 client, which discards the path, finds neither the root document
    /// nor the default `/authorize` and `/token`. AUTH-ASM-01 warns about the same missing
    /// root document.
    AuthorizationServerUnderPath = "authorization-server-under-path" => ["AUTH-ASM-02", "AUTH-ASM-03"]
        also ["AUTH-ASM-01"],
    /// Only an OpenID Connect discovery document is served; the RFC 8414 document that
    /// 2025-06-18 clients need is missing at its path-inserted URL. The root RFC 8414
    /// document is the same document, so AUTH-ASM-01 warns that it is missing too.
    OidcDiscoveryOnly = "oidc-discovery-only" => ["AUTH-ASM-04", "AUTH-ASM-05"]
        also ["AUTH-ASM-01"],
    /// The metadata omits the required `response_types_supported`.
    OmitResponseTypes = "omit-response-types" => ["AUTH-ASM-07"],
    /// The metadata omits `S256` from `code_challenge_methods_supported`.
    OmitS256 = "omit-s256" => ["AUTH-ASM-08"],
    /// Besides the RFC 8414 document, an OpenID Connect discovery document is served
    /// without `code_challenge_methods_supported`.
    OidcWithoutPkceMethods = "oidc-without-pkce-methods" => ["AUTH-ASM-08", "AUTH-ASM-09"],
    /// Besides the RFC 8414 document, an OpenID Connect discovery document is served
    /// whose `issuer` is not the URL it is served for (`…/oidc`).
    OidcWrongIssuer = "oidc-wrong-issuer" => ["AUTH-ASM-09"],
    /// The metadata says `"client_id_metadata_document_supported": "true"`, a string
    /// where clients test for the boolean.
    CimdFlagNotBoolean = "cimd-flag-not-boolean" => ["AUTH-ASM-10"] also ["AUTH-CIMD-01"],
    /// `grant_types_supported` lists only `authorization_code`, though refresh tokens
    /// are issued, and `token_endpoint_auth_methods_supported` lacks `none`, though
    /// public clients are accepted.
    MetadataListsDisagree = "metadata-lists-disagree" => ["AUTH-ASM-07"],
    /// Metadata requests carrying an `MCP-Protocol-Version` the server does not know get 400.
    MetadataChecksProtocolVersion = "metadata-checks-protocol-version" => ["AUTH-ASM-13"],
    /// The authorization server metadata is served as `text/plain`.
    MetadataAsText = "metadata-as-text" => ["AUTH-ASM-14"],

    // AUTH-PRM: protected resource metadata and the 401 challenge.

    /// No protected resource metadata is served, though the challenge still points to
    /// it. The challenge's `resource_metadata` URL then answers 404 (AUTH-PRM-04), and
    /// clients have no `authorization_servers` to start from (AUTH-ASM-04).
    NoResourceMetadata = "no-resource-metadata" => ["AUTH-PRM-01"] also ["AUTH-PRM-04", "AUTH-ASM-04", "AUTH-ASM-05"],
    /// `authorization_servers` lists a relative path after the issuer.
    RelativeAuthorizationServer = "relative-authorization-server" => ["AUTH-PRM-02"],
    /// The metadata of `/mcp` names `/sse` as its resource and the other way round. The
    /// path-suffixed document's `resource` is also what AUTH-PRM-05 compares.
    SwappedResources = "swapped-resources" => ["AUTH-PRM-03"] also ["AUTH-PRM-05"],
    /// The path-suffixed resource metadata names its resource with a trailing slash
    /// (`…/mcp/`): a prefix of what a client would compare, not the URL the document is
    /// served for. Tokens are still issued, since `resource` is compared without it.
    /// AUTH-PRM-05 reads the same document at its well-known location.
    PrmResourceTrailingSlash = "prm-resource-trailing-slash" => ["AUTH-PRM-03"] also ["AUTH-PRM-05"],
    /// The root resource metadata (`/.well-known/oauth-protected-resource`) names the MCP
    /// endpoint as its resource instead of the origin its URL was built from, so a client
    /// that falls back to the root reads a document for another identifier.
    RootPrmNamesEndpoint = "root-prm-names-endpoint" => ["AUTH-PRM-05"],
    /// 401 and 403 responses carry no `WWW-Authenticate` challenge. Without one the
    /// invalid-token 401 cannot say `error="invalid_token"` (AUTH-TOK-06), nor the 403
    /// name the missing scope (AUTH-SCOPE-02).
    DropWwwAuthenticate = "drop-www-authenticate" => ["AUTH-PRM-04"] also ["AUTH-TOK-06", "AUTH-SCOPE-02", "AUTH-PRM-06"],
    /// Only the requests that open a session (POST on `/mcp`, `GET /sse`) get the
    /// challenge with `resource_metadata`; the 401 to a request without credentials on
    /// GET or DELETE `/mcp` or on the message endpoint has a bare `Bearer` challenge.
    ChallengeOnlyWhereSessionsOpen = "challenge-only-where-sessions-open" => ["AUTH-PRM-04"],
    /// The root metadata document names another authorization server than the
    /// path-suffixed ones.
    RootMetadataDisagrees = "root-metadata-disagrees" => ["AUTH-PRM-05"],
    /// 401 and 403 challenges name every scope the server has (`user offline_access`),
    /// not the one a request needs. The challenge then lists offline_access, which
    /// AUTH-PRM-08 forbids and AUTH-PRM-07 reports as well.
    ChallengeNamesEveryScope = "challenge-names-every-scope" => ["SEC-04", "AUTH-PRM-08"]
        also ["AUTH-PRM-07"],
    /// 401 challenges do not name the scope a token needs.
    NoScopeInChallenge = "no-scope-in-challenge" => ["AUTH-PRM-06"],
    /// The 401 challenge names the scope only for requests without credentials; an
    /// invalid, expired or revoked token gets a challenge without it.
    NoScopeInInvalidTokenChallenge = "no-scope-in-invalid-token-challenge" => ["AUTH-PRM-06"],
    /// The resource metadata's `scopes_supported` lists the omnibus scope `all`.
    OmnibusScope = "omnibus-scope" => ["AUTH-PRM-07"],

    // AUTH-SCOPE: scope challenges.

    /// The bearer check ignores the token's scope.
    IgnoreTokenScope = "ignore-token-scope" => ["AUTH-SCOPE-01"],
    /// The 403 `insufficient_scope` challenge does not name the scope that is missing.
    InsufficientScopeWithoutScope = "insufficient-scope-without-scope" => ["AUTH-SCOPE-02"],
    /// The 403 `insufficient_scope` challenge names the scopes the token was granted, not
    /// the one it lacks: a client that steps up to them is refused again. AUTH-SCOPE-02
    /// sees the missing scope unnamed.
    ChallengeNamesGrantedScopes = "challenge-names-granted-scopes" => ["AUTH-SCOPE-03"] also ["AUTH-SCOPE-02"],
    /// Allowed: the authorization server adds the resource's required scope to every
    /// grant, whatever the client asked for, and says so in the token response's `scope`
    /// (RFC 6749 section 3.3 lets it ignore the requested scope). No token without the
    /// scope exists, so the scope checks have nothing to refuse.
    GrantRequiredScope = "grant-required-scope" => allowed ["AUTH-SCOPE-01"],

    // AUTH-REG: dynamic client registration.

    /// The metadata does not advertise the registration endpoint (which still works at
    /// `/register`, where AUTH-ASM-12 finds it). The suite then registers nothing, so it logs in with the pre-registered client of
    /// `no-registration-endpoint`.
    UnadvertisedRegistration = "unadvertised-registration" => ["AUTH-REG-01", "AUTH-ASM-12"]
        args ["--client-id", "conformance-preregistered"],
    /// Allowed: no dynamic client registration at all (SHOULD in 2025-03-26 and
    /// 2025-06-18, MAY from 2025-11-25): `/register` is gone and not advertised, and the
    /// server knows one pre-registered public client, `conformance-preregistered`, with
    /// the suite's redirect URI, which the suite is given with `--client-id`. Only
    /// AUTH-REG-01 reports the missing registration.
    NoRegistrationEndpoint = "no-registration-endpoint" => allowed ["AUTH-REG-01"]
        args ["--client-id", "conformance-preregistered"],
    /// Confidential clients get a secret without `client_secret_expires_at`.
    OmitSecretExpiry = "omit-secret-expiry" => ["AUTH-REG-02"],
    /// Registration answers `client_id_issued_at: 0`, a clock that never started, instead
    /// of the time the client was registered.
    ClientIssuedAtEpoch = "client-issued-at-epoch" => ["AUTH-REG-02"],
    /// `/register` accepts plain-http redirect URIs on public hosts.
    AcceptInsecureRedirectUris = "accept-insecure-redirect-uris" => ["AUTH-REG-03"],
    /// Registration refuses client metadata fields it does not know instead of ignoring them.
    RejectUnknownClientMetadata = "reject-unknown-client-metadata" => ["AUTH-REG-05"],
    /// Registration answers a `grant_types` that is not an array with `invalid_redirect_uri`,
    /// the error of the redirect URIs, although the redirect URIs beside it are valid.
    MalformedMetadataBlamesRedirectUris = "malformed-metadata-blames-redirect-uris" => ["AUTH-REG-05"],
    /// Registration refuses any request that has `application_type`.
    RejectApplicationType = "reject-application-type" => ["AUTH-REG-06"],
    /// Registration takes client metadata of any size: no body limit, and any number and
    /// length of redirect URIs.
    UnboundedClientMetadata = "unbounded-client-metadata" => ["AUTH-REG-08"],
    /// `/authorize` without `client_id` redirects its error to the `redirect_uri`.
    RedirectWithoutClientId = "redirect-without-client-id" => ["AUTH-REG-07"],
    /// Allowed: registration refuses the host name `localhost` in redirect URIs and takes
    /// only the loopback IP literals (RFC 8252 section 8.3): a stricter acceptance policy
    /// than the MCP rule, which only says what must be refused.
    StricterRedirectPolicy = "stricter-redirect-policy" => allowed ["AUTH-REG-03"],

    // AUTH-CIMD: client ID metadata documents.

    /// No support for client ID metadata documents: the metadata does not advertise it
    /// and a URL `client_id` is an unknown client. CIMD is a SHOULD; the other AUTH-CIMD
    /// checks skip.
    NoCimd = "no-cimd" => ["AUTH-CIMD-01"],
    /// A metadata document whose `client_id` is another URL than its own is accepted.
    CimdSkipClientIdCheck = "cimd-skip-client-id-check" => ["AUTH-CIMD-02"],
    /// For a client of a metadata document, any `redirect_uri` is accepted, listed in
    /// the document or not.
    CimdAnyRedirectUri = "cimd-any-redirect-uri" => ["AUTH-CIMD-03"],
    /// A metadata document is read as its first JSON value: trailing bytes after it, which
    /// make it invalid JSON, are ignored.
    CimdFirstJsonValue = "cimd-first-json-value" => ["AUTH-CIMD-04"],
    /// Every metadata document is cached for five minutes, `Cache-Control: no-store`
    /// or not.
    CimdIgnoresCacheHeaders = "cimd-ignores-cache-headers" => ["AUTH-CIMD-05"],
    /// Metadata documents are fetched from any address and over plain http: no SSRF
    /// protection.
    CimdFetchAnyAddress = "cimd-fetch-any-address" => ["AUTH-CIMD-06"],
    /// A `client_id` URL with a user name (or a password) in it is fetched, though the
    /// draft says it "MUST NOT contain a username or password component".
    CimdUserInfoAllowed = "cimd-user-info-allowed" => ["AUTH-CIMD-06"],
    /// For a client of a metadata document, the consent page names the client but not
    /// the redirect URI or its host.
    CimdConsentHidesRedirectHost = "cimd-consent-hides-redirect-host" => ["AUTH-CIMD-07"],
    /// The client of a metadata document is not kept for the token endpoint, which then
    /// answers `invalid_client` to the code exchange.
    CimdClientForgotten = "cimd-client-forgotten" => ["AUTH-CIMD-08"],
    /// Metadata documents are read whatever their size: neither `Content-Length` nor the
    /// bytes received are held to a limit.
    CimdUnboundedDocument = "cimd-unbounded-document" => ["AUTH-CIMD-09"],

    // AUTH-FLOW: the authorization and token endpoints.

    /// `/authorize` issues codes without a `code_challenge`.
    AllowMissingPkce = "allow-missing-pkce" => ["AUTH-FLOW-01"],
    /// `code_challenge_method` values other than `S256` are accepted (and verified as S256).
    AcceptAnyChallengeMethod = "accept-any-challenge-method" => ["AUTH-FLOW-02"],
    /// `/token` does not verify the `code_verifier`.
    SkipPkce = "skip-pkce" => ["AUTH-FLOW-03"],
    /// `code_challenge` and `code_verifier` are not held to RFC 7636's 43 to 128 characters:
    /// a 42-character verifier redeems the code its own challenge got.
    PkceSyntaxUnchecked = "pkce-syntax-unchecked" => ["AUTH-FLOW-03"],
    /// `/token` redeems the same authorization code twice.
    AcceptReusedCode = "accept-reused-code" => ["AUTH-FLOW-04"],
    /// `/token` redeems a code for any client and any `redirect_uri`.
    UnboundCodes = "unbound-codes" => ["AUTH-FLOW-05"],
    /// `/authorize` redirects to a redirect URI the client never registered.
    AcceptAnyRedirectUri = "accept-any-redirect-uri" => ["AUTH-FLOW-06", "AUTH-3P-06", "AUTH-REG-04"] also ["AUTH-CIMD-03"],
    /// The loopback exception to exact matching (any port) is applied to `https` loopback
    /// redirect URIs too, though RFC 8252 §7.3 makes it one for `http` ones.
    HttpsLoopbackAnyPort = "https-loopback-any-port" => ["AUTH-FLOW-06"],
    /// Loopback redirect URIs are matched exactly, port included, though RFC 8252 §7.3 asks
    /// for any port: a native client that takes a free port at request time cannot log in.
    LoopbackPortMatchedExactly = "loopback-port-matched-exactly" => ["AUTH-FLOW-06"],
    /// An authorization request without `redirect_uri` is refused even for a client with
    /// one registered redirect URI, where OAuth 2.1 makes the parameter optional.
    RedirectUriAlwaysRequired = "redirect-uri-always-required" => ["AUTH-FLOW-06"],
    /// An unknown `client_id` gets its error redirected to the `redirect_uri` it came with.
    RedirectUnknownClients = "redirect-unknown-clients" => ["AUTH-FLOW-07"],
    /// The final redirect to the client drops the client's `state`.
    DropClientState = "drop-client-state" => ["AUTH-FLOW-08"],
    /// A refresh request that carries `resource` is refused with `invalid_target`.
    RefuseResourceOnRefresh = "refuse-resource-on-refresh" => ["AUTH-FLOW-09"],
    /// Tokens issued for another resource are accepted.
    AcceptForeignResourceTokens = "accept-foreign-resource-tokens" => ["AUTH-FLOW-10", "AUTH-TOK-02"],
    /// The token endpoint ignores a `resource` other than the grant's and issues a token
    /// for the grant's resource, which then works here although another was asked for.
    TokenEndpointIgnoresResource = "token-endpoint-ignores-resource" => ["AUTH-FLOW-10", "AUTH-TOK-02"],
    /// A token issued for one of this server's resources works at all of its endpoints:
    /// the `/sse` resource's token at `/mcp` and the other way round.
    AcceptSiblingResourceTokens = "accept-sibling-resource-tokens" => ["AUTH-TOK-02"] also ["AUTH-FLOW-10"],
    /// `resource` is compared case-sensitively, so an uppercase scheme or host is refused.
    CaseSensitiveResource = "case-sensitive-resource" => ["AUTH-FLOW-11"],
    /// Token responses lack `Cache-Control: no-store`.
    CacheableTokenResponses = "cacheable-token-responses" => ["AUTH-FLOW-12"],
    /// Access tokens live thirty days instead of the configured lifetime, so a leaked one
    /// stays useful for a month.
    LongLivedAccessTokens = "long-lived-access-tokens" => ["AUTH-FLOW-14"],
    /// An unsupported `grant_type` gets `invalid_request` instead of `unsupported_grant_type`.
    WrongUnsupportedGrantError = "wrong-unsupported-grant-error" => ["AUTH-FLOW-13"],
    /// Refreshing keeps the old refresh token valid.
    NoRefreshRotation = "no-refresh-rotation" => ["AUTH-FLOW-15"],
    /// Authorization responses carry no `iss`, though the metadata says they do.
    /// AUTH-ASM-11 sees the same broken promise from the metadata's side: the flag is set
    /// and `iss` is missing.
    OmitIss = "omit-iss" => ["AUTH-FLOW-18"] also ["AUTH-ASM-11"],
    /// Authorization responses carry `iss` with a trailing slash the metadata issuer lacks:
    /// the same URL after RFC 3986 normalization, which clients must not apply, so every
    /// strict client refuses the response.
    IssTrailingSlash = "iss-trailing-slash" => ["AUTH-FLOW-20", "AUTH-FLOW-18"],
    /// Authorization responses carry `iss`, but the metadata does not set
    /// `authorization_response_iss_parameter_supported`. AUTH-ASM-11 judges the
    /// metadata's side of the same promise.
    IssNotAdvertised = "iss-not-advertised" => ["AUTH-FLOW-18", "AUTH-ASM-11"],
    /// Revoked tokens are still accepted.
    AcceptRevokedTokens = "accept-revoked-tokens" => ["AUTH-FLOW-19"] also ["AUTH-FLOW-24"],
    /// `/token` checks that a code is live, waits a moment, and then redeems what it
    /// checked without making sure it is the one consuming the code: every redemption
    /// that arrives within the wait gets its own grant. One redemption after another
    /// still works once, so only the concurrent case sees it.
    CodeRedemptionRace = "code-redemption-race" => ["AUTH-FLOW-04"],
    /// The same check-then-use gap for refresh tokens: parallel refreshes of one refresh
    /// token each get new tokens; a refresh after the rotation is still refused.
    RefreshRace = "refresh-race" => ["AUTH-FLOW-15"],
    /// Revocation answers 200 at once and revokes the token a second later, as a queue
    /// behind the endpoint would: a use right after the answer still works.
    RevokeAfterAnswering = "revoke-after-answering" => ["AUTH-FLOW-19"],
    /// Revoking a refresh token answers 200 and ends nothing: the grant and its refresh token
    /// live on. Access tokens are still revoked.
    RefreshTokenRevocationIgnored = "refresh-token-revocation-ignored" => ["AUTH-FLOW-19"] also ["AUTH-FLOW-24"],
    /// A rotated-out refresh token that comes back is refused, but the grant it belonged
    /// to lives on: the thief who refreshed first keeps a working refresh token.
    NoRefreshReuseDetection = "no-refresh-reuse-detection" => ["AUTH-FLOW-21"],
    /// Errors of `/authorize` are redirected to any registered redirect URI, also a web
    /// one that a client registered for itself, before the user approved anything.
    RedirectErrorsToAnyRegisteredUri = "redirect-errors-to-any-registered-uri" => ["AUTH-FLOW-22"],
    /// `/authorize` keeps a client `state` of any length with the pending authorization.
    UnboundedState = "unbounded-state" => ["AUTH-FLOW-23"],
    /// Streams opened with an access token stay open after the token or its grant is
    /// revoked; new requests with the token are still refused.
    StreamsOutliveRevocation = "streams-outlive-revocation" => ["AUTH-FLOW-24"],
    /// Only the 2026-07-28 `subscriptions/listen` stream stays open after its token is
    /// revoked; the session-era streams still end.
    SubscriptionOutlivesRevocation = "subscription-outlives-revocation" => ["AUTH-FLOW-24"],
    /// Streams opened with an access token stay open after the token expires; new
    /// requests with the token are still refused. Tokens live one second, so only the
    /// expiry checks run: every other check's tokens would expire under it.
    StreamsOutliveExpiry = "streams-outlive-expiry" => ["AUTH-FLOW-24"]
        only ["AUTH-FLOW-24#expiry"]
        env ["MCP_GITHUB_ACCESS_TOKEN_TTL_SECS" = "1"],
    /// Allowed: no revocation endpoint is advertised; RFC 7009 is optional and the MCP
    /// specification does not mention revocation. The revocation check warns that it
    /// could not run.
    NoRevocationEndpoint = "no-revocation-endpoint" => allowed ["AUTH-FLOW-19"],
    /// Allowed: revoking an access token answers 400 `unsupported_token_type`, which RFC
    /// 7009 section 2.2.1 provides for servers that revoke only refresh tokens
    /// (access-token revocation is a SHOULD there). Refresh tokens are still revoked.
    RevocationUnsupportedTokenType = "revocation-unsupported-token-type" => allowed ["AUTH-FLOW-19"],
    /// Allowed: no refresh tokens are issued, and the metadata does not list the
    /// `refresh_token` grant; clients "MUST NOT assume refresh tokens will be issued".
    /// The rotation and revocation checks warn that they could not judge refresh tokens.
    NoRefreshTokens = "no-refresh-tokens" => allowed ["AUTH-FLOW-15", "AUTH-FLOW-19"],
    /// A refresh that asks for a scope never granted is honoured, with the granted scope
    /// it does name, instead of refused with `invalid_scope`.
    RefreshWidensScope = "refresh-widens-scope" => ["AUTH-FLOW-25"],

    // AUTH-TOK: token validation at the MCP endpoints.

    /// A GitHub access token is accepted as an MCP token.
    AcceptGitHubTokens = "accept-github-tokens" => ["AUTH-TOK-03"] also ["AUTH-3P-08"],
    /// The bearer check falls back to GitHub: a token it did not issue is sent to GitHub's
    /// `/user`, and if GitHub knows it the request runs as that user. Any GitHub token
    /// then works at every MCP endpoint, one minted for another application included:
    /// token passthrough from the other side. AUTH-TOK-03 sees the GitHub tokens of its
    /// login accepted, and AUTH-GEN-05 one inside a session.
    AcceptUpstreamTokens = "accept-upstream-tokens" => ["AUTH-TOK-02"]
        also ["AUTH-TOK-03", "AUTH-GEN-05", "AUTH-3P-08", "AUTH-TOK-01"],
    /// The tool sends the client's MCP token to GitHub instead of the GitHub token.
    /// GitHub refuses it, so the tool cannot return the profile either (TOOLS-06,
    /// TOOLS-08, and SHTTP5-22's stateless call, which expects the profile), and
    /// AUTH-TOK-04's checks cannot start: the tool fails before GitHub revokes anything.
    SendMcpTokenToGitHub = "send-mcp-token-to-github" => ["AUTH-TOK-03", "AUTH-3P-08"] also ["TOOLS-06", "TOOLS-08", "SHTTP5-22", "AUTH-TOK-04", "TOOLS-16"],
    /// A GitHub 401 during the tool leaves the grant in place, so the client keeps
    /// using a token whose upstream authorization is gone.
    KeepGrantAfterGitHub401 = "keep-grant-after-github-401" => ["AUTH-TOK-04"],
    /// Sessions are not bound to the user who opened them. On SSE another user's POST to
    /// a session's endpoint is answered on the owner's stream (a MUST failure); on
    /// Streamable HTTP it runs as the caller, which breaks only the SHOULD (SEC-02).
    UnboundSessions = "unbound-sessions" => ["AUTH-TOK-05", "SSE-09", "SEC-02"],
    /// On Streamable HTTP a request that names another user's session runs as the user
    /// who opened it: the session, not the token, decides who is calling.
    SessionRunsAsOwner = "session-runs-as-owner" => ["AUTH-TOK-05"] also ["SEC-02"],
    /// Allowed: Streamable HTTP sessions are not bound to a user, but every request runs
    /// as the user of its own token, so a session id cannot be used to act as someone
    /// else. Only the SHOULD to bind sessions to users (SEC-02) is missed, which a SHOULD
    /// lets a server do: SEC-02 warns about it. SSE sessions stay bound.
    UnboundStreamableSessions = "unbound-streamable-sessions" => allowed ["AUTH-TOK-05", "SEC-02"],
    /// The GitHub token is kept per client instead of per grant: the last user to log in
    /// through a client is the one every token of that client acts as at GitHub.
    GitHubTokenPerClient = "github-token-per-client" => ["AUTH-TOK-04"],
    /// The 401 for an invalid token has no `error="invalid_token"`.
    InvalidTokenWithoutError = "invalid-token-without-error" => ["AUTH-TOK-06"],

    // AUTH-3P: the GitHub leg.

    /// The client gets GitHub's authorization code as its own code.
    ForwardGitHubCode = "forward-github-code" => ["AUTH-3P-01"],
    /// A failed GitHub code exchange ends on an error page instead of an error redirect
    /// to the client.
    TokenFailureErrorPage = "token-failure-error-page" => ["AUTH-3P-02"],
    /// A failed GitHub profile lookup at login ends on an error page instead of an error
    /// redirect to the client.
    ProfileFailureErrorPage = "profile-failure-error-page" => ["AUTH-3P-02"],
    /// `/authorize` goes straight to GitHub without the per-client consent page.
    SkipConsent = "skip-consent" => ["AUTH-3P-03", "SEC-05"],
    /// The consent page submits its own approval with a script as soon as it loads:
    /// an interstitial, not a consent. AUTH-3P-04 finds the same page needs no explicit
    /// approval.
    ConsentAutoSubmits = "consent-auto-submits" => ["AUTH-3P-03", "SEC-05"] also ["AUTH-3P-04"],
    /// The consent form is accepted without its CSRF token.
    SkipConsentCsrf = "skip-consent-csrf" => ["AUTH-3P-04"],
    /// The consent form's CSRF token is compared by XORing the byte differences together
    /// instead of ORing them, so a token with the same bit changed in two places passes.
    XorCsrfComparison = "xor-csrf-comparison" => ["AUTH-3P-04"],
    /// A registered `client_name` is kept as sent, bidirectional overrides and control
    /// characters included, and the consent page shows it so.
    ClientNameKeepsBidi = "client-name-keeps-bidi" => ["AUTH-3P-04"],
    /// A consent submission refused for its CSRF token or browser binding drops the pending
    /// request, so that whoever forges one cancels the user's own approval.
    ForgedApprovalCancelsRequest = "forged-approval-cancels-request" => ["AUTH-3P-04"],
    /// The consent cookie is not `HttpOnly`.
    ConsentCookieNotHttpOnly = "consent-cookie-not-httponly" => ["AUTH-3P-05"],
    /// A consent cookie the browser already holds, of the right length, is adopted as the
    /// binding instead of a fresh one: whoever planted it shares the victim's login.
    AdoptPlantedConsentCookie = "adopt-planted-consent-cookie" => ["AUTH-3P-05"],
    /// Every browser gets the same consent cookie value, so the binding it is meant to be
    /// tells no browser from another and an attacker knows it in advance.
    PredictableConsentCookie = "predictable-consent-cookie" => ["AUTH-3P-05"],
    /// Every authorization uses the same upstream `state`, and it is never consumed.
    /// Concurrent logins then collide, so only the check that names the defect runs.
    ReuseUpstreamState = "reuse-upstream-state" => ["AUTH-3P-07"] only ["AUTH-3P-07"],
    /// The upstream `state` is minted and stored when the consent page is shown, and set
    /// there in a cookie of its own; the approval only sends the browser on to GitHub with
    /// it. The state exists before anyone consented.
    UpstreamStateBeforeConsent = "upstream-state-before-consent" => ["AUTH-3P-07"],
    /// Consent requests and upstream states are kept for a day, whatever lifetime the
    /// consent cookie advertises. The lifetime is two seconds, so that the check waits it
    /// out, and only that check runs: others' logins would expire under it.
    UpstreamStateNeverExpires = "upstream-state-never-expires" => ["AUTH-3P-07"]
        only ["AUTH-3P-07"]
        env ["MCP_GITHUB_PENDING_AUTHORIZATION_TTL_SECS" = "2"],
    /// The GitHub callback does not ask for the consent cookie: any browser that follows
    /// an approved GitHub link gets the code, for whoever it is logged in as at GitHub.
    CallbackNotBoundToBrowser = "callback-not-bound-to-browser" => ["AUTH-3P-07"],
    /// The consent cookie is compared with the binding by XORing the byte differences
    /// together, so a cookie with the same bit changed in two places passes for the
    /// approving browser's.
    XorBrowserBinding = "xor-browser-binding" => ["AUTH-3P-07"],

    // SHTTP: Streamable HTTP.

    /// A foreign `Origin` is not rejected, on either transport (also with a 2026-07-28
    /// request, SHTTP5-02).
    SkipOriginCheck = "skip-origin-check" => ["SHTTP-02", "SSE-07"] also ["SHTTP5-02"],
    /// A foreign `Origin` on `/mcp` gets 400 instead of 403. Any 4xx is allowed for
    /// clients of versions before 2025-11-25; a 2025-11-25 session, the suite's
    /// default, must get 403, and so must a 2026-07-28 request (SHTTP5-02).
    ForeignOriginGets400 = "foreign-origin-gets-400" => ["SHTTP-02"] also ["SHTTP5-02"],
    /// Notifications to `/mcp` are answered with 200 instead of 202, 2026-07-28 ones too
    /// (SHTTP5-04).
    NotificationsGet200 = "notifications-get-200" => ["SHTTP-05"] also ["SHTTP5-04"],
    /// Notifications POSTed in a session (and on SSE) are answered 200 with a JSON-RPC
    /// response `{"id": null, "result": {}}`. SHTTP-05 and SSE-05 see the 200, and
    /// SHTTP-22's batch of two notifications gets these answers back.
    AnswerNotifications = "answer-notifications" => ["RPC-04", "SHTTP-05"] also ["SHTTP-22", "SSE-05"],
    /// `notifications/initialized` on `/mcp` gets 400. Every session's handshake then
    /// fails, so only the check that names the defect runs.
    RefuseInitializedNotification = "refuse-initialized-notification" => ["SHTTP-05"]
        only ["SHTTP-05"],
    /// A message that is not JSON-RPC and has no usable id gets 200 with an error body
    /// instead of a 4xx; a 2026-07-28 array body is one (SHTTP5-03).
    InvalidInputGets200 = "invalid-input-gets-200" => ["SHTTP-06"] also ["SHTTP5-03", "SHTTP-23"],
    /// SSE responses start with a `data:` event that is not JSON: a keep-alive sent as
    /// data instead of as a comment.
    NonJsonSseEvent = "non-json-sse-event" => ["SHTTP-07"] also ["SHTTP-10"],
    /// GET on `/mcp` answers 501 instead of opening a stream or answering 405 (the
    /// answer 2026-07-28 asks for, SHTTP5-16). SHTTP-20 sees it too: a GET with an
    /// unsupported `MCP-Protocol-Version` gets 501, neither the 400 it asks for nor the 405
    /// of a server without the stream.
    GetNotImplemented = "get-not-implemented" => ["SHTTP-12"] also ["SHTTP5-16", "SHTTP-20"],
    /// Session ids contain a space, which is not a visible ASCII character.
    SessionIdWithSpace = "session-id-with-space" => ["SHTTP-16"] also ["SHTTP-22"],
    /// Streamable HTTP session ids come from a counter (`session-1`, `session-2`, ...):
    /// unique and visible ASCII, but guessable.
    SequentialSessionIds = "sequential-session-ids" => ["SHTTP-16"] also ["SHTTP-22"],
    /// A request without `Mcp-Session-Id` is routed to a session its token opened.
    HeaderlessJoinsSession = "headerless-joins-session" => ["SHTTP-17"],
    /// DELETE answers 200 but leaves the session open.
    DeleteKeepsSession = "delete-keeps-session" => ["SHTTP-18"],
    /// DELETE naming a session that no longer exists (or never did) is answered 202, as
    /// rmcp answers it, instead of 404.
    UnknownSessionDeleteAccepted = "unknown-session-delete-accepted" => ["SHTTP-18"],
    /// An unsupported `MCP-Protocol-Version` header is dropped instead of refused. A
    /// 2026-07-28 request with an unsupported version then lacks the header and gets
    /// `HeaderMismatch` (-32020) instead of `UnsupportedProtocolVersion` (SHTTP5-10).
    IgnoreUnsupportedProtocolVersion = "ignore-unsupported-protocol-version" => ["SHTTP-20"] also ["SHTTP5-10"],
    /// An unsupported `MCP-Protocol-Version` is refused on POST only: GET and DELETE
    /// with one are served as if it were the negotiated version.
    ProtocolVersionCheckedOnPostOnly = "protocol-version-checked-on-post-only" => ["SHTTP-20"],
    /// Requests in a session without `MCP-Protocol-Version` get 400.
    RequireProtocolVersionHeader = "require-protocol-version-header" => ["SHTTP-21"],
    /// JSON-RPC batches are refused in every session, 2025-03-26 ones included.
    NoBatches = "no-batches" => ["SHTTP-22"],
    /// JSON-RPC batches are received in sessions of every version, also from 2025-06-18,
    /// where a POST body is one message.
    BatchesInEveryVersion = "batches-in-every-version" => ["SHTTP-23"],
    /// A 2025-03-26 batch that holds `initialize` is split and run like any other batch
    /// instead of refused.
    InitializeRunsInBatch = "initialize-runs-in-batch" => ["LIFE-08"],
    /// The initialize stream and every GET stream are primed with the event id `0`
    /// (rmcp's own numbering), so ids repeat across a session's streams.
    DuplicateEventIds = "duplicate-event-ids" => ["SHTTP-15"],
    /// SSE responses to POSTs start without the priming event (an id and empty data).
    NoPrimingEvent = "no-priming-event" => ["SHTTP-10"],
    /// GET on `/mcp` answers 404, as if the server's stream lived at another path.
    GetStreamElsewhere = "get-stream-elsewhere" => ["SHTTP-01"] also ["SHTTP5-16"],
    /// A POST whose `Accept` lacks `text/event-stream` is served as if it listed both, so
    /// a client that accepts only JSON gets an event stream.
    AcceptNotChecked = "accept-not-checked" => ["SHTTP-04"],
    /// SSE responses to POSTs stay open after their response, until the client leaves.
    PostStreamStaysOpen = "post-stream-stays-open" => ["SHTTP-08"],
    /// DELETE answers 405, which says sessions cannot be ended, yet ends the session.
    DeleteRefusedButEnded = "delete-refused-but-ended" => ["SHTTP-19"],
    /// Every response also goes to the session's GET streams, besides the POST's own.
    ResponsesOnGetStream = "responses-on-get-stream" => ["SHTTP-13", "SHTTP-14"],
    /// The stream answering `initialize` carries a `roots/list` request of the server
    /// before the response, so before `notifications/initialized` can have come.
    RequestBeforeInitialized = "request-before-initialized" => ["LIFE-04"],
    /// The server's title in the `initialize` answer carries a Latin-1 "é" (the byte
    /// 0xE9), so that message is no UTF-8.
    Latin1ServerTitle = "latin1-server-title" => ["SHTTP-24"],
    /// A POST's stream in a session carries, before its response, a progress notification
    /// for a token that no request of the client named.
    ForeignProgressOnPostStream = "foreign-progress-on-post-stream" => ["SHTTP-09"],

    // SHTTP5: stateless Streamable HTTP (2026-07-28).

    /// A 2026-07-28 request whose `MCP-Protocol-Version` header differs from its `_meta`
    /// protocol version gets code -32602 instead of the `HeaderMismatch` code -32020, as
    /// does one whose `Mcp-Method` or `Mcp-Name` differs from its body (SHTTP5-13,
    /// SHTTP5-14).
    HeaderMismatchAsInvalidParams = "header-mismatch-as-invalid-params" => ["SHTTP5-09"]
        also ["SHTTP5-13", "SHTTP5-14"],
    /// The `UnsupportedProtocolVersion` error (-32022) to a 2026-07-28 request does not
    /// list the supported versions in `data.supported`.
    UnsupportedVersionWithoutList = "unsupported-version-without-list" => ["SHTTP5-10"],
    /// A 2026-07-28 request for an unknown method gets its -32601 error with HTTP 200
    /// instead of 404.
    MethodNotFoundGets200 = "method-not-found-gets-200" => ["SHTTP5-11"],
    /// `server/discover` is not implemented: it gets 404 and -32601.
    NoServerDiscover = "no-server-discover" => ["SHTTP5-20"],
    /// The `server/discover` result lacks `resultType`, `ttlMs` and `cacheScope`; without
    /// `resultType` it is also one of the results SHTTP5-19 reads.
    DiscoverWithoutCacheHints = "discover-without-cache-hints" => ["SHTTP5-20"]
        also ["SHTTP5-19"],
    /// A 2026-07-28 `tools/call` without a session is refused with 400, as if its context
    /// had to come from an earlier `initialize` on the connection. The refusal comes before
    /// the header checks, so the calls with a wrong `Mcp-Method` or `Mcp-Name` of SHTTP5-13
    /// and SHTTP5-14 get -32600 instead of -32020, and the right Base64 one is refused.
    StatelessCallNeedsSession = "stateless-call-needs-session" => ["SHTTP5-22"]
        also ["SHTTP5-13", "SHTTP5-14", "SHTTP5-17"],
    /// A 2026-07-28 `tools/list` is answered 202 with no body, as if its response went
    /// out elsewhere; a 202 has no JSON or SSE body either (SHTTP5-05).
    StatelessRequestGets202 = "stateless-request-gets-202" => ["SHTTP5-01"] also ["SHTTP5-05"],
    /// A JSON-RPC response object POSTed with `MCP-Protocol-Version: 2026-07-28` is
    /// accepted with 202 instead of refused.
    StatelessResponseObjectAccepted = "stateless-response-object-accepted" => ["SHTTP5-03"],
    /// An accepted 2026-07-28 notification gets 202 with a JSON body.
    StatelessNotificationWithBody = "stateless-notification-with-body" => ["SHTTP5-04"],
    /// The JSON answer to a 2026-07-28 `tools/list` is an array holding the response
    /// instead of the one object.
    StatelessResultInArray = "stateless-result-in-array" => ["SHTTP5-05"],
    /// The answer to a 2026-07-28 `tools/call` is an SSE stream that sends a `ping`
    /// request of the server's own before the response.
    RequestOnResponseStream = "request-on-response-stream" => ["SHTTP5-06"],
    /// The answer to a 2026-07-28 `tools/call` is an SSE stream without
    /// `X-Accel-Buffering: no`.
    SseWithoutAccelBuffering = "sse-without-accel-buffering" => ["SHTTP5-07"],
    /// A 2026-07-28 request without `MCP-Protocol-Version` takes the version from its
    /// `_meta` and is served as a 2026-07-28 request.
    MissingVersionHeaderServedAsModern = "missing-version-header-served-as-modern" => ["SHTTP5-12"],
    /// `Mcp-Method` is never compared with the body's method: a missing or different one
    /// is accepted.
    McpMethodNotChecked = "mcp-method-not-checked" => ["SHTTP5-13"],
    /// A plain `Mcp-Name` is never compared with the body's name: a missing or different
    /// one is accepted (Base64-encoded ones are still decoded and compared).
    McpNameNotChecked = "mcp-name-not-checked" => ["SHTTP5-13"],
    /// A Base64-encoded `Mcp-Name` is compared undecoded, so it never matches and the
    /// request gets `HeaderMismatch`.
    Base64McpNameNotDecoded = "base64-mcp-name-not-decoded" => ["SHTTP5-14"],
    /// The response to a 2026-07-28 request carries the `Mcp-Session-Id` the request sent.
    StatelessEchoesSessionId = "stateless-echoes-session-id" => ["SHTTP5-16"],
    /// A 2026-07-28 request whose `_meta` lacks `clientCapabilities` is served as if it
    /// declared none, instead of refused as malformed.
    MissingClientCapabilitiesAccepted = "missing-client-capabilities-accepted" => ["SHTTP5-17"],
    /// The result of a 2026-07-28 `tools/call` has no `resultType`.
    ResultWithoutResultType = "result-without-result-type" => ["SHTTP5-19"],
    /// The results of 2026-07-28 `tools/list` and `tools/call` have no
    /// `io.modelcontextprotocol/serverInfo` in `_meta`.
    ResultWithoutServerInfo = "result-without-server-info" => ["SHTTP5-21"],
    /// A 2026-07-28 `tools/call` of an unknown tool gets the retired code -32002 instead
    /// of -32602.
    RetiredErrorCode = "retired-error-code" => ["SHTTP5-24"],
    /// The answer to a 2026-07-28 `tools/call` is an SSE stream that sends a
    /// `notifications/message` log entry, though the request asked for no log level.
    LogWithoutLogLevel = "log-without-log-level" => ["SHTTP5-25"],
    /// The `subscriptions/listen` stream sends `notifications/tools/list_changed` before
    /// its acknowledgment.
    NotificationBeforeSubscriptionAck = "notification-before-subscription-ack" => ["SHTTP5-26"],
    /// The `subscriptions/listen` stream is read whole before it is sent, as a JSON result
    /// is to add `serverInfo`: its acknowledgment arrives only when the stream ends, when
    /// the token that opened it expires. AUTH-FLOW-24 sees it too: a stream whose head has
    /// not arrived cannot be seen to end when its token is revoked.
    SubscriptionHeldBack = "subscription-held-back" => ["SHTTP5-26"] also ["AUTH-FLOW-24"],
    /// The server acts as one that serves only 2026-07-28: `initialize` gets 400 with an
    /// error that names no version. Every session's handshake then fails, so only the
    /// check that names the defect runs.
    InitializeRefusedWithoutVersions = "initialize-refused-without-versions" => ["SHTTP5-23"]
        only ["SHTTP5-23"],

    // SSE: the legacy HTTP+SSE transport.

    /// `GET /sse` does not send the `endpoint` event, so a client never learns the POST
    /// endpoint the transport must offer (SSE-01), and COMPAT-01 finds the old
    /// transport's POST endpoint missing beside the MCP endpoint.
    OmitEndpointEvent = "omit-endpoint-event" => ["SSE-01", "SSE-02"] also ["COMPAT-01"],
    /// The message endpoint acknowledges each request with a placeholder JSON-RPC result
    /// in the POST body, besides the real response on the stream.
    ResultInPostBody = "result-in-post-body" => ["SSE-04"],
    /// The message endpoint answers each request with its response in the POST body
    /// (200) and sends nothing on the stream. Every SSE session's `initialize` then
    /// waits in vain on the stream, so only the check that names the defect runs.
    ResponseOnlyInPostBody = "response-only-in-post-body" => ["SSE-04"] only ["SSE-04"],
    /// The message endpoint answers 200 instead of 202.
    SsePostsGet200 = "sse-posts-get-200" => ["SSE-05"],
    /// POSTs for an unknown session get 400 instead of 404.
    UnknownSseSessionGets400 = "unknown-sse-session-gets-400" => ["SSE-06"],
    /// An SSE session stays after its stream closed, and messages posted to it get 202
    /// and are lost.
    SseClosedSessionAcceptsPosts = "sse-closed-session-accepts-posts" => ["SSE-06"],
    /// SSE session ids come from a counter.
    SequentialSseSessionIds = "sequential-sse-session-ids" => ["SEC-01"],
    /// A POST on the SSE URL opens a legacy stream instead of failing with 400, 404 or
    /// 405, so a Streamable HTTP client never falls back to the old transport.
    SseUrlAcceptsPost = "sse-url-accepts-post" => ["COMPAT-02"],
    /// `GET /sse` answers an authorized client 404: the old transport is gone, only the
    /// MCP endpoint is served. Every SSE session then fails, so only the check that
    /// names the defect runs.
    NoLegacyTransport = "no-legacy-transport" => ["COMPAT-01"] only ["COMPAT-01"],

    // LIFE: the lifecycle.

    /// Requests that arrive before `initialize` are accepted with 202 and ignored
    /// instead of refused: on SSE before the session's `initialize`, on Streamable HTTP
    /// without a session from a token that never opened one (2026-07-28 requests, which
    /// have no `initialize`, are left alone). On SSE that breaks the lifecycle the
    /// legacy transport must keep (SSE-10).
    IgnoreBeforeInitialize = "ignore-before-initialize" => ["LIFE-01", "SSE-10"],
    /// The initialize result does not declare the `tools` capability.
    OmitToolsCapability = "omit-tools-capability" => ["LIFE-02", "TOOLS-01"],
    /// Any requested protocol version is echoed, even one that does not exist.
    EchoAnyProtocolVersion = "echo-any-protocol-version" => ["LIFE-03"],
    /// Allowed: `initialize` with a version the server does not support gets the error
    /// the specification's own example shows (-32602 "Unsupported protocol version",
    /// with `data.supported`) instead of a counter-offer. LIFE-03 warns.
    UnsupportedVersionAsInvalidParams = "unsupported-version-as-invalid-params" => allowed ["LIFE-03"],
    /// `ping` answers with a result that is not empty.
    PingResultNotEmpty = "ping-result-not-empty" => ["LIFE-07"] also ["LIFE-05"],
    /// A `ping` between `initialize` and `notifications/initialized` gets an error.
    RefusePingBeforeInitialized = "refuse-ping-before-initialized" => ["LIFE-05"],
    /// `prompts/list`, `resources/list` and `completion/complete` get empty results,
    /// though the server declares none of their capabilities.
    AnswerUndeclaredCapabilities = "answer-undeclared-capabilities" => ["LIFE-06"],

    // RPC: JSON-RPC.

    /// String ids come back JSON-encoded a second time (`"abc"` as `"\"abc\""`).
    DoubleEncodedStringIds = "double-encoded-string-ids" => ["RPC-02"] also ["LIFE-05", "SSE-10"],
    /// The JSON-RPC error for a session the transport does not know carries its code as
    /// a string (`"-32600"`), on both transports.
    ErrorCodeAsString = "error-code-as-string" => ["RPC-03"],
    /// The JSON-RPC error for a session the transport does not know has no
    /// `"jsonrpc": "2.0"`, on both transports.
    ErrorWithoutJsonrpcVersion = "error-without-jsonrpc-version" => ["RPC-01"],
    /// The JSON-RPC error for a session the transport does not know carries code -32001,
    /// from the sub-range new implementations should not use, on both transports.
    LegacyRangeSessionError = "legacy-range-session-error" => ["RPC-11"],
    /// A request with `id: null` is taken for a notification: 202 and no answer.
    NullIdAsNotification = "null-id-as-notification" => ["RPC-05"],
    /// Parse errors carry code -32600 instead of -32700.
    WrongParseErrorCode = "wrong-parse-error-code" => ["RPC-06"],
    /// JSON that is no JSON-RPC request gets the parse error code -32700 instead of
    /// -32600 (still with 400). A request with `id: null` is such a message, so RPC-05
    /// sees the wrong code too.
    InvalidRequestAsParseError = "invalid-request-as-parse-error" => ["RPC-07"] also ["RPC-05", "SHTTP-23"],
    /// A malformed request that has an id is accepted with 202 and dropped.
    DropInvalidRequests = "drop-invalid-requests" => ["RPC-07"],
    /// An unknown method gets code -32603 instead of -32601. On a 2026-07-28 request
    /// that also makes the answer 200 instead of 404 (SHTTP5-11).
    WrongMethodNotFoundCode = "wrong-method-not-found-code" => ["RPC-08"] also ["SHTTP5-11"],
    /// A request that reuses the id of a request still in flight in its session is
    /// passed on instead of refused: on Streamable HTTP rmcp then drops one of the two
    /// replies, so one POST never gets its answer; on SSE one reply never reaches the
    /// stream.
    DuplicateInFlightIdsAccepted = "duplicate-in-flight-ids-accepted" => ["RPC-02"],
    /// An unknown tool gets an `isError` result instead of a JSON-RPC error.
    UnknownToolAsToolError = "unknown-tool-as-tool-error" => ["RPC-09"],
    /// Invalid `tools/call` and `tools/list` params (an unknown tool, no name, an
    /// `arguments` that is no object, a cursor the server never issued) get -32603
    /// instead of -32602.
    InvalidParamsAsInternalError = "invalid-params-as-internal-error" => ["RPC-09"],

    // TOOLS: tools/list and tools/call.

    /// The tool's `inputSchema` has no `"type": "object"`.
    UntypedInputSchema = "untyped-input-schema" => ["TOOLS-02"],
    /// The tool's `inputSchema` has `"required": "nothing"`, a string where the 2020-12
    /// meta-schema wants an array of names.
    InvalidInputSchema = "invalid-input-schema" => ["TOOLS-03"],
    /// The tool's `outputSchema` has no `"type": "object"`, which 2025-06-18 and
    /// 2025-11-25 require of it (2026-07-28 allows any JSON Schema).
    UntypedOutputSchema = "untyped-output-schema" => ["TOOLS-02"],
    /// `tools/list` lists every tool twice.
    DuplicateToolName = "duplicate-tool-name" => ["TOOLS-04"],
    /// Every `tools/list` page carries the same `nextCursor`, and that cursor gets the
    /// first page again: a client following the cursors never stops.
    RepeatingToolPages = "repeating-tool-pages" => ["TOOLS-05"],
    /// `tools/list` lists no tools, though `get_user_profile` still answers: the
    /// profile's tool is missing from the list. TOOLS-08 then finds no output schema
    /// to check against and skips.
    UnlistedProfileTool = "unlisted-profile-tool" => ["TOOLS-02"],
    /// Successful tool results say `"isError": "false"`, a string where the schema has a
    /// boolean. Failed ones keep `true`, so only the result-shape checks see it.
    ToolResultIsErrorAsString = "tool-result-is-error-as-string" => ["TOOLS-06"],
    /// `get_user_profile` returns another user's profile, also to SHTTP5-22's stateless
    /// call, which expects the logged-in user's.
    WrongUserProfile = "wrong-user-profile" => ["TOOLS-06"] also ["SHTTP5-22"],
    /// Allowed: the server has other tools than this project's profile tool: one
    /// read-only tool, `describe_server`, and no `get_user_profile`. Run with
    /// `--tool-profile none`, the spec's tool checks must pass as for any MCP server.
    OtherToolsOnly = "other-tools-only" => allowed ["TOOLS-02", "TOOLS-06"]
        args ["--tool-profile", "none"],
    /// `structuredContent` gives the user's `id` as a string, against the output schema.
    StructuredContentMismatch = "structured-content-mismatch" => ["TOOLS-08"] also ["TOOLS-09"],
    /// Allowed: `structuredContent` is sent in sessions of versions before 2025-06-18,
    /// whose schema has no such field (what the suite's SSE sessions, at 2024-11-05, see).
    /// A result may carry fields its version does not define; clients ignore them.
    StructuredContentInOldSessions = "structured-content-in-old-sessions" => allowed ["TOOLS-08"],
    /// `structuredContent` has a member (`served_by`) that the text block's JSON lacks;
    /// both still hold the profile.
    StructuredContentDiffersFromText = "structured-content-differs-from-text" => ["TOOLS-09"],
    /// Tool results embed a `resource` content block, though the server does not declare
    /// the resources capability.
    EmbeddedResourceWithoutCapability = "embedded-resource-without-capability" => ["TOOLS-15"],
    /// A failing tool's `isError` result carries the server's stack backtrace.
    ToolFailureLeaksTrace = "tool-failure-leaks-trace" => ["RPC-10"],
    /// A failing tool is reported as a JSON-RPC error instead of `isError`.
    ToolFailureAsRpcError = "tool-failure-as-rpc-error" => ["TOOLS-10"],
    /// GitHub's rate-limit answer (403 or 429) becomes a JSON-RPC internal error
    /// instead of an `isError` result that says when to retry.
    RateLimitAsRpcError = "rate-limit-as-rpc-error" => ["TOOLS-16"],

    // ROBUST: the robustness phase (the suite's `--robustness`), one class each. The runs
    // are limited to the check, which turns the phase on (see `xtask/src/faults.rs`).

    /// A JSON body that does not parse gets 500: the parse error escapes as an internal
    /// error, on every endpoint.
    ServerErrorOnMalformedJson = "server-error-on-malformed-json" => ["ROBUST-01"]
        only ["ROBUST-01"],
    /// A request whose `MCP-Protocol-Version` is no known version is never answered.
    HangOnUnknownProtocolVersion = "hang-on-unknown-protocol-version" => ["ROBUST-02"]
        only ["ROBUST-02"],
    /// A header value with a byte outside ASCII panics the request's task, so the
    /// connection closes without an answer.
    PanicOnNonAsciiHeader = "panic-on-non-ascii-header" => ["ROBUST-03"]
        only ["ROBUST-03"],
    /// Every request body is kept for good: anonymous clients grow the server's memory
    /// without bound.
    KeepRequestBodies = "keep-request-bodies" => ["ROBUST-04"]
        only ["ROBUST-04"],

    // MODEL: properties across interleaved flows (the suite's `--model` phase). Each run is
    // limited to its check, which the fault harness runs with the model phase on.

    /// Revoking a refresh token that a refresh issued is answered 200 and does nothing;
    /// the refresh token a login issued is still revoked, so only a revocation after a
    /// rotation shows it.
    RevocationMissesRotatedTokens = "revocation-misses-rotated-tokens" => ["MODEL-01"]
        only ["MODEL-01"],
    /// The refresh token a login issued is never rotated out; the refresh tokens that
    /// refreshes issue are.
    FirstRefreshTokenNeverRotates = "first-refresh-token-never-rotates" => ["MODEL-02"]
        only ["MODEL-02"],
    /// `get_user_profile` caches the first profile it fetched, keyed by nothing, and
    /// serves it to every caller after that.
    ProfileCacheSharedAcrossUsers = "profile-cache-shared-across-users" => ["MODEL-03"]
        only ["MODEL-03"],
    /// Streamable HTTP sessions take any user's token, each request running as its own
    /// token's user; legacy sessions stay bound. The server behaves as with the allowed
    /// `unbound-streamable-sessions`; the model phase sees the missed SHOULD on sessions
    /// of any age and order, where MODEL-04 warns.
    StreamableSessionsAnyUser = "streamable-sessions-any-user" => ["MODEL-04"]
        only ["MODEL-04"],
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

impl Fault {
    /// The fault's table entry as one JSON object, as `--list-faults` prints it for
    /// `cargo xtask faults`.
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name(),
            "allowed": self.allowed(),
            "breaks": self.breaks(),
            "also_breaks": self.also_breaks(),
            "only": self.only(),
            "env": self
                .env()
                .iter()
                .map(|(name, value)| ((*name).to_owned(), serde_json::Value::from(*value)))
                .collect::<serde_json::Map<_, _>>(),
            "args": self.suite_args(),
            "description": self.description(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_fault_round_trips_through_its_name() {
        for fault in Fault::ALL {
            assert_eq!(fault.name().parse::<Fault>(), Ok(*fault));
        }
    }

    #[test]
    fn names_are_unique_and_every_fault_is_documented() {
        let names: BTreeSet<&str> = Fault::ALL.iter().map(|fault| fault.name()).collect();
        assert_eq!(names.len(), Fault::ALL.len());
        for fault in Fault::ALL {
            assert!(
                !fault.description().is_empty(),
                "{fault} has no documentation"
            );
        }
    }

    #[test]
    fn the_extra_table_columns_reach_the_accessors() {
        assert_eq!(
            Fault::DropWwwAuthenticate.also_breaks(),
            ["AUTH-TOK-06", "AUTH-SCOPE-02", "AUTH-PRM-06"]
        );
        assert_eq!(Fault::AcceptExpiredTokens.only(), ["AUTH-GEN-05#expired"]);
        assert_eq!(
            Fault::AcceptExpiredTokens.env(),
            [("MCP_GITHUB_ACCESS_TOKEN_TTL_SECS", "1")]
        );
        assert!(Fault::AllowMissingPkce.also_breaks().is_empty());
        assert!(Fault::AllowMissingPkce.env().is_empty());
    }
}
