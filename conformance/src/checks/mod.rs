//! The checks, one module per CHECKLIST.md area, and what they share: the [`Check`] record, the
//! [`Verdict`] a check body returns, [`Findings`] for checks with several assertions, and the
//! [`Ctx`] that gives each check logins, sessions and the recorded transcript.
//!
//! A check body returns `Err` when it could not get far enough to judge (a login failed, the
//! server did not answer): that is reported as a skip marked "blocked", and the requirement that
//! actually broke fails in its own check.

pub mod auth_3p;
pub mod auth_asm;
pub mod auth_flow;
pub mod auth_gen;
pub mod auth_prm;
pub mod auth_reg;
pub mod auth_scope;
pub mod auth_tok;
pub mod life;
pub mod rpc;
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
use crate::snapshot::Transcript;
use crate::version::{Version, Versions};

/// Requirement level, as CHECKLIST.md states it.
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
    /// The CHECKLIST.md ID the check is named after.
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
    out.extend(auth_flow::checks());
    out.extend(auth_tok::checks());
    out.extend(auth_3p::checks());
    out.extend(shttp::checks());
    out.extend(shttp5::checks());
    out.extend(sse::checks());
    out.extend(life::checks());
    out.extend(rpc::checks());
    out.extend(tools::checks());
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

    fn attach(&mut self, ex: Option<&Exchange>) {
        if let (Some(ex), Some(r)) = (ex, &self.redactor) {
            self.exchanges.push(ex.evidence(r));
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
}

/// A check's view of the run: the shared state and the transport it runs on (`None` for
/// authorization-server checks).
#[derive(Clone)]
pub struct Ctx {
    pub shared: Arc<Shared>,
    pub transport: Option<Transport>,
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

    /// The protocol version the suite negotiates on this check's transport.
    pub fn protocol_version(&self) -> Version {
        match self.transport() {
            Transport::Sse => Version::V2024_11_05,
            Transport::StreamableHttp => self.config().streamable_version,
        }
    }

    pub fn discovery(&self) -> anyhow::Result<Arc<Discovery>> {
        match self.shared.discovery.get(&self.transport()) {
            Some(Ok(d)) => Ok(d.clone()),
            Some(Err(e)) => Err(anyhow!("discovery failed: {e}")),
            None => Err(anyhow!("no discovery for {}", self.transport())),
        }
    }

    pub fn endpoints(&self) -> anyhow::Result<Endpoints> {
        Ok(self.discovery()?.endpoints.clone())
    }

    /// Records an entry in the snapshot transcript of this check's transport (or of the
    /// authorization server).
    pub fn record(&self, key: &str, value: Value) {
        self.shared.transcript.record(self.transport, key, value);
    }

    /// Records an exchange in normalized form.
    pub fn record_exchange(&self, key: &str, ex: &Exchange) {
        self.record(
            key,
            crate::snapshot::normalize_exchange(&self.shared.config, ex),
        );
    }

    pub fn browser(&self) -> Browser {
        Browser::new(self.http().clone(), &self.config().mock_github)
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
    /// registration, the `--client-id` client stands in, if it is of the kind asked for.
    pub async fn register(&self, kind: ClientKind, name: &str) -> anyhow::Result<Client> {
        match (self.registration_offered()?, self.pre_registered()) {
            (Some(endpoint), _) => {
                registration::register(self.http(), &endpoint, kind, name, REDIRECT_URI).await
            }
            (None, Some(client)) => {
                let confidential = client.client_secret.is_some();
                if confidential != (kind == ClientKind::Confidential) {
                    bail!(
                        "the check needs a {kind:?} client; the server offers no registration \
                         and the --client-id client is not one"
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
        let state = flow::random_state();
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
        let outcome = flow::authorize(browser, url, &script).await?;
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
    pub async fn login(&self, opts: LoginOptions) -> anyhow::Result<Login> {
        let authorized = self.authorize(opts).await?;
        let code = authorized.code(self.http())?;
        let ex = flow::exchange_code(
            self.http(),
            &self.endpoints()?.token,
            &authorized.client,
            &code,
            Some(&authorized.pkce.verifier),
            authorized.resource.as_deref(),
        )
        .await?;
        let tokens = flow::parse_tokens(self.http(), ex)?;
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

    pub async fn connect_with(
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
        match legacy::connect(self.http(), &url, token, &[]).await? {
            Connect::Open(s) => Ok(s),
            Connect::Refused(ex) => bail!("GET {url} was refused:\n{}", self.evidence(&ex)),
            Connect::NoEndpoint {
                exchange, error, ..
            } => bail!(
                "GET {url} did not start with an endpoint event ({}):\n{}",
                error.unwrap_or_default(),
                self.evidence(&exchange)
            ),
        }
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

/// Whether a redirect hands the client an authorization code.
pub fn issues_code(ex: &Exchange) -> bool {
    ex.location()
        .is_some_and(|u| u.query_pairs().any(|(k, _)| k == "code"))
}
