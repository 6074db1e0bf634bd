//! # mcp-auth-conformance
//!
//! A black-box conformance suite for MCP servers reached over HTTP that protect themselves with
//! OAuth 2.1, act as their own authorization server, and send the user to GitHub to log in
//! (the MCP "third-party authorization" shape). It speaks both HTTP transports: legacy HTTP+SSE
//! (`GET /sse` + the POST endpoint it announces) and Streamable HTTP (`/mcp`).
//!
//! Every check is named after a requirement in `conformance/requirements.toml` (`AUTH-FLOW-04`,
//! `SHTTP-18`, ...), has a level (MUST fails the run; SHOULD, MAY and informational checks
//! warn), the spec versions and transports it applies to, and on failure shows the request line
//! and a response excerpt with tokens, codes and secrets redacted.
//!
//! The suite logs in for real: it registers clients, walks the authorization redirects with a
//! scripted browser (cookie jar, consent form), picks the GitHub account at a mock GitHub (the
//! `mock-github` crate; its admin endpoints `/_mock/journal`, `/_mock/revoke` and `/_mock/users`
//! are read over HTTP), exchanges codes with PKCE, refreshes, revokes, and then uses the tokens
//! on both transports. Checks run concurrently, each with its own logins.
//!
//! ## Running it
//!
//! Start a mock GitHub and the server under test (with its GitHub URLs pointing at the mock),
//! then:
//!
//! ```text
//! mcp-auth-conformance --url http://127.0.0.1:8000 --mock-github http://127.0.0.1:9999 \
//!     [--mcp-path /mcp] [--sse-path /sse] [--transport sse|streamable-http|both] \
//!     [--id AUTH-FLOW-04]... [--area SHTTP]... [--spec-version 2025-06-18]... \
//!     [--baseline fixtures/baselines/<target>.toml] [--json FILE] [--junit FILE] \
//!     [--snapshot-dir DIR] [--max-expiry-wait 3] [--timeout 5] [--jobs 16] [--slow] [--list]
//! ```
//!
//! `--live` checks a server where it runs instead (another machine, https, the real GitHub),
//! without the mock: `mcp-auth-conformance --live --url https://mcp.example.com [--login
//! browser] [--allow-destructive]` (a token may also come from `MCP_AUTH_CONFORMANCE_TOKEN` or
//! the `connect` cache). What only the mock gives is skipped with that reason (see
//! [`checks::Refusal`] and [`config::Live`]).
//!
//! It prints a line per check as it finishes, the checks blocked by a failed prerequisite (one
//! line per prerequisite), a summary by area and level, and a closing line `N passed, N failed,
//! N errors, N blocked, N warned, N skipped in T s`.
//!
//! ## Outcomes and exit status
//!
//! A check passes, fails (a MUST is broken), warns (a SHOULD, MAY or informational check is
//! broken), is skipped (only for a stated reason: the feature is not offered, a version
//! filter, `--slow` not given), ends in an **error** (it could not reach a verdict: the server
//! misbehaved or timed out, or a step it needed failed), or is **blocked** (a step it needed is
//! judged by another check, which failed or errored in this run; see
//! [`checks::Prerequisite`]). An error in a MUST check fails the run like a failure.
//!
//! The exit status is
//!
//! - 0: conformant; no MUST check failed or errored outside the baseline, no baseline entry is
//!   stale;
//! - 1: a MUST check failed or errored outside the baseline, or a baseline entry is stale;
//! - 2: the run could not happen: the target or the mock GitHub cannot be reached, the target
//!   accepts connections but never answers, nothing there is an MCP server ([`CannotRun`],
//!   found by a bounded [`preflight`] before any check), or the command line is wrong.
//!
//! From Rust, [`run`] takes a [`SuiteConfig`] and returns the [`Report`]; the tests in
//! `conformance/tests/` run it against the reference server in-process.
//!
//! ## How the checks are proven
//!
//! A check that cannot fail proves nothing. The reference server, built with its
//! `fault-injection` feature, has a named fault for every check (`server/src/fault.rs`),
//! each breaking one requirement. `cargo xtask faults` runs the suite against every fault
//! and asserts that exactly the checks the fault names get worse than against the clean
//! server, and that every check is tripped by some fault; `conformance/tests/faults.rs` does
//! the same in-process.
//!
//! ## Where things are
//!
//! - [`http`]: raw clients (Streamable HTTP, legacy SSE), the SSE parser, `WWW-Authenticate`.
//! - [`oauth`]: discovery, registration, the scripted browser, the PKCE flow.
//! - [`checks`]: one module per catalogue area; [`checks::Ctx`] is what a check can use.
//! - [`report`]: console, JSON and JUnit renderings; [`baseline`]: known failures.
//! - [`snapshot`]: the normalized transcript written by `--snapshot-dir`.

