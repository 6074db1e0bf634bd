//! The legacy HTTP+SSE transport of protocol 2024-11-05, which rmcp no longer ships:
//! `GET /sse` opens a stream whose first event names the endpoint for POSTs, each
//! POST is answered with 202, and the responses travel as `message` events on the
//! stream.
//!
//! A session's common messages (`initialize`, `notifications/initialized`, `ping`,
//! `tools/list`, `tools/call` and the cancellation of a call) are answered here, by
//! [`Dispatch`], from the same handler code rmcp runs and in rmcp's words: an rmcp
//! service costs a task and two preallocated channels per session, most of what an
//! idle session holds. The first message the thin path does not answer itself starts
//! rmcp for that session, fed through a pair of channels, and the session stays on it.

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
use futures::{SinkExt, StreamExt, stream};
use rmcp::{
    ServerHandler as _, ServiceExt,
    model::{
        CallToolResponse, ClientJsonRpcMessage, ClientNotification, ClientRequest, GetExtensions,
        GetMeta, InitializeRequestParams, JsonRpcNotification, JsonRpcRequest,
        ServerJsonRpcMessage, ServerResult,
    },
};
use serde_json::json;
use tokio::{sync::mpsc, task::AbortHandle};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::{
    INTERNAL_ERROR, INVALID_REQUEST, SseSession, Transport, accepted,
    handler::{ProfileServer, session_version},
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
        if crate::injected!(self.state.config, SseClosedSessionAcceptsPosts) {
            return;
        }
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
    let thin = thin_path(&state.config);
    open(state, caller, thin)
}

/// At the user's cap, their oldest stream ends to make room. One pass without collecting:
/// a user may hold thousands of sessions, and a list of them per connection is a large
/// allocation each time.
fn make_room_for_session(
    sessions: &mut std::collections::HashMap<String, Box<SseSession>>,
    caller: &Authenticated,
    cap: usize,
) {
    let mut count = 0;
    let mut oldest: Option<(&String, tokio::time::Instant)> = None;
    for (id, session) in sessions.iter() {
        if session.owner.user.id != caller.user.id {
            continue;
        }
        count += 1;
        if oldest.is_none_or(|(_, opened)| session.opened < opened) {
            oldest = Some((id, session.opened));
        }
    }
    if count >= cap.max(1)
        && let Some(oldest) = oldest.map(|(id, _)| id.clone())
        && let Some(evicted) = sessions.remove(&oldest)
    {
        evicted.service.cancel();
    }
}

/// Whether sessions start on the thin path. With any fault configured they start on
/// rmcp, so that every fault acts where it always did.
fn thin_path(config: &crate::Config) -> bool {
    #[cfg(feature = "fault-injection")]
    if !config.faults.is_empty() {
        return false;
    }
    let _ = config;
    true
}

