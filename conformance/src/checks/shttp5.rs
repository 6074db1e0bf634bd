//! SHTTP5: the stateless Streamable HTTP transport of 2026-07-28. Every request carries its
//! own context: the `MCP-Protocol-Version` and `Mcp-Method` (and `Mcp-Name`) headers, and the
//! protocol version and client capabilities in `params._meta`. There is no `initialize` and
//! no session.

use serde_json::{Value, json};

use super::{Check, Ctx, Findings, Level, LoginOptions, SHTTP, Verdict};
use crate::body;
use crate::http::streamable::{ACCEPT_BOTH, RpcReply, Shttp};
use crate::http::{Http, Req};
use crate::version::{Version, Versions};

const STATELESS: Versions = Versions::only(Version::V2026_07_28);
const MODERN: &str = Version::V2026_07_28.as_str();
/// A version no server implements, for SHTTP5-10.
const UNKNOWN_VERSION: &str = "1900-01-01";
const TOOL: &str = "get_user_profile";

pub fn checks() -> Vec<Check> {
    vec![
        Check {
            id: "SHTTP5-09",
            case: None,
            also: &[],
            level: Level::Must,
            versions: STATELESS,
            scope: SHTTP,
            title: "an MCP-Protocol-Version header that differs from _meta gets 400 -32020",
            run: body!(header_mismatch_gets_400),
        },
        Check {
            id: "SHTTP5-10",
            case: None,
            also: &[],
            level: Level::Must,
            versions: STATELESS,
            scope: SHTTP,
            title: "an unsupported protocol version gets 400 -32022 listing the supported ones",
            run: body!(unsupported_version_gets_400),
        },
        Check {
            id: "SHTTP5-11",
            case: None,
            also: &[],
            level: Level::Must,
            versions: STATELESS,
            scope: SHTTP,
            title: "an unknown method gets 404 -32601",
            run: body!(unknown_method_gets_404),
        },
        Check {
            id: "SHTTP5-20",
            case: None,
            also: &[],
            level: Level::Must,
            versions: STATELESS,
            scope: SHTTP,
            title: "server/discover lists 2026-07-28, the capabilities, resultType, ttlMs and cacheScope",
            run: body!(discover_is_implemented),
        },
        Check {
            id: "SHTTP5-22",
            case: None,
            also: &[],
            level: Level::Must,
            versions: STATELESS,
            scope: SHTTP,
            title: "a first request on a fresh connection, tools/call without discover, works",
            run: body!(first_request_is_self_contained),
        },
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
