//! The legacy HTTP+SSE transport of protocol 2024-11-05, which rmcp no longer ships:
//! `GET /sse` opens a stream whose first event names the endpoint for POSTs, each
//! POST is answered with 202, and the responses travel as `message` events on the
//! stream. The MCP session itself runs on rmcp, fed through a pair of channels.

use std::{convert::Infallible, time::Duration};

use axum::{
    Extension, Router,
    body::{Body, to_bytes},
    extract::{Request, State},
    http::StatusCode,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures::{StreamExt, stream};
use rmcp::{
    ServiceExt,
    model::{ClientJsonRpcMessage, GetExtensions, ServerJsonRpcMessage},
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::{SseSession, handler::ProfileServer};
use crate::{AppState, resource::Authenticated, store};

const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Messages queued per direction before a sender waits.
const CHANNEL_CAPACITY: usize = 64;
/// How long a POST may wait for room in a busy session's queue.
const ENQUEUE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sse", get(connect))
        .route("/messages/", post(message))
        .route("/messages", post(message))
}

/// Removes the session when its stream ends, however it ends: the client went away,
/// the server shut down, or the MCP service stopped.
struct SessionGuard {
    state: AppState,
    session_id: String,
    service: CancellationToken,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.state.sessions.sse().remove(&self.session_id);
        self.service.cancel();
    }
}

async fn connect(
    State(state): State<AppState>,
    Extension(caller): Extension<Authenticated>,
) -> Response {
    let session_id = store::random_id();
    let (to_server, from_client) = mpsc::channel::<ClientJsonRpcMessage>(CHANNEL_CAPACITY);
    let (to_client, from_server) =
        futures::channel::mpsc::channel::<ServerJsonRpcMessage>(CHANNEL_CAPACITY);
    state.sessions.sse().insert(
        session_id.clone(),
        SseSession {
            owner: caller.user.id,
            incoming: to_server,
        },
    );

    let service = state.shutdown.child_token();
    let handler = ProfileServer::new(state.clone());
    let service_token = service.clone();
    tokio::spawn(async move {
        let transport = (to_client, ReceiverStream::new(from_client));
        match handler.serve_with_ct(transport, service_token).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(error) => tracing::debug!(%error, "SSE session ended before initialization"),
        }
    });

    let guard = SessionGuard {
        state: state.clone(),
        session_id: session_id.clone(),
        service: service.clone(),
    };
    // The endpoint is relative, as the SDKs send it; clients resolve it against the
    // SSE URL, which keeps it on this origin.
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/messages/?session_id={session_id}"));
    let first = if crate::injected!(state.config, OmitEndpointEvent) {
        None
    } else {
        Some(Ok::<_, Infallible>(endpoint))
    };
    let messages = from_server.map(move |message| {
        // The guard lives as long as the stream.
        let _ = &guard;
        let data = serde_json::to_string(&message).unwrap_or_else(|error| {
            json!({
                "jsonrpc": "2.0",
                "method": "notifications/message",
                "params": {"level": "error", "data": format!("unserialisable message: {error}")}
            })
            .to_string()
        });
        Ok(Event::default().event("message").data(data))
    });
    let stream = stream::iter(first)
        .chain(messages)
        .take_until(service.cancelled_owned());
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        axum::Json(
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}}),
        ),
    )
        .into_response()
}

async fn message(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(caller) = parts.extensions.get::<Authenticated>().cloned() else {
        return error(StatusCode::UNAUTHORIZED, -32600, "Unauthorized");
    };
    let session_id = parts.uri.query().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "session_id")
            .map(|(_, value)| value.into_owned())
    });
    let Some(session_id) = session_id else {
        return error(StatusCode::BAD_REQUEST, -32600, "session_id is required");
    };
    let incoming = {
        let sessions = state.sessions.sse();
        match sessions.get(&session_id) {
            Some(session)
                if session.owner == caller.user.id
                    || crate::injected!(state.config, UnboundSessions) =>
            {
                session.incoming.clone()
            }
            // Another user's session is answered exactly like a missing one.
            _ => return error(StatusCode::NOT_FOUND, -32600, "Could not find session"),
        }
    };
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            -32600,
            "Request body too large",
        );
    };
    let value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(_) => return error(StatusCode::BAD_REQUEST, -32700, "Parse error"),
    };
    let mut message: ClientJsonRpcMessage = match serde_json::from_value(value) {
        Ok(message) => message,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                -32600,
                "Invalid Request: not a JSON-RPC request, notification or response",
            );
        }
    };
    // The tool finds its caller in the HTTP request parts, as on Streamable HTTP.
    match &mut message {
        ClientJsonRpcMessage::Request(request) => {
            request.request.extensions_mut().insert(parts);
        }
        ClientJsonRpcMessage::Notification(notification) => {
            notification.notification.extensions_mut().insert(parts);
        }
        _ => {}
    }
    match tokio::time::timeout(ENQUEUE_TIMEOUT, incoming.send(message)).await {
        Ok(Ok(())) => (StatusCode::ACCEPTED, Body::from("Accepted")).into_response(),
        Ok(Err(_)) => error(StatusCode::NOT_FOUND, -32600, "Could not find session"),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            -32600,
            "The session is too busy; retry later",
        ),
    }
}
