//! The checks, one module per area of the requirement catalogue (`requirements.toml`), and what they share: the [`Check`] record, the
//! [`Verdict`] a check body returns, [`Findings`] for checks with several assertions, and the
//! [`Ctx`] that gives each check logins, sessions and the recorded transcript.
//!
//! A check body returns `Err` when it could not reach a verdict (the server did not answer, a
//! login failed): that is reported as an **error**, which fails the run for a MUST check. When
//! the step that failed is one another check judges (registration, the authorization round
//! trip, the token exchange, opening a session), the login helpers say so with a
//! [`Prerequisite`] error; if that check failed or errored in the same run, the result is
//! **blocked** by it instead, and the report shows the defect once, in its own check. A check
//! body returns [`Verdict::Skip`] only for a stated legitimate reason (the feature is not
//! offered, the version is filtered out, `--slow` was not given). In live mode the helpers that
//! need the mock GitHub or the user's login raise a [`Refusal`] instead of doing it, and the run
//! skips the check with the refusal's reason; no check body handles live mode itself.

pub mod attacks;
pub mod auth_3p;
pub mod auth_asm;
pub mod auth_cimd;
pub mod auth_flow;
pub mod auth_gen;
pub mod auth_prm;
pub mod auth_reg;
pub mod auth_scope;
pub mod auth_tok;
pub mod compat;
pub mod concurrency;
pub mod life;
pub mod model;
pub mod robust;
pub mod rpc;
pub mod sec;
pub mod shttp;
pub mod shttp5;
pub mod sse;
pub mod tools;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use anyhow::{anyhow, bail};
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use url::Url;

use crate::client::McpConn;
use crate::config::{SuiteConfig, Transport};
use crate::http::legacy::{self, Connect};
use crate::http::streamable::Shttp;
use crate::http::{Exchange, Http, Req};
use crate::mock::MockAdmin;
use crate::oauth::REDIRECT_URI;
use crate::oauth::browser::{Browser, Consent, Script};
use crate::oauth::discovery::{Discovery, Endpoints};
use crate::oauth::flow::{self, AuthOutcome, AuthParams, Callback, Pkce, Tokens};
use crate::oauth::registration::{self, Client, ClientKind};
use crate::profile::{Assessment, Profile};
use crate::snapshot::Transcript;
use crate::version::{Version, Versions};

/// Requirement level, as the catalogue states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// MUST / MUST NOT, and RFC requirements that are MUST in the RFC: a violation fails.
    Must,
    /// SHOULD / SHOULD NOT, and client MUSTs from which a server rule is derived: a violation
    /// warns.
    Should,
    /// MAY: a violation warns.
    May,
    /// DE-FACTO behaviour and observations: a violation warns.
    Info,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
            Level::Info => "INFO",
        })
    }
}

/// Where a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Once per run: the authorization server does not depend on the MCP transport.
    AuthServer,
    /// Once per listed transport.
    Transports(&'static [Transport]),
}

pub const BOTH: Scope = Scope::Transports(&[Transport::StreamableHttp, Transport::Sse]);
pub const SHTTP: Scope = Scope::Transports(&[Transport::StreamableHttp]);
pub const SSE: Scope = Scope::Transports(&[Transport::Sse]);

/// The boxed body of a check.
pub type CheckFn = fn(Ctx) -> BoxFuture<'static, anyhow::Result<Verdict>>;

/// One check: which requirement it proves, how strictly, where, and the code.
#[derive(Clone, Copy)]
pub struct Check {
    /// The catalogue ID the check is named after.
    pub id: &'static str,
    /// A case name when one requirement has several checks (`AUTH-GEN-05#expired`).
    pub case: Option<&'static str>,
    /// Further IDs the same observation proves.
    pub also: &'static [&'static str],
    pub level: Level,
    pub versions: Versions,
    pub scope: Scope,
    pub title: &'static str,
    pub run: CheckFn,
}

impl Check {
    /// The check of requirement `id`, run where `scope` says by `run`. Its level, versions and
    /// title are the catalogue's (`requirements.toml`): one source of truth, so that a
    /// declaration is one line. Panics on an ID the catalogue lacks, which the catalogue's
    /// tests and `cargo xtask coverage --check` catch before a release.
    pub fn new(id: &'static str, scope: Scope, run: CheckFn) -> Check {
        let requirement = crate::catalogue::get(id)
            .unwrap_or_else(|| panic!("check {id}: the catalogue has no such requirement"));
        Check {
            id,
            case: None,
            also: &[],
            level: requirement.level,
            // A requirement whose versions are not one range names its range at the check.
            versions: requirement.version_range().unwrap_or(Versions::ALL),
            scope,
            title: requirement.title.as_str(),
            run,
        }
    }

    /// One of several checks of a requirement, with the title of what this case observes.
    pub const fn case(mut self, case: &'static str, title: &'static str) -> Check {
        self.case = Some(case);
        self.title = title;
        self
    }

    /// Further requirements the same observation proves.
    pub const fn also(mut self, ids: &'static [&'static str]) -> Check {
        self.also = ids;
        self
    }

    /// A level other than the catalogue's; the call site says why, and the catalogue's tests
    /// list each such disagreement.
    pub const fn level(mut self, level: Level) -> Check {
        self.level = level;
        self
    }

    /// Versions other than the catalogue's; the call site says why.
    pub const fn versions(mut self, versions: Versions) -> Check {
        self.versions = versions;
        self
    }

    /// The unique name of the check: the ID, plus `#case` when there is one.
    pub fn key(&self) -> String {
        match self.case {
            Some(case) => format!("{}#{case}", self.id),
            None => self.id.to_owned(),
        }
    }

    /// The area, the ID without its number (`AUTH-FLOW`).
    pub fn area(&self) -> &'static str {
        area_of(self.id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::once(self.id).chain(self.also.iter().copied())
    }
}

pub fn area_of(id: &str) -> &str {
    id.rsplit_once('-').map_or(id, |(area, _)| area)
}