pub mod baseline;
pub mod catalogue;
pub mod checks;
pub mod client;
pub mod config;
pub mod connect;
pub mod http;
pub mod mock;
pub mod model;
pub mod oauth;
pub mod preflight;
pub mod profile;
pub mod redact;
pub mod report;
pub mod robustness;
pub mod schema;
pub mod snapshot;
pub mod version;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;

pub use config::{SuiteConfig, Transport};
pub use report::Report;
pub use version::Version;

use checks::{Check, Ctx, Evidence, RunAt, Scope, Shared, Verdict};
use http::trace::Trace;
use http::{Http, Req};
use mock::MockAdmin;
use redact::Redactor;
use report::{CheckResult, Outcome, transport_label};

/// A check scheduled on one transport (or on the authorization server), at one version.
#[derive(Clone)]
pub struct Planned {
    pub check: Check,
    pub transport: Option<Transport>,
    /// The version the run is judged at, and whether it records the snapshot entries; no
    /// version before the server's versions are known ([`plan`]).
    pub at: RunAt,
    /// Why the check does not run against this server (no version it applies to).
    pub skip: Option<String>,
}

/// The checks a configuration selects, in catalogue order, each once per transport: the plan
/// before the server's versions are known (`--list`, the filters' preflight).
pub fn plan(config: &SuiteConfig) -> Vec<Planned> {
    let mut out = Vec::new();
    for check in checks::all() {
        if !config.ids.is_empty() && !config.ids.iter().any(|f| id_filter_matches(&check, f)) {
            continue;
        }
        if !config.areas.is_empty()
            && !config
                .areas
                .iter()
                .any(|a| a.eq_ignore_ascii_case(check.area()))
        {
            continue;
        }
        if !config.versions.is_empty()
            && !config.versions.iter().any(|v| check.versions.contains(*v))
        {
            continue;
        }
        match check.scope {
            Scope::AuthServer => out.push(Planned {
                check,
                transport: None,
                at: RunAt::default(),
                skip: None,
            }),
            Scope::Transports(ts) => {
                for t in &config.transports {
                    if ts.contains(t) {
                        out.push(Planned {
                            check,
                            transport: Some(*t),
                            at: RunAt::default(),
                            skip: None,
                        });
                    }
                }
            }
        }
    }
    out
}

/// The plan against a server whose versions are known: a check whose outcome can depend on the
/// negotiated version ([`checks::per_version`]) once per version its transport negotiates and
/// it applies to, any other check once at the newest version it applies to among those the
/// server claims, and a check that applies to none of them once, as a skip with the reason.
/// `--spec-version` pins the versions.
pub fn plan_versions(config: &SuiteConfig, assessment: &profile::Assessment) -> Vec<Planned> {
    let mut out = Vec::new();
    for p in plan(config) {
        let placement = profile::place(
            assessment,
            p.check.versions,
            p.transport,
            checks::per_version(&p.check),
            checks::judges_authorization(&p.check),
            &config.versions,
        );
        match placement {
            profile::Placement::Skip(reason) => out.push(Planned {
                skip: Some(reason),
                ..p
            }),
            profile::Placement::Once(v) => out.push(Planned {
                at: RunAt {
                    version: Some(v),
                    records: true,
                },
                ..p
            }),
            profile::Placement::Each(versions) => {
                // The run at the version the suite negotiated before it discovered versions
                // records the snapshot entries; without it, the newest.
                let home = p
                    .transport
                    .map(|t| assessment.home(t, config.streamable_version));
                let recorder = home
                    .filter(|h| versions.contains(h))
                    .or_else(|| versions.last().copied());
                for v in versions {
                    out.push(Planned {
                        at: RunAt {
                            version: Some(v),
                            records: Some(v) == recorder,
                        },
                        ..p.clone()
                    });
                }
            }
        }
    }
    out
}

