//! The stateful model-based phase (`--model`): random interleavings of registrations,
//! logins (authorize, consent, token), refreshes, replays of rotated-out refresh tokens,
//! revocations and MCP calls on both transports, across two users and several clients. After
//! each step the outcome is compared with a model of what must hold (the MODEL checks in
//! `checks/model.rs` judge one property each):
//!
//! - MODEL-01: a revoked token no longer works, and an access token works until then;
//! - MODEL-02: a rotated-out refresh token no longer works (and its reuse should revoke the
//!   grant);
//! - MODEL-03: no user's token returns another user's profile;
//! - MODEL-04: a session opened by one user is refused for another user's token.
//!
//! Sequences come from proptest with one printed seed. A sequence that breaks a property is
//! shrunk by proptest to a shorter one that still breaks one; every sequence run (the
//! shrinking steps included) is recorded, and each property keeps the shortest sequence that
//! broke it, so the evidence names a minimal reproduction and the seed.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{
    Config as RunnerConfig, RngAlgorithm, TestCaseError, TestRng, TestRunner,
};
use serde_json::{Value, json};

use crate::checks::{Ctx, LoginOptions, json_error};
use crate::client::McpConn;
use crate::config::Transport;
use crate::http::Req;
use crate::oauth::flow;
use crate::oauth::registration::{Client, ClientKind};

/// The two mock users the sequences log in as (`fixtures/github/users/`).
pub const USERS: [&str; 2] = ["octocat", "mona"];

/// The tool whose answer is the caller's profile.
const TOOL: &str = "get_user_profile";

/// How long a message sent into another user's legacy session is waited for on its stream.
const CROSS_WAIT: Duration = Duration::from_millis(500);

/// The phase's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The seed every sequence derives from; printed so that a run can be replayed.
    pub seed: u64,
    /// The most operations in one sequence.
    pub steps: usize,
    /// How many sequences are generated (shrinking runs come on top).
    pub cases: u32,
    /// No new sequence starts after this long.
    pub budget: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            seed: 0,
            steps: 32,
            cases: 64,
            budget: Duration::from_secs(120),
        }
    }
}

/// One step of a sequence. Indices pick among what exists at that point (modulo its count),
/// so every generated or shrunk sequence is meaningful; a step with nothing to act on does
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Registers another public client.
    Register,
    /// Logs `user` in with client `client` (authorize, consent, token) for the resource of
    /// transport `transport`: a token is issued for one resource (RFC 8707) and may be
    /// refused at the other transport's endpoint.
    Login {
        user: usize,
        client: usize,
        transport: usize,
    },
    /// Refreshes the grant's current refresh token.
    Refresh { grant: usize },
    /// Sends the grant's last rotated-out refresh token again.
    ReplayRotated { grant: usize },
    /// Revokes the grant's refresh token (the grant) or its current access token.
    Revoke { grant: usize, refresh: bool },
    /// Opens a session with the grant's access token, on the transport it was issued for,
    /// and calls `tools/list` and the tool.
    Call { grant: usize },
    /// Calls the tool in an open session with the token of another user's grant for the
    /// same transport (`grant` picks among those).
    CrossSession { session: usize, grant: usize },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Register => write!(f, "register"),
            Op::Login {
                user,
                client,
                transport,
            } => write!(
                f,
                "login({}, client {client}, transport {transport})",
                USERS[user % USERS.len()]
            ),
            Op::Refresh { grant } => write!(f, "refresh(grant {grant})"),
            Op::ReplayRotated { grant } => write!(f, "replay-rotated-refresh(grant {grant})"),
            Op::Revoke { grant, refresh } => write!(
                f,
                "revoke({} of grant {grant})",
                if *refresh {
                    "refresh token"
                } else {
                    "access token"
                }
            ),
            Op::Call { grant } => write!(f, "call(grant {grant})"),
            Op::CrossSession { session, grant } => {
                write!(f, "cross-session(session {session}, grant {grant})")
            }
        }
    }
}

