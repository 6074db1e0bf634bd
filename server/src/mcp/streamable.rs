//! Streamable HTTP at `/mcp`: rmcp's `StreamableHttpService`, behind a thin layer
//! that binds sessions to their user and mends where the SDK departs from the spec
//! (recorded in ARCHITECTURE.md).

use std::sync::Arc;

use axum::{
    Router,
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{Next, from_fn_with_state},
    response::{IntoResponse, Response},
};
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ClientRequest, GetMeta, ProtocolVersion,
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use serde_json::json;

use super::{Transport, accepted, handler::ProfileServer, jsonrpc_error, read_message};
use crate::{AppState, resource::Authenticated};

pub(super) const SESSION_HEADER: &str = "mcp-session-id";
const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";
/// Only with the `session-id-with-space` fault: what session ids are dressed in.
const SPACED_SESSION_PREFIX: &str = "mcp ";
/// Matches rmcp's own limit, so the body is never larger here than it would accept.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Error bodies rewritten as JSON-RPC are short; anything longer is cut.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

pub fn routes(state: &AppState) -> Router<AppState> {
    let handler_state = state.clone();
    let service = StreamableHttpService::new(
        move || Ok(ProfileServer::new(handler_state.clone())),
        Arc::new(LocalSessionManager::default()),
        // Host and Origin are checked by our own middleware, the same way for both
        // transports, so the SDK's copies of those checks are switched off.
        StreamableHttpServerConfig::default()
            .disable_allowed_hosts()
            .disable_allowed_origins()
            // Stateless (2026-07-28) requests whose handler sends nothing before the
            // result get it as one JSON body instead of an SSE stream of one event.
            .with_json_response(true)
            .with_cancellation_token(state.shutdown.child_token()),
    );
    Router::new()
        .route_service("/mcp", service)
        .route_layer(from_fn_with_state(state.clone(), bind_sessions))
}

fn session_not_found() -> Response {
    jsonrpc_error(StatusCode::NOT_FOUND, -32600, "Session not found")
}

async fn bind_sessions(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let config = &state.config;
    let Some(caller) = request.extensions().get::<Authenticated>().cloned() else {
        // The bearer check runs first and always inserts the caller.
        return jsonrpc_error(StatusCode::UNAUTHORIZED, -32600, "Unauthorized");
    };
    undress_session_id(config, &mut request);
    unalias_session_id(&state, &mut request);
    let session_id = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let method = request.method().clone();
    if let Some(refusal) = unsupported_version_without_body(config, &mut request) {
        return refusal;
    }

    if method == Method::GET && crate::injected!(config, GetNotImplemented) {
        return jsonrpc_error(StatusCode::NOT_IMPLEMENTED, -32600, "Not implemented");
    }
    if let Some(session_id) = &session_id {
        let owner = state
            .sessions
            .streamable()
            .get(session_id)
            .map(|owner| owner.user.id);
        match owner {
            // Answer as if the session did not exist: another user's session is
            // none of this caller's business.
            Some(owner)
                if owner != caller.user.id && !crate::injected!(config, UnboundSessions) =>
            {
                return session_not_found();
            }
            Some(_) if method == Method::DELETE && crate::injected!(config, DeleteKeepsSession) => {
                return StatusCode::OK.into_response();
            }
            // rmcp answers 202 to DELETE of an unknown session; the spec asks 404.
            None if method == Method::DELETE => return session_not_found(),
            _ => {}
        }
    }
    if let Some(refusal) = protocol_version_faults(config, &mut request, session_id.is_some()) {
        return refusal;
    }

    let mut discover = false;
    let (request, stateless) = if method == Method::POST {
        let (mut parts, body) = request.into_parts();
        let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
            return jsonrpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                -32600,
                "Request body too large",
            );
        };
        let message = match read_message(config, Transport::StreamableHttp, &bytes) {
            Ok(message) => message,
            Err(answer) => return *answer,
        };
        if crate::injected!(config, RefuseInitializedNotification)
            && matches!(&message, ClientJsonRpcMessage::Notification(notification)
                if matches!(notification.notification, ClientNotification::InitializedNotification(_)))
        {
            return jsonrpc_error(
                StatusCode::BAD_REQUEST,
                -32600,
                "Bad Request: unexpected notification",
            );
        }
        let stateless = is_stateless(&message);
        discover = matches!(&message, ClientJsonRpcMessage::Request(request)
            if matches!(request.request, ClientRequest::DiscoverRequest(_)));
        if let Some(early) =
            sessionless_request_faults(&state, &caller, &mut parts, &message, stateless)
        {
            return early;
        }
        if stateless && let Some(early) = stateless_request_faults(config, &parts, &message) {
            return early;
        }
        (Request::from_parts(parts, Body::from(bytes)), stateless)
    } else {
        (request, false)
    };

    let mut response = next.run(request).await;

    if session_id.is_none()
        && let Some(new_session) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|value| value.to_str().ok())
    {
        state
            .sessions
            .streamable()
            .insert(new_session.to_owned(), caller.clone());
        dress_session_id(config, &mut response);
        alias_session_id(&state, &mut response);
    }
    if method == Method::DELETE
        && response.status().is_success()
        && let Some(session_id) = &session_id
    {
        state.sessions.streamable().remove(session_id);
    }
    if response.status() == StatusCode::ACCEPTED && crate::injected!(config, NotificationsGet200) {
        *response.status_mut() = StatusCode::OK;
    }
    if discover && crate::injected!(config, DiscoverWithoutCacheHints) && is_json(&response) {
        response = drop_discover_cache_hints(response).await;
    }
    if stateless && rewrites_stateless_errors(config) && is_json(&response) {
        response = rewrite_stateless_error(config, response).await;
    }
    if response.status().is_client_error() && is_plain_text(&response) {
        return plain_text_to_jsonrpc(response).await;
    }
    if method == Method::POST && is_event_stream(&response) {
        return rewrite_event_stream(config, response).await;
    }
    response
}