/// Whether an `--id` value selects `check`: its key, one of its IDs, or the ID of a check
/// with several cases (`AUTH-GEN-05` selects `AUTH-GEN-05#expired`), ignoring case.
pub fn id_filter_matches(check: &Check, filter: &str) -> bool {
    let key = check.key();
    key.eq_ignore_ascii_case(filter)
        || check.ids().any(|id| id.eq_ignore_ascii_case(filter))
        || key
            .split_once('#')
            .is_some_and(|(id, _)| id.eq_ignore_ascii_case(filter))
}

/// The target cannot be tested at all: nothing answers at its URL, it accepts connections but
/// never answers, nothing that answers looks like an MCP server, or the mock GitHub is not
/// there. The binary exits with status 2 on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannotRun(pub String);

impl std::fmt::Display for CannotRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CannotRun {}

/// The longest the preflight waits for any one answer.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request of the preflight got no answer, in words.
fn unreachable_reason(url: &url::Url, error: &anyhow::Error, wait: Duration) -> String {
    let text = format!("{error:#}").to_ascii_lowercase();
    if text.contains("refused") || text.contains("tcp connect error") {
        format!("nothing is listening at {url} (connection refused)")
    } else if text.contains("timed out") || text.contains("within") || text.contains("timeout") {
        format!("{url} accepted the connection but sent no answer within {wait:?}")
    } else {
        format!("{url} gave no HTTP answer: {error:#}")
    }
}

/// A bounded look at the target and the mock GitHub before any check runs, so that a run
/// against nothing ends at once with one clear line instead of a report full of errors.
pub async fn preflight(config: &SuiteConfig) -> Result<(), CannotRun> {
    let wait = config.request_timeout.min(PREFLIGHT_TIMEOUT);
    let http = suite_http(config, wait, Arc::new(Redactor::default()))
        .map_err(|e| CannotRun(format!("cannot build the HTTP client: {e:#}")))?;
    let endpoints = futures::future::join_all(config.transports.iter().map(|t| {
        let http = http.clone();
        let url = config.endpoint(*t);
        let probe = discovery_probe(config, *t);
        async move { (url, http.send_head(probe).await) }
    }));
    // A live run has no mock GitHub to look at.
    let mock = async {
        if config.live.is_some() {
            return Ok(());
        }
        let mock_url = config
            .mock_github
            .join("/_mock/users")
            .map_err(|e| CannotRun(format!("the mock GitHub URL is unusable: {e}")))?;
        match http.send(Req::get(mock_url.clone())).await {
            Ok(ex) if ex.status == 200 => Ok(()),
            Ok(ex) => Err(CannotRun(format!(
                "the mock GitHub at {} is not one: GET {} answered {}",
                config.mock_github, mock_url, ex.status
            ))),
            Err(e) => Err(CannotRun(format!(
                "the mock GitHub cannot be reached: {}",
                unreachable_reason(&mock_url, &e, wait)
            ))),
        }
    };
    let (endpoints, mock) = futures::join!(endpoints, mock);
    mock?;
    let mut reasons = Vec::new();
    let mut answered = false;
    for (url, result) in &endpoints {
        match result {
            // A static server answers 404, 405 or 501 to what an MCP client sends.
            Ok(ex) if matches!(ex.status, 404 | 405 | 501) => {
                answered = true;
                reasons.push(format!("{url} answered {}", ex.status));
            }
            Ok(_) => return Ok(()),
            Err(e) => reasons.push(unreachable_reason(url, e, wait)),
        }
    }
    if answered {
        // No endpoint, but OAuth metadata would still show an MCP server behind other paths.
        let mut metadata = Vec::new();
        for path in [
            format!("/.well-known/oauth-protected-resource{}", config.mcp_path),
            "/.well-known/oauth-protected-resource".to_owned(),
            "/.well-known/oauth-authorization-server".to_owned(),
        ] {
            if let Ok(url) = config.url.join(&path) {
                metadata.push(http.send(Req::get(url)));
            }
        }
        let found = futures::future::join_all(metadata)
            .await
            .into_iter()
            .any(|r| r.is_ok_and(|ex| ex.status == 200));
        if found {
            return Ok(());
        }
        return Err(CannotRun(format!(
            "no MCP server at {}: {}, and there is no OAuth metadata (check --url, --mcp-path \
             and --sse-path)",
            config.url,
            reasons.join("; ")
        )));
    }
    Err(CannotRun(format!(
        "cannot reach the server under test: {}",
        reasons.join("; ")
    )))
}