/// Writes a sequence as one line.
pub fn describe(ops: &[Op]) -> String {
    ops.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Register),
        3 => (0..USERS.len(), 0..4usize, 0..2usize).prop_map(|(user, client, transport)| {
            Op::Login { user, client, transport }
        }),
        2 => (0..6usize).prop_map(|grant| Op::Refresh { grant }),
        1 => (0..6usize).prop_map(|grant| Op::ReplayRotated { grant }),
        2 => (0..6usize, any::<bool>()).prop_map(|(grant, refresh)| Op::Revoke { grant, refresh }),
        4 => (0..6usize).prop_map(|grant| Op::Call { grant }),
        2 => (0..6usize, 0..6usize).prop_map(|(session, grant)| Op::CrossSession { session, grant }),
    ]
}

/// The properties, one per MODEL check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Property {
    Revocation,
    Rotation,
    NoCrossUserData,
    SessionBinding,
}

impl Property {
    pub fn id(self) -> &'static str {
        match self {
            Property::Revocation => "MODEL-01",
            Property::Rotation => "MODEL-02",
            Property::NoCrossUserData => "MODEL-03",
            Property::SessionBinding => "MODEL-04",
        }
    }
}

/// A broken property: `must` for a MUST, otherwise a SHOULD.
#[derive(Debug, Clone)]
struct Violation {
    property: Property,
    must: bool,
    message: String,
}

/// The shortest sequence seen to break a property at one level.
#[derive(Debug, Clone)]
pub struct Finding {
    pub message: String,
    pub sequence: Vec<Op>,
}

/// What the phase found.
#[derive(Debug, Default)]
pub struct Campaign {
    pub seed: u64,
    /// Sequences run, the shrinking runs included.
    pub sequences: usize,
    /// Operations run in all.
    pub operations: usize,
    /// Per property and level (`true` for MUST): the shortest breaking sequence.
    pub findings: BTreeMap<(Property, bool), Finding>,
    /// Whether the budget stopped the phase before every sequence ran.
    pub cut_short: bool,
}

impl Campaign {
    pub fn finding(&self, property: Property, must: bool) -> Option<&Finding> {
        self.findings.get(&(property, must))
    }
}

/// What the model expects of an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Works,
    /// Refused; `true` when a MUST says so (the token itself was revoked), `false` for a
    /// SHOULD (RFC 7009 §2.1: access tokens of a revoked grant).
    Refused(bool),
}

struct GrantState {
    user: &'static str,
    client: Client,
    /// The transport whose resource the grant's tokens were issued for.
    transport: Transport,
    access: String,
    access_expect: Expect,
    /// When the access token's announced lifetime ends; after that, a refusal is expiry,
    /// not a broken revocation (the suite gives slow targets tokens of a few seconds).
    access_expires: Option<std::time::Instant>,
    refresh: Option<String>,
    rotated: Vec<String>,
    /// The grant was revoked (its refresh token revoked, or reuse detected).
    revoked: bool,
}

struct SessionState {
    user: &'static str,
    transport: Transport,
    conn: McpConn,
}

#[derive(Default)]
struct World {
    clients: Vec<Client>,
    grants: Vec<GrantState>,
    sessions: Vec<SessionState>,
    violations: Vec<Violation>,
}

impl World {
    /// The grants whose live tokens could intrude on session `session`: another user's,
    /// for the same transport.
    fn intruders(&self, session: usize) -> Vec<usize> {
        let Some(owner) = self.sessions.get(session) else {
            return Vec::new();
        };
        self.grants
            .iter()
            .enumerate()
            .filter(|(_, g)| {
                g.user != owner.user
                    && g.transport == owner.transport
                    && g.access_expect == Expect::Works
            })
            .map(|(i, _)| i)
            .collect()
    }

    fn broke(&mut self, property: Property, must: bool, message: impl Into<String>) {
        self.violations.push(Violation {
            property,
            must,
            message: message.into(),
        });
    }
}

