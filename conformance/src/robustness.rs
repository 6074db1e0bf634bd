//! The robustness phase (`--robustness`): thousands of generated malformed requests across
//! every endpoint the server exposes, judged by what no HTTP server may do to a client that
//! sent garbage: answer with a 5xx, never answer, drop the connection, or grow without bound.
//!
//! Inputs come from [`proptest`] strategies driven by one seed, so a run can be replayed
//! exactly (`--robustness-seed`). Each case is one request: an endpoint (the MCP endpoints,
//! the legacy message endpoint with unknown sessions, and every OAuth endpoint discovery and
//! a real login visited), a method, odd headers (content types, session ids, protocol
//! versions, credentials of every shape, bytes outside ASCII), and a body (JSON and form
//! garbage, JSON-RPC with the wrong types, deep nesting, invalid UTF-8, large bodies). A
//! few cases go over a raw socket instead, for framing no HTTP library would send (bad
//! `Content-Length`, broken chunked encoding, malformed header lines).
//!
//! Every request goes over a fresh connection, so a server closing an idle keep-alive
//! connection is never mistaken for a reset.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use url::Url;

use crate::http::ensure_loopback;
use crate::redact::Redactor;

/// What the phase is told to do.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How many requests to generate.
    pub cases: usize,
    /// The seed every input derives from; printed so that a run can be replayed.
    pub seed: u64,
    /// The target's process, when the caller launched it: its memory is read from
    /// `/proc/<pid>/status` before and after.
    pub target_pid: Option<u32>,
    /// How much the target's resident memory may grow over the phase.
    pub memory_limit_mib: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// No new request starts after this long; the report says how many were sent.
    pub budget: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cases: 10_000,
            seed: 0,
            target_pid: None,
            memory_limit_mib: 64,
            concurrency: 8,
            budget: Duration::from_secs(300),
        }
    }
}

/// How an endpoint is meant to be used, which decides what garbage is most telling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Streamable HTTP (`/mcp`): JSON-RPC over POST, a stream over GET, DELETE.
    Mcp,
    /// The legacy SSE endpoint (`GET /sse`).
    Sse,
    /// The legacy message endpoint (`POST /messages/?session_id=...`).
    LegacyPost,
    /// Form-encoded OAuth endpoints: token, revocation, consent submissions.
    Form,
    /// JSON OAuth endpoints: dynamic client registration.
    Json,
    /// Browser-facing endpoints driven by the query string: authorize, callbacks.
    Query,
    /// Metadata documents.
    Document,
}

/// One endpoint the phase sends garbage to.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: Url,
    pub kind: Kind,
}

/// The credentials a case may present: a valid token makes garbage reach the MCP handler
/// instead of stopping at the bearer check.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub access_token: Option<String>,
    pub client_id: Option<String>,
}

/// A class of misbehaviour the phase looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// A 5xx answer to a malformed request.
    ServerError,
    /// No response head within the request timeout.
    Hang,
    /// The connection dropped before a response to a well-framed request.
    Reset,
}

/// One observed misbehaviour.
#[derive(Debug, Clone)]
pub struct Finding {
    pub class: Class,
    /// The case number (0-based) under the run's seed.
    pub case: usize,
    /// The request, redacted and abbreviated.
    pub request: String,
    /// What came back, or what went wrong.
    pub observed: String,
}

/// The outcome of the phase.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub seed: u64,
    pub sent: usize,
    /// How many were generated; fewer are sent when the time budget runs out.
    pub planned: usize,
    pub endpoints: Vec<String>,
    pub findings: Vec<Finding>,
    /// Resident memory of the target before and after, in KiB, when its pid was given.
    pub rss_kib: Option<(u64, u64)>,
    pub memory_limit_mib: u64,
    pub elapsed: Duration,
    /// Counts of answers by status class (`2xx`, `4xx`, ...), for the report.
    pub statuses: std::collections::BTreeMap<String, usize>,
}