/// The response's media type, without parameters such as `charset`.
fn media_type(response: &Response) -> Option<&str> {
    let value = response
        .headers()
        .get(header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    Some(value.split(';').next().unwrap_or(value).trim())
}

fn is_event_stream(response: &Response) -> bool {
    media_type(response) == Some("text/event-stream")
}

fn is_json(response: &Response) -> bool {
    media_type(response) == Some("application/json")
}

/// Whether a message is a 2026-07-28 request: one that carries its protocol version
/// in `params._meta` instead of relying on a session.
fn is_stateless(message: &ClientJsonRpcMessage) -> bool {
    match message {
        ClientJsonRpcMessage::Request(request) => {
            request.request.get_meta().protocol_version().is_some()
        }
        _ => false,
    }
}

/// rmcp's error bodies: `text/plain`, or no content type at all.
fn is_plain_text(response: &Response) -> bool {
    media_type(response).is_none_or(|media_type| media_type == "text/plain")
}

/// rmcp's HTTP errors are plain text; the transport spec lets the body be a JSON-RPC
/// error without an id, which clients can parse, so rewrite them as that.
async fn plain_text_to_jsonrpc(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let text = to_bytes(body, MAX_ERROR_BODY_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("Bad Request")
            .to_owned()
    } else {
        text
    };
    let body = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32600, "message": message}
    });
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// With the `session-id-with-space` fault, clients hold `mcp <id>`; rmcp and the
/// owner table know the bare id.
fn undress_session_id(config: &crate::Config, request: &mut Request) {
    if !crate::injected!(config, SessionIdWithSpace) {
        return;
    }
    let bare = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix(SPACED_SESSION_PREFIX))
        .and_then(|bare| HeaderValue::from_str(bare).ok());
    if let Some(bare) = bare {
        request.headers_mut().insert(SESSION_HEADER, bare);
    }
}

fn dress_session_id(config: &crate::Config, response: &mut Response) {
    if !crate::injected!(config, SessionIdWithSpace) {
        return;
    }
    let dressed = response
        .headers()
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|id| HeaderValue::from_str(&format!("{SPACED_SESSION_PREFIX}{id}")).ok());
    if let Some(dressed) = dressed {
        response.headers_mut().insert(SESSION_HEADER, dressed);
    }
}

/// Numbers the sessions of the `sequential-session-ids` fault.
static SESSION_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// With the `sequential-session-ids` fault, clients hold `session-<n>`; rmcp and the
/// owner table know the id rmcp issued.
fn alias_session_id(state: &AppState, response: &mut Response) {
    if !crate::injected!(state.config, SequentialSessionIds) {
        return;
    }
    let Some(issued) = response
        .headers()
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
    else {
        return;
    };
    let n = SESSION_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let alias = format!("session-{n}");
    if let Ok(value) = HeaderValue::from_str(&alias) {
        state.sessions.streamable_aliases().insert(alias, issued);
        response.headers_mut().insert(SESSION_HEADER, value);
    }
}