/// Opens a session: on the thin path, or on rmcp from its first message.
fn open(state: AppState, caller: Authenticated, thin: bool) -> Response {
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
    // A futures channel allocates per message, not a block of slots up front, and keeps
    // the node of the last message it passed on: boxed, that node is two pointers.
    let (to_client, from_server) =
        futures::channel::mpsc::channel::<Box<ServerJsonRpcMessage>>(CHANNEL_CAPACITY);
    let service = state.shutdown.child_token();
    let dispatch = if thin {
        Dispatch::thin(to_client)
    } else {
        Dispatch::rmcp(start_rmcp(&state, &service, to_client, None, false))
    };
    let diverted: Option<Arc<Diverted>> =
        crate::injected!(state.config, ResponseOnlyInPostBody).then(Arc::default);
    {
        let mut sessions = state.sessions.sse();
        make_room_for_session(&mut sessions, &caller, state.config.max_sessions_per_user);
        sessions.insert(
            session_id.clone(),
            Box::new(SseSession {
                owner: caller.clone(),
                opened: store::now(),
                service: service.clone(),
                in_flight: Default::default(),
                dispatch,
                initialized: false,
                diverted: diverted.clone(),
            }),
        );
    }

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
        let message = match &diverted {
            Some(diverted) => match divert_response(diverted, *message) {
                Some(message) => message,
                None => return futures::future::ready(None),
            },
            None => *message,
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
            // An idle session keeps no table for the ids of requests it no longer has.
            if session.in_flight.is_empty() {
                session.in_flight.shrink_to_fit();
            }
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
    let expiry = if super::stream_expiry_faults(&state.config) {
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
pub(super) type Diverted = std::sync::Mutex<
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
    let (initialized, diverted) = {
        let sessions = state.sessions.sse();
        match sessions.get(&session_id) {
            Some(session)
                if session.owner.user.id == caller.user.id
                    || crate::injected!(config, UnboundSessions) =>
            {
                (session.initialized, session.diverted.clone())
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
    let message = match read_message(config, Transport::Sse, &bytes) {
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
    let post_answer = match (&request_id, &diverted) {
        (Some(id), Some(diverted)) => {
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
    let step = match state.sessions.sse().get_mut(&session_id) {
        Some(session) => session.dispatch.step(
            &state,
            &session_id,
            &session.service,
            message,
            parts,
            &caller,
        ),
        None => {
            return jsonrpc_error(
                StatusCode::NOT_FOUND,
                INVALID_REQUEST,
                "Could not find session",
            );
        }
    };
    let sent = step.take().await;
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
        // The session's service stopped with its stream: nothing can answer.
        Ok(Err(_)) if crate::injected!(config, SseClosedSessionAcceptsPosts) => {
            accepted(config, Transport::Sse)
        }
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

/// Where a session's responses go: its stream.
type Outgoing = futures::channel::mpsc::Sender<Box<ServerJsonRpcMessage>>;
/// Where a session's messages for rmcp go. Boxed, because the channel preallocates
/// slots and an open session should cost pointers, not whole messages.
type Incoming = mpsc::Sender<Box<ClientJsonRpcMessage>>;

/// How a session's messages are answered: by the thin path, until a message needs
/// rmcp; from then on by the rmcp service started for the session at that moment.
pub(super) struct Dispatch {
    route: Route,
    /// The `tools/call` requests the thin path is running, by serialized id, so that
    /// `notifications/cancelled` stops them, also after rmcp took the session over.
    running: std::collections::HashMap<String, AbortHandle>,
}

enum Route {
    Thin {
        outgoing: Outgoing,
        /// The client's `initialize` parameters with the version the thin path
        /// negotiated, once it answered `initialize`: rmcp's peer info if it takes over.
        peer: Option<Box<InitializeRequestParams>>,
        /// Whether `notifications/initialized` arrived.
        notified: bool,
    },
    Rmcp(Incoming),
}

/// What a POSTed message leads to once the session's lock is released.
pub(super) enum Step {
    /// Nothing more to send: a notification the thin path took, or a `tools/call`
    /// now running in a task of its own.
    Done,
    /// The thin path's answer, for the session's stream.
    Answer(Outgoing, Box<ServerJsonRpcMessage>),
    /// A message for the session's rmcp service.
    Forward(Incoming, Box<ClientJsonRpcMessage>),
}

impl Step {
    /// Sends what the step has to send, waiting at most [`ENQUEUE_TIMEOUT`] for room.
    async fn take(self) -> Result<Result<(), ()>, tokio::time::error::Elapsed> {
        match self {
            Step::Done => Ok(Ok(())),
            Step::Answer(mut outgoing, answer) => {
                let sent = tokio::time::timeout(ENQUEUE_TIMEOUT, outgoing.send(answer)).await;
                sent.map(|sent| sent.map_err(drop))
            }
            Step::Forward(incoming, message) => {
                let sent = tokio::time::timeout(ENQUEUE_TIMEOUT, incoming.send(message)).await;
                sent.map(|sent| sent.map_err(drop))
            }
        }
    }
}

impl Dispatch {
    fn thin(outgoing: Outgoing) -> Dispatch {
        Dispatch {
            route: Route::Thin {
                outgoing,
                peer: None,
                notified: false,
            },
            running: Default::default(),
        }
    }

    fn rmcp(incoming: Incoming) -> Dispatch {
        Dispatch {
            route: Route::Rmcp(incoming),
            running: Default::default(),
        }
    }

    /// Answers `message` on the thin path where that path gives rmcp's answer, and
    /// otherwise hands it to the session's rmcp service, started now if need be.
    fn step(
        &mut self,
        state: &AppState,
        session_id: &str,
        service: &CancellationToken,
        message: ClientJsonRpcMessage,
        parts: http::request::Parts,
        caller: &Authenticated,
    ) -> Step {
        // A call the thin path runs is stopped here whichever way the session goes on.
        // rmcp sends no answer for a cancelled request, and neither does this.
        if let ClientJsonRpcMessage::Notification(JsonRpcNotification {
            notification: ClientNotification::CancelledNotification(cancelled),
            ..
        }) = &message
            && let Some(call) = cancelled
                .params
                .request_id
                .as_ref()
                .and_then(|id| serde_json::to_string(id).ok())
                .and_then(|id| self.running.remove(&id))
        {
            call.abort();
        }
        let Route::Thin {
            outgoing,
            peer,
            notified,
        } = &mut self.route
        else {
            return self.forward(state, service, message, parts);
        };
        let Some(session_peer) = peer else {
            // Before the handshake only a plain `initialize` stays here.
            if let ClientJsonRpcMessage::Request(request) = &message
                && let Some((answer, negotiated)) = initialize(state, request)
            {
                *peer = Some(negotiated);
                return Step::Answer(outgoing.clone(), answer);
            }
            return self.forward(state, service, message, parts);
        };
        match message {
            ClientJsonRpcMessage::Notification(JsonRpcNotification {
                notification: ClientNotification::InitializedNotification(_),
                ..
            }) => {
                *notified = true;
                Step::Done
            }
            // rmcp ignores the cancellation of a request it does not run (one already
            // answered, or never sent), and has nothing to say to the client either way.
            ClientJsonRpcMessage::Notification(JsonRpcNotification {
                notification: ClientNotification::CancelledNotification(_),
                ..
            }) => Step::Done,
            ClientJsonRpcMessage::Request(request) if plain(&request) => {
                let version = session_version(Some(session_peer.protocol_version.clone()));
                let id = request.id.clone();
                let server = ProfileServer::new(state.clone());
                match request.request {
                    ClientRequest::PingRequest(_) => Step::Answer(
                        outgoing.clone(),
                        Box::new(ServerJsonRpcMessage::response(ServerResult::empty(()), id)),
                    ),
                    ClientRequest::ListToolsRequest(list) => {
                        let cursor = list.params.and_then(|params| params.cursor);
                        let result = server
                            .tools_list(&version, cursor.as_deref())
                            .map(ServerResult::ListToolsResult);
                        Step::Answer(outgoing.clone(), legacy_answer(result, id))
                    }
                    ClientRequest::CallToolRequest(call) => {
                        let key = serde_json::to_string(&id).unwrap_or_default();
                        let call = ThinCall {
                            state: state.clone(),
                            session_id: session_id.to_owned(),
                            key: key.clone(),
                            service: service.clone(),
                            outgoing: outgoing.clone(),
                            server,
                            params: call.params,
                            caller: caller.clone(),
                            version,
                            id,
                        };
                        let task = tokio::spawn(call.run());
                        self.running.insert(key, task.abort_handle());
                        Step::Done
                    }
                    request => self.forward(
                        state,
                        service,
                        ClientJsonRpcMessage::request(request, id),
                        parts,
                    ),
                }
            }
            message => self.forward(state, service, message, parts),
        }
    }

    /// Hands `message` to the session's rmcp service, starting it if the session was
    /// on the thin path until now.
    fn forward(
        &mut self,
        state: &AppState,
        service: &CancellationToken,
        mut message: ClientJsonRpcMessage,
        parts: http::request::Parts,
    ) -> Step {
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
        let incoming = match &mut self.route {
            Route::Rmcp(incoming) => incoming.clone(),
            Route::Thin {
                outgoing,
                peer,
                notified,
            } => {
                let peer = peer.take().map(|peer| *peer);
                let incoming = start_rmcp(state, service, outgoing.clone(), peer, *notified);
                // The thin path's sender goes with it: the stream ends when rmcp stops.
                self.route = Route::Rmcp(incoming.clone());
                incoming
            }
        };
        Step::Forward(incoming, Box::new(message))
    }
}

/// Starts rmcp for a session: with the handshake, or, when the thin path already
/// answered `initialize`, without it, on the peer info that path recorded.
fn start_rmcp(
    state: &AppState,
    service: &CancellationToken,
    outgoing: Outgoing,
    peer: Option<InitializeRequestParams>,
    notified: bool,
) -> Incoming {
    let (incoming, from_client) = mpsc::channel::<Box<ClientJsonRpcMessage>>(CHANNEL_CAPACITY);
    let handler = if notified {
        ProfileServer::initialized(state.clone())
    } else {
        ProfileServer::new(state.clone())
    };
    let outgoing = outgoing.with(|message| {
        futures::future::ready(Ok::<_, futures::channel::mpsc::SendError>(Box::new(
            message,
        )))
    });
    let transport = (
        outgoing,
        ReceiverStream::new(from_client).map(|message| *message),
    );
    let service = service.clone();
    match peer {
        Some(peer) => {
            let running =
                rmcp::service::serve_directly_with_ct(handler, transport, Some(peer), service);
            tokio::spawn(async move {
                let _ = running.waiting().await;
            });
        }
        None => {
            tokio::spawn(async move {
                // Boxed, so that the handshake's state (the largest part of this future)
                // is freed once the session runs, instead of sizing the task for its
                // lifetime.
                let started = Box::pin(handler.serve_with_ct(transport, service)).await;
                match started {
                    Ok(running) => {
                        let _ = running.waiting().await;
                    }
                    Err(error) => {
                        tracing::debug!(%error, "SSE session ended before initialization");
                    }
                }
            });
        }
    }
    incoming
}

/// Whether rmcp would serve `request` in an initialized session exactly as the thin
/// path does: its `_meta` names no protocol version of its own (rmcp would judge the
/// request by that version instead of the session's).
fn plain(request: &JsonRpcRequest<ClientRequest>) -> bool {
    request.request.get_meta().protocol_version().is_none()
}

/// rmcp's answer to a session's first message when that is a plain `initialize`,
/// and the peer info rmcp keeps from it: the client's parameters with the negotiated
/// version. `None` when the thin path leaves the request to rmcp: a version from
/// 2026-07-28 on (which has no handshake) or in `_meta`, or a failed negotiation.
fn initialize(
    state: &AppState,
    request: &JsonRpcRequest<ClientRequest>,
) -> Option<(Box<ServerJsonRpcMessage>, Box<InitializeRequestParams>)> {
    let ClientRequest::InitializeRequest(initialize) = &request.request else {
        return None;
    };
    if !plain(request) || !initialize.params.protocol_version.has_initialize() {
        return None;
    }
    let server = ProfileServer::new(state.clone());
    // rmcp negotiates once in the handler (`negotiate_initialize`) and once more on
    // its answer, which leaves an already negotiated version as it is.
    let negotiated = server.negotiate_initialize(&initialize.params).ok()?;
    let mut peer = initialize.params.clone();
    peer.protocol_version = negotiated.protocol_version.clone();
    let answer = legacy_answer(
        Ok(ServerResult::InitializeResult(negotiated)),
        request.id.clone(),
    );
    Some((answer, Box::new(peer)))
}

/// A result or error as rmcp sends it to a peer of a version before 2026-07-28.
fn legacy_answer(
    result: Result<ServerResult, rmcp::ErrorData>,
    id: rmcp::model::RequestId,
) -> Box<ServerJsonRpcMessage> {
    Box::new(match result {
        Ok(mut result) => {
            result.strip_result_type_for_legacy_peer();
            result.strip_non_object_output_for_legacy_peer();
            ServerJsonRpcMessage::response(result, id)
        }
        Err(error) => ServerJsonRpcMessage::error(error, Some(id)),
    })
}

/// A `tools/call` the thin path runs in a task of its own.
struct ThinCall {
    state: AppState,
    session_id: String,
    /// The serialized request id, its key among the session's running calls.
    key: String,
    /// The session's token: the call ends with the session.
    service: CancellationToken,
    outgoing: Outgoing,
    server: ProfileServer,
    params: rmcp::model::CallToolRequestParams,
    caller: Authenticated,
    version: String,
    id: rmcp::model::RequestId,
}

impl ThinCall {
    /// Runs the call and sends its answer on the session's stream, unless the call was
    /// cancelled or the session ended first.
    async fn run(self) {
        let ThinCall {
            state,
            session_id,
            key,
            service,
            mut outgoing,
            server,
            params,
            caller,
            version,
            id,
        } = self;
        let call = server.call(params, Some(&caller), &version);
        let Some(outcome) = service.run_until_cancelled(call).await else {
            return;
        };
        let still_wanted = state
            .sessions
            .sse()
            .get_mut(&session_id)
            .and_then(|session| session.dispatch.running.remove(&key))
            .is_some();
        if !still_wanted {
            return;
        }
        let result = outcome.map(|result| ServerResult::from(CallToolResponse::from(result)));
        let answer = legacy_answer(result, id);
        let _ = tokio::time::timeout(ENQUEUE_TIMEOUT, outgoing.send(answer)).await;
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use serde_json::Value;

    use super::super::streamable::tests::{caller, octocat_token, octocat_token_with_github_fault};
    use super::*;
    use crate::mcp::handler::TOOL_NAME;

    /// How long the server waits for GitHub in these tests: a call to the slow GitHub
    /// account has ended (and been answered, unless cancelled) well within three times this.
    const UPSTREAM_TIMEOUT: Duration = Duration::from_millis(300);
    const READ_TIMEOUT: Duration = Duration::from_secs(20);

    /// The `data` of the events of an SSE response, one at a time.
    struct Events {
        body: axum::body::BodyDataStream,
        buffer: String,
    }

    impl Events {
        async fn next(&mut self) -> String {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let event: String = self.buffer.drain(..end + 2).collect();
                    let data: Vec<&str> = event
                        .lines()
                        .filter_map(|line| line.strip_prefix("data: "))
                        .collect();
                    if !data.is_empty() {
                        return data.join("\n");
                    }
                    continue;
                }
                let chunk = tokio::time::timeout(READ_TIMEOUT, self.body.next())
                    .await
                    .expect("an event in time")
                    .expect("the stream is open")
                    .unwrap();
                self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        }
    }

    /// A POST to the session's message endpoint, as `status body`.
    async fn post(state: &AppState, endpoint: &str, caller: &Authenticated, body: Value) -> String {
        let mut request = http::Request::post(endpoint)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        request.extensions_mut().insert(caller.clone());
        let response = message(State(state.clone()), request).await;
        let status = response.status();
        let body = to_bytes(response.into_body(), MAX_BODY_BYTES)
            .await
            .unwrap();
        format!("{} {}", status.as_u16(), String::from_utf8_lossy(&body))
    }

    /// Whether the session is still answered by the thin path.
    fn on_thin_path(state: &AppState) -> bool {
        let sessions = state.sessions.sse();
        let session = sessions.values().next().expect("one session");
        matches!(session.dispatch.route, Route::Thin { .. })
    }

    /// Runs one session's script and returns every POST answer and every event after the
    /// endpoint, in order, and whether the thin path answered everything up to the first
    /// message it leaves to rmcp.
    async fn transcript(
        state: &AppState,
        callers: (&Authenticated, &Authenticated),
        thin: bool,
        version: &str,
        cancel: bool,
    ) -> (Vec<String>, bool) {
        let (caller, slow_caller) = callers;
        let response = open(state.clone(), caller.clone(), thin);
        let mut events = Events {
            body: response.into_body().into_data_stream(),
            buffer: String::new(),
        };
        let endpoint = events.next().await;
        let mut lines = Vec::new();
        let request = |id: Value, method: &str, params: Value| json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let notification = |method: &str, params: Value| json!({"jsonrpc": "2.0", "method": method, "params": params});
        let initialize = request(
            json!(1),
            "initialize",
            json!({
                "protocolVersion": version,
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"}
            }),
        );
        let answered = [
            initialize,
            request(json!(2), "ping", json!({})),
            request(json!(3), "tools/list", json!({})),
            request(json!(4), "tools/call", json!({"name": TOOL_NAME})),
            request(
                json!(5),
                "tools/call",
                json!({"name": TOOL_NAME, "arguments": {}}),
            ),
            // A tool error, an unknown tool's Invalid params, an invalid cursor.
            request(
                json!(6),
                "tools/call",
                json!({"name": TOOL_NAME, "arguments": {"x": 1}}),
            ),
            request(json!(7), "tools/call", json!({"name": "nothing"})),
            request(json!("eight"), "tools/list", json!({"cursor": "x"})),
        ];
        for (index, message) in answered.into_iter().enumerate() {
            lines.push(post(state, &endpoint, caller, message).await);
            lines.push(events.next().await);
            if index == 0 {
                let initialized = notification("notifications/initialized", json!({}));
                lines.push(post(state, &endpoint, caller, initialized).await);
            }
        }
        if cancel {
            // The slow account's call is still running when it is cancelled; its id stays
            // taken, and no answer for it ever arrives.
            let slow_call = request(json!(9), "tools/call", json!({"name": TOOL_NAME}));
            lines.push(post(state, &endpoint, slow_caller, slow_call.clone()).await);
            lines.push(post(state, &endpoint, slow_caller, slow_call).await);
            let cancelled = notification(
                "notifications/cancelled",
                json!({"requestId": 9, "reason": "no longer needed"}),
            );
            lines.push(post(state, &endpoint, caller, cancelled).await);
            tokio::time::sleep(UPSTREAM_TIMEOUT * 3).await;
            let ping = request(json!(10), "ping", json!({}));
            lines.push(post(state, &endpoint, caller, ping).await);
            let next = events.next().await;
            assert_eq!(
                serde_json::from_str::<Value>(&next).unwrap()["id"],
                json!(10),
                "{next}"
            );
            lines.push(next);
        }
        let thin_until_fallback = on_thin_path(state);
        let left_to_rmcp = [
            request(json!(11), "tools/call", json!({"arguments": {}})),
            request(json!(12), "resources/templates/list", json!({})),
            request(json!(13), "no/such/method", json!({})),
            request(json!(14), "ping", json!({})),
            request(json!(15), "tools/list", json!({})),
        ];
        for message in left_to_rmcp {
            lines.push(post(state, &endpoint, caller, message).await);
            lines.push(events.next().await);
        }
        assert!(!on_thin_path(state));
        (lines, thin_until_fallback)
    }

    /// The thin path answers a session's messages as rmcp does, byte for byte, and
    /// leaves the rest to an rmcp service started for the session at that moment.
    #[tokio::test]
    async fn thin_sse_sessions_get_rmcps_answers() {
        let mock = mock_github::MockGitHub::builder()
            .slow_delay(Duration::from_secs(5))
            .start()
            .await;
        let mut config =
            crate::Config::from_vars(mock.server_env(), "http://127.0.0.1:1".parse().unwrap())
                .unwrap();
        config.upstream_timeout = UPSTREAM_TIMEOUT;
        assert!(thin_path(&config));
        let state = crate::new_state(config, CancellationToken::new());
        let token = octocat_token(&state).await;
        let slow_token = octocat_token_with_github_fault(&state, Some("user_timeout")).await;
        let callers = (&caller(&state, &token), &caller(&state, &slow_token));
        let versions = [
            ("2024-11-05", true),
            ("2025-03-26", false),
            ("2025-06-18", false),
            ("2025-11-25", true),
            // Unknown: an older one is negotiated here, a later one by rmcp.
            ("2000-01-01", false),
            ("2026-07-28", false),
            ("2999-01-01", false),
        ];
        for (version, cancel) in versions {
            let (by_rmcp, rmcp_thin) = transcript(&state, callers, false, version, cancel).await;
            let (by_thin_path, thin) = transcript(&state, callers, true, version, cancel).await;
            assert!(!rmcp_thin);
            // The versions without a handshake go to rmcp from `initialize` on.
            assert_eq!(thin, version < "2026-07-28", "{version}");
            assert_eq!(by_thin_path, by_rmcp, "{version}");
        }
    }
}
