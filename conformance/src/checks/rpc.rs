//! RPC: JSON-RPC error handling: parse errors, invalid requests, unknown methods, invalid params.

use serde_json::{Value, json};

use super::{BOTH, Check, Ctx, Findings, LoginOptions, Verdict};
use crate::body;
use crate::client::McpConn;
use crate::http::Exchange;
use crate::version::Versions;

pub fn checks() -> Vec<Check> {
    vec![
        Check::new("RPC-01", BOTH, body!(messages_are_jsonrpc)),
        Check::new("RPC-02", BOTH, body!(ids_keep_their_type)).also(&["RPC-01"]),
        Check::new("RPC-03", BOTH, body!(error_codes_are_integers)),
        Check::new("RPC-10", BOTH, body!(tool_failure_is_reported_cleanly)),
        // The rule binds whoever sends the request; what a server does with a null id
        // is derived from it, so a violation warns.
        Check::new("RPC-05", BOTH, body!(null_id_is_an_error)),
        Check::new("RPC-06", BOTH, body!(parse_error)),
        Check::new("RPC-07", BOTH, body!(invalid_request)),
        Check::new("RPC-08", BOTH, body!(method_not_found)),
        Check::new("RPC-09", BOTH, body!(invalid_params)).also(&["TOOLS-10"]),
        Check::new("RPC-04", BOTH, body!(notifications_get_no_response)).versions(Versions::ALL),
        Check::new("RPC-11", BOTH, body!(no_codes_from_the_legacy_range)),
    ]
}

/// What a response was, for messages: its error code, a result, or nothing.
fn describe_answer(response: &Option<Value>) -> String {
    match response {
        None => "no response".into(),
        Some(r) => match r.pointer("/error/code") {
            Some(code) => format!("code {code}"),
            None if r.get("result").is_some() => "a result".into(),
            None => "an answer that is neither result nor error".into(),
        },
    }
}

fn error_code(response: &Option<Value>) -> Option<i64> {
    response.as_ref()?.pointer("/error/code")?.as_i64()
}

/// Refused at the HTTP level, or answered with a JSON-RPC error (optionally with a given code).
fn refused(ex: &Exchange, response: &Option<Value>) -> bool {
    (400..500).contains(&ex.status) || error_code(response).is_some()
}