/// Every check, in catalogue order.
pub fn all() -> Vec<Check> {
    let mut out = Vec::new();
    out.extend(auth_gen::checks());
    out.extend(auth_asm::checks());
    out.extend(auth_prm::checks());
    out.extend(auth_scope::checks());
    out.extend(auth_reg::checks());
    out.extend(auth_cimd::checks());
    out.extend(auth_flow::checks());
    out.extend(auth_tok::checks());
    out.extend(auth_3p::checks());
    out.extend(shttp::checks());
    out.extend(shttp5::checks());
    out.extend(sse::checks());
    out.extend(compat::checks());
    out.extend(life::checks());
    out.extend(rpc::checks());
    out.extend(tools::checks());
    out.extend(sec::checks());
    out.extend(concurrency::checks());
    out.extend(attacks::checks());
    out.extend(robust::checks());
    out.extend(model::checks());
    out
}

/// What went wrong, for the report.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Evidence {
    pub message: String,
    /// Redacted request lines and response excerpts.
    pub exchanges: Vec<String>,
}

/// What a check body concludes.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// The requirement holds (with an optional note).
    Pass(Option<String>),
    /// The requirement is broken: a failure for MUST checks, a warning otherwise.
    Violation(Evidence),
    /// Something worth reporting that is not a violation of the checked level.
    Warn(Evidence),
    /// The check does not apply to this server.
    Skip(String),
}

/// A step a check needed failed, and `check` is the key of the check that judges that step.
/// The run resolves it after every check finished: blocked by `check` when that check failed
/// or errored on the same transport (or on the authorization server), an error otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prerequisite {
    pub check: &'static str,
    pub message: String,
    /// The server refused the `resource` parameter (`invalid_target`), so a login without it
    /// may work.
    resource_refused: bool,
    /// The step that failed was the token exchange.
    token_step: bool,
}

impl fmt::Display for Prerequisite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Prerequisite {}

/// The checks that judge the steps of a login and a session.
pub mod prerequisite {
    /// Dynamic client registration answers 201 with a client (AUTH-REG-02).
    pub const REGISTRATION: &str = "AUTH-REG-02";
    /// Authorization server metadata is found (AUTH-ASM-04).
    pub const DISCOVERY: &str = "AUTH-ASM-04";
    /// The authorization round trip through GitHub ends in the server's code (AUTH-3P-01).
    pub const AUTHORIZATION: &str = "AUTH-3P-01";
    /// A public client with PKCE completes the flow, token exchange included (AUTH-GEN-08).
    pub const TOKEN: &str = "AUTH-GEN-08";
    /// `resource` is accepted on authorize, code and refresh requests (AUTH-FLOW-09).
    pub const RESOURCE: &str = "AUTH-FLOW-09";
    /// `initialize` succeeds and has the required shape (LIFE-02).
    pub const INITIALIZE: &str = "LIFE-02";
    /// The legacy stream opens with an `endpoint` event (SSE-02).
    pub const SSE_STREAM: &str = "SSE-02";
}

/// Marks an error as the failure of a step the check `check` judges; an error that already
/// names a prerequisite, or is a live-mode [`Refusal`], keeps it.
pub fn needs(check: &'static str, error: anyhow::Error) -> anyhow::Error {
    if prerequisite_of(&error).is_some() || refusal_of(&error).is_some() {
        return error;
    }
    anyhow::Error::new(Prerequisite {
        check,
        message: format!("{error:#}"),
        resource_refused: false,
        token_step: false,
    })
}

/// The prerequisite an error names, anywhere in its chain.
pub fn prerequisite_of(error: &anyhow::Error) -> Option<&Prerequisite> {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<Prerequisite>())
}

/// In live mode, a step that only the mock GitHub or the user's login can provide: a scripted
/// login (as a given user, with an upstream fault, a walk through GitHub), the upstream journal,
/// or any login when the user gave none. The helpers that need them raise it; the run turns the
/// check into a skip with the reason, in live mode only (mock mode never raises it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason)
    }
}

impl std::error::Error for Refusal {}

/// Why a check did not run in live mode. Every reason ends in "(live mode)", so that a report
/// reader tells them from the skips of mock mode.
/// Why a check of a phase the run did not ask for is skipped. Such a skip says nothing of the
/// server, so the version grid leaves those checks out.
pub mod opt_in {
    pub const MODEL: &str = "the model phase runs only with --model";
    pub const ROBUSTNESS: &str = "the robustness phase runs with --robustness";
    /// Every reason of this kind.
    pub const ALL: [&str; 2] = [MODEL, ROBUSTNESS];
}

pub mod live_reason {
    /// A scripted login at the mock (a given user, an upstream fault), or its admin endpoints.
    pub const NEEDS_MOCK: &str = "needs the mock GitHub (live mode)";
    /// An authenticated check, and the user gave no login.
    pub const NEEDS_LOGIN: &str = "needs a login: --login browser, MCP_AUTH_CONFORMANCE_TOKEN, \
                                   or a `connect` login to this server (live mode)";
    /// The check inspects a login of its own (its code, its token response, its browser walk),
    /// which only a scripted login at the mock gives.
    pub const NEEDS_OWN_LOGIN: &str =
        "needs a login of its own, which only the mock GitHub gives (live mode)";
    /// The user's token is refused at this transport's endpoint: it was issued for another
    /// resource (RFC 8707), as a server with one resource per endpoint does.
    pub const TOKEN_ELSEWHERE: &str = "the user's token is not accepted at this transport's \
                                       endpoint (it was issued for another resource); log in \
                                       for this endpoint to check it (live mode)";
    /// The server would have to fetch client ID metadata documents from the suite's own
    /// loopback address.
    pub const CIMD_UNREACHABLE: &str = "the suite serves the metadata documents on its own \
                                        loopback address, which a server elsewhere cannot \
                                        fetch (live mode)";
    /// The check revokes or rotates the user's tokens, or floods the server.
    pub const DESTRUCTIVE: &str = "would revoke or rotate the user's tokens or load the server; \
                                   --allow-destructive runs it (live mode)";
}