/// Shared between the runner's sync closure and the phase.
struct Record {
    campaign: Campaign,
    error: Option<String>,
}

/// Runs the phase: generates sequences from the seed, runs each against the server, shrinks
/// a failing one.
pub async fn run(cx: &Ctx, settings: &Settings) -> anyhow::Result<Campaign> {
    let record = std::sync::Arc::new(Mutex::new(Record {
        campaign: Campaign {
            seed: settings.seed,
            ..Campaign::default()
        },
        error: None,
    }));
    let started = Instant::now();
    let handle = tokio::runtime::Handle::current();
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&settings.seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
    let config = RunnerConfig {
        cases: settings.cases,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..RunnerConfig::default()
    };
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = vec(op_strategy(), 1..=settings.steps.max(1));
    let (cx, budget, shared_record) = (cx.clone(), settings.budget, record.clone());
    // proptest's runner is synchronous, so the phase runs on a blocking thread of its own.
    // Blocking in place instead would suspend every check polled in the same task as this
    // one (the checks run side by side in one stream): their requests, stopped mid-flight
    // for the whole phase, would then time out as if the server had not answered.
    let outcome = tokio::task::spawn_blocking(move || {
        let record = shared_record;
        runner.run(&strategy, |ops| {
            if started.elapsed() > budget {
                record.lock().expect("record lock").campaign.cut_short = true;
                return Ok(());
            }
            let result = handle.block_on(run_sequence(&cx, &ops));
            let mut r = record.lock().expect("record lock");
            r.campaign.sequences += 1;
            r.campaign.operations += ops.len();
            match result {
                Err(e) => {
                    // An infrastructure failure is not a property; it ends the phase.
                    r.error.get_or_insert_with(|| format!("{e:#}"));
                    Ok(())
                }
                Ok((violations, _)) if violations.is_empty() => Ok(()),
                Ok((violations, acted)) => {
                    let mut first_must = None;
                    for v in violations {
                        let key = (v.property, v.must);
                        let shorter = r
                            .campaign
                            .findings
                            .get(&key)
                            .is_none_or(|f| acted.len() < f.sequence.len());
                        if shorter {
                            r.campaign.findings.insert(
                                key,
                                Finding {
                                    message: v.message.clone(),
                                    sequence: acted.clone(),
                                },
                            );
                        }
                        if v.must && first_must.is_none() {
                            first_must = Some(format!("{}: {}", v.property.id(), v.message));
                        }
                    }
                    // Only MUST violations drive shrinking; SHOULD findings are kept as seen.
                    match first_must {
                        Some(m) => Err(TestCaseError::fail(m)),
                        None => Ok(()),
                    }
                }
            }
        })
    })
    .await
    .context("the model phase's thread ended abnormally")?;
    let r = std::mem::replace(
        &mut *record.lock().expect("record lock"),
        Record {
            campaign: Campaign::default(),
            error: None,
        },
    );
    if let Some(e) = r.error {
        anyhow::bail!(
            "a step of the model phase failed (seed {}): {e}",
            settings.seed
        );
    }
    // Every shrinking step was recorded, so the findings already hold the shortest
    // sequences; the runner's own verdict adds nothing.
    drop(outcome);
    Ok(r.campaign)
}

/// Runs one sequence from a fresh world and returns what it broke, with the steps that
/// acted (a step with nothing to act on changes no count, so leaving it out replays the
/// same way and shortens the evidence).
async fn run_sequence(cx: &Ctx, ops: &[Op]) -> anyhow::Result<(Vec<Violation>, Vec<Op>)> {
    let mut world = World::default();
    let mut acted = Vec::new();
    let transports = cx.config().transports.len();
    for op in ops {
        let resolved = resolve(op, &world, transports);
        if step(cx, &mut world, op).await? {
            acted.push(resolved);
        }
    }
    Ok((world.violations, acted))
}