impl Campaign {
    pub fn of(&self, class: Class) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.class == class).collect()
    }

    /// One line for notes and evidence: what ran, with the seed to replay it.
    pub fn summary(&self) -> String {
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(k, v)| format!("{v} × {k}"))
            .collect();
        let cut = if self.sent < self.planned {
            format!(
                " (of {} generated: the phase stopped early, at its time budget or after {MAX_HANGS} unanswered requests)",
                self.planned
            )
        } else {
            String::new()
        };
        format!(
            "{} generated requests{cut} to {} endpoints in {:.1} s ({}); seed {} (replay with --robustness --robustness-seed {})",
            self.sent,
            self.endpoints.len(),
            self.elapsed.as_secs_f64(),
            statuses.join(", "),
            self.seed,
            self.seed
        )
    }
}

/// What one case sends.
#[derive(Debug, Clone)]
enum Input {
    Http {
        method: Method,
        url: Url,
        headers: Vec<(String, Vec<u8>)>,
        body: Option<Vec<u8>>,
        /// Large bodies: a server may answer early and close, which is no reset.
        large: bool,
    },
    /// Bytes written to a socket, then the write side closed so that the server sees the
    /// end of the request whatever its framing says.
    Raw { url: Url, bytes: Vec<u8> },
}

impl Input {
    fn describe(&self, redactor: &Redactor) -> String {
        let text = match self {
            Input::Http {
                method,
                url,
                headers,
                body,
                ..
            } => {
                let mut out = format!("{method} {url}");
                for (name, value) in headers {
                    let _ = write!(out, "\n{name}: {}", abbreviate(value, 120));
                }
                if let Some(body) = body {
                    let _ = write!(out, "\n[{} bytes] {}", body.len(), abbreviate(body, 200));
                }
                out
            }
            Input::Raw { url, bytes } => format!(
                "raw bytes to {}:\n{}",
                url.authority(),
                abbreviate(bytes, 300)
            ),
        };
        redactor.redact(&text)
    }
}