fn unalias_session_id(state: &AppState, request: &mut Request) {
    if !crate::injected!(state.config, SequentialSessionIds) {
        return;
    }
    let issued = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|alias| state.sessions.streamable_aliases().get(alias).cloned())
        .and_then(|issued| HeaderValue::from_str(&issued).ok());
    if let Some(issued) = issued {
        request.headers_mut().insert(SESSION_HEADER, issued);
    }
}

/// The faults about `MCP-Protocol-Version`: dropping an unsupported value, or
/// refusing a request in a session that has none.
fn protocol_version_faults(
    config: &crate::Config,
    request: &mut Request,
    in_session: bool,
) -> Option<Response> {
    let version = request
        .headers()
        .get(PROTOCOL_VERSION_HEADER)
        .map(|value| value.to_str().unwrap_or_default().to_owned());
    if crate::injected!(config, IgnoreUnsupportedProtocolVersion)
        && let Some(version) = &version
        && !ProtocolVersion::KNOWN_VERSIONS
            .iter()
            .any(|known| known.as_str() == version)
    {
        request.headers_mut().remove(PROTOCOL_VERSION_HEADER);
    }
    (crate::injected!(config, RequireProtocolVersionHeader)
        && in_session
        && request.method() == Method::POST
        && version.is_none())
    .then(|| {
        jsonrpc_error(
            StatusCode::BAD_REQUEST,
            -32600,
            "MCP-Protocol-Version is required",
        )
    })
}

/// GET and DELETE carry `MCP-Protocol-Version` like every request in a session: "If
/// the server receives a request with an invalid or unsupported MCP-Protocol-Version,
/// it MUST respond with 400 Bad Request" (2025-06-18 transports). rmcp judges the
/// header of POSTs while it reads their body; requests without one are judged here.
/// The `protocol-version-checked-on-post-only` fault drops the header instead.
fn unsupported_version_without_body(
    config: &crate::Config,
    request: &mut Request,
) -> Option<Response> {
    if request.method() == Method::POST {
        return None;
    }
    let version = request.headers().get(PROTOCOL_VERSION_HEADER)?;
    let supported = version.to_str().is_ok_and(|version| {
        ProtocolVersion::KNOWN_VERSIONS
            .iter()
            .any(|known| known.as_str() == version)
    });
    if supported {
        return None;
    }
    if crate::injected!(config, ProtocolVersionCheckedOnPostOnly) {
        request.headers_mut().remove(PROTOCOL_VERSION_HEADER);
        return None;
    }
    Some(jsonrpc_error(
        StatusCode::BAD_REQUEST,
        -32600,
        "Bad Request: unsupported MCP-Protocol-Version",
    ))
}

/// Only with the `discover-without-cache-hints` fault: the `server/discover` result
/// loses `resultType`, `ttlMs` and `cacheScope`.
async fn drop_discover_cache_hints(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return jsonrpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            -32603,
            "Response too large",
        );
    };
    let Ok(mut message) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if let Some(result) = message
        .get_mut("result")
        .and_then(serde_json::Value::as_object_mut)
    {
        for key in ["resultType", "ttlMs", "cacheScope"] {
            result.remove(key);
        }
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(message.to_string()))
}

/// The faults about requests without `Mcp-Session-Id`: joining a session the same
/// token opened, or ignoring a request from a token that never initialized.
fn sessionless_request_faults(
    state: &AppState,
    caller: &Authenticated,
    parts: &mut http::request::Parts,
    message: &ClientJsonRpcMessage,
    stateless: bool,
) -> Option<Response> {
    let config = &state.config;
    let joins = crate::injected!(config, HeaderlessJoinsSession);
    // 2026-07-28 has no initialize, so its requests cannot come before one.
    let ignores = crate::injected!(config, IgnoreBeforeInitialize) && !stateless;
    let is_request = matches!(message, ClientJsonRpcMessage::Request(request)
        if !matches!(request.request, ClientRequest::InitializeRequest(_)));
    if !(joins || ignores) || !is_request || parts.headers.contains_key(SESSION_HEADER) {
        return None;
    }
    let own_session = state
        .sessions
        .streamable()
        .iter()
        .find(|(_, owner)| owner.grant_id == caller.grant_id)
        .map(|(id, _)| id.clone());
    match own_session {
        Some(id) if joins => {
            if let Ok(value) = HeaderValue::from_str(&id) {
                parts.headers.insert(SESSION_HEADER, value);
            }
            None
        }
        None if ignores => Some(accepted(config, Transport::StreamableHttp)),
        _ => None,
    }
}