tokio::task_local! {
    /// The first refusal raised inside the running check, kept even when the check caught the
    /// error: a verdict reached past a refused step is not one.
    static REFUSED: Arc<std::sync::Mutex<Option<&'static str>>>;
}

/// Raises a live-mode refusal, remembering it for the running check.
pub fn refuse(reason: &'static str) -> anyhow::Error {
    let _ = REFUSED.try_with(|r| {
        if let Ok(mut first) = r.lock() {
            first.get_or_insert(reason);
        }
    });
    anyhow::Error::new(Refusal { reason })
}

/// The refusal an error carries, anywhere in its chain.
pub fn refusal_of(error: &anyhow::Error) -> Option<&Refusal> {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<Refusal>())
}

/// Runs a check body and returns what it returned with the first refusal raised in it.
pub async fn watching_refusals<T>(
    body: impl std::future::Future<Output = T>,
) -> (T, Option<&'static str>) {
    let cell: Arc<std::sync::Mutex<Option<&'static str>>> = Arc::default();
    let out = REFUSED.scope(cell.clone(), body).await;
    let refused = cell.lock().ok().and_then(|r| *r);
    (out, refused)
}

/// Checks that revoke or rotate the user's tokens, or send many requests: in live mode they run
/// only with `--allow-destructive`. The robustness area (`ROBUST-*`) is in by its area.
pub const DESTRUCTIVE: &[&str] = &[
    // A refresh with `resource` rotates the user's refresh token.
    "AUTH-FLOW-09",
    // Refresh rotation revokes the user's refresh token by design.
    "AUTH-FLOW-15",
    // Refreshes rotate the user's refresh token.
    "AUTH-FLOW-25",
    // Revoke the refresh token, and the access token.
    "AUTH-FLOW-19",
    "AUTH-FLOW-19#access-token",
];

/// Checks that judge a login of their own (its authorization code, browser trail, token
/// response, client, or a token they wait to expire, revoke or rotate): live mode has one login,
/// the user's, made before the run and shared by every check.
pub const NEEDS_OWN_LOGIN: &[&str] = &[
    "AUTH-3P-01",
    "AUTH-FLOW-04",
    "AUTH-FLOW-09",
    "AUTH-FLOW-12",
    // The lifetime is read from the token response, which a live login does not hand over.
    "AUTH-FLOW-14",
    "AUTH-FLOW-15",
    "AUTH-FLOW-19",
    "AUTH-FLOW-19#access-token",
    "AUTH-FLOW-25",
    "AUTH-GEN-05#expired",
    // The races redeem, refresh and revoke tokens of their own logins.
    "AUTH-FLOW-04#concurrent",
    "AUTH-FLOW-15#concurrent",
    "AUTH-FLOW-19#concurrent",
    // Reuse detection revokes the grant; the stream checks revoke the token or wait for
    // its expiry.
    "AUTH-FLOW-21",
    "AUTH-FLOW-24",
    "AUTH-FLOW-24#expiry",
];

/// Checks that wait for an access token to expire, for as long as its `expires_in`.
pub const WAITS_OUT_TOKEN_LIFETIME: &[&str] = &["AUTH-GEN-05#expired", "AUTH-FLOW-24#expiry"];

/// Checks that tell a step at GitHub from one at the server by the mock's origin, which a live
/// run does not know.
pub const JUDGED_AT_THE_MOCK: &[&str] = &["AUTH-3P-04"];

/// Why `check` does not run at all in a live run, if it does not.
pub fn live_gate(check: &Check, live: &crate::config::Live) -> Option<&'static str> {
    let key = check.key();
    if JUDGED_AT_THE_MOCK.contains(&key.as_str()) {
        return Some(live_reason::NEEDS_MOCK);
    }
    // The model phase logs two users in, many times over.
    if NEEDS_OWN_LOGIN.contains(&key.as_str()) || check.area() == "MODEL" {
        return Some(live_reason::NEEDS_OWN_LOGIN);
    }
    let destructive = DESTRUCTIVE.contains(&key.as_str()) || check.area() == "ROBUST";
    if destructive && !live.allow_destructive {
        return Some(live_reason::DESTRUCTIVE);
    }
    None
}

/// An optional value as a message shows it: the value itself, or `absent`. Messages use this
/// instead of `{:?}`, which prints Rust's `Some(...)` and `None` to a reader who asked what
/// the server sent.
pub fn shown<T: fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "absent".to_owned(), |v| v.to_string())
}