/// Printable text for evidence: invalid UTF-8 shown as escapes, long values cut.
fn abbreviate(bytes: &[u8], max: usize) -> String {
    let shown = &bytes[..bytes.len().min(max)];
    let mut out = String::new();
    for chunk in shown.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() && c != '\n' {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    if bytes.len() > max {
        out.push_str(" [...]");
    }
    out
}

/// Runs the phase.
pub async fn run(
    endpoints: Vec<Endpoint>,
    credentials: Credentials,
    settings: &Settings,
    timeout: Duration,
    redactor: Arc<Redactor>,
) -> anyhow::Result<Campaign> {
    anyhow::ensure!(!endpoints.is_empty(), "no endpoint to send requests to");
    for e in &endpoints {
        ensure_loopback(&e.url)?;
    }
    let started = Instant::now();
    // Generating thousands of cases is CPU work: on a blocking thread, so that the checks
    // polled beside this one are not held up meanwhile.
    let inputs = {
        let (endpoints, credentials, settings) =
            (endpoints.clone(), credentials.clone(), settings.clone());
        tokio::task::spawn_blocking(move || generate(&endpoints, &credentials, &settings))
            .await
            .map_err(|e| anyhow::anyhow!("the robustness phase's generator failed: {e}"))??
    };
    // A fresh connection per request: a pooled connection the server closed while idle would
    // otherwise show up as a reset that the server never caused.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_max_idle_per_host(0)
        .connect_timeout(timeout)
        .user_agent(concat!(
            "mcp-auth-conformance/",
            env!("CARGO_PKG_VERSION"),
            " (robustness)"
        ))
        .build()?;
    let rss_before = settings.target_pid.and_then(resident_kib);
    let inputs = Arc::new(inputs);
    // Each unanswered request holds its slot for the whole timeout; past a few dozen of them
    // the verdict is clear and the rest would only take minutes.
    let hangs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hangs_seen = hangs.clone();
    let results: Vec<(usize, Answer)> = futures::stream::iter(0..inputs.len())
        .take_while(|_| {
            std::future::ready(
                started.elapsed() < settings.budget
                    && hangs_seen.load(std::sync::atomic::Ordering::Relaxed) < MAX_HANGS,
            )
        })
        .map(|case| {
            let client = client.clone();
            let inputs = inputs.clone();
            let hangs = hangs.clone();
            async move {
                let answer = send(&client, &inputs[case], timeout).await;
                if matches!(answer, Err((Class::Hang, _))) {
                    hangs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                (case, answer)
            }
        })
        .buffer_unordered(settings.concurrency.max(1))
        .collect()
        .await;
    let rss_after = settings.target_pid.and_then(resident_kib);
    let results_len = results.len();

    let mut findings = Vec::new();
    let mut statuses = std::collections::BTreeMap::new();
    for (case, result) in results {
        match result {
            Ok(NOT_SENT) => {
                *statuses.entry("not sent".to_owned()).or_insert(0) += 1;
            }
            Ok(status) => {
                *statuses.entry(format!("{}xx", status / 100)).or_insert(0) += 1;
                if status >= 500 {
                    findings.push(Finding {
                        class: Class::ServerError,
                        case,
                        request: inputs[case].describe(&redactor),
                        observed: format!("answered {status}"),
                    });
                }
            }
            Err((class, observed)) => {
                *statuses.entry("no answer".to_owned()).or_insert(0) += 1;
                findings.push(Finding {
                    class,
                    case,
                    request: inputs[case].describe(&redactor),
                    observed: redactor.redact(&observed),
                });
            }
        }
    }
    findings.sort_by_key(|f| (f.class, f.case));
    Ok(Campaign {
        seed: settings.seed,
        sent: results_len,
        planned: inputs.len(),
        endpoints: endpoints.iter().map(|e| e.url.to_string()).collect(),
        findings,
        rss_kib: rss_before.zip(rss_after),
        memory_limit_mib: settings.memory_limit_mib,
        elapsed: started.elapsed(),
        statuses,
    })
}

/// After this many unanswered requests the phase stops sending new ones.
const MAX_HANGS: usize = 24;

/// Resident memory of a process, from `/proc/<pid>/status` (`VmRSS`), in KiB.
pub fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The status recorded for a case the client library could not send.
const NOT_SENT: u16 = 0;

/// What one case got: the status, or the class of misbehaviour and what was seen.
type Answer = Result<u16, (Class, String)>;

/// Sends one case and classifies what happened.
async fn send(client: &reqwest::Client, input: &Input, timeout: Duration) -> Answer {
    match input {
        Input::Http {
            method,
            url,
            headers,
            body,
            large,
        } => {
            let mut map = HeaderMap::new();
            for (name, value) in headers {
                // The generators only produce valid names and values; a pair that is not
                // is dropped rather than failing the case.
                if let (Ok(n), Ok(v)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_bytes(value),
                ) {
                    map.append(n, v);
                }
            }
            let mut request = client.request(method.clone(), url.clone()).headers(map);
            if let Some(body) = body {
                request = request.body(body.clone());
            }
            // Only the response head is awaited: a valid GET may open a stream that never
            // ends, and that is no hang.
            match tokio::time::timeout(timeout, request.send()).await {
                Err(_) => Err((Class::Hang, format!("no response head within {timeout:?}"))),
                Ok(Ok(response)) => Ok(response.status().as_u16()),
                Ok(Err(e)) if e.is_timeout() => Err((Class::Hang, format!("{e}"))),
                // The client library refused to build the request: nothing reached the
                // server, so there is nothing to judge.
                Ok(Err(e)) if e.is_builder() => Ok(NOT_SENT),
                // A server may answer a large body early and close the connection while the
                // client is still sending (RFC 9112 §9.6): the client then sees the write fail.
                Ok(Err(_)) if *large => Ok(413),
                Ok(Err(e)) => Err((Class::Reset, error_chain(&e))),
            }
        }
        Input::Raw { url, bytes } => raw_exchange(url, bytes, timeout).await,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(out, ": {s}");
        source = s.source();
    }
    out
}

/// Writes raw bytes, closes the write side and reads until the server answers or closes.
/// Closing without an answer is allowed for malformed framing; silence is not.
async fn raw_exchange(url: &Url, bytes: &[u8], timeout: Duration) -> Answer {
    let addr = url
        .socket_addrs(|| None)
        .ok()
        .and_then(|a| a.into_iter().next())
        .ok_or((Class::Reset, format!("cannot resolve {url}")))?;
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        // The server may close as soon as it sees bad framing, before all bytes are written.
        let _ = stream.write_all(bytes).await;
        let _ = stream.shutdown().await;
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    head.extend_from_slice(&buf[..n]);
                    if head.len() >= 12 {
                        break;
                    }
                }
            }
        }
        Ok::<_, std::io::Error>(head)
    };
    match tokio::time::timeout(timeout, work).await {
        Err(_) => Err((
            Class::Hang,
            format!("neither an answer nor a close within {timeout:?} after the request ended"),
        )),
        Ok(Err(e)) => Err((Class::Reset, format!("cannot connect: {e}"))),
        Ok(Ok(head)) => {
            let status = std::str::from_utf8(&head)
                .ok()
                .and_then(|h| h.strip_prefix("HTTP/1.1 ").or(h.strip_prefix("HTTP/1.0 ")))
                .and_then(|rest| rest.get(..3))
                .and_then(|code| code.parse().ok());
            // A close without an answer is the usual reaction to broken framing; it counts
            // as a 4xx-class refusal.
            Ok(status.unwrap_or(400))
        }
    }
}

