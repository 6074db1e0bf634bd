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
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use serde_json::json;

use super::handler::ProfileServer;
use crate::{AppState, resource::Authenticated};

const SESSION_HEADER: &str = "mcp-session-id";
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
            .with_cancellation_token(state.shutdown.child_token()),
    );
    Router::new()
        .route_service("/mcp", service)
        .route_layer(from_fn_with_state(state.clone(), bind_sessions))
}

fn jsonrpc_error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {"code": code, "message": message}
        })),
    )
        .into_response()
}

fn session_not_found() -> Response {
    jsonrpc_error(StatusCode::NOT_FOUND, -32600, "Session not found")
}

async fn bind_sessions(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(caller) = request.extensions().get::<Authenticated>().cloned() else {
        // The bearer check runs first and always inserts the caller.
        return jsonrpc_error(StatusCode::UNAUTHORIZED, -32600, "Unauthorized");
    };
    let session_id = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let method = request.method().clone();

    if let Some(session_id) = &session_id {
        let owner = state.sessions.streamable().get(session_id).copied();
        match owner {
            // Answer as if the session did not exist: another user's session is
            // none of this caller's business.
            Some(owner)
                if owner != caller.user.id && !crate::injected!(state.config, UnboundSessions) =>
            {
                return session_not_found();
            }
            // rmcp answers 202 to DELETE of an unknown session; the spec asks 404.
            None if method == Method::DELETE => return session_not_found(),
            _ => {}
        }
    }

    let request = if method == Method::POST {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
            return jsonrpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                -32600,
                "Request body too large",
            );
        };
        // rmcp answers unparseable JSON with 415; JSON-RPC asks for a parse error.
        if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() {
            return jsonrpc_error(StatusCode::BAD_REQUEST, -32700, "Parse error");
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        request
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
            .insert(new_session.to_owned(), caller.user.id);
    }
    if method == Method::DELETE
        && response.status().is_success()
        && let Some(session_id) = &session_id
    {
        state.sessions.streamable().remove(session_id);
    }
    if response.status() == StatusCode::ACCEPTED
        && crate::injected!(state.config, NotificationsGet200)
    {
        *response.status_mut() = StatusCode::OK;
    }
    if response.status().is_client_error() && is_plain_text(&response) {
        return plain_text_to_jsonrpc(response).await;
    }
    response
}

fn is_plain_text(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_none_or(|value| value.starts_with("text/plain"))
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
