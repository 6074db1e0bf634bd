//! LIFE: the initialize handshake, version negotiation and ping.

use serde_json::{Value, json};

use super::{BOTH, Check, Ctx, Findings, LoginOptions, SHTTP, Verdict};
use crate::body;
use crate::config::Transport;
use crate::http::streamable::{Shttp, initialize_params};
use crate::version::{Version, Versions};

pub fn checks() -> Vec<Check> {
    vec![
        Check::new("LIFE-01", BOTH, body!(initialize_comes_first)),
        Check::new("LIFE-02", BOTH, body!(initialize_result_shape)).also(&["TOOLS-01"]),
        Check::new("LIFE-03", BOTH, body!(version_negotiation)),
        Check::new("LIFE-05", BOTH, body!(ping_before_initialized)),
        // The suite's SSE sessions negotiate 2024-11-05, where the rule is a SHOULD.
        Check::new(
            "LIFE-06",
            SHTTP,
            body!(undeclared_capability_is_method_not_found),
        )
        .also(&["RPC-08"]),
        Check::new("LIFE-07", BOTH, body!(ping_answers_empty)).also(&["LIFE-05", "RPC-02"]),
        Check::new(
            "LIFE-04",
            SHTTP,
            body!(no_server_requests_before_initialized),
        )
        .versions(Versions::range(Version::V2025_03_26, Version::V2025_11_25)),
    ]
}

async fn initialize_comes_first(cx: Ctx) -> anyhow::Result<Verdict> {
    // A fresh login, so the token has opened no session the server could reach for.
    let login = cx.login(LoginOptions::default()).await?;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let mut f = Findings::new(&cx);
    match cx.transport() {
        Transport::StreamableHttp => {
            let c = Shttp::new(
                cx.http().clone(),
                cx.mcp_url(),
                Some(login.access_token().to_owned()),
            );
            let reply = c.post(&list).await?;
            let ex = &reply.exchange;
            f.require(
                ex.status == 400,
                format!(
                    "tools/list before initialize, without a session, answered {}",
                    ex.status
                ),
                Some(ex),
            );
            f.require(
                reply
                    .response(&json!(1))
                    .is_none_or(|r| r.get("result").is_none()),
                "tools/list before initialize got a result",
                Some(ex),
            );
        }
        Transport::Sse => {
            let mut s = cx.open_sse(Some(login.access_token())).await?;
            let ex = s.post(&list).await?;
            if (400..500).contains(&ex.status) {
                f.note(format!("the POST was refused with {}", ex.status));
                return Ok(f.verdict());
            }
            match s.wait_response(&json!(1), cx.http().timeout).await {
                Some(r) if r.get("error").is_some() => f.note(format!(
                    "answered with error code {}",
                    r.pointer("/error/code").cloned().unwrap_or_default()
                )),
                Some(r) => {
                    f.require(
                        false,
                        format!("tools/list before initialize got a result: {r}"),
                        Some(&ex),
                    );
                }
                None => {
                    f.require(
                        false,
                        format!(
                            "tools/list before initialize answered {} and no error came on the stream",
                            ex.status
                        ),
                        Some(&ex),
                    );
                }
            }
        }
    }
    Ok(f.verdict())
}

async fn initialize_result_shape(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (_, result) = cx.connect(Some(login.access_token())).await?;
    cx.record(
        "initialize result",
        crate::snapshot::normalize_json(cx.config(), &result),
    );
    let mut f = Findings::new(&cx);
    f.require(
        result.get("protocolVersion").is_some_and(Value::is_string),
        "protocolVersion is missing",
        None,
    );
    f.require(
        result.get("capabilities").is_some_and(Value::is_object),
        "capabilities is missing",
        None,
    );
    let info = result.get("serverInfo");
    f.require(
        info.and_then(|i| i.get("name"))
            .is_some_and(Value::is_string)
            && info
                .and_then(|i| i.get("version"))
                .is_some_and(Value::is_string),
        "serverInfo lacks name or version",
        None,
    );
    f.require(
        result
            .pointer("/capabilities/tools")
            .is_some_and(Value::is_object),
        "capabilities.tools is missing though the server has tools (TOOLS-01)",
        None,
    );
    Ok(f.verdict())
}