/// The step with its indices reduced to what they pick in this world, so that the evidence
/// names grants, sessions and clients by their order of creation.
fn resolve(op: &Op, w: &World, transports: usize) -> Op {
    let within = |i: usize, n: usize| if n == 0 { i } else { i % n };
    match *op {
        Op::Register => Op::Register,
        Op::Login {
            user,
            client,
            transport,
        } => Op::Login {
            user: user % USERS.len(),
            client: within(client, w.clients.len().max(1)),
            transport: within(transport, transports),
        },
        Op::Refresh { grant } => Op::Refresh {
            grant: within(grant, w.grants.len()),
        },
        Op::ReplayRotated { grant } => Op::ReplayRotated {
            grant: within(grant, w.grants.len()),
        },
        Op::Revoke { grant, refresh } => Op::Revoke {
            grant: within(grant, w.grants.len()),
            refresh,
        },
        Op::Call { grant } => Op::Call {
            grant: within(grant, w.grants.len()),
        },
        Op::CrossSession { session, grant } => {
            let session = within(session, w.sessions.len());
            let intruders = w.intruders(session);
            Op::CrossSession {
                session,
                grant: pick(&intruders, grant).map_or(grant, |i| intruders[i]),
            }
        }
    }
}

fn pick<T>(items: &[T], i: usize) -> Option<usize> {
    (!items.is_empty()).then(|| i % items.len())
}

/// A context on a given transport, for the helpers that open sessions and probe.
fn on(cx: &Ctx, transport: Transport) -> Ctx {
    Ctx {
        transport: Some(transport),
        ..cx.clone()
    }
}

/// When `tokens`' access token stops working by itself, if the server said.
fn expiry(tokens: &flow::Tokens) -> Option<std::time::Instant> {
    tokens
        .expires_in
        .map(|s| tokens.received + std::time::Duration::from_secs(s))
}

fn issued(cx: &Ctx, ex: &crate::http::Exchange) -> Option<flow::Tokens> {
    (ex.status == 200)
        .then(|| flow::parse_tokens(cx.http(), ex.clone()).ok())
        .flatten()
}