/// The suite's HTTP client: loopback only in mock mode; in live mode it may reach other
/// machines (https, through the system's proxy settings when the target is not on loopback).
fn suite_http(
    config: &SuiteConfig,
    timeout: Duration,
    redactor: Arc<Redactor>,
) -> anyhow::Result<Http> {
    if config.live.is_some() {
        Http::for_remote(timeout, redactor, !http::is_loopback(&config.url))
    } else {
        Http::new(timeout, redactor)
    }
}

/// How many checks a live run skipped for each live-mode reason (the checks that need the mock
/// GitHub, a login, or `--allow-destructive`), in the order of the reasons' first appearance.
pub fn live_skips(report: &Report) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for r in &report.results {
        let Outcome::Skip { reason } = &r.outcome else {
            continue;
        };
        let reasons = [
            checks::live_reason::NEEDS_MOCK,
            checks::live_reason::NEEDS_LOGIN,
            checks::live_reason::NEEDS_OWN_LOGIN,
            checks::live_reason::DESTRUCTIVE,
        ];
        let Some(known) = reasons.iter().find(|known| reason.starts_with(**known)) else {
            continue;
        };
        match counts.iter_mut().find(|(k, _)| k == known) {
            Some((_, n)) => *n += 1,
            None => counts.push(((*known).to_owned(), 1)),
        }
    }
    counts
}

/// The unauthenticated first request of a client on a transport, which discovery starts from.
fn discovery_probe(config: &SuiteConfig, t: Transport) -> Req {
    let url = config.endpoint(t);
    match t {
        Transport::StreamableHttp => Req::post(url)
            .header("Accept", http::streamable::ACCEPT_BOTH)
            .json(&serde_json::json!({
                "jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": http::streamable::initialize_params(config.streamable_version.as_str())
            })),
        Transport::Sse => Req::get(url).header("Accept", "text/event-stream"),
    }
}

