//! The legacy HTTP+SSE transport of protocol 2024-11-05, which rmcp no longer ships:
//! `GET /sse` opens a stream whose first event names the endpoint for POSTs, each
//! POST is answered with 202, and the responses travel as `message` events on the
//! stream. The MCP session itself runs on rmcp, fed through a pair of channels.

use std::{
    convert::Infallible,
    sync::Arc,
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

use super::{
    INTERNAL_ERROR, INVALID_REQUEST, SseSession, Transport, accepted, handler::ProfileServer,
    id_in_use, jsonrpc_error, read_message, unknown_session_error,
};
use crate::{AppState, resource::Authenticated, store};

const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Messages queued per direction before a sender waits.
const CHANNEL_CAPACITY: usize = 64;
/// How long a POST may wait for room in a busy session's queue.
const ENQUEUE_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests one session may have waiting for their response. A request the service
/// never answers (one the client cancelled) holds its id until the session ends, so
/// the set is bounded.
const MAX_IN_FLIGHT: usize = 256;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sse", get(connect).post(post_on_stream_url))
        .route("/messages/", post(message))
        .route("/messages", post(message))
}

/// A POST on the stream's URL is what a Streamable HTTP client sends first; a client
/// that supports both transports falls back to this one "If it fails with the following
/// HTTP status codes "400 Bad Request", "404 Not Found" or "405 Method Not Allowed""
/// (2025-11-25 transports, Backwards Compatibility).
async fn post_on_stream_url(
    State(state): State<AppState>,
    Extension(caller): Extension<Authenticated>,
) -> Response {
    if crate::injected!(state.config, SseUrlAcceptsPost) {
        return connect(State(state), Extension(caller)).await;
    }
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(axum::http::header::ALLOW, "GET,HEAD")],
    )
        .into_response()
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
    if crate::injected!(state.config, NoLegacyTransport) {
        return StatusCode::NOT_FOUND.into_response();
    }
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
    let service = state.shutdown.child_token();
    let diverted = std::sync::Arc::default();
    {
        let mut sessions = state.sessions.sse();
        // At the user's cap, their oldest stream ends to make room.
        let mine: Vec<(&String, &SseSession)> = sessions
            .iter()
            .filter(|(_, session)| session.owner.user.id == caller.user.id)
            .collect();
        if mine.len() >= state.config.max_sessions_per_user.max(1)
            && let Some(oldest) = mine
                .into_iter()
                .min_by_key(|(_, session)| session.opened)
                .map(|(id, _)| id.clone())
            && let Some(evicted) = sessions.remove(&oldest)
        {
            evicted.service.cancel();
        }
        sessions.insert(
            session_id.clone(),
            SseSession {
                owner: caller.clone(),
                opened: store::now(),
                service: service.clone(),
                in_flight: Default::default(),
                incoming: to_server,
                initialized: false,
                diverted: std::sync::Arc::clone(&diverted),
            },
        );
    }

    let handler = ProfileServer::new(state.clone());
    let service_token = service.clone();
    tokio::spawn(async move {
        let transport = (
            to_client,
            ReceiverStream::new(from_client).map(|message| *message),
        );
        // Boxed, so that the handshake's state (the largest part of this future) is
        // freed once the session runs, instead of sizing the task for its lifetime.
        let started = Box::pin(handler.serve_with_ct(transport, service_token)).await;
        match started {
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
    let sessions = state.sessions.clone();
    let answered_session = session_id.clone();
    // Signalled each time a response leaves, so a revoked stream can end once the
    // replies it owes are out (the tool revokes the grant itself when GitHub refuses
    // its token, and that reply must still arrive).
    let answered = Arc::new(tokio::sync::Notify::new());
    let answered_signal = answered.clone();
    let messages = from_server.filter_map(move |message| {
        // The guard lives as long as the stream.
        let _ = &guard;
        let Some(message) = divert_response(&diverted, message) else {
            return futures::future::ready(None);
        };
        let answered = match &message {
            ServerJsonRpcMessage::Response(response) => Some(&response.id),
            ServerJsonRpcMessage::Error(error) => error.id.as_ref(),
            _ => None,
        };
        if let Some(id) = answered
            && let Some(session) = sessions.sse().get_mut(&answered_session)
        {
            let id = serde_json::to_value(id).unwrap_or_default().to_string();
            session.in_flight.remove(&id);
            answered_signal.notify_one();
        }
        let serialized = if super::rewrites_outgoing(&config) {
            serde_json::to_value(&message).map(|mut value| {
                super::rewrite_outgoing(&config, &mut value);
                value.to_string()
            })
        } else {
            serde_json::to_string(&message)
        };
        let data = serialized.unwrap_or_else(|error| {
            json!({
                "jsonrpc": "2.0",
                "method": "notifications/message",
                "params": {"level": "error", "data": format!("unserialisable message: {error}")}
            })
            .to_string()
        });
        futures::future::ready(Some(Ok::<_, Infallible>(
            Event::default().event("message").data(data),
        )))
    });
    // The stream ends with the server, with its session, and with the token that
    // opened it: when that is revoked or expires.
    let expiry = if crate::injected!(state.config, AcceptExpiredTokens) {
        futures::future::Either::Left(futures::future::pending::<()>())
    } else {
        futures::future::Either::Right(tokio::time::sleep_until(caller.expires_at))
    };
    let revoked = {
        let (state, session_id, ended) = (state.clone(), session_id.clone(), caller.ended.clone());
        let grace = state.config.upstream_timeout;
        async move {
            ended.cancelled().await;
            let drained = async {
                loop {
                    let signal = answered.notified();
                    let idle = state
                        .sessions
                        .sse()
                        .get(&session_id)
                        .is_none_or(|session| session.in_flight.is_empty());
                    if idle {
                        return;
                    }
                    signal.await;
                }
            };
            // A request the service never answers must not keep the stream open.
            let _ = tokio::time::timeout(grace, drained).await;
        }
    };
    let stream = stream::iter(first)
        .chain(messages)
        .take_until(service.cancelled_owned())
        .take_until(revoked)
        .take_until(expiry);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// Diverted responses, by serialized request id.
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

/// 202 Accepted, as the SDKs answer a POST whose reply travels on the stream.
async fn message(State(state): State<AppState>, request: Request) -> Response {
    let config = &state.config;
    let (parts, body) = request.into_parts();
    let Some(caller) = parts.extensions.get::<Authenticated>().cloned() else {
        return jsonrpc_error(StatusCode::UNAUTHORIZED, INVALID_REQUEST, "Unauthorized");
    };
    let session_id = parts.uri.query().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "session_id")
            .map(|(_, value)| value.into_owned())
    });
    let Some(session_id) = session_id else {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "session_id is required",
        );
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
                return (
                    status,
                    axum::Json(unknown_session_error(config, "Could not find session")),
                )
                    .into_response();
            }
        }
    };
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return jsonrpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            INVALID_REQUEST,
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
    // The id is in flight until its response goes out on the stream.
    let in_flight = request_id
        .as_ref()
        .map(|id| serde_json::to_value(id).unwrap_or_default());
    if let Some(id) = &in_flight {
        let mut sessions = state.sessions.sse();
        let Some(session) = sessions.get_mut(&session_id) else {
            return jsonrpc_error(
                StatusCode::NOT_FOUND,
                INVALID_REQUEST,
                "Could not find session",
            );
        };
        if session.in_flight.contains(&id.to_string())
            && !crate::injected!(config, DuplicateInFlightIdsAccepted)
        {
            return id_in_use(id);
        }
        if session.in_flight.len() >= MAX_IN_FLIGHT {
            return jsonrpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                INVALID_REQUEST,
                "Too many requests in progress in this session; retry later",
            );
        }
        session.in_flight.insert(id.to_string());
    }
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
    let sent = tokio::time::timeout(ENQUEUE_TIMEOUT, incoming.send(Box::new(message))).await;
    if let (Ok(Ok(())), Some(receiver)) = (&sent, post_answer) {
        return match tokio::time::timeout(ENQUEUE_TIMEOUT, receiver).await {
            Ok(Ok(response)) => (StatusCode::OK, axum::Json(response)).into_response(),
            _ => jsonrpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                INTERNAL_ERROR,
                "The session did not answer in time",
            ),
        };
    }
    if !matches!(sent, Ok(Ok(())))
        && let Some(id) = &in_flight
        && let Some(session) = state.sessions.sse().get_mut(&session_id)
    {
        // Never delivered, so never answered: the id is free again.
        session.in_flight.remove(&id.to_string());
    }
    match sent {
        Ok(Ok(())) => match request_id {
            Some(id) if crate::injected!(config, ResultInPostBody) => (
                accepted(config, Transport::Sse).status(),
                axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": {}})),
            )
                .into_response(),
            None if crate::injected!(config, AnswerNotifications) => super::notification_answer(),
            _ => accepted(config, Transport::Sse),
        },
        Ok(Err(_)) => jsonrpc_error(
            StatusCode::NOT_FOUND,
            INVALID_REQUEST,
            "Could not find session",
        ),
        Err(_) => jsonrpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            INVALID_REQUEST,
            "The session is too busy; retry later",
        ),
    }
}