/// Runs one step; `false` when it had nothing to act on (and sent nothing).
async fn step(cx: &Ctx, w: &mut World, op: &Op) -> anyhow::Result<bool> {
    let token_endpoint = cx.endpoints()?.token;
    match *op {
        Op::Register => {
            let client = cx
                .register(ClientKind::Public, "mcp-auth-conformance model")
                .await?;
            w.clients.push(client);
        }
        Op::Login {
            user,
            client,
            transport,
        } => {
            let transports = &cx.config().transports;
            let Some(t) = pick(transports, transport) else {
                return Ok(false);
            };
            let transport = transports[t];
            if w.clients.is_empty() {
                let c = cx
                    .register(ClientKind::Public, "mcp-auth-conformance model")
                    .await?;
                w.clients.push(c);
            }
            let client = w.clients[client % w.clients.len()].clone();
            let user = USERS[user % USERS.len()];
            let login = on(cx, transport)
                .login(LoginOptions {
                    client: Some(client.clone()),
                    ..LoginOptions::user(user)
                })
                .await?;
            w.grants.push(GrantState {
                user,
                client,
                transport,
                access: login.tokens.access_token.clone(),
                access_expect: Expect::Works,
                access_expires: expiry(&login.tokens),
                refresh: login.tokens.refresh_token.clone(),
                rotated: Vec::new(),
                revoked: false,
            });
        }
        Op::Refresh { grant } => {
            let Some(g) = pick(&w.grants, grant) else {
                return Ok(false);
            };
            let Some(refresh) = w.grants[g].refresh.clone() else {
                return Ok(false);
            };
            let client = w.grants[g].client.clone();
            let ex = flow::refresh(cx.http(), &token_endpoint, &client, &refresh, None).await?;
            let tokens = issued(cx, &ex);
            let revoked = w.grants[g].revoked;
            match tokens {
                Some(_) if revoked => w.broke(
                    Property::Revocation,
                    true,
                    "the refresh token of a revoked grant still refreshed",
                ),
                Some(tokens) => {
                    let state = &mut w.grants[g];
                    state.access_expires = expiry(&tokens);
                    state.access = tokens.access_token;
                    state.access_expect = Expect::Works;
                    if let Some(new) = tokens.refresh_token.filter(|new| *new != refresh) {
                        state.rotated.push(refresh);
                        state.refresh = Some(new);
                    }
                }
                None if revoked => {}
                None => w.broke(
                    Property::Rotation,
                    false,
                    format!(
                        "the grant's current refresh token was refused ({} with error {})",
                        ex.status,
                        crate::checks::shown(json_error(&ex))
                    ),
                ),
            }
        }
        Op::ReplayRotated { grant } => {
            let Some(g) = pick(&w.grants, grant) else {
                return Ok(false);
            };
            let Some(old) = w.grants[g].rotated.last().cloned() else {
                return Ok(false);
            };
            let client = w.grants[g].client.clone();
            let ex = flow::refresh(cx.http(), &token_endpoint, &client, &old, None).await?;
            if issued(cx, &ex).is_some() {
                w.broke(
                    Property::Rotation,
                    true,
                    "a rotated-out refresh token was accepted again",
                );
            }
            if w.grants[g].revoked {
                return Ok(true);
            }
            // RFC 9700 §4.14.2: on reuse the server should revoke the grant; whether it did
            // shows on the grant's current access token.
            let works = token_works(cx, w.grants[g].transport, &w.grants[g].access).await?;
            if works {
                w.broke(
                    Property::Rotation,
                    false,
                    "reusing a rotated-out refresh token left the grant's tokens working \
                     (RFC 9700 §4.14.2: the grant should be revoked)",
                );
            } else {
                let state = &mut w.grants[g];
                state.revoked = true;
                state.access_expect = Expect::Refused(false);
            }
        }
        Op::Revoke { grant, refresh } => {
            let Some(endpoint) = cx.endpoints()?.revocation else {
                return Ok(false);
            };
            let Some(g) = pick(&w.grants, grant) else {
                return Ok(false);
            };
            let state = &w.grants[g];
            let (token, hint) = match (&state.refresh, refresh) {
                (Some(r), true) => (r.clone(), "refresh_token"),
                _ => (state.access.clone(), "access_token"),
            };
            let fields = flow::with_client_auth(
                &state.client,
                vec![
                    ("token".into(), token),
                    ("token_type_hint".into(), hint.into()),
                ],
            );
            let ex = flow::token_request(cx.http(), &endpoint, &fields).await?;
            // RFC 7009 §2.2.1: a server that revokes only refresh tokens answers
            // `unsupported_token_type` for an access token, which then stays live.
            if hint == "access_token"
                && ex.status == 400
                && json_error(&ex).as_deref() == Some("unsupported_token_type")
            {
                return Ok(true);
            }
            if ex.status != 200 {
                w.broke(
                    Property::Revocation,
                    true,
                    format!("revoking a live {hint} answered {}", ex.status),
                );
                return Ok(true);
            }
            let state = &mut w.grants[g];
            if hint == "refresh_token" {
                state.revoked = true;
                if state.access_expect == Expect::Works {
                    state.access_expect = Expect::Refused(false);
                }
            } else {
                state.access_expect = Expect::Refused(true);
            }
        }
        Op::Call { grant } => {
            let Some(g) = pick(&w.grants, grant) else {
                return Ok(false);
            };
            let (user, token, expect, transport, expires) = {
                let s = &w.grants[g];
                (
                    s.user,
                    s.access.clone(),
                    s.access_expect,
                    s.transport,
                    s.access_expires,
                )
            };
            let tcx = on(cx, transport);
            let probe = tcx.probe_bearer(&token).await?;
            let accepted = (200..300).contains(&probe.status);
            // Judged when the answer came: a token that ran out on the way was not revoked.
            let expired = expires.is_some_and(|at| std::time::Instant::now() >= at);
            match (expect, accepted) {
                (Expect::Refused(must), true) => w.broke(
                    Property::Revocation,
                    must,
                    if must {
                        format!("a revoked access token was accepted on {transport}")
                    } else {
                        format!(
                            "an access token of a revoked grant was accepted on {transport} \
                             (RFC 7009 §2.1: it should be invalidated with the grant)"
                        )
                    },
                ),
                (Expect::Works, false) if !expired => w.broke(
                    Property::Revocation,
                    true,
                    format!(
                        "a live, unrevoked access token was refused on {} ({})",
                        transport, probe.status
                    ),
                ),
                _ => {}
            }
            if !accepted {
                return Ok(true);
            }
            let (mut conn, _) = tcx.connect(Some(&token)).await?;
            conn.call("tools/list", json!({})).await?;
            let (_, result) = conn.call_tool(TOOL, json!({})).await?;
            if let Some(other) = profile_login(&result).filter(|login| *login != user) {
                w.broke(
                    Property::NoCrossUserData,
                    true,
                    format!("{user}'s token returned the profile of {other}"),
                );
            }
            w.sessions.push(SessionState {
                user,
                transport,
                conn,
            });
        }
        Op::CrossSession { session, grant } => {
            let Some(s) = pick(&w.sessions, session) else {
                return Ok(false);
            };
            let intruders = w.intruders(s);
            let Some(i) = pick(&intruders, grant) else {
                return Ok(false);
            };
            let other = &w.grants[intruders[i]];
            let (intruder, token) = (other.user, other.access.clone());
            let owner = w.sessions[s].user;
            let id = json!("model-cross-session");
            let message = json!({
                "jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": TOOL, "arguments": {}}
            });
            let (status, response) = match &mut w.sessions[s].conn {
                McpConn::Shttp(c) => {
                    let mut as_other = c.clone();
                    as_other.token = Some(token);
                    let reply = as_other.post(&message).await?;
                    (reply.exchange.status, reply.response(&id).cloned())
                }
                McpConn::Sse(legacy) => {
                    let req = Req::post(legacy.endpoint.clone())
                        .bearer(Some(&token))
                        .json(&message);
                    let ex = cx.http().send(req).await?;
                    let response = if (200..300).contains(&ex.status) {
                        legacy.wait_response(&id, CROSS_WAIT).await
                    } else {
                        None
                    };
                    (ex.status, response)
                }
            };
            if (200..300).contains(&status) {
                let seen = response
                    .as_ref()
                    .and_then(|r| r.get("result"))
                    .and_then(profile_login);
                if seen.as_deref() == Some(owner) {
                    w.broke(
                        Property::SessionBinding,
                        true,
                        format!("{intruder}'s token ran a call in {owner}'s session as {owner}"),
                    );
                } else {
                    w.broke(
                        Property::SessionBinding,
                        false,
                        format!(
                            "{intruder}'s token was accepted ({status}) in a session {owner} opened"
                        ),
                    );
                }
            }
        }
    }
    Ok(true)
}

/// Whether an access token is accepted at the endpoint of the transport it was issued for.
async fn token_works(cx: &Ctx, transport: Transport, token: &str) -> anyhow::Result<bool> {
    let probe = on(cx, transport).probe_bearer(token).await?;
    Ok((200..300).contains(&probe.status))
}

/// The `login` of the profile a `get_user_profile` result carries (structured content or
/// the JSON text content).
pub fn profile_login(result: &Value) -> Option<String> {
    if let Some(login) = result
        .get("structuredContent")
        .and_then(|s| s.get("login"))
        .and_then(Value::as_str)
    {
        return Some(login.to_owned());
    }
    result
        .get("content")?
        .as_array()?
        .iter()
        .filter_map(|c| c.get("text")?.as_str())
        .filter_map(|t| serde_json::from_str::<Value>(t).ok())
        .find_map(|v| v.get("login")?.as_str().map(str::to_owned))
}