/// Runs the selected checks and returns the report (without a baseline applied). An error
/// means the run could not start; it is a [`CannotRun`] when the target or the mock GitHub
/// cannot be reached.
pub async fn run(config: SuiteConfig) -> anyhow::Result<Report> {
    let started = Instant::now();
    preflight(&config).await?;
    let redactor = Arc::new(Redactor::default());
    let http = suite_http(&config, config.request_timeout, redactor)?;
    let mock = MockAdmin {
        // The journal of a whole run is the suite's own data, larger than any answer the
        // server under test has reason to send.
        http: http.with_max_body(MOCK_MAX_BODY),
        base: config.live.is_none().then(|| config.mock_github.clone()),
    };
    let live_login = config
        .live
        .as_ref()
        .and_then(|live| live.login.as_ref())
        .map(|login| checks::Login::from_live(login, &http, &config.url));

    // Discovery once per transport; checks reuse it.
    let mut discovery = BTreeMap::new();
    let found = futures::future::join_all(config.transports.iter().map(|t| {
        let http = http.clone();
        let url = config.endpoint(*t);
        let probe = discovery_probe(&config, *t);
        let t = *t;
        async move {
            let d = oauth::discovery::discover(&http, &url, probe).await;
            (t, d.map(Arc::new).map_err(|e| format!("{e:#}")))
        }
    }))
    .await;
    discovery.extend(found);

    let shared = Arc::new(Shared {
        config: config.clone(),
        http,
        mock,
        discovery,
        transcript: Default::default(),
        upstream_revocation: Default::default(),
        robustness: Default::default(),
        model: Default::default(),
        live_login,
        live_token_accepted: Default::default(),
        assessment: Default::default(),
    });

    // What the server claims decides which checks run at which versions.
    let assessment = Arc::new(
        profile::assess(&Ctx {
            shared: shared.clone(),
            transport: None,
            run: RunAt::default(),
        })
        .await,
    );
    let _ = shared.assessment.set(assessment.clone());

    let planned = plan_versions(&config, &assessment);
    let jobs = config.jobs.max(1);
    // The robustness phase floods the server on purpose, so it runs after every other check
    // has finished: its load must not turn their waits into timeouts.
    let (phase, mut regular): (Vec<_>, Vec<_>) = planned
        .into_iter()
        .enumerate()
        .partition(|(_, p)| p.check.area() == "ROBUST");
    // The checks that wait out a token's lifetime are the longest of a run against a server
    // with short-lived tokens: started first, they wait while the others run, instead of
    // adding their wait at the end. Results keep the catalogue's order.
    regular
        .sort_by_key(|(_, p)| !checks::WAITS_OUT_TOKEN_LIFETIME.contains(&p.check.key().as_str()));
    let mut results: Vec<(usize, CheckResult, Option<&'static str>)> = Vec::new();
    for batch in [regular, phase] {
        let done: Vec<(usize, CheckResult, Option<&'static str>)> = futures::stream::iter(batch)
            .map(|(i, p)| {
                let cx = Ctx {
                    shared: shared.clone(),
                    transport: p.transport,
                    run: p.at,
                };
                // The robustness campaign is one long phase shared by its checks.
                let timeout = match (&config.robustness, p.check.area()) {
                    (Some(r), "ROBUST") => config.check_timeout + r.budget,
                    (_, "MODEL") => {
                        config.check_timeout
                            + config.model.as_ref().map_or(Duration::ZERO, |m| m.budget)
                    }
                    _ => config.check_timeout,
                };
                let progress = config.progress.clone();
                async move {
                    let (result, pending) = run_check(p, cx, timeout).await;
                    if pending.is_none()
                        && let Some(progress) = progress
                    {
                        progress(&result);
                    }
                    (i, result, pending)
                }
            })
            .buffer_unordered(jobs)
            .collect()
            .await;
        results.extend(done);
    }
    results.sort_by_key(|(i, _, _)| *i);
    let pending: Vec<Option<&'static str>> = results.iter().map(|(_, _, p)| *p).collect();
    let mut results: Vec<CheckResult> = results.into_iter().map(|(_, r, _)| r).collect();
    resolve_blocked(&mut results, &pending);
    if let Some(progress) = &config.progress {
        for (r, p) in results.iter().zip(&pending) {
            if p.is_some() && !matches!(r.outcome, Outcome::Blocked { .. }) {
                progress(r);
            }
        }
    }

    let report = Report {
        target: config.url.to_string(),
        transports: config.transports.clone(),
        wall_time_ms: started.elapsed().as_millis() as u64,
        results,
        transcript: shared.transcript.clone(),
        assessment: Some(assessment),
    };
    Ok(report)
}

/// The body limit for the mock GitHub's admin answers.
const MOCK_MAX_BODY: usize = 64 << 20;

/// Runs one check within its timeout. Returns the result and, when the check stopped at a step
/// another check judges, that check's key: the result is then an error until
/// [`resolve_blocked`] has looked at the prerequisite.
async fn run_check(p: Planned, cx: Ctx, timeout: Duration) -> (CheckResult, Option<&'static str>) {
    let t0 = Instant::now();
    if let Some(reason) = p.skip.clone() {
        let outcome = Outcome::Skip { reason };
        return (result_of(p, outcome, t0, Vec::new()), None);
    }
    let trace = Arc::new(Trace::for_check(p.check.id));
    let live = cx.config().live.clone();
    if let Some(reason) = live.as_ref().and_then(|l| checks::live_gate(&p.check, l)) {
        let outcome = Outcome::Skip {
            reason: reason.to_owned(),
        };
        return (result_of(p, outcome, t0, Vec::new()), None);
    }
    let (verdict, refused) = checks::watching_refusals(tokio::time::timeout(
        timeout,
        http::trace::scope(trace.clone(), (p.check.run)(cx.clone())),
    ))
    .await;
    // In live mode, a check that asked for something only the mock or the user's login gives
    // did not reach a verdict of its own, whatever it returned (it may have caught the error).
    // A refusal raised in a task of its own reaches the runner only as the body's error.
    let refused = refused.or_else(|| match &verdict {
        Ok(Err(e)) => checks::refusal_of(e).map(|r| r.reason),
        _ => None,
    });
    if let (Some(_), Some(reason)) = (&live, refused) {
        let outcome = Outcome::Skip {
            reason: reason.to_owned(),
        };
        return (result_of(p, outcome, t0, Vec::new()), None);
    }
    let mut pending = None;
    let mut outcome = match verdict {
        Err(_) => Outcome::Error(Evidence {
            message: format!("the check did not finish within {timeout:?}"),
            exchanges: Vec::new(),
        }),
        Ok(Err(e)) => {
            // A case may name its own requirement's main check (the same ID, another key)
            // as its prerequisite; no check names itself.
            if let Some(prerequisite) = checks::prerequisite_of(&e)
                && prerequisite.check != p.check.key()
            {
                pending = Some(prerequisite.check);
            }
            Outcome::Error(Evidence {
                message: cx.redact(&format!("{e:#}")),
                exchanges: Vec::new(),
            })
        }
        Ok(Ok(v)) => match v {
            Verdict::Pass(note) => Outcome::Pass { note },
            Verdict::Violation(e) if p.check.level == checks::Level::Must => Outcome::Fail(e),
            Verdict::Violation(e) | Verdict::Warn(e) => Outcome::Warn(e),
            Verdict::Skip(reason) => Outcome::Skip { reason },
        },
    };
    // How the check got its verdict another way (a retry, a fallback login, a cut body) is
    // part of its evidence.
    let notes = trace.notes();
    if !notes.is_empty() {
        let joined = notes.join("; ");
        match &mut outcome {
            Outcome::Pass { note } => {
                *note = Some(match note.take() {
                    Some(n) => format!("{n}; {joined}"),
                    None => joined,
                });
            }
            Outcome::Fail(e) | Outcome::Warn(e) | Outcome::Error(e) => {
                e.message.push_str(&format!("\nnote: {joined}"));
            }
            Outcome::Skip { reason } => reason.push_str(&format!(" (note: {joined})")),
            Outcome::Blocked { .. } => {}
        }
    }
    let full = if matches!(outcome, Outcome::Fail(_) | Outcome::Error(_)) {
        trace.exchanges(&cx.http().redactor)
    } else {
        Vec::new()
    };
    (result_of(p, outcome, t0, full), pending)
}

/// The result of a planned check with its outcome.
fn result_of(p: Planned, outcome: Outcome, started: Instant, trace: Vec<String>) -> CheckResult {
    CheckResult {
        key: p.check.key(),
        id: p.check.id,
        also: p.check.also.to_vec(),
        area: p.check.area(),
        level: p.check.level,
        versions: p.check.versions.to_string(),
        version: p.at.version,
        per_version: p.transport.is_some() && checks::per_version(&p.check),
        transport: transport_label(p.transport),
        title: p.check.title,
        outcome,
        baseline: None,
        duration_ms: started.elapsed().as_millis() as u64,
        trace,
    }
}

/// Turns the errors of checks that stopped at a prerequisite into `blocked` where that
/// prerequisite failed or errored in this run (on the same transport, or on the authorization
/// server), and leaves them errors otherwise. A check blocked by a check that is itself blocked
/// is blocked by the first failure of the chain. `pending[i]` is the prerequisite named by
/// `results[i]`, if any.
pub fn resolve_blocked(results: &mut [CheckResult], pending: &[Option<&'static str>]) {
    let mut open: Vec<usize> = (0..results.len())
        .filter(|i| pending.get(*i).copied().flatten().is_some())
        .collect();
    // Each pass settles the checks whose prerequisite is settled; a chain is at most as long as
    // the number of open checks, and what is left after that (a cycle) stays an error.
    for _ in 0..=open.len() {
        if open.is_empty() {
            break;
        }
        let mut still_open = Vec::new();
        for &i in &open {
            let by = pending[i].unwrap_or_default();
            let transport = results[i].transport;
            let version = results[i].version;
            let candidates: Vec<(usize, &CheckResult)> = results
                .iter()
                .enumerate()
                .filter(|(j, r)| {
                    *j != i
                        && r.key == by
                        && (r.transport == transport
                            || r.transport == transport_label(None)
                            || transport == transport_label(None))
                })
                .collect();
            // The prerequisite's run at the same version, when it has one; else its first run
            // that failed, errored or was blocked (a check at a version the prerequisite does
            // not run at), else its first run.
            let prerequisite = candidates
                .iter()
                .find(|(_, r)| r.version == version)
                .or_else(|| {
                    candidates.iter().find(|(_, r)| {
                        matches!(
                            r.outcome,
                            Outcome::Fail(_) | Outcome::Error(_) | Outcome::Blocked { .. }
                        )
                    })
                })
                .or_else(|| candidates.first())
                .copied();
            let Some((j, prerequisite)) = prerequisite else {
                continue;
            };
            if open.contains(&j) {
                still_open.push(i);
                continue;
            }
            let blocked_by = match &prerequisite.outcome {
                Outcome::Fail(_) | Outcome::Error(_) => Some(by.to_owned()),
                Outcome::Blocked { by, .. } => Some(by.clone()),
                _ => None,
            };
            if let Some(by) = blocked_by {
                let reason = results[i].outcome.message();
                results[i].outcome = Outcome::Blocked { by, reason };
                results[i].trace.clear();
            }
        }
        if still_open.len() == open.len() {
            break;
        }
        open = still_open;
    }
}