/// The faults about 2026-07-28 requests that answer before rmcp sees them: no
/// `server/discover`, and a `tools/call` refused without a session, as if its
/// context came from an earlier `initialize`.
fn stateless_request_faults(
    config: &crate::Config,
    parts: &http::request::Parts,
    message: &ClientJsonRpcMessage,
) -> Option<Response> {
    let ClientJsonRpcMessage::Request(request) = message else {
        return None;
    };
    let id = serde_json::to_value(&request.id).unwrap_or_default();
    let refuse = |status: StatusCode, code: i64, text: &str| {
        let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": text}});
        (status, axum::Json(body)).into_response()
    };
    match &request.request {
        ClientRequest::DiscoverRequest(_) if crate::injected!(config, NoServerDiscover) => {
            Some(refuse(
                StatusCode::NOT_FOUND,
                -32601,
                "Method not found: server/discover",
            ))
        }
        ClientRequest::CallToolRequest(_)
            if crate::injected!(config, StatelessCallNeedsSession)
                && !parts.headers.contains_key(SESSION_HEADER) =>
        {
            Some(refuse(
                StatusCode::BAD_REQUEST,
                -32600,
                "Bad Request: no session, initialize first",
            ))
        }
        _ => None,
    }
}

fn rewrites_stateless_errors(config: &crate::Config) -> bool {
    let rewriting = [
        crate::injected!(config, HeaderMismatchAsInvalidParams),
        crate::injected!(config, UnsupportedVersionWithoutList),
        crate::injected!(config, MethodNotFoundGets200),
    ];
    rewriting.contains(&true)
}

/// The faults that rewrite rmcp's JSON error to a 2026-07-28 request: the
/// `HeaderMismatch` code, the supported versions of `UnsupportedProtocolVersion`, and
/// the 404 of an unknown method.
async fn rewrite_stateless_error(config: &crate::Config, response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return jsonrpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            -32603,
            "Response too large",
        );
    };
    let Ok(mut message) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let code = message
        .pointer("/error/code")
        .and_then(serde_json::Value::as_i64);
    match code {
        Some(-32020) if crate::injected!(config, HeaderMismatchAsInvalidParams) => {
            message["error"]["code"] = json!(-32602);
        }
        Some(-32022) if crate::injected!(config, UnsupportedVersionWithoutList) => {
            if let Some(data) = message
                .pointer_mut("/error/data")
                .and_then(serde_json::Value::as_object_mut)
            {
                data.remove("supported");
            }
        }
        Some(-32601)
            if parts.status == StatusCode::NOT_FOUND
                && crate::injected!(config, MethodNotFoundGets200) =>
        {
            parts.status = StatusCode::OK;
        }
        _ => return Response::from_parts(parts, Body::from(bytes)),
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(message.to_string()))
}

/// The faults that touch an SSE response to a POST: a first event that is not JSON,
/// and rewritten messages. rmcp ends these streams after the response, so reading
/// the whole body first is safe.
async fn rewrite_event_stream(config: &crate::Config, response: Response) -> Response {
    let prefix = crate::injected!(config, NonJsonSseEvent);
    if !prefix && !super::rewrites_outgoing(config) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return jsonrpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            -32603,
            "Response too large",
        );
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut out = String::new();
    if prefix {
        out.push_str("data: keep-alive\n\n");
    }
    for line in text.split_inclusive('\n') {
        let rewritten = line
            .strip_prefix("data: ")
            .and_then(|data| serde_json::from_str::<serde_json::Value>(data.trim_end()).ok())
            .map(|mut message| {
                super::rewrite_outgoing(config, &mut message);
                format!("data: {message}\n")
            });
        out.push_str(rewritten.as_deref().unwrap_or(line));
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}