/// Every case, in order, from the seed.
fn generate(
    endpoints: &[Endpoint],
    credentials: &Credentials,
    settings: &Settings,
) -> anyhow::Result<Vec<Input>> {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&settings.seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
    let mut runner = TestRunner::new_with_rng(RunnerConfig::default(), rng);
    let strategy = case_strategy(endpoints.to_vec(), credentials.clone());
    let mut out = Vec::with_capacity(settings.cases);
    for _ in 0..settings.cases {
        let tree = strategy
            .new_tree(&mut runner)
            .map_err(|e| anyhow::anyhow!("generating a case: {e}"))?;
        out.push(tree.current());
    }
    Ok(out)
}

/// The longest query string a case sends.
const MAX_QUERY: usize = 8 * 1024;

/// Known OAuth parameter names: garbage under a real name reaches real code paths.
const OAUTH_KEYS: &[&str] = &[
    "grant_type",
    "code",
    "redirect_uri",
    "client_id",
    "client_secret",
    "code_verifier",
    "code_challenge",
    "code_challenge_method",
    "refresh_token",
    "resource",
    "scope",
    "state",
    "token",
    "token_type_hint",
    "response_type",
    "csrf",
    "decision",
];

const METHODS: &[&str] = &[
    "initialize",
    "notifications/initialized",
    "tools/list",
    "tools/call",
    "ping",
    "resources/list",
    "prompts/get",
    "server/discover",
    "notifications/cancelled",
    "logging/setLevel",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_./:+-]{0,24}",
        2 => ".{0,24}",
        1 => Just(String::new()),
        1 => (1usize..20_000).prop_map(|n| "x".repeat(n)),
        1 => Just("%zz%00%ff%".to_owned()),
        1 => Just("\u{202e}\u{0}\u{1b}[31m".to_owned()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map("[a-zA-Z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON-RPC-shaped messages with each member possibly missing or of the wrong type.
fn jsonrpc_message() -> impl Strategy<Value = Value> {
    let version = prop_oneof![
        Just(Some(json!("2.0"))),
        Just(Some(json!("1.0"))),
        Just(Some(json!(2))),
        Just(None),
    ];
    let id = prop_oneof![
        3 => any::<i32>().prop_map(|n| Some(json!(n))),
        1 => text().prop_map(|s| Some(json!(s))),
        1 => Just(Some(Value::Null)),
        1 => Just(Some(json!({"nested": true}))),
        1 => Just(None),
    ];
    let method = prop_oneof![
        4 => proptest::sample::select(METHODS).prop_map(|m| Some(json!(m))),
        1 => text().prop_map(|s| Some(json!(s))),
        1 => Just(Some(json!(42))),
        1 => Just(None),
    ];
    let params = prop_oneof![
        2 => json_value().prop_map(Some),
        2 => Just(Some(json!({"name": "get_user_profile", "arguments": {}}))),
        1 => json_value().prop_map(|a| Some(json!({"name": "get_user_profile", "arguments": a}))),
        1 => json_value().prop_map(|c| Some(json!({"cursor": c}))),
        1 => json_value().prop_map(|v| Some(json!({"protocolVersion": v, "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}))),
        1 => Just(None),
    ];
    let extra = prop_oneof![
        3 => Just(None),
        1 => json_value().prop_map(|v| Some(("result", v))),
        1 => json_value().prop_map(|v| Some(("error", v))),
    ];
    (version, id, method, params, extra).prop_map(|(version, id, method, params, extra)| {
        let mut m = serde_json::Map::new();
        let fields = [
            ("jsonrpc", version),
            ("id", id),
            ("method", method),
            ("params", params),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        }
        if let Some((k, v)) = extra {
            m.insert(k.to_owned(), v);
        }
        Value::Object(m)
    })
}

/// Form and query strings: known keys with odd values, unknown keys, repeats, and
/// percent-encoding that does not decode.
fn form_pairs() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        3 => proptest::sample::select(OAUTH_KEYS).prop_map(str::to_owned),
        1 => text(),
    ];
    let pairs = vec((key, text()), 0..8).prop_map(|pairs| {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into_bytes()
    });
    prop_oneof![
        4 => pairs,
        1 => Just(b"a=%zz&=&&==&b=%".to_vec()),
        1 => vec(any::<u8>(), 0..256),
    ]
}

/// The bodies worth sending to an endpoint of this kind.
fn body(kind: Kind) -> BoxedStrategy<(Option<Vec<u8>>, &'static str, bool)> {
    let json_body = json_value().prop_map(|v| (Some(v.to_string().into_bytes()), "json", false));
    let rpc = prop_oneof![
        3 => jsonrpc_message().prop_map(|m| m.to_string().into_bytes()),
        1 => vec(jsonrpc_message(), 0..5).prop_map(|b| Value::Array(b).to_string().into_bytes()),
    ]
    .prop_map(|b| (Some(b), "json", false));
    let bytes = vec(any::<u8>(), 0..1024).prop_map(|b| (Some(b), "bytes", false));
    let invalid_utf8 = text().prop_map(|t| {
        let mut b = format!("{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"{t}").into_bytes();
        b.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28, b'"', b'}']);
        (Some(b), "json", false)
    });
    let deep = (1usize..100_000, any::<bool>()).prop_map(|(depth, arrays)| {
        let (open, close) = if arrays { ("[", "]") } else { ("{\"a\":", "}") };
        let mut s = open.repeat(depth);
        s.push('1');
        s.push_str(&close.repeat(depth));
        (Some(s.into_bytes()), "json", depth > 10_000)
    });
    let large = (1usize..=3).prop_map(|mib| {
        let mut b = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"pad\":\"".to_vec();
        b.resize(mib << 20, b'a');
        b.extend_from_slice(b"\"}");
        (Some(b), "json", true)
    });
    let form = form_pairs().prop_map(|b| (Some(b), "form", false));
    // A registration that is valid but enormous: a server that keeps whatever it is sent
    // shows up in the memory verdict.
    let huge_registration = (1usize..2_000).prop_map(|n| {
        let uris: Vec<String> = (0..n)
            .map(|i| format!("http://127.0.0.1:9/{}/{i}", "p".repeat(200)))
            .collect();
        let doc = json!({"redirect_uris": uris, "client_name": "x".repeat(n * 10),
            "token_endpoint_auth_method": "none"});
        (Some(doc.to_string().into_bytes()), "json", n > 1_000)
    });
    let none = Just((None, "none", false));
    match kind {
        Kind::Mcp | Kind::LegacyPost => prop_oneof![
            8 => rpc, 2 => json_body, 2 => bytes, 2 => invalid_utf8, 2 => deep, 1 => large,
            1 => form, 1 => none,
        ]
        .boxed(),
        Kind::Form => prop_oneof![
            8 => form, 2 => json_body, 2 => bytes, 1 => invalid_utf8, 1 => large, 1 => none,
        ]
        .boxed(),
        Kind::Json => prop_oneof![
            4 => json_body, 3 => huge_registration, 2 => bytes, 2 => invalid_utf8, 2 => deep,
            1 => large, 1 => form, 1 => none,
        ]
        .boxed(),
        Kind::Sse | Kind::Query | Kind::Document => prop_oneof![
            6 => none, 2 => form, 1 => bytes, 1 => json_body,
        ]
        .boxed(),
    }
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    // Visible ASCII, tab and bytes above 0x7f are what HTTP/1.1 field values may carry.
    let byte = prop_oneof![8 => 0x20u8..0x7f, 1 => Just(b'\t'), 1 => 0x80u8..=0xff];
    prop_oneof![
        6 => vec(byte, 0..64),
        1 => (1usize..16_000).prop_map(|n| vec![b'a'; n]),
    ]
}

fn content_type(body_kind: &'static str) -> impl Strategy<Value = Option<Vec<u8>>> {
    let fitting = match body_kind {
        "form" => "application/x-www-form-urlencoded",
        _ => "application/json",
    };
    prop_oneof![
        6 => Just(Some(fitting.as_bytes().to_vec())),
        1 => Just(Some(b"application/json; charset=latin1".to_vec())),
        1 => Just(Some(b"text/plain".to_vec())),
        1 => Just(Some(b"multipart/form-data; boundary=".to_vec())),
        1 => header_value().prop_map(Some),
        1 => Just(None),
    ]
}

fn case_strategy(endpoints: Vec<Endpoint>, credentials: Credentials) -> BoxedStrategy<Input> {
    let token = credentials.access_token.clone();
    let client_id = credentials.client_id.clone();
    let authorization = prop_oneof![
        3 => Just(token.clone().map(|t| format!("Bearer {t}").into_bytes())),
        2 => Just(None),
        1 => header_value().prop_map(|v| {
            let mut b = b"Bearer ".to_vec();
            b.extend(v);
            Some(b)
        }),
        1 => Just(Some(b"Bearer".to_vec())),
        1 => Just(Some(b"Basic !!!not-base64".to_vec())),
        1 => Just(Some(b"Basic Og==".to_vec())),
        1 => header_value().prop_map(Some),
        1 => Just(token.clone().map(|t| format!("bearer  {t} extra").into_bytes())),
        1 => Just(token.clone().map(|t| format!("DPoP {t}").into_bytes())),
    ];
    let session = prop_oneof![
        3 => Just(None),
        2 => "[0-9a-f]{32}".prop_map(|s| Some(s.into_bytes())),
        1 => header_value().prop_map(Some),
    ];
    let protocol_version = prop_oneof![
        3 => Just(None),
        2 => proptest::sample::select(&["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"][..])
            .prop_map(|v| Some(v.as_bytes().to_vec())),
        1 => header_value().prop_map(Some),
    ];
    let accept = prop_oneof![
        3 => Just(Some(b"application/json, text/event-stream".to_vec())),
        1 => Just(Some(b"text/event-stream".to_vec())),
        1 => Just(Some(b"application/json".to_vec())),
        1 => Just(Some(b"*/*".to_vec())),
        1 => header_value().prop_map(Some),
        1 => Just(None),
    ];
    let odd = vec(
        (
            proptest::sample::select(
                &[
                    "origin",
                    "cookie",
                    "last-event-id",
                    "mcp-method",
                    "mcp-name",
                    "x-forwarded-for",
                    "x-forwarded-host",
                    "referer",
                    "content-encoding",
                    "if-none-match",
                    "x-odd",
                ][..],
            ),
            header_value(),
        ),
        0..3,
    );
    let method = prop_oneof![
        4 => Just(Method::POST),
        3 => Just(Method::GET),
        1 => Just(Method::DELETE),
        1 => Just(Method::PUT),
        1 => Just(Method::PATCH),
        1 => Just(Method::OPTIONS),
        1 => Just(Method::HEAD),
        1 => "[A-Z]{3,10}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap_or(Method::TRACE)),
    ];
    let query = prop_oneof![3 => Just(None), 2 => form_pairs().prop_map(Some)];
    let endpoint = proptest::sample::select(endpoints.clone());
    let http = (
        endpoint,
        method,
        query,
        authorization,
        session,
        protocol_version,
        accept,
        odd,
    )
        .prop_flat_map(
            move |(endpoint, method, query, authorization, session, version, accept, odd)| {
                let client_id = client_id.clone();
                body(endpoint.kind).prop_flat_map(move |(body, body_kind, large)| {
                    let endpoint = endpoint.clone();
                    let method = method.clone();
                    let query = query.clone();
                    let authorization = authorization.clone();
                    let session = session.clone();
                    let version = version.clone();
                    let accept = accept.clone();
                    let odd = odd.clone();
                    let client_id = client_id.clone();
                    content_type(body_kind).prop_map(move |content_type| {
                        let mut url = endpoint.url.clone();
                        if let Some(q) = &query {
                            let mut q = String::from_utf8_lossy(q).into_owned();
                            // Long enough to be odd, short enough for every HTTP library to
                            // send (servers may refuse longer targets with 414).
                            if q.len() > MAX_QUERY {
                                let mut end = MAX_QUERY;
                                while !q.is_char_boundary(end) {
                                    end -= 1;
                                }
                                q.truncate(end);
                            }
                            // Keep the legacy endpoint's session parameter (an unknown session is
                            // part of what is probed) and a real client id half of the time, so
                            // that garbage reaches code past the first lookup.
                            if let (Kind::Query, Some(id)) = (endpoint.kind, &client_id)
                                && q.len().is_multiple_of(2)
                            {
                                q.push_str("&client_id=");
                                q.push_str(id);
                            }
                            let joined = match url.query() {
                                Some(existing) => format!("{existing}&{q}"),
                                None => q,
                            };
                            url.set_query(Some(&joined));
                        }
                        let mut headers = Vec::new();
                        let fields = [
                            ("authorization", authorization.clone()),
                            ("mcp-session-id", session.clone()),
                            ("mcp-protocol-version", version.clone()),
                            ("accept", accept.clone()),
                            ("content-type", content_type.clone()),
                        ];
                        for (name, value) in fields {
                            if let Some(v) = value {
                                headers.push((name.to_owned(), v));
                            }
                        }
                        headers.extend(odd.iter().map(|(n, v)| ((*n).to_owned(), v.clone())));
                        Input::Http {
                            method: method.clone(),
                            url,
                            headers,
                            body: body.clone(),
                            large,
                        }
                    })
                })
            },
        );
    let raw = (proptest::sample::select(endpoints), 0usize..6, text()).prop_map(
        |(endpoint, shape, garbage)| Input::Raw {
            bytes: raw_request(&endpoint.url, shape, &garbage),
            url: endpoint.url,
        },
    );
    prop_oneof![19 => http, 1 => raw].boxed()
}

/// A request with framing no HTTP library would produce. The write side is closed after
/// it, so every shape ends: the server must answer or close, never wait.
fn raw_request(url: &Url, shape: usize, garbage: &str) -> Vec<u8> {
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let host = url.authority();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let text = match shape {
        // Content-Length that is not a number.
        0 => format!(
            "POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {garbage}x\r\n\r\n{body}"
        ),
        // Two Content-Length headers that disagree (RFC 9112 §6.3: an error).
        1 => format!(
            "POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nContent-Length: 3\r\n\r\n{body}",
            body.len()
        ),
        // A chunk size that is not hexadecimal.
        2 => format!(
            "POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{body}\r\n0\r\n\r\n"
        ),
        // A header line without a colon.
        3 => format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{garbage} no colon here\r\n\r\n"),
        // A request line that is not one.
        4 => format!("{garbage} {target} HTTP/9.9 extra\r\nHost: {host}\r\n\r\n"),
        // A body shorter than announced, then the end of the connection.
        _ => format!(
            "POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len() + 100
        ),
    };
    text.into_bytes()
}