/// The `protocolVersion` an `initialize` result names; empty when it names none.
pub fn negotiated_version(init: &Value) -> String {
    init.get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The client authentication methods the authorization server metadata lists in
/// `token_endpoint_auth_methods_supported` (RFC 8414); empty when it lists none.
pub fn advertised_auth_methods(cx: &Ctx) -> anyhow::Result<Vec<String>> {
    Ok(cx
        .discovery()?
        .metadata
        .as_ref()
        .and_then(|m| m.get("token_endpoint_auth_methods_supported"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// An optional JSON value as a message shows it: compact JSON text (`"abc"`, `{"a":1}`), or
/// `absent`; never Rust's `Some(Object {...})`.
pub fn shown_json(value: Option<&Value>) -> String {
    value.map_or_else(|| "absent".to_owned(), Value::to_string)
}

/// Collects the assertions of one check.
#[derive(Debug, Default)]
pub struct Findings {
    violations: Vec<String>,
    warnings: Vec<String>,
    notes: Vec<String>,
    exchanges: Vec<String>,
    redactor: Option<Arc<crate::redact::Redactor>>,
}

impl Findings {
    pub fn new(cx: &Ctx) -> Findings {
        Findings {
            redactor: Some(cx.http().redactor.clone()),
            ..Findings::default()
        }
    }

    /// Keeps the exchange a finding is about; an exchange several findings share is shown once.
    fn attach(&mut self, ex: Option<&Exchange>) {
        if let (Some(ex), Some(r)) = (ex, &self.redactor) {
            let evidence = ex.evidence(r);
            if !self.exchanges.contains(&evidence) {
                self.exchanges.push(evidence);
            }
        }
    }

    fn redact(&self, text: String) -> String {
        match &self.redactor {
            Some(r) => r.redact(&text),
            None => text,
        }
    }

    /// Records a violation unless `ok`.
    pub fn require(&mut self, ok: bool, message: impl Into<String>, ex: Option<&Exchange>) -> bool {
        if !ok {
            let m = self.redact(message.into());
            self.violations.push(m);
            self.attach(ex);
        }
        ok
    }

    /// Records a warning unless `ok`.
    pub fn prefer(&mut self, ok: bool, message: impl Into<String>, ex: Option<&Exchange>) -> bool {
        if !ok {
            let m = self.redact(message.into());
            self.warnings.push(m);
            self.attach(ex);
        }
        ok
    }

    pub fn note(&mut self, message: impl Into<String>) {
        let m = self.redact(message.into());
        self.notes.push(m);
    }

    pub fn failed(&self) -> bool {
        !self.violations.is_empty()
    }

    pub fn verdict(self) -> Verdict {
        if !self.violations.is_empty() {
            let mut message = self.violations.join("; ");
            if !self.warnings.is_empty() {
                message.push_str(&format!(" (also: {})", self.warnings.join("; ")));
            }
            Verdict::Violation(Evidence {
                message,
                exchanges: self.exchanges,
            })
        } else if !self.warnings.is_empty() {
            Verdict::Warn(Evidence {
                message: self.warnings.join("; "),
                exchanges: self.exchanges,
            })
        } else if self.notes.is_empty() {
            Verdict::Pass(None)
        } else {
            Verdict::Pass(Some(self.notes.join("; ")))
        }
    }
}

/// State shared by every check of a run.
pub struct Shared {
    pub config: SuiteConfig,
    pub http: Http,
    pub mock: MockAdmin,
    /// Discovery per transport, or why it failed.
    pub discovery: BTreeMap<Transport, Result<Arc<Discovery>, String>>,
    pub transcript: Arc<Transcript>,
    /// Held by checks that revoke every GitHub token of a user of their own at the
    /// mock (AUTH-TOK-04), so that the same check on another transport does not
    /// revoke a token it is still logging in with.
    pub upstream_revocation: tokio::sync::Mutex<()>,
    /// The robustness phase's campaign, run once by the first ROBUST check that asks.
    pub robustness: tokio::sync::OnceCell<Result<Arc<crate::robustness::Campaign>, String>>,
    /// The model phase's campaign, run once by the first MODEL check that asks.
    pub model: tokio::sync::OnceCell<Result<Arc<crate::model::Campaign>, String>>,
    /// In live mode, the user's login, which every check's [`Ctx::login`] returns.
    pub live_login: Option<Login>,
    /// In live mode, whether each transport's endpoint accepts the user's token, found out
    /// by the first check that needs it.
    pub live_token_accepted: tokio::sync::Mutex<BTreeMap<Transport, bool>>,
    /// What the server claims (versions, authorization profile), set once before the checks.
    pub assessment: std::sync::OnceLock<Arc<Assessment>>,
}

/// A check's view of the run: the shared state, the transport it runs on (`None` for
/// authorization-server checks) and the version it runs at.
#[derive(Clone)]
pub struct Ctx {
    pub shared: Arc<Shared>,
    pub transport: Option<Transport>,
    pub run: RunAt,
}

/// The version one run of a check is at.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunAt {
    /// The version the result is judged at; `None` before the versions are known.
    pub version: Option<Version>,
    /// This run records the check's snapshot entries: a check that runs at several versions
    /// records once, at the version the suite negotiated before versions were discovered, so
    /// the transcript does not depend on which run finishes first.
    pub records: bool,
}

/// The areas whose checks judge the MCP layer, where the negotiated version decides what the
/// server must do: they run once per version the transport negotiates.
pub const PER_VERSION_AREAS: &[&str] = &["SHTTP", "SHTTP5", "SSE", "LIFE", "RPC", "TOOLS"];

/// Authorization checks whose outcome can depend on the negotiated version (they judge
/// requests inside a session): they run once per version too.
pub const PER_VERSION_CHECKS: &[&str] = &["AUTH-GEN-02"];

/// Whether `check` runs once per negotiated version on its transport.
pub fn per_version(check: &Check) -> bool {
    PER_VERSION_AREAS.contains(&check.area()) || PER_VERSION_CHECKS.contains(&check.key().as_str())
}

/// Whether `check` judges the authorization layer (skipped for a server that asks for none).
pub fn judges_authorization(check: &Check) -> bool {
    check.area().starts_with("AUTH-")
}

/// Which `resource` a login asks for.
#[derive(Debug, Clone, Default)]
pub enum Resource {
    /// The resource discovery found for the check's transport.
    #[default]
    Discovered,
    Omit,
    Value(String),
}

/// A login: who, with which client, for which resource, with which upstream fault.
#[derive(Debug, Clone)]
pub struct LoginOptions {
    pub user: String,
    pub fault: Option<String>,
    pub scope: Option<String>,
    pub resource: Resource,
    /// An already registered client; a new one is registered otherwise.
    pub client: Option<Client>,
    pub kind: ClientKind,
    /// The `state` to send; a fresh URL-safe one ([`flow::random_state`]) when `None`.
    pub state: Option<String>,
}

impl Default for LoginOptions {
    fn default() -> Self {
        LoginOptions {
            user: "octocat".into(),
            fault: None,
            scope: None,
            resource: Resource::Discovered,
            client: None,
            kind: ClientKind::Public,
            state: None,
        }
    }
}

impl LoginOptions {
    pub fn user(user: &str) -> LoginOptions {
        LoginOptions {
            user: user.into(),
            ..LoginOptions::default()
        }
    }
}

/// The result of the authorization leg, before the token request.
#[derive(Debug, Clone)]
pub struct Authorized {
    pub client: Client,
    pub pkce: Pkce,
    pub state: String,
    pub resource: Option<String>,
    pub outcome: AuthOutcome,
    pub callback: Option<Callback>,
}

impl Authorized {
    /// The code, or an error that says where the walk stopped instead.
    pub fn code(&self, http: &Http) -> anyhow::Result<String> {
        match self.callback.as_ref().and_then(|c| c.code.clone()) {
            Some(code) => Ok(code),
            None => bail!(
                "the authorization did not return a code: {}",
                self.outcome.describe(http)
            ),
        }
    }
}

/// A complete login.
#[derive(Debug, Clone)]
pub struct Login {
    pub authorized: Authorized,
    pub code: String,
    pub tokens: Tokens,
}

impl Login {
    pub fn access_token(&self) -> &str {
        &self.tokens.access_token
    }

    pub fn client(&self) -> &Client {
        &self.authorized.client
    }

    /// The login of a server that asks for no authorization: an empty token, which requests
    /// leave out ([`Req::bearer`]).
    pub fn without_token(http: &Http, server: &Url) -> Login {
        let none = crate::config::LiveLogin {
            source: "no authorization".into(),
            ..Default::default()
        };
        Login::from_live(&none, http, server)
    }

    /// The user's login of a live run, in the shape checks use. Only its tokens (and the client,
    /// when known) are real: the checks that read its code, browser trail or token response are
    /// in [`NEEDS_OWN_LOGIN`] and do not run live. The tokens are made known to the redactor.
    pub fn from_live(live: &crate::config::LiveLogin, http: &Http, server: &Url) -> Login {
        http.redactor.add(&live.access_token, "access-token");
        if let Some(refresh) = &live.refresh_token {
            http.redactor.add(refresh, "refresh-token");
        }
        if let Some(secret) = &live.client_secret {
            http.redactor.add(secret, "client-secret");
        }
        let client = Client {
            client_id: live.client_id.clone().unwrap_or_default(),
            client_secret: live.client_secret.clone(),
            redirect_uri: REDIRECT_URI.to_owned(),
            auth_method: if live.client_secret.is_some() {
                "client_secret_post".into()
            } else {
                "none".into()
            },
            name: "the user's login".into(),
        };
        // No request of this run produced these tokens; the placeholder exchange says so.
        let exchange = Exchange {
            request: Req::get(server.clone()),
            status: 0,
            headers: Default::default(),
            body: Vec::new(),
        };
        Login {
            authorized: Authorized {
                client,
                pkce: Pkce::s256(),
                state: String::new(),
                resource: None,
                outcome: AuthOutcome {
                    arrival: crate::oauth::browser::Arrival::Offsite(server.clone()),
                    trail: Vec::new(),
                },
                callback: None,
            },
            code: String::new(),
            tokens: Tokens {
                access_token: live.access_token.clone(),
                refresh_token: live.refresh_token.clone(),
                expires_in: None,
                token_type: Some("Bearer".into()),
                scope: None,
                exchange,
                received: std::time::Instant::now(),
            },
        }
    }
}

impl Ctx {
    pub fn config(&self) -> &SuiteConfig {
        &self.shared.config
    }

    pub fn http(&self) -> &Http {
        &self.shared.http
    }

    pub fn mock(&self) -> &MockAdmin {
        &self.shared.mock
    }

    pub fn evidence(&self, ex: &Exchange) -> String {
        ex.evidence(&self.shared.http.redactor)
    }

    pub fn redact(&self, text: &str) -> String {
        self.shared.http.redactor.redact(text)
    }

    /// The transport the check runs on, or for authorization-server checks the first transport
    /// whose discovery worked.
    pub fn transport(&self) -> Transport {
        self.transport.unwrap_or_else(|| {
            self.shared
                .discovery
                .iter()
                .find(|(_, d)| d.is_ok())
                .map(|(t, _)| *t)
                .or_else(|| self.config().transports.first().copied())
                .unwrap_or(Transport::StreamableHttp)
        })
    }

    /// The MCP endpoint of the check's transport.
    pub fn mcp_url(&self) -> Url {
        self.config().endpoint(self.transport())
    }

    /// The versions the run was asked about (all when unfiltered).
    pub fn selected_versions(&self) -> Vec<Version> {
        if self.config().versions.is_empty() {
            Version::ALL.to_vec()
        } else {
            self.config().versions.clone()
        }
    }

    pub fn version_selected(&self, v: Version) -> bool {
        self.selected_versions().contains(&v)
    }

    /// What the server claims; before it is known (while it is being found out), what the
    /// suite assumes.
    pub fn assessment(&self) -> Arc<Assessment> {
        self.shared.assessment.get().cloned().unwrap_or_else(|| {
            Arc::new(Assessment::assumed(
                &self.config().transports,
                self.config().streamable_version,
            ))
        })
    }

    /// The version this run of the check is judged at.
    pub fn version(&self) -> Option<Version> {
        self.run.version
    }

    /// The protocol version the suite negotiates in this check's `initialize`: the version the
    /// check runs at when it is a session-era version of its transport, else the transport's
    /// own (2024-11-05 on SSE, `--streamable-version` on Streamable HTTP) when the server
    /// negotiates it, else the newest session-era version it negotiates there.
    pub fn protocol_version(&self) -> Version {
        let transport = self.transport();
        match self.run.version {
            Some(v) if Version::SESSION_ERA.contains(&v) && Version::on(transport).contains(&v) => {
                v
            }
            _ => self
                .assessment()
                .home(transport, self.config().streamable_version),
        }
    }

    pub fn discovery(&self) -> anyhow::Result<Arc<Discovery>> {
        match self.shared.discovery.get(&self.transport()) {
            Some(Ok(d)) => Ok(d.clone()),
            Some(Err(e)) => Err(needs(
                prerequisite::DISCOVERY,
                anyhow!("discovery failed: {e}"),
            )),
            None => Err(anyhow!("no discovery for {}", self.transport())),
        }
    }

    pub fn endpoints(&self) -> anyhow::Result<Endpoints> {
        Ok(self.discovery()?.endpoints.clone())
    }

    /// Records an entry in the snapshot transcript of this check's transport (or of the
    /// authorization server).
    pub fn record(&self, key: &str, value: Value) {
        if self.run.records {
            self.shared.transcript.record(self.transport, key, value);
        }
    }

    /// Records an exchange in normalized form.
    pub fn record_exchange(&self, key: &str, ex: &Exchange) {
        self.record(
            key,
            crate::snapshot::normalize_exchange(&self.shared.config, ex),
        );
    }

    /// A fresh scripted browser. In live mode it walks the server's own pages only and refuses
    /// to go on to the upstream login.
    pub fn browser(&self) -> Browser {
        if self.config().live.is_some() {
            Browser::live(self.http().clone(), &self.config().url)
        } else {
            Browser::new(self.http().clone(), &self.config().mock_github)
        }
    }

    /// Whether the run is in live mode.
    pub fn live(&self) -> bool {
        self.config().live.is_some()
    }

    /// The registration endpoint when the server offers one: the advertised one, or with no
    /// authorization server metadata at all the 2025-03-26 default `/register` (discovery
    /// applies that fallback). Metadata without `registration_endpoint` means registration
    /// is not offered (it is optional), and no endpoint is guessed.
    pub fn registration_offered(&self) -> anyhow::Result<Option<Url>> {
        Ok(self.endpoints()?.registration)
    }

    /// The registration endpoint, or an error saying that registration is not offered.
    pub fn registration_endpoint(&self) -> anyhow::Result<Url> {
        self.registration_offered()?.ok_or_else(|| {
            anyhow!(
                "the server offers no dynamic client registration (its metadata has no \
                 registration_endpoint) and no --client-id was given"
            )
        })
    }

    /// The `--client-id` client, as the flow uses clients.
    pub fn pre_registered(&self) -> Option<Client> {
        self.config().client.as_ref().map(|c| Client {
            client_id: c.client_id.clone(),
            client_secret: c.client_secret.clone(),
            redirect_uri: c.redirect_uri.clone(),
            auth_method: if c.client_secret.is_some() {
                "client_secret_post".into()
            } else {
                "none".into()
            },
            name: "pre-registered client".into(),
        })
    }

    /// Registers a client with the suite's redirect URI. When the server offers no
    /// registration, the `--client-id` client stands in, if it is of the kind asked for. A
    /// registration whose connection was reset is sent once more (the suite's own
    /// registrations are idempotent: a second client is as good as the first), and the
    /// evidence says so. A failure names AUTH-REG-02.
    pub async fn register(&self, kind: ClientKind, name: &str) -> anyhow::Result<Client> {
        match (self.registration_offered()?, self.pre_registered()) {
            (Some(endpoint), _) => {
                let result =
                    match registration::register(self.http(), &endpoint, kind, name, REDIRECT_URI)
                        .await
                    {
                        Err(e) if crate::http::is_connection_reset(&e) => {
                            self.http().retried(&Req::post(endpoint.clone()), &e);
                            registration::register(self.http(), &endpoint, kind, name, REDIRECT_URI)
                                .await
                        }
                        other => other,
                    };
                result.map_err(|e| needs(prerequisite::REGISTRATION, e))
            }
            (None, Some(client)) => {
                let confidential = client.client_secret.is_some();
                if confidential != (kind == ClientKind::Confidential) {
                    bail!(
                        "the check needs a {} client; the server offers no registration \
                         and the --client-id client is not one",
                        match kind {
                            ClientKind::Public => "public",
                            ClientKind::Confidential => "confidential",
                        }
                    );
                }
                Ok(client)
            }
            (None, None) => Err(self.registration_endpoint().unwrap_err()),
        }
    }

    pub fn script(&self, user: &str, fault: Option<&str>, consent: Consent) -> Script {
        Script {
            login: user.to_owned(),
            fault: fault.map(str::to_owned),
            consent,
            redirect_uri: Url::parse(REDIRECT_URI).expect("the redirect URI constant is a URL"),
        }
    }

    fn resource_for(&self, r: &Resource) -> anyhow::Result<Option<String>> {
        Ok(match r {
            Resource::Discovered => Some(self.discovery()?.resource()),
            Resource::Omit => None,
            Resource::Value(v) => Some(v.clone()),
        })
    }

    /// The authorization leg of a login: register (unless given a client), build a valid
    /// request, walk it with a fresh browser.
    pub async fn authorize(&self, opts: LoginOptions) -> anyhow::Result<Authorized> {
        let mut browser = self.browser();
        self.authorize_in(&mut browser, &opts, Consent::Approve)
            .await
    }

    /// The same in a given browser (to share cookies) and with a consent choice.
    pub async fn authorize_in(
        &self,
        browser: &mut Browser,
        opts: &LoginOptions,
        consent: Consent,
    ) -> anyhow::Result<Authorized> {
        let client = match &opts.client {
            Some(c) => c.clone(),
            None => self.register(opts.kind, "mcp-auth-conformance").await?,
        };
        let pkce = Pkce::s256();
        let state = opts.state.clone().unwrap_or_else(flow::random_state);
        let resource = self.resource_for(&opts.resource)?;
        let params = AuthParams::for_client(
            &client,
            &pkce,
            &state,
            resource.as_deref(),
            opts.scope.as_deref(),
        );
        let url = params.url(&self.endpoints()?.authorization);
        let mut script = self.script(&opts.user, opts.fault.as_deref(), consent);
        script.redirect_uri = Url::parse(&client.redirect_uri)?;
        let outcome = flow::authorize(browser, url, &script)
            .await
            .map_err(|e| needs(prerequisite::AUTHORIZATION, e))?;
        let callback = outcome.callback();
        Ok(Authorized {
            client,
            pkce,
            state,
            resource,
            outcome,
            callback,
        })
    }

    /// A full login: authorization, then the code for tokens.
    ///
    /// When a step fails, the next viable way is tried so that the checks after the login
    /// still run, and the check's evidence says so: a public client refused at the token step
    /// logs in as a confidential client, and a refused `resource` is left out. Neither fallback
    /// is taken inside the check that judges the step that failed (AUTH-GEN-08, AUTH-FLOW-09),
    /// nor for a login that asked for a given client or resource. When every way fails, the
    /// first failure is returned, naming the check that judges its step.
    ///
    /// In live mode there is one login, the user's, made before the run: a login with the
    /// default options returns it (or refuses when there is none), and any other login (a given
    /// user, an upstream fault, a client, scope, resource or state of its own) needs the mock.
    pub async fn login(&self, opts: LoginOptions) -> anyhow::Result<Login> {
        if self
            .shared
            .assessment
            .get()
            .is_some_and(|a| a.profile == Profile::None)
        {
            // A server that asks for no authorization is used without a token.
            return Ok(Login::without_token(self.http(), &self.config().url));
        }
        if self.live() {
            return self.live_login(&opts).await;
        }
        let first = match self.login_once(&opts).await {
            Ok(login) => return Ok(login),
            Err(e) => e,
        };
        let Some(failed) = prerequisite_of(&first).cloned() else {
            return Err(first);
        };
        let judging = crate::http::trace::current_check();
        let mut fallbacks: Vec<(LoginOptions, String)> = Vec::new();
        if failed.token_step
            && opts.client.is_none()
            && matches!(opts.kind, ClientKind::Public)
            && judging != Some(prerequisite::TOKEN)
        {
            fallbacks.push((
                LoginOptions {
                    kind: ClientKind::Confidential,
                    ..opts.clone()
                },
                "the token request of a public client was refused, so this check logged in \
                 with a confidential client instead"
                    .to_owned(),
            ));
        }
        if failed.resource_refused
            && matches!(opts.resource, Resource::Discovered)
            && judging != Some(prerequisite::RESOURCE)
        {
            fallbacks.push((
                LoginOptions {
                    resource: Resource::Omit,
                    ..opts.clone()
                },
                "the server refused the resource parameter (invalid_target), so this check \
                 logged in without it"
                    .to_owned(),
            ));
        }
        for (fallback, note) in fallbacks {
            if let Ok(login) = self.login_once(&fallback).await {
                crate::http::trace::note(format!("{note} (first attempt: {})", failed.message));
                return Ok(login);
            }
        }
        Err(first)
    }

    async fn live_login(&self, opts: &LoginOptions) -> anyhow::Result<Login> {
        let default = LoginOptions::default();
        let plain = opts.user == default.user
            && opts.fault.is_none()
            && opts.scope.is_none()
            && matches!(opts.resource, Resource::Discovered)
            && opts.client.is_none()
            && matches!(opts.kind, ClientKind::Public)
            && opts.state.is_none();
        if !plain {
            return Err(refuse(live_reason::NEEDS_MOCK));
        }
        let login = self
            .shared
            .live_login
            .clone()
            .ok_or_else(|| refuse(live_reason::NEEDS_LOGIN))?;
        if let Some(transport) = self.transport {
            let mut accepted = self.shared.live_token_accepted.lock().await;
            let ok = match accepted.get(&transport) {
                Some(ok) => *ok,
                None => {
                    let ex = self.probe_bearer(login.access_token()).await?;
                    let ok = !matches!(ex.status, 401 | 403);
                    accepted.insert(transport, ok);
                    ok
                }
            };
            if !ok {
                return Err(refuse(live_reason::TOKEN_ELSEWHERE));
            }
        }
        Ok(login)
    }

    async fn login_once(&self, opts: &LoginOptions) -> anyhow::Result<Login> {
        let authorized = self.authorize(opts.clone()).await?;
        let code = authorized.code(self.http()).map_err(|e| {
            let refused = authorized
                .callback
                .as_ref()
                .and_then(|c| c.error.as_deref())
                == Some("invalid_target");
            anyhow::Error::new(Prerequisite {
                check: if refused {
                    prerequisite::RESOURCE
                } else {
                    prerequisite::AUTHORIZATION
                },
                message: format!("{e:#}"),
                resource_refused: refused,
                token_step: false,
            })
        })?;
        let token_failed = |e: anyhow::Error, refused: bool| {
            anyhow::Error::new(Prerequisite {
                check: if refused {
                    prerequisite::RESOURCE
                } else {
                    prerequisite::TOKEN
                },
                message: format!("{e:#}"),
                resource_refused: refused,
                token_step: true,
            })
        };
        let ex = flow::exchange_code(
            self.http(),
            &self.endpoints()?.token,
            &authorized.client,
            &code,
            Some(&authorized.pkce.verifier),
            authorized.resource.as_deref(),
        )
        .await
        .map_err(|e| token_failed(e, false))?;
        let refused = json_error(&ex).as_deref() == Some("invalid_target");
        let tokens = flow::parse_tokens(self.http(), ex).map_err(|e| token_failed(e, refused))?;
        Ok(Login {
            authorized,
            code,
            tokens,
        })
    }

    /// Opens and initializes a session on the check's transport.
    pub async fn connect(&self, token: Option<&str>) -> anyhow::Result<(McpConn, Value)> {
        self.connect_with(token, self.protocol_version().as_str())
            .await
    }

    /// Opens and initializes a session with a given protocol version. A failure names the
    /// check that judges the step: SSE-02 for the legacy stream, LIFE-02 for `initialize`.
    pub async fn connect_with(
        &self,
        token: Option<&str>,
        version: &str,
    ) -> anyhow::Result<(McpConn, Value)> {
        self.connect_once(token, version)
            .await
            .map_err(|e| needs(prerequisite::INITIALIZE, e))
    }

    async fn connect_once(
        &self,
        token: Option<&str>,
        version: &str,
    ) -> anyhow::Result<(McpConn, Value)> {
        match self.transport() {
            Transport::StreamableHttp => {
                let mut c = Shttp::new(
                    self.http().clone(),
                    self.mcp_url(),
                    token.map(str::to_owned),
                );
                let (_, result) = c.initialize(version).await?;
                Ok((McpConn::Shttp(c), result))
            }
            Transport::Sse => {
                let mut s = self.open_sse(token).await?;
                let (_, result) = s.initialize(version).await?;
                Ok((McpConn::Sse(s), result))
            }
        }
    }

    /// Opens the legacy SSE stream, failing unless it starts with an `endpoint` event.
    pub async fn open_sse(
        &self,
        token: Option<&str>,
    ) -> anyhow::Result<Box<legacy::LegacySession>> {
        let url = self.config().endpoint(Transport::Sse);
        let opened = match legacy::connect(self.http(), &url, token, &[]).await {
            Ok(Connect::Open(s)) => return Ok(s),
            Ok(Connect::Refused(ex)) => {
                anyhow!("GET {url} was refused:\n{}", self.evidence(&ex))
            }
            Ok(Connect::NoEndpoint {
                exchange, error, ..
            }) => anyhow!(
                "GET {url} did not start with an endpoint event ({}):\n{}",
                error.unwrap_or_default(),
                self.evidence(&exchange)
            ),
            Err(e) => e,
        };
        Err(needs(prerequisite::SSE_STREAM, opened))
    }

    /// The first request a client makes on this transport, with a chosen `Authorization`
    /// header value (or none): `POST initialize` on Streamable HTTP, `GET /sse` on SSE. Only the
    /// response head is kept for streams.
    pub async fn probe(&self, authorization: Option<&str>) -> anyhow::Result<Exchange> {
        self.probe_at(self.mcp_url(), authorization).await
    }

    pub async fn probe_at(
        &self,
        url: Url,
        authorization: Option<&str>,
    ) -> anyhow::Result<Exchange> {
        let mut req = match self.transport() {
            Transport::StreamableHttp => Req::post(url)
                .header("Accept", crate::http::streamable::ACCEPT_BOTH)
                .json(&serde_json::json!({
                    "jsonrpc": "2.0", "id": 1, "method": "initialize",
                    "params": crate::http::streamable::initialize_params(self.protocol_version().as_str())
                })),
            Transport::Sse => Req::get(url).header("Accept", "text/event-stream"),
        };
        if let Some(value) = authorization {
            req = req.header("Authorization", value);
        }
        self.http().send_head(req).await
    }

    /// A probe with a bearer token.
    pub async fn probe_bearer(&self, token: &str) -> anyhow::Result<Exchange> {
        self.probe(Some(&format!("Bearer {token}"))).await
    }
}

/// `Box::pin`s a check body; keeps the check tables short.
#[macro_export]
#[doc(hidden)]
macro_rules! body {
    ($f:path) => {
        |cx| Box::pin($f(cx))
    };
}

/// The `error` field of a JSON error body.
pub fn json_error(ex: &Exchange) -> Option<String> {
    ex.json()?.get("error")?.as_str().map(str::to_owned)
}

/// The first Bearer challenge of a response.
pub fn challenge(ex: &Exchange) -> Option<crate::http::challenge::Challenge> {
    crate::http::challenge::bearer(ex.header_all("www-authenticate"))
}

/// A copy of `token` with one character changed near the middle.
pub fn tampered(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    if chars.is_empty() {
        return "x".into();
    }
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// What [`near_miss`] makes of a secret value, in its order.
pub const NEAR_MISS_KINDS: [&str; 3] = [
    "one character changed",
    "the same bit changed in two characters",
    "one character more",
];

/// A wrong value close to `value`, of kind `kind` (an index into [`NEAR_MISS_KINDS`]): the
/// values a broken comparison takes. Changing the same bit in two characters fools a
/// comparison that XORs the differences together, as the two cancel; one character more
/// fools one that compares only as far as the shorter value.
pub fn near_miss(value: &str, kind: usize) -> String {
    match kind {
        0 => tampered(value),
        1 => {
            let letters: Vec<usize> = value
                .char_indices()
                .filter(|(_, c)| c.is_ascii_alphabetic())
                .map(|(i, _)| i)
                .collect();
            let [first, .., last] = letters.as_slice() else {
                return tampered(value);
            };
            let mut bytes = value.as_bytes().to_vec();
            // ASCII letters differ from their other case in bit 0x20 alone.
            bytes[*first] ^= 0x20;
            bytes[*last] ^= 0x20;
            String::from_utf8(bytes).unwrap_or_else(|_| tampered(value))
        }
        _ => format!("{value}x"),
    }
}

/// Whether a redirect hands the client an authorization code.
pub fn issues_code(ex: &Exchange) -> bool {
    ex.location()
        .is_some_and(|u| u.query_pairs().any(|(k, _)| k == "code"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_of_check_keys_name_checks_that_exist() {
        let keys: Vec<String> = all().iter().map(Check::key).collect();
        for key in WAITS_OUT_TOKEN_LIFETIME.iter().chain(NEEDS_OWN_LOGIN) {
            assert!(keys.iter().any(|k| k == key), "no check is keyed {key}");
        }
    }

    #[test]
    fn near_misses_are_wrong_and_close() {
        let token = "Abc123xyZ";
        for (kind, describe) in NEAR_MISS_KINDS.iter().enumerate() {
            assert_ne!(near_miss(token, kind), token, "{describe}");
        }
        assert_eq!(near_miss(token, 0).len(), token.len());
        let twice = near_miss(token, 1);
        assert_eq!(twice.len(), token.len());
        // What a comparison that XORs the differences together sees: none.
        let xored = token
            .bytes()
            .zip(twice.bytes())
            .fold(0u8, |diff, (a, b)| diff ^ (a ^ b));
        assert_eq!(xored, 0);
        assert!(near_miss(token, 2).starts_with(token));
        // Without two letters the second kind falls back to the first.
        assert_eq!(near_miss("12345", 1), tampered("12345"));
    }
}