async fn version_negotiation(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let mut answers = Vec::new();
    for requested in Version::ALL
        .iter()
        .map(|v| v.as_str())
        .chain(["1999-01-01"])
    {
        // Opening the connection is not under test here: a failure there blocks the check.
        let (exchange, response) = match cx.transport() {
            Transport::StreamableHttp => {
                let c = Shttp::new(
                    cx.http().clone(),
                    cx.mcp_url(),
                    Some(login.access_token().to_owned()),
                );
                let id = c.next_id();
                let reply = c.post(&json!({"jsonrpc":"2.0","id":id,"method":"initialize","params":initialize_params(requested)})).await?;
                let response = reply.response(&id).cloned();
                (reply.exchange, response)
            }
            Transport::Sse => {
                let mut s = cx.open_sse(Some(login.access_token())).await?;
                let id = s.next_id();
                let message = json!({"jsonrpc":"2.0","id":id,"method":"initialize","params":initialize_params(requested)});
                let exchange = s.post(&message).await?;
                let response = s.wait_response(&id, cx.http().timeout).await;
                (exchange, response)
            }
        };
        let error_code = response
            .as_ref()
            .and_then(|r| r.pointer("/error/code"))
            .and_then(Value::as_i64);
        let answer = response
            .as_ref()
            .and_then(|r| r.pointer("/result/protocolVersion"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                format!(
                    "HTTP {} {}",
                    exchange.status,
                    response.map(|r| r.to_string()).unwrap_or_default()
                )
            });
        answers.push((requested, answer, error_code));
    }
    // A version that does not exist cannot be supported, however the server answers it.
    let real = |v: &str| Version::ALL.iter().any(|known| known.as_str() == v);
    let supported: Vec<String> = answers
        .iter()
        .filter_map(|(req, ans, _)| ans.as_ref().ok().filter(|a| a.as_str() == *req).cloned())
        .filter(|v| real(v))
        .collect();
    let mut f = Findings::new(&cx);
    for (requested, answer, error_code) in &answers {
        match answer {
            Ok(got) if got == requested && !real(requested) => {
                f.require(
                    false,
                    format!("requesting {requested}, which is no MCP version, got it echoed"),
                    None,
                );
            }
            Ok(got) if got == requested => {}
            Ok(got) => {
                f.require(
                    supported.contains(got),
                    format!("requesting {requested} got {got}, which the server does not echo when asked for it"),
                    None,
                );
            }
            // 2026-07-28 has no initialize; a server may refuse it (SHTTP5-23).
            Err(_) if *requested == "2026-07-28" => {}
            // The lifecycle page's own error-handling example answers an unsupported
            // version with -32602 "Unsupported protocol version"; it contradicts the MUST
            // to offer another version, so it is reported, not failed.
            Err(e) if *error_code == Some(-32602) && !supported.iter().any(|v| v == requested) => {
                f.prefer(
                    false,
                    format!(
                        "requesting {requested} got the -32602 error of the specification's \
                         example instead of a version the server supports: {}",
                        cx.redact(e)
                    ),
                    None,
                );
            }
            Err(e) => {
                f.require(
                    false,
                    format!(
                        "requesting {requested} failed instead of negotiating: {}",
                        cx.redact(e)
                    ),
                    None,
                );
            }
        }
    }
    f.note(format!("versions echoed: {}", supported.join(", ")));
    Ok(f.verdict())
}

async fn ping_answers_empty(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let mut f = Findings::new(&cx);
    for id in [json!("p1"), json!(7)] {
        let (ex, response) = conn
            .send_raw(&json!({"jsonrpc": "2.0", "id": id, "method": "ping"}))
            .await?;
        match response {
            Some(r) => {
                f.require(
                    r.get("id") == Some(&id),
                    format!(
                        "ping id {id} came back as {}",
                        super::shown_json(r.get("id"))
                    ),
                    Some(&ex),
                );
                f.require(
                    r.get("jsonrpc") == Some(&json!("2.0")),
                    "the response lacks jsonrpc: 2.0",
                    Some(&ex),
                );
                let empty = r
                    .get("result")
                    .and_then(Value::as_object)
                    .is_some_and(|m| m.keys().all(|k| k == "_meta"));
                f.require(
                    empty && r.get("error").is_none(),
                    format!("ping answered {r}"),
                    Some(&ex),
                );
            }
            None => {
                f.require(false, format!("no response to ping id {id}"), Some(&ex));
            }
        }
    }
    Ok(f.verdict())
}