async fn parse_error(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let (ex, response) = conn.send_bytes(b"{\"jsonrpc\":").await?;
    let response = response.or_else(|| ex.json());
    let mut f = Findings::new(&cx);
    f.require(
        refused(&ex, &response),
        format!("invalid JSON answered {} without an error", ex.status),
        Some(&ex),
    );
    // JSON-RPC 2.0 §5.1: "-32700 Parse error: Invalid JSON was received by the server."
    // A bare 4xx without a body tells nothing; an error body must carry this code.
    if response.is_some() || !(400..500).contains(&ex.status) {
        f.require(
            error_code(&response) == Some(-32700),
            format!(
                "the error code is {}, not -32700",
                super::shown(error_code(&response))
            ),
            Some(&ex),
        );
    } else {
        f.prefer(
            false,
            format!(
                "invalid JSON answered {} without a JSON-RPC error body",
                ex.status
            ),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

async fn invalid_request(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let mut f = Findings::new(&cx);
    for message in [
        json!({"jsonrpc": "1.0", "id": 1, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": 2}),
        json!({"jsonrpc": "2.0", "id": 3, "method": 5}),
    ] {
        let (ex, response) = conn.send_raw(&message).await?;
        let response = response.or_else(|| ex.json());
        f.require(
            refused(&ex, &response),
            format!("{message} answered {} without an error", ex.status),
            Some(&ex),
        );
        // JSON-RPC 2.0 §5.1: "-32600 Invalid Request: The JSON sent is not a valid Request
        // object." Only a bare 4xx without a body carries no code to judge.
        f.require(
            error_code(&response).is_none_or(|c| c == -32600),
            format!(
                "{message} got code {}, not -32600",
                super::shown(error_code(&response))
            ),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

async fn ids_keep_their_type(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let mut f = Findings::new(&cx);
    for id in [json!("abc"), json!(7)] {
        let (ex, response) = conn
            .send_raw(&json!({"jsonrpc": "2.0", "id": id, "method": "ping"}))
            .await?;
        let Some(r) = response else {
            f.require(
                false,
                format!("no response carries the id {id} exactly (same value and type)"),
                Some(&ex),
            );
            continue;
        };
        f.require(
            r.get("jsonrpc") == Some(&json!("2.0")),
            format!("the response to id {id} lacks jsonrpc: 2.0 (RPC-01)"),
            Some(&ex),
        );
        f.require(
            r.get("result").is_some() != r.get("error").is_some(),
            format!("the response to id {id} does not have exactly one of result and error"),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

async fn null_id_is_an_error(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let (ex, response) = conn
        .send_raw(&json!({"jsonrpc": "2.0", "id": null, "method": "ping"}))
        .await?;
    let response = response.or_else(|| ex.json());
    let mut f = Findings::new(&cx);
    f.require(
        refused(&ex, &response) && response.as_ref().is_none_or(|r| r.get("result").is_none()),
        format!(
            "a request with id null answered {} without an error, as if it were a notification",
            ex.status
        ),
        Some(&ex),
    );
    f.prefer(
        error_code(&response).is_none_or(|c| c == -32600),
        format!(
            "id null got code {}, not -32600",
            super::shown(error_code(&response))
        ),
        Some(&ex),
    );
    Ok(f.verdict())
}

async fn method_not_found(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let (ex, response) = conn
        .send_raw(&json!({"jsonrpc": "2.0", "id": 11, "method": "foo/bar"}))
        .await?;
    cx.record_exchange("error: unknown method", &ex);
    let mut f = Findings::new(&cx);
    f.require(
        error_code(&response) == Some(-32601),
        format!("foo/bar got {}", describe_answer(&response)),
        Some(&ex),
    );
    // The error is the request's alone: the session goes on serving, the tool included. A
    // server whose session changes how it serves requests after one it does not know (a
    // fast path that hands the session to a general one, say) fails here. The tool is
    // called only where the server lists it; a server may offer other tools alone.
    let (ex, listed) = conn.call("tools/list", json!({})).await?;
    let tools = listed.pointer("/result/tools").and_then(Value::as_array);
    if !f.require(
        tools.is_some(),
        format!(
            "after the unknown method, tools/list in the same session got {}",
            describe_answer(&Some(listed.clone()))
        ),
        Some(&ex),
    ) {
        return Ok(f.verdict());
    }
    let offers_profile = tools
        .into_iter()
        .flatten()
        .any(|tool| tool.get("name").and_then(Value::as_str) == Some("get_user_profile"));
    if offers_profile {
        let (ex, response) = conn
            .call(
                "tools/call",
                json!({"name": "get_user_profile", "arguments": {}}),
            )
            .await?;
        let result = response.get("result");
        f.require(
            result.is_some_and(|result| result.get("isError") != Some(&json!(true))),
            format!(
                "after the unknown method, get_user_profile in the same session got {}",
                describe_answer(&Some(response.clone()))
            ),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

async fn invalid_params(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let mut f = Findings::new(&cx);
    // JSON-RPC 2.0 §5.1: "-32602 Invalid params: Invalid method parameter(s)"; the schema
    // names "Unknown tool name or invalid tool arguments" among its uses, and `arguments`
    // that is no object fails the CallToolRequest schema (TOOLS-10).
    for (what, params) in [
        (
            "an unknown tool",
            json!({"name": "__nope__", "arguments": {}}),
        ),
        ("a call without a name", json!({"arguments": {}})),
        (
            "arguments that are no object",
            json!({"name": "__nope__", "arguments": "notanobject"}),
        ),
    ] {
        let (ex, response) = conn
            .send_raw(
                &json!({"jsonrpc": "2.0", "id": 12, "method": "tools/call", "params": params}),
            )
            .await?;
        f.require(
            error_code(&response) == Some(-32602),
            format!(
                "{what} got {}, not the error -32602",
                describe_answer(&response)
            ),
            Some(&ex),
        );
    }
    // Pagination: "Invalid cursors SHOULD result in an error with code -32602". Ignoring
    // the cursor only warns; an error with another code breaks the code table.
    let (ex, response) = conn
        .send_raw(&json!({"jsonrpc": "2.0", "id": 13, "method": "tools/list", "params": {"cursor": "conformance-never-issued"}}))
        .await?;
    match error_code(&response) {
        Some(code) => f.require(
            code == -32602,
            format!("a cursor the server never issued got code {code}, not -32602"),
            Some(&ex),
        ),
        None => f.prefer(
            false,
            format!(
                "a cursor the server never issued got {}, not the error -32602",
                describe_answer(&response)
            ),
            Some(&ex),
        ),
    };
    Ok(f.verdict())
}

/// A request on the check's transport for a session the server never opened: POST with a
/// made-up `Mcp-Session-Id`, or to the message endpoint with a made-up session in its query.
async fn post_to_unknown_session(
    conn: &McpConn,
    message: &Value,
) -> anyhow::Result<(Exchange, Option<Value>)> {
    const UNKNOWN: &str = "conformance-unknown-session";
    match conn {
        McpConn::Shttp(c) => {
            let mut other = c.clone();
            other.session = Some(UNKNOWN.into());
            let reply = other.post(message).await?;
            let response = reply.messages.first().cloned();
            Ok((reply.exchange, response))
        }
        McpConn::Sse(s) => {
            let mut url = s.endpoint.clone();
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k.to_ascii_lowercase().contains("session") {
                        UNKNOWN.to_owned()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
            let ex = s
                .http
                .send(
                    crate::http::Req::post(url)
                        .bearer(s.token.as_deref())
                        .json(message),
                )
                .await?;
            let response = ex.json();
            Ok((ex, response))
        }
    }
}

/// The errors the check's session is made to answer: from the MCP handler (an unknown
/// method, invalid params) and from the transport itself (invalid JSON, an unknown
/// session). Each comes with what provoked it, the exchange, and the response if any.
async fn provoked_errors(
    conn: &mut McpConn,
) -> anyhow::Result<Vec<(&'static str, Exchange, Option<Value>)>> {
    let mut answers = Vec::new();
    let (ex, response) = conn
        .send_raw(&json!({"jsonrpc": "2.0", "id": 21, "method": "foo/bar"}))
        .await?;
    answers.push(("an unknown method", ex, response));
    let (ex, response) = conn
        .send_raw(&json!({"jsonrpc": "2.0", "id": 22, "method": "tools/call", "params": {"arguments": {}}}))
        .await?;
    answers.push(("tools/call without a name", ex, response));
    let (ex, response) = conn.send_bytes(b"{\"jsonrpc\":").await?;
    let response = response.or_else(|| ex.json());
    answers.push(("invalid JSON", ex, response));
    let (ex, response) =
        post_to_unknown_session(conn, &json!({"jsonrpc": "2.0", "id": 23, "method": "ping"}))
            .await?;
    answers.push(("a request for an unknown session", ex, response));
    Ok(answers)
}

/// RPC-03: "Error codes MUST be integers", and errors "MUST include an error code and
/// message at minimum" (2025-03-26 on). Errors from the MCP handler (an unknown method,
/// invalid params) and those a transport answers itself (invalid JSON, an unknown session)
/// are audited; a bare HTTP error without a JSON-RPC body carries no code to judge.
async fn error_codes_are_integers(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let answers = provoked_errors(&mut conn).await?;
    let mut f = Findings::new(&cx);
    let mut judged = 0;
    for (what, ex, response) in &answers {
        let Some(error) = response.as_ref().and_then(|r| r.get("error")) else {
            continue;
        };
        judged += 1;
        let code = error.get("code");
        f.require(
            code.is_some_and(|c| c.is_i64() || c.is_u64()),
            format!(
                "{what} got an error whose code is {}, not an integer",
                code.map_or("missing".into(), Value::to_string)
            ),
            Some(ex),
        );
        f.require(
            error.get("message").is_some_and(Value::is_string),
            format!("{what} got an error without a string message"),
            Some(ex),
        );
    }
    if judged == 0 {
        f.require(false, "none of the requests got a JSON-RPC error", None);
    }
    f.note(format!("{judged} error(s) audited"));
    Ok(f.verdict())
}

/// Marks of a stack trace in an error text: Rust backtraces and panics, Python tracebacks,
/// JavaScript stack frames.
const TRACE_MARKS: &[&str] = &[
    "stack backtrace:",
    "panicked at",
    "Traceback (most recent call last)",
    "    at Object.<anonymous>",
    "node:internal/",
];

/// RPC-10: a failure inside a tool is "-32603 Internal error" or, preferred by the schema,
/// a result: "Any errors that originate from the tool SHOULD be reported inside the result
/// object, with `isError` set to true". Either way the text must not hand the server's
/// stack trace to the client. The tool fails because GitHub answers 502 after the login.
async fn tool_failure_is_reported_cleanly(cx: Ctx) -> anyhow::Result<Verdict> {
    if cx.config().tool_profile == crate::config::ToolProfile::None {
        return Ok(Verdict::Skip(
            "--tool-profile none: the suite has no tool it can make fail".into(),
        ));
    }
    let login = cx
        .login(LoginOptions {
            fault: Some("user_5xx_after_login".into()),
            ..LoginOptions::default()
        })
        .await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let (ex, response) = conn
        .call(
            "tools/call",
            json!({"name": "get_user_profile", "arguments": {}}),
        )
        .await?;
    let mut f = Findings::new(&cx);
    let is_error_result = response.pointer("/result/isError") == Some(&json!(true));
    let internal_error = response.pointer("/error/code").and_then(Value::as_i64) == Some(-32603);
    f.require(
        is_error_result || internal_error,
        format!("GitHub failing during the tool gave {response}, neither isError nor -32603"),
        Some(&ex),
    );
    let text = response.to_string();
    let leaked: Vec<&str> = TRACE_MARKS
        .iter()
        .copied()
        .filter(|mark| text.contains(mark))
        .collect();
    f.require(
        leaked.is_empty(),
        format!(
            "the failure's text carries a stack trace ({})",
            leaked.join(", ")
        ),
        Some(&ex),
    );
    Ok(f.verdict())
}

/// RPC-01: "All messages between MCP clients and servers MUST follow the JSON-RPC 2.0
/// specification", whose Response object has "jsonrpc: A String specifying the version
/// of the JSON-RPC protocol. MUST be exactly \"2.0\"". Audited over results from the MCP
/// handler and errors from both the handler and the transport.
async fn messages_are_jsonrpc(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let mut answers = Vec::new();
    for (what, message) in [
        (
            "ping",
            json!({"jsonrpc": "2.0", "id": 24, "method": "ping"}),
        ),
        (
            "tools/list",
            json!({"jsonrpc": "2.0", "id": 25, "method": "tools/list"}),
        ),
        (
            "an unknown method",
            json!({"jsonrpc": "2.0", "id": 26, "method": "foo/bar"}),
        ),
    ] {
        let (ex, response) = conn.send_raw(&message).await?;
        answers.push((what, ex, response));
    }
    let (ex, response) = conn.send_bytes(b"{\"jsonrpc\":").await?;
    let response = response.or_else(|| ex.json());
    answers.push(("invalid JSON", ex, response));
    let (ex, response) = post_to_unknown_session(
        &conn,
        &json!({"jsonrpc": "2.0", "id": 27, "method": "ping"}),
    )
    .await?;
    answers.push(("a request for an unknown session", ex, response));
    let mut f = Findings::new(&cx);
    let mut judged = 0;
    for (what, ex, response) in &answers {
        let Some(message) = response else {
            continue;
        };
        judged += 1;
        f.require(
            message.get("jsonrpc") == Some(&json!("2.0")),
            format!(
                "the answer to {what} has jsonrpc {}, not \"2.0\"",
                message
                    .get("jsonrpc")
                    .map_or("missing".into(), Value::to_string)
            ),
            Some(ex),
        );
    }
    f.require(judged > 0, "no request got a JSON-RPC answer", None);
    f.note(format!("{judged} message(s) audited"));
    Ok(f.verdict())
}

/// "The receiver MUST NOT send a response." (Base Protocol, Notifications; JSON-RPC 2.0
/// says the same of every version). A notification POSTed in a session may be answered
/// with any 2xx and no body; what it must never get is a JSON-RPC message with a result
/// or an error, in the POST body or, on SSE, on the stream.
async fn notifications_get_no_response(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (conn, _) = cx.connect(Some(login.access_token())).await?;
    let notifications = [
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 4242}}),
        json!({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}),
    ];
    let mut f = Findings::new(&cx);
    let is_response = |m: &Value| m.get("result").is_some() || m.get("error").is_some();
    match conn {
        McpConn::Shttp(c) => {
            for note in &notifications {
                let reply = c.post(note).await?;
                let ex = &reply.exchange;
                f.require(
                    !reply.messages.iter().any(is_response),
                    format!(
                        "the notification {} was answered with a response",
                        note["method"].as_str().unwrap_or_default()
                    ),
                    Some(ex),
                );
            }
        }
        McpConn::Sse(mut s) => {
            for note in &notifications {
                let ex = s.post(note).await?;
                f.require(
                    !ex.json().is_some_and(|m| is_response(&m)),
                    format!(
                        "the notification {} was answered in the POST body",
                        note["method"].as_str().unwrap_or_default()
                    ),
                    Some(&ex),
                );
            }
            let replies = s.drain(std::time::Duration::from_millis(400)).await;
            f.require(
                !replies.iter().any(is_response),
                format!(
                    "a notification was answered on the stream: {}",
                    Value::Array(replies.clone())
                ),
                None,
            );
        }
    }
    Ok(f.verdict())
}

/// "`-32000` to `-32019`: Legacy / implementation-defined [...] New codes MUST NOT be
/// allocated in this sub-range, and new implementations SHOULD NOT use codes from this
/// sub-range at all." (2026-07-28, Base Protocol § Error Codes). The errors RPC-03
/// provokes are audited for codes from that sub-range; the MCP-specific codes the spec
/// defines (-32002, -32020..-32022, -32042) lie outside it.
async fn no_codes_from_the_legacy_range(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let answers = provoked_errors(&mut conn).await?;
    let mut f = Findings::new(&cx);
    let mut judged = 0;
    for (what, ex, response) in &answers {
        let Some(code) = error_code(response) else {
            continue;
        };
        judged += 1;
        f.require(
            !(-32019..=-32000).contains(&code),
            format!("{what} got code {code}, from the legacy sub-range -32000..-32019"),
            Some(ex),
        );
    }
    if judged == 0 {
        return Ok(Verdict::Skip(
            "none of the requests got a JSON-RPC error with an integer code".into(),
        ));
    }
    f.note(format!("{judged} error code(s) audited"));
    Ok(f.verdict())
}
