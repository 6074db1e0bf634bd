//! SHTTP5: the stateless Streamable HTTP transport of 2026-07-28. Every request carries its
//! own context: the `MCP-Protocol-Version` and `Mcp-Method` (and `Mcp-Name`) headers, and the
//! protocol version and client capabilities in `params._meta`. There is no `initialize` and
//! no session.

use serde_json::{Value, json};

use super::{Check, Ctx, Findings, LoginOptions, SHTTP, Verdict};
use crate::body;
use crate::http::streamable::{ACCEPT_BOTH, RpcReply, Shttp};
use crate::http::{Http, Req};
use crate::version::{Version, Versions};

const MODERN: &str = Version::V2026_07_28.as_str();
/// A version no server implements, for SHTTP5-10.
const UNKNOWN_VERSION: &str = "1900-01-01";
const TOOL: &str = "get_user_profile";

pub fn checks() -> Vec<Check> {
    vec![
        Check::new("SHTTP5-09", SHTTP, body!(header_mismatch_gets_400)),
        Check::new("SHTTP5-10", SHTTP, body!(unsupported_version_gets_400)),
        Check::new("SHTTP5-11", SHTTP, body!(unknown_method_gets_404)),
        Check::new("SHTTP5-20", SHTTP, body!(discover_is_implemented)),
        Check::new("SHTTP5-22", SHTTP, body!(first_request_is_self_contained)),
        Check::new("SHTTP5-01", SHTTP, body!(single_endpoint_answers_post)),
        Check::new("SHTTP5-02", SHTTP, body!(foreign_origin_gets_403)),
        Check::new("SHTTP5-03", SHTTP, body!(response_or_array_body_gets_4xx)),
        // The session-era RPC-07 speaks through a session; a 2026-07-28 request needs its
        // headers and `_meta` besides, or a server refuses it for those first.
        Check::new("RPC-07", SHTTP, body!(invalid_modern_requests_get_32600))
            .case(
                "stateless",
                "2026-07-28 requests complete in headers and _meta but not valid JSON-RPC get -32600",
            )
            .versions(Versions::since(Version::V2026_07_28)),
        Check::new(
            "SHTTP5-04",
            SHTTP,
            body!(notification_gets_202_without_body),
        ),
        Check::new("SHTTP5-05", SHTTP, body!(request_gets_json_object_or_sse)),
        Check::new(
            "SHTTP5-06",
            SHTTP,
            body!(response_stream_has_no_server_requests),
        ),
        Check::new(
            "SHTTP5-07",
            SHTTP,
            body!(sse_response_disables_proxy_buffering),
        ),
        Check::new(
            "SHTTP5-12",
            SHTTP,
            body!(missing_version_header_is_not_modern),
        ),
        Check::new(
            "SHTTP5-13",
            SHTTP,
            body!(method_and_name_headers_are_matched),
        ),
        Check::new("SHTTP5-14", SHTTP, body!(base64_name_is_decoded)),
        Check::new("SHTTP5-16", SHTTP, body!(session_machinery_is_gone)),
        Check::new("SHTTP5-17", SHTTP, body!(missing_meta_fields_get_400)),
        Check::new("SHTTP5-19", SHTTP, body!(results_carry_result_type)),
        Check::new("SHTTP5-21", SHTTP, body!(results_name_the_server)),
        Check::new("SHTTP5-23", SHTTP, body!(refused_initialize_names_versions)),
        Check::new("SHTTP5-24", SHTTP, body!(no_retired_error_codes)),
        Check::new("SHTTP5-25", SHTTP, body!(removed_methods_are_gone)),
        Check::new(
            "SHTTP5-26",
            SHTTP,
            body!(subscription_is_acknowledged_first),
        ),
    ]
}

/// The `_meta` every 2026-07-28 request carries.
fn meta(version: &str) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {
            "name": "mcp-auth-conformance",
            "version": env!("CARGO_PKG_VERSION"),
        },
    })
}