/// LIFE-05: "The client SHOULD NOT send requests other than pings before the server has
/// responded to the `initialize` request", so a ping is the one request a client may send
/// at any point of the handshake; the server answers it like any ping (LIFE-07). The ping
/// goes after the `initialize` response and before `notifications/initialized`.
async fn ping_before_initialized(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let version = cx.protocol_version();
    let ping = json!({"jsonrpc": "2.0", "id": "early-ping", "method": "ping"});
    let (ex, response) = match cx.transport() {
        Transport::StreamableHttp => {
            let mut c = Shttp::new(
                cx.http().clone(),
                cx.mcp_url(),
                Some(login.access_token().to_owned()),
            );
            c.initialize_request(version.as_str())
                .await
                .map_err(|e| super::needs(super::prerequisite::INITIALIZE, e))?;
            let reply = c.post(&ping).await?;
            let response = reply
                .response(&json!("early-ping"))
                .cloned()
                .or_else(|| reply.exchange.json());
            (reply.exchange, response)
        }
        Transport::Sse => {
            let mut s = cx.open_sse(Some(login.access_token())).await?;
            s.call("initialize", initialize_params(version.as_str()))
                .await
                .map_err(|e| super::needs(super::prerequisite::INITIALIZE, e))?;
            let ex = s.post(&ping).await?;
            let response = if (200..300).contains(&ex.status) {
                s.wait_response(&json!("early-ping"), cx.http().timeout)
                    .await
            } else {
                ex.json()
            };
            (ex, response)
        }
    };
    let mut f = Findings::new(&cx);
    let empty = response
        .as_ref()
        .and_then(|r| r.get("result"))
        .and_then(Value::as_object)
        .is_some_and(|m| m.keys().all(|k| k == "_meta"));
    f.require(
        empty,
        format!(
            "a ping before notifications/initialized answered {} with {}",
            ex.status,
            response.map_or("no response".into(), |r| r.to_string())
        ),
        Some(&ex),
    );
    Ok(f.verdict())
}

/// The list methods of the server capabilities a server may leave undeclared.
const CAPABILITY_METHODS: &[(&str, &str)] = &[
    ("prompts", "prompts/list"),
    ("resources", "resources/list"),
    ("completions", "completion/complete"),
];

/// LIFE-06: "Both parties MUST: Respect the negotiated protocol version; Only use
/// capabilities that were successfully negotiated" (2025-06-18, Lifecycle § Operation).
/// A server that answers a method of a capability it did not declare acts on an
/// unnegotiated capability; the code for the refusal is -32601, "a client invokes a
/// method the server does not implement — either a genuinely unknown method, or one
/// gated behind a server capability the server did not advertise" (2026-07-28 schema).
async fn undeclared_capability_is_method_not_found(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, init) = cx.connect(Some(login.access_token())).await?;
    let negotiated = super::negotiated_version(&init);
    if negotiated.as_str() < Version::V2025_06_18.as_str() {
        return Ok(Verdict::Skip(format!(
            "the session negotiated {negotiated}; the MUST is from 2025-06-18"
        )));
    }
    let undeclared: Vec<(&str, &str)> = CAPABILITY_METHODS
        .iter()
        .copied()
        .filter(|(capability, _)| {
            init.pointer(&format!("/capabilities/{capability}"))
                .is_none()
        })
        .collect();
    if undeclared.is_empty() {
        return Ok(Verdict::Skip(
            "the server declares prompts, resources and completions".into(),
        ));
    }
    let mut f = Findings::new(&cx);
    for (i, (capability, method)) in undeclared.iter().enumerate() {
        let params = if *method == "completion/complete" {
            json!({"ref": {"type": "ref/prompt", "name": "conformance"}, "argument": {"name": "a", "value": ""}})
        } else {
            json!({})
        };
        let (ex, response) = conn
            .send_raw(&json!({"jsonrpc": "2.0", "id": 40 + i, "method": method, "params": params}))
            .await?;
        let code = response
            .as_ref()
            .and_then(|r| r.pointer("/error/code"))
            .and_then(Value::as_i64);
        f.require(
            code == Some(-32601),
            format!(
                "{method}, without the {capability} capability, got {}",
                match (&response, code) {
                    (_, Some(code)) => format!("code {code}, not -32601"),
                    (Some(r), None) if r.get("result").is_some() => "a result".to_owned(),
                    _ => format!("HTTP {} and no JSON-RPC error", ex.status),
                }
            ),
            Some(&ex),
        );
    }
    f.note(format!(
        "undeclared: {}",
        undeclared
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(f.verdict())
}

/// "The server SHOULD NOT send requests other than pings and logging before receiving
/// the `initialized` notification." (Lifecycle § Initialization). The `initialize`
/// request's own answer is the one place a Streamable HTTP server can speak before that
/// notification, so its stream is read whole and every request on it judged.
async fn no_server_requests_before_initialized(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let version = cx.protocol_version();
    let mut c = Shttp::new(
        cx.http().clone(),
        cx.mcp_url(),
        Some(login.access_token().to_owned()),
    );
    let (reply, _) = c
        .initialize_request(version.as_str())
        .await
        .map_err(|e| super::needs(super::prerequisite::INITIALIZE, e))?;
    let mut f = Findings::new(&cx);
    for message in &reply.messages {
        let method = message.get("method").and_then(Value::as_str);
        let is_request = message.get("id").is_some() && method.is_some();
        // "pings and logging": ping itself, and a logging request has no method of its
        // own in any version, so only ping is a request the sentence allows.
        f.require(
            !is_request || method == Some("ping"),
            format!(
                "the initialize answer carried the server request {} before notifications/initialized",
                method.unwrap_or_default()
            ),
            Some(&reply.exchange),
        );
    }
    Ok(f.verdict())
}
