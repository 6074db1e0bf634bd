//! # mcp-auth-conformance
//!
//! A black-box conformance suite for MCP servers reached over HTTP that protect themselves with
//! OAuth 2.1, act as their own authorization server, and send the user to GitHub to log in
//! (the MCP "third-party authorization" shape). It speaks both HTTP transports: legacy HTTP+SSE
//! (`GET /sse` + the POST endpoint it announces) and Streamable HTTP (`/mcp`).
//!
//! Every check is named after a requirement in `shared/spec/CHECKLIST.md` (`AUTH-FLOW-04`,
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
//! It prints a line per check as it finishes, a summary by area and level, and a closing line
//! `N passed, N failed, N warned, N skipped in T s`. The exit status is 0 when no MUST check
//! failed outside the baseline and no baseline entry is stale, 1 otherwise, 2 on usage errors.
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
//! - [`checks`]: one module per CHECKLIST area; [`checks::Ctx`] is what a check can use.
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
pub mod oauth;
pub mod preflight;
pub mod redact;
pub mod report;
pub mod robustness;
pub mod schema;
pub mod snapshot;
pub mod version;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt as _;

pub use config::{SuiteConfig, Transport};
pub use report::Report;
pub use version::Version;

use checks::{Check, Ctx, Scope, Shared, Verdict};
use http::{Http, Req};
use mock::MockAdmin;
use redact::Redactor;
use report::{CheckResult, Outcome, transport_label};

/// A check scheduled on one transport (or on the authorization server).
#[derive(Clone, Copy)]
pub struct Planned {
    pub check: Check,
    pub transport: Option<Transport>,
}

/// The checks a configuration selects, in catalogue order.
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
            }),
            Scope::Transports(ts) => {
                for t in &config.transports {
                    if ts.contains(t) {
                        out.push(Planned {
                            check,
                            transport: Some(*t),
                        });
                    }
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

/// Runs the selected checks and returns the report (without a baseline applied).
pub async fn run(config: SuiteConfig) -> anyhow::Result<Report> {
    let started = Instant::now();
    let redactor = Arc::new(Redactor::default());
    let http = Http::new(config.request_timeout, redactor)?;
    let mock = MockAdmin {
        http: http.clone(),
        base: config.mock_github.clone(),
    };

    // Discovery once per transport; checks reuse it.
    let mut discovery = BTreeMap::new();
    let found = futures::future::join_all(config.transports.iter().map(|t| {
        let http = http.clone();
        let url = config.endpoint(*t);
        let cx_version = config.streamable_version;
        let t = *t;
        async move {
            let probe = match t {
                Transport::StreamableHttp => Req::post(url.clone())
                    .header("Accept", http::streamable::ACCEPT_BOTH)
                    .json(&serde_json::json!({
                        "jsonrpc": "2.0", "id": 1, "method": "initialize",
                        "params": http::streamable::initialize_params(cx_version.as_str())
                    })),
                Transport::Sse => Req::get(url.clone()).header("Accept", "text/event-stream"),
            };
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
    });

    let planned = plan(&config);
    let jobs = config.jobs.max(1);
    let mut results: Vec<(usize, CheckResult)> =
        futures::stream::iter(planned.into_iter().enumerate())
            .map(|(i, p)| {
                let cx = Ctx {
                    shared: shared.clone(),
                    transport: p.transport,
                };
                // The robustness campaign is one long phase shared by its checks.
                let timeout = match (&config.robustness, p.check.area()) {
                    (Some(r), "ROBUST") => config.check_timeout + r.budget,
                    _ => config.check_timeout,
                };
                let progress = config.progress.clone();
                async move {
                    let t0 = Instant::now();
                    let verdict = tokio::time::timeout(timeout, (p.check.run)(cx.clone())).await;
                    let outcome = match verdict {
                        Err(_) => Outcome::Fail(checks::Evidence {
                            message: format!("the check did not finish within {timeout:?}"),
                            exchanges: Vec::new(),
                        }),
                        Ok(Err(e)) => Outcome::Skip {
                            reason: cx.redact(&format!("blocked: {e:#}")),
                        },
                        Ok(Ok(v)) => match v {
                            Verdict::Pass(note) => Outcome::Pass { note },
                            Verdict::Violation(e) if p.check.level == checks::Level::Must => {
                                Outcome::Fail(e)
                            }
                            Verdict::Violation(e) | Verdict::Warn(e) => Outcome::Warn(e),
                            Verdict::Skip(reason) => Outcome::Skip { reason },
                        },
                    };
                    let result = CheckResult {
                        key: p.check.key(),
                        id: p.check.id,
                        also: p.check.also.to_vec(),
                        area: p.check.area(),
                        level: p.check.level,
                        versions: p.check.versions.to_string(),
                        transport: transport_label(p.transport),
                        title: p.check.title,
                        outcome,
                        baseline: None,
                        duration_ms: t0.elapsed().as_millis() as u64,
                    };
                    if let Some(progress) = progress {
                        progress(&result);
                    }
                    (i, result)
                }
            })
            .buffer_unordered(jobs)
            .collect()
            .await;
    results.sort_by_key(|(i, _)| *i);

    let report = Report {
        target: config.url.to_string(),
        transports: config.transports.clone(),
        wall_time_ms: started.elapsed().as_millis() as u64,
        results: results.into_iter().map(|(_, r)| r).collect(),
        transcript: shared.transcript.clone(),
    };
    Ok(report)
}
