//! The legacy HTTP+SSE transport of protocol 2024-11-05, which rmcp no longer ships:
//! `GET /sse` opens a stream whose first event names the endpoint for POSTs, each
//! POST is answered with 202, and the responses travel as `message` events on the
//! stream. The MCP session itself runs on rmcp, fed through a pair of channels.

use std::{
    convert::Infallible,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use axum::{
    Extension, Router,
    body::to_bytes,
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
    model::{ClientJsonRpcMessage, ClientRequest, GetExtensions, ServerJsonRpcMessage},
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::{SseSession, Transport, accepted, handler::ProfileServer, jsonrpc_error, read_message};
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

/// Numbers the sessions of the `sequential-sse-session-ids` fault.
static SESSION_COUNTER: AtomicU64 = AtomicU64::new(0);

async fn connect(
    State(state): State<AppState>,
    Extension(caller): Extension<Authenticated>,
) -> Response {
    let session_id = if crate::injected!(state.config, SequentialSseSessionIds) {
        format!(
            "session-{}",
            SESSION_COUNTER.fetch_add(1, Ordering::Relaxed) + 1
        )
    } else {
        store::random_id()
    };
    let (to_server, from_client) = mpsc::channel::<Box<ClientJsonRpcMessage>>(CHANNEL_CAPACITY);
    let (to_client, from_server) =
        futures::channel::mpsc::channel::<ServerJsonRpcMessage>(CHANNEL_CAPACITY);
    let diverted = std::sync::Arc::default();
    state.sessions.sse().insert(
        session_id.clone(),
        SseSession {
            owner: caller,
            incoming: to_server,
            initialized: false,
            diverted: std::sync::Arc::clone(&diverted),
        },
    );

    let service = state.shutdown.child_token();
    let handler = ProfileServer::new(state.clone());
    let service_token = service.clone();
    tokio::spawn(async move {
        let transport = (
            to_client,
            ReceiverStream::new(from_client).map(|message| *message),
        );
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
    let config = state.config.clone();
    let messages = from_server.filter_map(move |message| {
        // The guard lives as long as the stream.
        let _ = &guard;
        let message = divert_response(&diverted, message);
        futures::future::ready(message.map(|message| event_for(&config, &message)))
    });
    let stream = stream::iter(first)
        .chain(messages)
        .take_until(service.cancelled_owned());
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// Diverted responses map, by serialized request id.
type Diverted = std::sync::Mutex<
    std::collections::HashMap<String, tokio::sync::oneshot::Sender<serde_json::Value>>,
>;

/// Only with the `response-only-in-post-body` fault: hands a response to the POST
/// waiting for it instead of to the stream.
fn divert_response(
    diverted: &Diverted,
    message: ServerJsonRpcMessage,
) -> Option<ServerJsonRpcMessage> {
    let id = match &message {
        ServerJsonRpcMessage::Response(response) => Some(&response.id),
        ServerJsonRpcMessage::Error(error) => error.id.as_ref(),
        _ => None,
    };
    let waiting = id
        .and_then(|id| serde_json::to_string(id).ok())
        .and_then(|id| {
            diverted
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .remove(&id)
        });
    match waiting {
        Some(post) => {
            let _ = post.send(serde_json::to_value(&message).unwrap_or_default());
            None
        }
        None => Some(message),
    }
}

/// A `message` event carrying one outgoing JSON-RPC message.
fn event_for(config: &crate::Config, message: &ServerJsonRpcMessage) -> Result<Event, Infallible> {
    {
        let serialized = if super::rewrites_outgoing(config) {
            serde_json::to_value(message).map(|mut value| {
                super::rewrite_outgoing(config, &mut value);
                value.to_string()
            })
        } else {
            serde_json::to_string(message)
        };
        let data = serialized.unwrap_or_else(|error| {
            json!({
                "jsonrpc": "2.0",
                "method": "notifications/message",
                "params": {"level": "error", "data": format!("unserialisable message: {error}")}
            })
            .to_string()
        });
        Ok(Event::default().event("message").data(data))
    }
}

/// 202 Accepted, as the SDKs answer a POST whose reply travels on the stream.
async fn message(State(state): State<AppState>, request: Request) -> Response {
    let config = &state.config;
    let (parts, body) = request.into_parts();
    let Some(caller) = parts.extensions.get::<Authenticated>().cloned() else {
        return jsonrpc_error(StatusCode::UNAUTHORIZED, -32600, "Unauthorized");
    };
    let session_id = parts.uri.query().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "session_id")
            .map(|(_, value)| value.into_owned())
    });
    let Some(session_id) = session_id else {
        return jsonrpc_error(StatusCode::BAD_REQUEST, -32600, "session_id is required");
    };
    let (incoming, initialized, diverted) = {
        let sessions = state.sessions.sse();
        match sessions.get(&session_id) {
            Some(session)
                if session.owner.user.id == caller.user.id
                    || crate::injected!(config, UnboundSessions) =>
            {
                (
                    session.incoming.clone(),
                    session.initialized,
                    std::sync::Arc::clone(&session.diverted),
                )
            }
            // Another user's session is answered exactly like a missing one.
            _ => {
                let status = if crate::injected!(config, UnknownSseSessionGets400) {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::NOT_FOUND
                };
                return jsonrpc_error(status, -32600, "Could not find session");
            }
        }
    };
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return jsonrpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            -32600,
            "Request body too large",
        );
    };
    let mut message = match read_message(config, Transport::Sse, &bytes) {
        Ok(message) => message,
        Err(answer) => return *answer,
    };
    let request_id = match &message {
        ClientJsonRpcMessage::Request(request) => {
            if matches!(request.request, ClientRequest::InitializeRequest(_)) {
                if let Some(session) = state.sessions.sse().get_mut(&session_id) {
                    session.initialized = true;
                }
            } else if !initialized && crate::injected!(config, IgnoreBeforeInitialize) {
                return accepted(config, Transport::Sse);
            }
            Some(request.id.clone())
        }
        _ => None,
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
    let post_answer = match &request_id {
        Some(id) if crate::injected!(config, ResponseOnlyInPostBody) => {
            let (sender, receiver) = tokio::sync::oneshot::channel();
            if let Ok(key) = serde_json::to_string(id) {
                diverted
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .insert(key, sender);
            }
            Some(receiver)
        }
        _ => None,
    };
    let enqueued = tokio::time::timeout(ENQUEUE_TIMEOUT, incoming.send(Box::new(message))).await;
    if let (Ok(Ok(())), Some(receiver)) = (&enqueued, post_answer) {
        return match tokio::time::timeout(ENQUEUE_TIMEOUT, receiver).await {
            Ok(Ok(response)) => (StatusCode::OK, axum::Json(response)).into_response(),
            _ => jsonrpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                -32603,
                "The session did not answer in time",
            ),
        };
    }
    match enqueued {
        Ok(Ok(())) => match request_id {
            Some(id) if crate::injected!(config, ResultInPostBody) => (
                accepted(config, Transport::Sse).status(),
                axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": {}})),
            )
                .into_response(),
            _ => accepted(config, Transport::Sse),
        },
        Ok(Err(_)) => jsonrpc_error(StatusCode::NOT_FOUND, -32600, "Could not find session"),
        Err(_) => jsonrpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            -32600,
            "The session is too busy; retry later",
        ),
    }
}