/// One stateless request: `header_version` in `MCP-Protocol-Version`, `meta_version` in
/// `_meta`, `Mcp-Method`, and `Mcp-Name` when `params` has a `name`.
fn request(
    cx: &Ctx,
    token: &str,
    header_version: &str,
    meta_version: &str,
    id: i64,
    method: &str,
    params: Value,
) -> Req {
    let mut params = match params {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    params.insert("_meta".into(), meta(meta_version));
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut req = Req::post(cx.mcp_url())
        .bearer(Some(token))
        .header("Accept", ACCEPT_BOTH)
        .header("MCP-Protocol-Version", header_version)
        .header("Mcp-Method", method);
    if let Some(name) = name {
        req = req.header("Mcp-Name", name);
    }
    req.json(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
}

/// Sends a request over `http` (JSON or SSE answer) and returns the reply with the
/// response to `id`, if any.
async fn send(cx: &Ctx, http: &Http, token: &str, req: Req) -> anyhow::Result<RpcReply> {
    Shttp::new(http.clone(), cx.mcp_url(), Some(token.to_owned()))
        .send(req)
        .await
}

async fn token(cx: &Ctx) -> anyhow::Result<String> {
    Ok(cx
        .login(LoginOptions::default())
        .await?
        .access_token()
        .to_owned())
}

/// Requires an HTTP status and a JSON-RPC error code on the response to `id`; returns
/// the error object.
fn expect_error(
    f: &mut Findings,
    reply: &RpcReply,
    id: i64,
    status: u16,
    code: i64,
    what: &str,
) -> Option<Value> {
    let ex = &reply.exchange;
    f.require(
        ex.status == status,
        format!("{what} answered {}, not {status}", ex.status),
        Some(ex),
    );
    // A 4xx may carry the error without the request's id; take the only message then.
    let response = reply
        .response(&json!(id))
        .or_else(|| reply.messages.iter().find(|m| m.get("error").is_some()));
    let error = response.and_then(|m| m.get("error")).cloned();
    let got = error
        .as_ref()
        .and_then(|e| e.get("code"))
        .and_then(Value::as_i64);
    f.require(
        got == Some(code),
        format!("{what} got error code {}, not {code}", super::shown(got)),
        Some(ex),
    );
    error
}

async fn header_mismatch_gets_400(cx: Ctx) -> anyhow::Result<Verdict> {
    let token = token(&cx).await?;
    let req = request(
        &cx,
        &token,
        MODERN,
        Version::V2025_11_25.as_str(),
        1,
        "tools/list",
        json!({}),
    );
    let reply = send(&cx, cx.http(), &token, req).await?;
    cx.record_exchange("400 header and _meta versions differ", &reply.exchange);
    let mut f = Findings::new(&cx);
    expect_error(
        &mut f,
        &reply,
        1,
        400,
        -32020,
        "MCP-Protocol-Version: 2026-07-28 with _meta protocolVersion 2025-11-25",
    );
    Ok(f.verdict())
}

async fn unsupported_version_gets_400(cx: Ctx) -> anyhow::Result<Verdict> {
    let token = token(&cx).await?;
    let req = request(
        &cx,
        &token,
        UNKNOWN_VERSION,
        UNKNOWN_VERSION,
        2,
        "tools/list",
        json!({}),
    );
    let reply = send(&cx, cx.http(), &token, req).await?;
    cx.record_exchange("400 unsupported protocol version", &reply.exchange);
    let mut f = Findings::new(&cx);
    let error = expect_error(
        &mut f,
        &reply,
        2,
        400,
        -32022,
        &format!("protocol version {UNKNOWN_VERSION} in the header and _meta"),
    );
    if let Some(error) = error {
        let supported = error.pointer("/data/supported").and_then(Value::as_array);
        f.require(
            supported.is_some_and(|s| !s.is_empty() && s.iter().all(Value::is_string)),
            format!(
                "error.data.supported is not a non-empty array of strings: {}",
                super::shown_json(error.pointer("/data/supported"))
            ),
            Some(&reply.exchange),
        );
        f.prefer(
            error.pointer("/data/requested") == Some(&json!(UNKNOWN_VERSION)),
            format!(
                "error.data.requested is {}, not {UNKNOWN_VERSION:?}",
                super::shown_json(error.pointer("/data/requested"))
            ),
            Some(&reply.exchange),
        );
    }
    Ok(f.verdict())
}

async fn unknown_method_gets_404(cx: Ctx) -> anyhow::Result<Verdict> {
    let token = token(&cx).await?;
    let req = request(&cx, &token, MODERN, MODERN, 3, "nope/nope", json!({}));
    let reply = send(&cx, cx.http(), &token, req).await?;
    cx.record_exchange("404 unknown method", &reply.exchange);
    let mut f = Findings::new(&cx);
    expect_error(&mut f, &reply, 3, 404, -32601, "method nope/nope");
    Ok(f.verdict())
}

async fn discover_is_implemented(cx: Ctx) -> anyhow::Result<Verdict> {
    let token = token(&cx).await?;
    let req = request(&cx, &token, MODERN, MODERN, 4, "server/discover", json!({}));
    let reply = send(&cx, cx.http(), &token, req).await?;
    let ex = &reply.exchange;
    let mut f = Findings::new(&cx);
    f.require(
        ex.status == 200,
        format!("server/discover answered {}", ex.status),
        Some(ex),
    );
    let Some(result) = reply.response(&json!(4)).and_then(|r| r.get("result")) else {
        f.require(false, "server/discover got no result", Some(ex));
        return Ok(f.verdict());
    };
    cx.record(
        "server/discover result",
        crate::snapshot::normalize_json(cx.config(), result),
    );
    let versions = result.get("supportedVersions").and_then(Value::as_array);
    f.require(
        versions.is_some_and(|v| v.contains(&json!(MODERN))),
        format!(
            "supportedVersions {} does not contain {MODERN}",
            super::shown_json(result.get("supportedVersions"))
        ),
        Some(ex),
    );
    f.require(
        result.get("capabilities").is_some_and(Value::is_object),
        "the result has no capabilities object",
        Some(ex),
    );
    // 2026-07-28 schema: "The result MUST include a resultType field" (SHTTP5-19), and the
    // DiscoverResult requires `ttlMs` (a non-negative integer of milliseconds) and
    // `cacheScope` ("public" or "private").
    f.require(
        result.get("resultType") == Some(&json!("complete")),
        format!(
            "resultType is {}, not \"complete\"",
            super::shown_json(result.get("resultType"))
        ),
        Some(ex),
    );
    f.require(
        result.get("ttlMs").is_some_and(|t| t.as_u64().is_some()),
        format!(
            "ttlMs is {}, not a non-negative integer",
            super::shown_json(result.get("ttlMs"))
        ),
        Some(ex),
    );
    f.require(
        matches!(
            result.get("cacheScope").and_then(Value::as_str),
            Some("public" | "private")
        ),
        format!(
            "cacheScope is {}, not \"public\" or \"private\"",
            super::shown_json(result.get("cacheScope"))
        ),
        Some(ex),
    );
    f.prefer(
        result
            .pointer("/_meta/io.modelcontextprotocol~1serverInfo")
            .is_some_and(|info| info.get("name").is_some() && info.get("version").is_some()),
        "_meta has no io.modelcontextprotocol/serverInfo with name and version (SHOULD)",
        Some(ex),
    );
    Ok(f.verdict())
}

async fn first_request_is_self_contained(cx: Ctx) -> anyhow::Result<Verdict> {
    if cx.config().tool_profile == crate::config::ToolProfile::None {
        return Ok(Verdict::Skip(format!(
            "--tool-profile none: the check calls {TOOL} as its first request"
        )));
    }
    let user = "octocat";
    let token = token(&cx).await?;
    let expected = cx.mock().user(user).await?;
    // A client of its own, so the request opens a new connection: nothing the suite's
    // pooled connections did before can stand in for the context.
    let fresh = Http::new(cx.http().timeout, cx.http().redactor.clone())?;
    let req = request(
        &cx,
        &token,
        MODERN,
        MODERN,
        5,
        "tools/call",
        json!({"name": TOOL, "arguments": {}}),
    );
    let reply = send(&cx, &fresh, &token, req).await?;
    let ex = &reply.exchange;
    let mut f = Findings::new(&cx);
    f.require(
        ex.status == 200,
        format!("tools/call as the first request answered {}", ex.status),
        Some(ex),
    );
    let result = reply.response(&json!(5)).and_then(|r| r.get("result"));
    let Some(result) = result else {
        f.require(
            false,
            "tools/call as the first request got no result",
            Some(ex),
        );
        return Ok(f.verdict());
    };
    f.require(
        result.get("isError").is_none_or(|e| e == &json!(false)),
        "the call reported isError",
        Some(ex),
    );
    let login = super::tools::profile_in(result).and_then(|p| p.get("login").cloned());
    f.require(
        login.is_some() && login.as_ref() == expected.get("login"),
        format!(
            "the result is not {user}'s profile (login {})",
            super::shown_json(login.as_ref())
        ),
        Some(ex),
    );
    Ok(f.verdict())
}

/// A 2026-07-28 message under construction: its body (with `_meta` for requests) and
/// the headers a conforming client sends with it, which a check then takes apart.
struct Modern {
    headers: Vec<(&'static str, String)>,
    body: Value,
}

impl Modern {
    /// A request with every header and `_meta` field in place. A `_meta` already in
    /// `params` keeps its fields next to the required ones.
    fn request(id: i64, method: &str, params: Value) -> Modern {
        let mut params = match params {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        let mut full_meta = meta(MODERN);
        if let (Some(Value::Object(extra)), Some(full)) =
            (params.remove("_meta"), full_meta.as_object_mut())
        {
            full.extend(extra);
        }
        params.insert("_meta".into(), full_meta);
        let mut headers = vec![
            ("MCP-Protocol-Version", MODERN.to_owned()),
            ("Mcp-Method", method.to_owned()),
        ];
        if let Some(name) = params.get("name").and_then(Value::as_str) {
            headers.push(("Mcp-Name", name.to_owned()));
        }
        Modern {
            headers,
            body: json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        }
    }

    fn notification(method: &str, params: Value) -> Modern {
        Modern {
            headers: vec![
                ("MCP-Protocol-Version", MODERN.to_owned()),
                ("Mcp-Method", method.to_owned()),
            ],
            body: json!({"jsonrpc": "2.0", "method": method, "params": params}),
        }
    }

    /// Sets a header, replacing one of the same name.
    fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Modern {
        self.headers
            .retain(|(have, _)| !have.eq_ignore_ascii_case(name));
        self.headers.push((name, value.into()));
        self
    }

    fn without_header(mut self, name: &str) -> Modern {
        self.headers
            .retain(|(have, _)| !have.eq_ignore_ascii_case(name));
        self
    }

    /// Drops one field of `params._meta`.
    fn without_meta(mut self, key: &str) -> Modern {
        if let Some(meta) = self
            .body
            .pointer_mut("/params/_meta")
            .and_then(Value::as_object_mut)
        {
            meta.remove(key);
        }
        self
    }

    fn req(&self, cx: &Ctx, token: &str) -> Req {
        let mut req = Req::post(cx.mcp_url()).bearer(Some(token));
        if !self
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("Accept"))
        {
            req = req.header("Accept", ACCEPT_BOTH);
        }
        for (name, value) in &self.headers {
            req = req.header(name, value.clone());
        }
        req.json(&self.body)
    }
}

/// The versions `server/discover` lists; empty when it lists none.
async fn supported_versions(cx: &Ctx, token: &str) -> anyhow::Result<Vec<String>> {
    let reply = send(
        cx,
        cx.http(),
        token,
        Modern::request(90, "server/discover", json!({})).req(cx, token),
    )
    .await?;
    Ok(reply
        .response(&json!(90))
        .and_then(|r| r.pointer("/result/supportedVersions"))
        .and_then(Value::as_array)
        .map(|versions| {
            versions
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}

/// Whether a server with these versions serves only 2026-07-28 and later: such a server
/// has no legacy handling to fall back on.
fn modern_only(versions: &[String]) -> bool {
    !versions.is_empty() && versions.iter().all(|v| v.as_str() >= MODERN)
}

fn has_tool(cx: &Ctx) -> bool {
    cx.config().tool_profile != crate::config::ToolProfile::None
}

/// The error of the response to `id`, or of the only error message when it has no id.
fn error_of(reply: &RpcReply, id: i64) -> Option<&Value> {
    reply
        .response(&json!(id))
        .or_else(|| reply.messages.iter().find(|m| m.get("error").is_some()))
        .and_then(|m| m.get("error"))
}

fn code_of(reply: &RpcReply, id: i64) -> Option<i64> {
    error_of(reply, id)
        .and_then(|e| e.get("code"))
        .and_then(Value::as_i64)
}

fn result_of(reply: &RpcReply, id: i64) -> Option<&Value> {
    reply.response(&json!(id)).and_then(|r| r.get("result"))
}

async fn single_endpoint_answers_post(cx: Ctx) -> anyhow::Result<Verdict> {
    // "The server MUST provide a single HTTP endpoint path (hereafter referred to as the
    // MCP endpoint) that supports POST." The response to a POSTed request comes back on
    // that POST: there is no other stream or path for it in 2026-07-28.
    let token = token(&cx).await?;
    let message = Modern::request(11, "tools/list", json!({}));
    let reply = send(&cx, cx.http(), &token, message.req(&cx, &token)).await?;
    let ex = &reply.exchange;
    let mut f = Findings::new(&cx);
    f.require(
        ex.status == 200,
        format!(
            "POST tools/list to the MCP endpoint answered {}, not 200",
            ex.status
        ),
        Some(ex),
    );
    f.require(
        result_of(&reply, 11).is_some(),
        "the answer to the POST holds no result for the tools/list request",
        Some(ex),
    );
    Ok(f.verdict())
}

async fn foreign_origin_gets_403(cx: Ctx) -> anyhow::Result<Verdict> {
    // "If the `Origin` header is present and invalid, servers MUST respond with HTTP 403
    // Forbidden." (2026-07-28, Security & Endpoint)
    let token = token(&cx).await?;
    let message = Modern::request(12, "tools/list", json!({}));
    let req = message
        .req(&cx, &token)
        .header("Origin", "http://attacker.example");
    let reply = send(&cx, cx.http(), &token, req).await?;
    let mut f = Findings::new(&cx);
    f.require(
        reply.exchange.status == 403,
        format!(
            "a 2026-07-28 request with Origin http://attacker.example answered {}, not 403",
            reply.exchange.status
        ),
        Some(&reply.exchange),
    );
    Ok(f.verdict())
}

async fn response_or_array_body_gets_4xx(cx: Ctx) -> anyhow::Result<Verdict> {
    // "The body of the HTTP POST MUST be a single JSON-RPC request or notification. The
    // client MUST NOT send JSON-RPC responses." The rule binds the client; a server that
    // refuses such bodies is what the rule expects, hence SHOULD.
    let token = token(&cx).await?;
    let mut f = Findings::new(&cx);
    let response_object = Modern {
        headers: vec![("MCP-Protocol-Version", MODERN.to_owned())],
        body: json!({"jsonrpc": "2.0", "id": "shttp5-03", "result": {}}),
    };
    let reply = send(&cx, cx.http(), &token, response_object.req(&cx, &token)).await?;
    f.require(
        (400..500).contains(&reply.exchange.status),
        format!(
            "a JSON-RPC response object as the body answered {}, not 4xx",
            reply.exchange.status
        ),
        Some(&reply.exchange),
    );
    let single = Modern::request(13, "tools/list", json!({}));
    let array = Modern {
        body: json!([single.body]),
        headers: single.headers,
    };
    let reply = send(&cx, cx.http(), &token, array.req(&cx, &token)).await?;
    f.require(
        (400..500).contains(&reply.exchange.status),
        format!(
            "an array holding one request as the body answered {}, not 4xx",
            reply.exchange.status
        ),
        Some(&reply.exchange),
    );
    Ok(f.verdict())
}

async fn invalid_modern_requests_get_32600(cx: Ctx) -> anyhow::Result<Verdict> {
    // JSON-RPC 2.0 §5.1: "-32600 Invalid Request: The JSON sent is not a valid Request
    // object." Each body below is a `tools/list` or `tools/call` that a 2026-07-28 server
    // would answer, but for one member that makes it no JSON-RPC 2.0 request; the headers
    // and `_meta` are complete, so nothing else is there to refuse.
    let token = token(&cx).await?;
    let mut f = Findings::new(&cx);
    let list = Modern::request(41, "tools/list", json!({}));
    let call = Modern::request(
        42,
        "tools/call",
        json!({"name": "get_user_profile", "arguments": {}}),
    );
    let mut cases = Vec::new();
    for (base, id) in [(&list, 41), (&call, 42)] {
        let mut version = base.body.clone();
        version["jsonrpc"] = json!("1.0");
        cases.push((id, version, "jsonrpc \"1.0\""));
        let mut missing = base.body.clone();
        if let Some(object) = missing.as_object_mut() {
            object.remove("jsonrpc");
        }
        cases.push((id, missing, "no jsonrpc member"));
    }
    for (id, body, what) in cases {
        let headers = if id == 41 {
            &list.headers
        } else {
            &call.headers
        };
        let message = Modern {
            headers: headers.clone(),
            body,
        };
        let method = if id == 41 { "tools/list" } else { "tools/call" };
        let reply = send(&cx, cx.http(), &token, message.req(&cx, &token)).await?;
        let ex = &reply.exchange;
        let response = reply.response(&json!(id)).cloned().or_else(|| ex.json());
        let code = response
            .as_ref()
            .and_then(|r| r.pointer("/error/code"))
            .and_then(Value::as_i64);
        f.require(
            (400..500).contains(&ex.status) || code.is_some(),
            format!(
                "a {method} with {what} answered {} without an error",
                ex.status
            ),
            Some(ex),
        );
        // Only a bare 4xx without a body carries no code to judge.
        f.require(
            code.is_none_or(|code| code == -32600),
            format!(
                "a {method} with {what} got code {}, not -32600",
                super::shown(code)
            ),
            Some(ex),
        );
    }
    Ok(f.verdict())
}

async fn notification_gets_202_without_body(cx: Ctx) -> anyhow::Result<Verdict> {
    // "If the body is a JSON-RPC notification: … If the server accepts it, the server MUST
    // return HTTP status code `202 Accepted` with no body." A server that does not accept
    // it answers with an error status, which the spec allows.
    let token = token(&cx).await?;
    let message = Modern::notification(
        "notifications/cancelled",
        json!({"requestId": "shttp5-04", "reason": "conformance check"}),
    );
    let reply = send(&cx, cx.http(), &token, message.req(&cx, &token)).await?;
    let ex = &reply.exchange;
    let mut f = Findings::new(&cx);
    if (400..500).contains(&ex.status) {
        f.note(format!(
            "the server did not accept notifications/cancelled ({}), which the spec allows",
            ex.status
        ));
        return Ok(f.verdict());
    }
    f.require(
        ex.status == 202,
        format!("a notification answered {}, not 202", ex.status),
        Some(ex),
    );
    f.require(
        ex.body.is_empty(),
        format!(
            "the 202 to a notification has a body of {} bytes",
            ex.body.len()
        ),
        Some(ex),
    );
    Ok(f.verdict())
}

async fn request_gets_json_object_or_sse(cx: Ctx) -> anyhow::Result<Verdict> {
    // "If the body is a JSON-RPC request, the server MUST return either `Content-Type:
    // application/json` (a single JSON object) or `Content-Type: text/event-stream` (an
    // SSE response stream)."
    let token = token(&cx).await?;
    let message = Modern::request(14, "tools/list", json!({}));
    let reply = send(&cx, cx.http(), &token, message.req(&cx, &token)).await?;
    let ex = &reply.exchange;
    let mut f = Findings::new(&cx);
    match ex.content_type().as_deref() {
        Some("application/json") => {
            let body = serde_json::from_slice::<Value>(&ex.body).ok();
            f.require(
                body.as_ref().is_some_and(Value::is_object),
                "the application/json answer is not a single JSON object",
                Some(ex),
            );
            f.require(
                body.as_ref().and_then(|b| b.get("id")) == Some(&json!(14)),
                "the JSON object is not the response to the request",
                Some(ex),
            );
        }
        Some("text/event-stream") => {
            f.require(
                reply.response(&json!(14)).is_some(),
                "the SSE answer carries no response to the request",
                Some(ex),
            );
        }
        other => {
            f.require(
                false,
                format!(
                    "a request answered {} with Content-Type {}, neither application/json nor text/event-stream",
                    ex.status,
                    super::shown(other)
                ),
                Some(ex),
            );
        }
    }
    Ok(f.verdict())
}

/// A `tools/call` of the profile tool that asks for progress, so a server that streams
/// has something to stream.
fn call_with_progress(id: i64, progress_token: &str) -> Modern {
    Modern::request(
        id,
        "tools/call",
        json!({"name": TOOL, "arguments": {}, "_meta": {"progressToken": progress_token}}),
    )
}

async fn response_stream_has_no_server_requests(cx: Ctx) -> anyhow::Result<Verdict> {
    // "These notifications MUST relate to the originating client request. … The server
    // MUST NOT send independent JSON-RPC requests on this stream. … The final JSON-RPC
    // response SHOULD terminate the stream."
    if !has_tool(&cx) {
        return Ok(Verdict::Skip(format!(
            "--tool-profile none: the check calls {TOOL} to read its answer"
        )));
    }
    let token = token(&cx).await?;
    let progress_token = "shttp5-06";
    let reply = send(
        &cx,
        cx.http(),
        &token,
        call_with_progress(15, progress_token).req(&cx, &token),
    )
    .await?;
    let ex = &reply.exchange;
    let mut f = Findings::new(&cx);
    f.require(
        reply.response(&json!(15)).is_some(),
        "the answer carries no response to the tools/call",
        Some(ex),
    );
    for message in &reply.messages {
        let method = message.get("method").and_then(Value::as_str);
        if let Some(method) = method
            && message.get("id").is_some()
        {
            f.require(
                false,
                format!("the server sent a request of its own ({method}) on the response stream"),
                Some(ex),
            );
        }
        if method == Some("notifications/progress") {
            let sent = message.pointer("/params/progressToken");
            f.require(
                sent == Some(&json!(progress_token)),
                format!(
                    "a progress notification carries progressToken {}, not the request's",
                    super::shown_json(sent)
                ),
                Some(ex),
            );
        }
        if method.is_none()
            && let Some(id) = message.get("id")
        {
            f.require(
                id == &json!(15),
                format!("the stream carries a response to another request (id {id})"),
                Some(ex),
            );
        }
    }
    if reply.is_sse() {
        f.prefer(
            reply.stream_closed,
            "the SSE stream stayed open after the response (SHOULD end)",
            Some(ex),
        );
    }
    Ok(f.verdict())
}

async fn sse_response_disables_proxy_buffering(cx: Ctx) -> anyhow::Result<Verdict> {
    // "When initiating an SSE stream, servers SHOULD include the `X-Accel-Buffering: no`
    // header in the HTTP response."
    if !has_tool(&cx) {
        return Ok(Verdict::Skip(format!(
            "--tool-profile none: the check calls {TOOL} to read its answer"
        )));
    }
    let token = token(&cx).await?;
    let reply = send(
        &cx,
        cx.http(),
        &token,
        call_with_progress(16, "shttp5-07").req(&cx, &token),
    )
    .await?;
    if !reply.is_sse() {
        return Ok(Verdict::Skip(
            "the server answered tools/call with one JSON object; no SSE stream to judge".into(),
        ));
    }
    let mut f = Findings::new(&cx);
    let value = reply.exchange.header("x-accel-buffering");
    f.require(
        value.is_some_and(|v| v.trim().eq_ignore_ascii_case("no")),
        format!(
            "the SSE response has X-Accel-Buffering {}, not \"no\"",
            super::shown(value)
        ),
        Some(&reply.exchange),
    );
    Ok(f.verdict())
}

async fn missing_version_header_is_not_modern(cx: Ctx) -> anyhow::Result<Verdict> {
    // "A server that supports clients implementing protocol versions earlier than
    // `2025-06-18` … MAY treat a request that omits the header as protocol version
    // `2025-03-26`. A server that does not support such clients MUST reject a request
    // without the header" (with 400 and HeaderMismatch, -32020).
    let token = token(&cx).await?;
    let versions = supported_versions(&cx, &token).await?;
    // `server/discover` may list only 2026-07-28 while `initialize` still negotiates older
    // versions; a version negotiated before the checks counts as supported too.
    let negotiated_legacy = cx
        .assessment()
        .transports
        .iter()
        .filter(|t| t.transport == cx.transport())
        .flat_map(|t| t.negotiated.iter())
        .any(|v| v.as_str() < "2025-06-18");
    let legacy_clients = negotiated_legacy || versions.iter().any(|v| v.as_str() < "2025-06-18");
    let message =
        Modern::request(17, "tools/list", json!({})).without_header("MCP-Protocol-Version");
    let reply = send(&cx, cx.http(), &token, message.req(&cx, &token)).await?;
    let ex = &reply.exchange;
    let mut f = Findings::new(&cx);
    let refused = ex.status == 400 && code_of(&reply, 17) == Some(-32020);
    if refused {
        return Ok(f.verdict());
    }
    if !legacy_clients {
        f.require(
            false,
            format!(
                "a server without versions before 2025-06-18 ({}) answered a request without MCP-Protocol-Version with {} and code {}, not 400 and -32020",
                versions.join(", "),
                ex.status,
                super::shown(code_of(&reply, 17))
            ),
            Some(ex),
        );
        return Ok(f.verdict());
    }
    // Legacy handling of a 2025-03-26 request: anything but a 2026-07-28 answer.
    f.require(
        ex.status < 500,
        format!(
            "a request without MCP-Protocol-Version answered {}",
            ex.status
        ),
        Some(ex),
    );
    let served_as_modern = result_of(&reply, 17).is_some_and(|r| r.get("resultType").is_some());
    f.require(
        !served_as_modern,
        "a request without MCP-Protocol-Version was served as 2026-07-28 (its result has resultType) instead of refused with -32020 or handled as 2025-03-26",
        Some(ex),
    );
    Ok(f.verdict())
}

async fn method_and_name_headers_are_matched(cx: Ctx) -> anyhow::Result<Verdict> {
    // "Servers that process the request body MUST reject requests where the values
    // specified in the headers do not match the corresponding values in the request
    // body" with 400 and HeaderMismatch (-32020); `Mcp-Method` is required on every
    // request and `Mcp-Name` on `tools/call`. Header values are case-sensitive.
    let token = token(&cx).await?;
    let call = |id| Modern::request(id, "tools/call", json!({"name": TOOL, "arguments": {}}));
    let cases = [
        (
            "tools/list without Mcp-Method",
            Modern::request(21, "tools/list", json!({})).without_header("Mcp-Method"),
        ),
        (
            "a tools/call body with Mcp-Method: tools/list",
            call(22).with_header("Mcp-Method", "tools/list"),
        ),
        (
            "tools/list with Mcp-Method: Tools/List",
            Modern::request(23, "tools/list", json!({})).with_header("Mcp-Method", "Tools/List"),
        ),
        (
            "tools/call without Mcp-Name",
            call(24).without_header("Mcp-Name"),
        ),
        (
            "tools/call of get_user_profile with Mcp-Name: other_tool",
            call(25).with_header("Mcp-Name", "other_tool"),
        ),
    ];
    let mut f = Findings::new(&cx);
    for (what, message) in cases {
        let id = message.body["id"].as_i64().unwrap_or_default();
        let reply = send(&cx, cx.http(), &token, message.req(&cx, &token)).await?;
        expect_error(&mut f, &reply, id, 400, -32020, what);
    }
    Ok(f.verdict())
}

/// `=?base64?…?=`, the encoding of a header value that is not plain ASCII.
fn base64_header(value: &str) -> String {
    use base64::Engine as _;
    format!(
        "=?base64?{}?=",
        base64::engine::general_purpose::STANDARD.encode(value)
    )
}

async fn base64_name_is_decoded(cx: Ctx) -> anyhow::Result<Verdict> {
    // "servers MUST decode an encoded `Mcp-Name` or `Mcp-Param-{Name}` value before
    // comparing it to the corresponding request body value during Server Validation."
    let token = token(&cx).await?;
    let mut f = Findings::new(&cx);
    // The mismatch first: the matching call runs the tool, and a tool that fails upstream
    // may end the grant.
    let other = format!("{TOOL}_other");
    let wrong = Modern::request(27, "tools/call", json!({"name": TOOL, "arguments": {}}))
        .with_header("Mcp-Name", base64_header(&other));
    let reply = send(&cx, cx.http(), &token, wrong.req(&cx, &token)).await?;
    expect_error(
        &mut f,
        &reply,
        27,
        400,
        -32020,
        &format!("Mcp-Name with {other} in Base64 on a call of {TOOL}"),
    );
    let encoded = Modern::request(26, "tools/call", json!({"name": TOOL, "arguments": {}}))
        .with_header("Mcp-Name", base64_header(TOOL));
    let reply = send(&cx, cx.http(), &token, encoded.req(&cx, &token)).await?;
    let code = code_of(&reply, 26);
    f.require(
        reply.exchange.status != 400 && code != Some(-32020),
        format!(
            "Mcp-Name {} (the tool's name in Base64) answered {} with code {}: it was not decoded",
            base64_header(TOOL),
            reply.exchange.status,
            super::shown(code)
        ),
        Some(&reply.exchange),
    );
    Ok(f.verdict())
}

async fn session_machinery_is_gone(cx: Ctx) -> anyhow::Result<Verdict> {
    // "HTTP GET or DELETE to the MCP endpoint: respond with `405 Method Not Allowed`. … An
    // `Mcp-Session-Id` header on a request: ignore it, and do not mint or echo session
    // IDs." (what a 2026-07-28 server SHOULD do with the earlier revisions' machinery)
    let token = token(&cx).await?;
    let mut f = Findings::new(&cx);
    let get = Req::get(cx.mcp_url())
        .bearer(Some(&token))
        .header("Accept", "text/event-stream")
        .header("MCP-Protocol-Version", MODERN);
    let opened = cx.http().open(get).await?;
    f.require(
        opened.exchange.status == 405,
        format!(
            "GET with MCP-Protocol-Version {MODERN} answered {}, not 405",
            opened.exchange.status
        ),
        Some(&opened.exchange),
    );
    drop(opened);
    let delete = Req::new(reqwest::Method::DELETE, cx.mcp_url())
        .bearer(Some(&token))
        .header("MCP-Protocol-Version", MODERN);
    let deleted = cx.http().send(delete).await?;
    f.require(
        deleted.status == 405,
        format!(
            "DELETE with MCP-Protocol-Version {MODERN} answered {}, not 405",
            deleted.status
        ),
        Some(&deleted),
    );
    // Processed normally: answered as the same request without the header is.
    let plain = Modern::request(28, "server/discover", json!({}));
    let without = send(&cx, cx.http(), &token, plain.req(&cx, &token)).await?;
    let with_session = Modern::request(28, "server/discover", json!({}))
        .with_header("Mcp-Session-Id", "shttp5-16-no-such-session");
    let reply = send(&cx, cx.http(), &token, with_session.req(&cx, &token)).await?;
    f.require(
        reply.exchange.status == without.exchange.status
            && result_of(&reply, 28).is_some() == result_of(&without, 28).is_some(),
        format!(
            "server/discover with an Mcp-Session-Id answered {}, without one {}: the header was not ignored",
            reply.exchange.status, without.exchange.status
        ),
        Some(&reply.exchange),
    );
    f.require(
        reply.exchange.header("mcp-session-id").is_none(),
        "the response to a 2026-07-28 request carries an Mcp-Session-Id",
        Some(&reply.exchange),
    );
    Ok(f.verdict())
}

async fn missing_meta_fields_get_400(cx: Ctx) -> anyhow::Result<Verdict> {
    // "A request missing any required field is malformed; the server MUST reject it with
    // JSON-RPC error code `-32602` (Invalid params). On HTTP, the response status MUST be
    // `400 Bad Request`." `clientCapabilities` is one of the required fields. A
    // `tools/call` is sent as well as a `tools/list`, since a server may read its methods
    // on different paths (a fast path for `tools/call` that skips the `_meta` check).
    let token = token(&cx).await?;
    let mut requests = vec![(29, "tools/list", json!({}))];
    if has_tool(&cx) {
        requests.push((30, "tools/call", json!({"name": TOOL, "arguments": {}})));
    }
    let mut f = Findings::new(&cx);
    for (id, method, params) in requests {
        let message = Modern::request(id, method, params)
            .without_meta("io.modelcontextprotocol/clientCapabilities");
        let reply = send(&cx, cx.http(), &token, message.req(&cx, &token)).await?;
        expect_error(
            &mut f,
            &reply,
            id,
            400,
            -32602,
            &format!("{method} whose _meta lacks io.modelcontextprotocol/clientCapabilities"),
        );
    }
    Ok(f.verdict())
}

/// The results of `server/discover`, `tools/list` and (with a tool) `tools/call`, each
/// with the method it answers. Requests that get no result are left out: their checks
/// are elsewhere.
async fn some_results(
    cx: &Ctx,
    token: &str,
) -> anyhow::Result<Vec<(&'static str, RpcReply, Value)>> {
    let mut requests = vec![
        (
            "server/discover",
            Modern::request(41, "server/discover", json!({})),
        ),
        ("tools/list", Modern::request(42, "tools/list", json!({}))),
        // The same request with quality values in `Accept`: a server may answer it by
        // another path than the plain one, and its result is a result like any other.
        (
            "tools/list (Accept with quality values)",
            Modern::request(44, "tools/list", json!({}))
                .with_header("Accept", "application/json;q=1.0, text/event-stream;q=0.5"),
        ),
    ];
    if has_tool(cx) {
        requests.push((
            "tools/call",
            Modern::request(43, "tools/call", json!({"name": TOOL, "arguments": {}})),
        ));
    }
    let mut results = Vec::new();
    for (method, message) in requests {
        let id = message.body["id"].as_i64().unwrap_or_default();
        let reply = send(cx, cx.http(), token, message.req(cx, token)).await?;
        if let Some(result) = result_of(&reply, id).cloned() {
            results.push((method, reply, result));
        }
    }
    Ok(results)
}

async fn results_carry_result_type(cx: Ctx) -> anyhow::Result<Verdict> {
    // "The `result` MUST include a `resultType` field to indicate the type of the result."
    let token = token(&cx).await?;
    let mut f = Findings::new(&cx);
    for (method, reply, result) in some_results(&cx, &token).await? {
        let result_type = result.get("resultType");
        if f.require(
            result_type.is_some_and(Value::is_string),
            format!(
                "the {method} result has resultType {}, not a string",
                super::shown_json(result_type)
            ),
            Some(&reply.exchange),
        ) && !matches!(
            result_type.and_then(Value::as_str),
            Some("complete" | "input_required")
        ) {
            f.note(format!(
                "the {method} result has resultType {}, an extension's value",
                super::shown_json(result_type)
            ));
        }
    }
    Ok(f.verdict())
}

async fn results_name_the_server(cx: Ctx) -> anyhow::Result<Verdict> {
    // "Servers SHOULD include the following `io.modelcontextprotocol/*` field in every
    // result's `_meta`, unless specifically configured not to do so, …:
    // `io.modelcontextprotocol/serverInfo`". server/discover is SHTTP5-20's.
    let token = token(&cx).await?;
    let mut f = Findings::new(&cx);
    for (method, reply, result) in some_results(&cx, &token).await? {
        if method == "server/discover" {
            continue;
        }
        f.require(
            result
                .pointer("/_meta/io.modelcontextprotocol~1serverInfo")
                .is_some_and(|info| info.get("name").is_some() && info.get("version").is_some()),
            format!("the {method} result's _meta has no io.modelcontextprotocol/serverInfo with name and version"),
            Some(&reply.exchange),
        );
    }
    Ok(f.verdict())
}

async fn refused_initialize_names_versions(cx: Ctx) -> anyhow::Result<Verdict> {
    // "A server that supports only modern versions SHOULD name the protocol versions it
    // supports in any error it returns to an `initialize` request, on any transport". A
    // server that still offers the handshake answers it instead.
    let token = token(&cx).await?;
    let shttp = Shttp::new(cx.http().clone(), cx.mcp_url(), Some(token.clone()));
    let initialize = json!({
        "jsonrpc": "2.0",
        "id": 51,
        "method": "initialize",
        "params": crate::http::streamable::initialize_params(Version::V2025_11_25.as_str()),
    });
    let reply = shttp.post(&initialize).await?;
    let mut f = Findings::new(&cx);
    if result_of(&reply, 51).is_some_and(|r| r.get("protocolVersion").is_some()) {
        // A dual-era server: close the session the handshake opened.
        if let Some(session) = reply.exchange.header("mcp-session-id") {
            let mut closing = shttp.clone();
            closing.session = Some(session.to_owned());
            let _ = closing.delete().await;
        }
        f.note("the server answers initialize: it supports versions before 2026-07-28");
        return Ok(f.verdict());
    }
    let text = reply.exchange.text();
    f.require(
        text.contains(MODERN),
        format!(
            "the error to initialize ({}) does not name {MODERN} among the supported versions",
            reply.exchange.status
        ),
        Some(&reply.exchange),
    );
    Ok(f.verdict())
}

/// Codes 2026-07-28 retired: "Implementations of this protocol version MUST NOT emit
/// these codes".
const RETIRED_CODES: [i64; 2] = [-32002, -32042];
/// The codes 2026-07-28 defines in the reserved sub-range -32020..-32099.
const DEFINED_MCP_CODES: [i64; 3] = [-32020, -32021, -32022];

async fn no_retired_error_codes(cx: Ctx) -> anyhow::Result<Verdict> {
    // "Implementations of this protocol version MUST NOT emit these codes: … Implementations
    // MUST NOT emit any code from this sub-range that is not defined by this
    // specification and MUST use defined codes only with their specified meanings."
    let token = token(&cx).await?;
    let requests = [
        (
            "tools/call of an unknown tool",
            Modern::request(
                61,
                "tools/call",
                json!({"name": "no_such_tool", "arguments": {}}),
            ),
        ),
        (
            "tools/list with an invalid cursor",
            Modern::request(
                62,
                "tools/list",
                json!({"cursor": "shttp5-24-not-a-cursor"}),
            ),
        ),
        (
            "an unknown method",
            Modern::request(63, "nope/nope", json!({})),
        ),
    ];
    let mut f = Findings::new(&cx);
    for (what, message) in requests {
        let id = message.body["id"].as_i64().unwrap_or_default();
        let reply = send(&cx, cx.http(), &token, message.req(&cx, &token)).await?;
        let Some(code) = code_of(&reply, id) else {
            continue;
        };
        f.require(
            !RETIRED_CODES.contains(&code),
            format!("{what} got the retired error code {code}"),
            Some(&reply.exchange),
        );
        f.require(
            !(-32099..=-32020).contains(&code) || DEFINED_MCP_CODES.contains(&code),
            format!("{what} got {code}, a reserved code 2026-07-28 does not define"),
            Some(&reply.exchange),
        );
    }
    Ok(f.verdict())
}

async fn removed_methods_are_gone(cx: Ctx) -> anyhow::Result<Verdict> {
    // 2026-07-28 removes `ping` (and `initialize`, `logging/setLevel`): "If the server
    // does not implement the requested RPC method, it MUST respond with `404 Not Found`
    // and a JSON-RPC error with code `-32601`". A server that also serves earlier
    // versions still has `ping`, so for it a 404 is only expected. Without
    // `io.modelcontextprotocol/logLevel` in a request's `_meta`, the server MUST NOT send
    // `notifications/message` for it.
    let token = token(&cx).await?;
    let versions = supported_versions(&cx, &token).await?;
    let mut f = Findings::new(&cx);
    let ping = Modern::request(71, "ping", json!({}));
    let reply = send(&cx, cx.http(), &token, ping.req(&cx, &token)).await?;
    let removed = reply.exchange.status == 404 && code_of(&reply, 71) == Some(-32601);
    let message = format!(
        "a 2026-07-28 ping answered {} with code {}, not 404 and -32601",
        reply.exchange.status,
        super::shown(code_of(&reply, 71))
    );
    if modern_only(&versions) {
        f.require(removed, message, Some(&reply.exchange));
    } else {
        f.prefer(removed, message, Some(&reply.exchange));
    }
    let request = if has_tool(&cx) {
        Modern::request(72, "tools/call", json!({"name": TOOL, "arguments": {}}))
    } else {
        Modern::request(72, "tools/list", json!({}))
    };
    let reply = send(&cx, cx.http(), &token, request.req(&cx, &token)).await?;
    f.require(
        !reply
            .messages
            .iter()
            .any(|m| m.get("method") == Some(&json!("notifications/message"))),
        "the server sent notifications/message for a request whose _meta has no logLevel",
        Some(&reply.exchange),
    );
    Ok(f.verdict())
}

/// Opens a 2026-07-28 `subscriptions/listen` stream with `token`: the exchange and a reader
/// of the open stream, or `None` when the answer is not a stream (the server need not offer
/// subscriptions; `subscription_is_acknowledged_first` judges a refusal).
pub(super) async fn open_subscription(
    cx: &Ctx,
    token: &str,
) -> anyhow::Result<Option<(crate::http::Exchange, crate::http::SseReader)>> {
    let message = Modern::request(
        82,
        "subscriptions/listen",
        json!({"notifications": {"toolsListChanged": true}}),
    );
    let opened = cx.http().open(message.req(cx, token)).await?;
    if opened.exchange.status != 200
        || opened.exchange.content_type().as_deref() != Some("text/event-stream")
    {
        return Ok(None);
    }
    Ok(Some((
        opened.exchange,
        crate::http::SseReader::new(opened.response),
    )))
}

async fn subscription_is_acknowledged_first(cx: Ctx) -> anyhow::Result<Verdict> {
    // "The server MUST send `notifications/subscriptions/acknowledged` as the first message
    // carrying the subscription's ID in `_meta` under
    // `io.modelcontextprotocol/subscriptionId`, and MUST NOT send any notification on the
    // subscription before it." Servers need not offer subscriptions at all.
    let token = token(&cx).await?;
    let message = Modern::request(
        81,
        "subscriptions/listen",
        json!({"notifications": {"toolsListChanged": true}}),
    );
    let opened = cx.http().open(message.req(&cx, &token)).await?;
    let mut f = Findings::new(&cx);
    let ex = opened.exchange.clone();
    if ex.content_type().as_deref() != Some("text/event-stream") {
        // Not a stream: read the (bounded) answer to see whether it is a refusal.
        let reply = send(&cx, cx.http(), &token, message.req(&cx, &token)).await?;
        if reply.exchange.status == 404 && code_of(&reply, 81) == Some(-32601) {
            return Ok(Verdict::Skip(
                "the server does not offer subscriptions/listen (404, -32601)".into(),
            ));
        }
        f.require(
            false,
            format!(
                "subscriptions/listen answered {} with Content-Type {} and code {}, neither a stream nor 404 -32601",
                reply.exchange.status,
                super::shown(reply.exchange.content_type()),
                super::shown(code_of(&reply, 81))
            ),
            Some(&reply.exchange),
        );
        return Ok(f.verdict());
    }
    // The stream stays open; read until its first JSON-RPC message, then close it.
    let mut reader = crate::http::SseReader::new(opened.response);
    let deadline = tokio::time::Instant::now() + cx.http().timeout;
    let mut first = None;
    while first.is_none() {
        let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
        if wait.is_zero() {
            break;
        }
        match reader.next(wait).await {
            Ok(Some(event)) => {
                first = crate::http::messages_from_events(&[event])
                    .0
                    .into_iter()
                    .next();
            }
            Ok(None) | Err(_) => break,
        }
    }
    drop(reader);
    let Some(first) = first else {
        f.require(
            false,
            "the subscriptions/listen stream sent no message within the timeout",
            Some(&ex),
        );
        return Ok(f.verdict());
    };
    let method = first.get("method").and_then(Value::as_str);
    f.require(
        method == Some("notifications/subscriptions/acknowledged"),
        format!(
            "the first message on the subscription stream has the method {}, not \
             notifications/subscriptions/acknowledged",
            super::shown(method)
        ),
        Some(&ex),
    );
    if method == Some("notifications/subscriptions/acknowledged") {
        let id = first.pointer("/params/_meta/io.modelcontextprotocol~1subscriptionId");
        f.require(
            id.is_some_and(|id| !id.is_null()),
            "the acknowledgment has no io.modelcontextprotocol/subscriptionId in _meta",
            Some(&ex),
        );
    }
    // The acknowledgment comes first, not last: a server that holds the stream back until
    // it ends (reading it whole to rewrite it, say) delivers it only when the stream ends,
    // which for a subscription bounded by its token is when the token expires. The token
    // that opened the subscription must still work once the acknowledgment is in.
    let probe = Modern::request(83, "tools/list", json!({}));
    let reply = send(&cx, cx.http(), &token, probe.req(&cx, &token)).await?;
    f.require(
        reply.exchange.status != 401,
        "the token that opened the subscription was refused (401) by the time its first \
         message arrived: the stream was held back until it ended",
        Some(&reply.exchange),
    );
    Ok(f.verdict())
}
