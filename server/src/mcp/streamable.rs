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
use futures::{Stream, StreamExt};
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ClientRequest, GetMeta, ProtocolVersion,
    ServerJsonRpcMessage,
};
use rmcp::transport::{
    WorkerTransport,
    streamable_http_server::{
        RestoreOutcome, SessionId, SessionManager, StreamableHttpServerConfig,
        StreamableHttpService,
        session::{
            ServerSseMessage,
            local::{LocalSessionManager, LocalSessionManagerError, LocalSessionWorker},
        },
    },
};
use serde_json::json;

use super::{
    INTERNAL_ERROR, INVALID_REQUEST, Sessions, StreamableOwner, Transport, accepted,
    handler::ProfileServer, id_in_use, is_event_stream, is_json, jsonrpc_error, media_type,
    read_message, unknown_session_error,
};
use crate::{AppState, http_util::ScopedBody, resource::Authenticated, store};

pub(super) const SESSION_HEADER: &str = "mcp-session-id";
const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";
/// Only with the `session-id-with-space` fault: what session ids are dressed in.
const SPACED_SESSION_PREFIX: &str = "mcp ";
/// Matches rmcp's own limit, so the body is never larger here than it would accept.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Error bodies rewritten as JSON-RPC are short; anything longer is cut.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// rmcp's session manager, with one addition: whenever rmcp closes a session (DELETE,
/// idle timeout, the service ending), the session's owner record goes with it.
pub(super) struct OwnedSessionManager {
    inner: LocalSessionManager,
    sessions: Arc<Sessions>,
}

impl OwnedSessionManager {
    fn new(state: &AppState) -> OwnedSessionManager {
        let mut inner = LocalSessionManager::default();
        inner.session_config.keep_alive = Some(state.config.session_idle_timeout);
        OwnedSessionManager {
            inner,
            sessions: state.sessions.clone(),
        }
    }
}

impl SessionManager for OwnedSessionManager {
    type Error = LocalSessionManagerError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    fn create_session(
        &self,
    ) -> impl Future<Output = Result<(SessionId, Self::Transport), Self::Error>> + Send {
        self.inner.create_session()
    }

    fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<ServerJsonRpcMessage, Self::Error>> + Send {
        self.inner.initialize_session(id, message)
    }

    fn has_session(
        &self,
        id: &SessionId,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send {
        self.inner.has_session(id)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.sessions.streamable().remove(id.as_ref());
        self.inner.close_session(id).await
    }

    fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> impl Future<
        Output = Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>,
    > + Send {
        self.inner.create_stream(id, message)
    }

    fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.accept_message(id, message)
    }

    fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> impl Future<
        Output = Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>,
    > + Send {
        self.inner.create_standalone_stream(id)
    }

    fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> impl Future<
        Output = Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error>,
    > + Send {
        self.inner.resume(id, last_event_id)
    }

    fn restore_session(
        &self,
        id: SessionId,
    ) -> impl Future<Output = Result<RestoreOutcome<Self::Transport>, Self::Error>> + Send {
        self.inner.restore_session(id)
    }
}

/// Holds a request's (session, id) pair in the in-flight set until its response is done.
struct InFlight {
    sessions: Arc<Sessions>,
    key: (String, String),
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.sessions.streamable_in_flight().remove(&self.key);
    }
}

pub fn routes(state: &AppState) -> Router<AppState> {
    let handler_state = state.clone();
    let manager = Arc::new(OwnedSessionManager::new(state));
    let service = StreamableHttpService::new(
        move || Ok(ProfileServer::new(handler_state.clone())),
        manager.clone(),
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
    let direct = super::stateless::Direct::new(state).map(Arc::new);
    // rmcp's service behind an `Arc`, reached from a handler: axum clones a route's
    // service, and each layer's copy of it, for every request, and rmcp's service clones
    // its whole configuration (with a cancellation token, which takes a lock) where this
    // clones one pointer.
    let service = Arc::new(service);
    let handle = move |request: Request| {
        let service = service.clone();
        async move { service.handle(request).await.map(Body::new) }
    };
    Router::new()
        .route("/mcp", axum::routing::any(handle))
        .route_layer(from_fn_with_state(
            (state.clone(), manager, direct),
            dispatch,
        ))
}

fn session_not_found() -> Response {
    jsonrpc_error(StatusCode::NOT_FOUND, INVALID_REQUEST, "Session not found")
}

/// What `bind_sessions` works with: the state, rmcp's sessions, and the stateless
/// requests answered without rmcp (`None` with a fault configured).
type Binding = (
    AppState,
    Arc<OwnedSessionManager>,
    Option<Arc<super::stateless::Direct>>,
);

async fn bind_sessions(
    State((state, manager, _)): State<Binding>,
    mut request: Request,
    next: Next,
) -> Response {
    let config = &state.config;
    let Some(caller) = request.extensions().get::<Authenticated>().cloned() else {
        // The bearer check runs first and always inserts the caller.
        return jsonrpc_error(StatusCode::UNAUTHORIZED, INVALID_REQUEST, "Unauthorized");
    };
    undress_session_id(config, &mut request);
    unalias_session_id(&state, &mut request);
    let session_id = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let method = request.method().clone();

    if method == Method::GET && crate::injected!(config, GetNotImplemented) {
        return jsonrpc_error(
            StatusCode::NOT_IMPLEMENTED,
            INVALID_REQUEST,
            "Not implemented",
        );
    }
    if method == Method::GET && crate::injected!(config, GetStreamElsewhere) {
        return jsonrpc_error(StatusCode::NOT_FOUND, INVALID_REQUEST, "Not Found");
    }
    if method == Method::POST && crate::injected!(config, AcceptNotChecked) {
        request.headers_mut().insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
    }
    // Whether the session named is one this server holds: only those have requests in
    // flight to keep apart.
    let mut session_known = false;
    if let Some(session_id) = &session_id {
        let owner = state
            .sessions
            .streamable()
            .get_mut(session_id)
            .map(|owner| {
                owner.last_used = store::now();
                owner.caller.clone()
            });
        session_known = owner.is_some();
        let unbound = [
            crate::injected!(config, UnboundSessions),
            crate::injected!(config, UnboundStreamableSessions),
            crate::injected!(config, StreamableSessionsAnyUser),
        ]
        .contains(&true);
        match owner.as_ref().map(|owner| owner.user.id) {
            Some(owner_id)
                if owner_id != caller.user.id && crate::injected!(config, SessionRunsAsOwner) =>
            {
                if let Some(owner) = owner {
                    request.extensions_mut().insert(owner);
                }
            }
            // Answer as if the session did not exist: another user's session is
            // none of this caller's business.
            Some(owner_id) if owner_id != caller.user.id && !unbound => {
                return session_not_found();
            }
            Some(_) if method == Method::DELETE && crate::injected!(config, DeleteKeepsSession) => {
                return StatusCode::OK.into_response();
            }
            // rmcp answers 202 to DELETE of an unknown session; the spec asks 404.
            None if method == Method::DELETE
                && !crate::injected!(config, UnknownSessionDeleteAccepted) =>
            {
                return session_not_found();
            }
            _ => {}
        }
    }
    if let Some(refusal) = protocol_version_faults(config, &mut request, session_id.is_some()) {
        return refusal;
    }

    let mut in_flight = None;
    let mut discover = false;
    let mut initialize_version = None;
    let last_event_id = resumed_event_id(config, &mut request);
    let mut modern = None;
    let (request, stateless) = if method == Method::POST {
        let (mut parts, body) = request.into_parts();
        let Ok(mut bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
            return jsonrpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                INVALID_REQUEST,
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
                INVALID_REQUEST,
                "Bad Request: unexpected notification",
            );
        }
        let stateless = is_stateless(&message);
        // An unknown session gets rmcp's 404 whatever the id: tracked, two requests that
        // name the same unknown session would get 400 for sharing an id instead.
        if session_known
            && let (Some(session_id), ClientJsonRpcMessage::Request(request)) =
                (&session_id, &message)
        {
            let id = serde_json::to_value(&request.id).unwrap_or_default();
            let key = (session_id.clone(), id.to_string());
            if state.sessions.streamable_in_flight().insert(key.clone()) {
                in_flight = Some(InFlight {
                    sessions: state.sessions.clone(),
                    key,
                });
            } else if !crate::injected!(config, DuplicateInFlightIdsAccepted) {
                return id_in_use(&id);
            }
        }
        make_room_for_session(&state, &manager, &caller, session_id.as_ref(), &message).await;
        discover = matches!(&message, ClientJsonRpcMessage::Request(request)
            if matches!(request.request, ClientRequest::DiscoverRequest(_)));
        if let ClientJsonRpcMessage::Request(request) = &message
            && let ClientRequest::InitializeRequest(initialize) = &request.request
        {
            initialize_version = Some(negotiated_version(
                initialize.params.protocol_version.as_str(),
            ));
        }
        if let Some(early) =
            sessionless_request_faults(&state, &caller, &mut parts, &message, stateless)
        {
            return early;
        }
        if stateless && let Some(early) = stateless_request_faults(config, &parts, &message) {
            return early;
        }
        if let Some(refusal) = super::stateless::initialize_fault(config, &message) {
            return refusal;
        }
        modern = super::stateless::classify(&parts, &message);
        if let Some(modern) = &modern
            && let Some(early) =
                super::stateless::request_faults(config, modern, &mut parts, &mut bytes)
        {
            return early;
        }
        (Request::from_parts(parts, Body::from(bytes)), stateless)
    } else {
        (request, false)
    };

    let initializing = initialize_version.is_some();
    let mut response = next.run(request).await;
    if let Some(in_flight) = in_flight {
        // The id is free again once its response goes out: the server sends no
        // requests of its own, so the first frame naming the id carries the response.
        let needle = format!("\"id\":{}", in_flight.key.1).into_bytes();
        let (parts, body) = response.into_parts();
        let body = ScopedBody::new(body).releasing(needle, in_flight);
        response = Response::from_parts(parts, body.into_body());
    }

    if session_id.is_none()
        && let Some(new_session) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|value| value.to_str().ok())
    {
        state.sessions.streamable().insert(
            new_session.to_owned(),
            StreamableOwner {
                caller: caller.clone(),
                last_used: store::now(),
                protocol_version: initialize_version
                    .unwrap_or_else(|| ProtocolVersion::V_2025_11_25.to_string()),
            },
        );
        response = name_initialize_stream(config, response);
        dress_session_id(config, &mut response);
        alias_session_id(&state, &mut response);
    }
    if method == Method::DELETE
        && response.status().is_success()
        && let Some(session_id) = &session_id
    {
        state.sessions.streamable().remove(session_id);
        if crate::injected!(config, DeleteRefusedButEnded) {
            return jsonrpc_error(
                StatusCode::METHOD_NOT_ALLOWED,
                INVALID_REQUEST,
                "Method Not Allowed",
            );
        }
    }
    if response.status() == StatusCode::ACCEPTED
        && method == Method::POST
        && session_id.is_some()
        && crate::injected!(config, AnswerNotifications)
    {
        return super::notification_answer();
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
    if let Some(modern) = &modern {
        let sent_session = session_id
            .as_deref()
            .and_then(|id| HeaderValue::from_str(id).ok());
        response =
            super::stateless::finish(&state, &caller, modern, sent_session.as_ref(), response)
                .await;
    }
    if response.status().is_client_error() && is_plain_text(&response) {
        return plain_text_to_jsonrpc(config, response).await;
    }
    let subscription = modern.as_ref().is_some_and(|m| m.is_subscription());
    response = post_stream_faults(
        &state,
        &method,
        subscription,
        session_id.as_ref(),
        initializing,
        response,
    )
    .await;
    response = name_get_stream(config, &method, last_event_id.is_some(), response);
    if method == Method::GET
        && is_event_stream(&response)
        && let Some(session_id) = &session_id
        && crate::injected!(config, ResponsesOnGetStream)
    {
        response = with_response_copies(response, session_id);
    }
    if method == Method::GET && is_event_stream(&response) {
        // The standalone stream lasts no longer than the token that opened it. A POST's
        // stream ends by itself after its one response, which it must deliver even
        // when the request revoked the grant (a GitHub 401 in the tool).
        let (parts, body) = response.into_parts();
        let mut body = ScopedBody::new(body).ended_by(caller.ended.clone());
        if !super::stream_expiry_faults(config) {
            body = body.until(caller.expires_at);
        }
        response = Response::from_parts(parts, body.into_body());
    }
    response
}

/// The faults that rewrite the event stream answering a POST; without one, the stream
/// passes unchanged, and so does every other answer.
async fn post_stream_faults(
    state: &AppState,
    method: &Method,
    subscription: bool,
    session_id: Option<&String>,
    initializing: bool,
    mut response: Response,
) -> Response {
    // A subscription stream never ends by itself, so it is never read whole.
    if method != Method::POST || !is_event_stream(&response) || subscription {
        return response;
    }
    let config = &state.config;
    response = rewrite_event_stream(config, response).await;
    if let Some(session_id) = session_id
        && crate::injected!(config, ResponsesOnGetStream)
    {
        response = copy_responses(response, session_id);
    }
    if initializing && crate::injected!(config, Latin1ServerTitle) {
        response = with_latin1_title(response);
    }
    if initializing && crate::injected!(config, RequestBeforeInitialized) {
        response = with_roots_request(response);
    }
    if session_id.is_some() && crate::injected!(config, ForeignProgressOnPostStream) {
        response = with_foreign_progress(response);
    }
    if crate::injected!(config, PostStreamStaysOpen) {
        // The stream goes on after its response, until the client leaves or the
        // server stops.
        let (parts, body) = response.into_parts();
        let held = body.into_data_stream().chain(futures::stream::pending());
        let body = ScopedBody::new(Body::from_stream(held)).ended_by(state.shutdown.clone());
        response = Response::from_parts(parts, body.into_body());
    }
    response
}

/// Keeps a user's Streamable HTTP sessions under the cap: before a new one opens, the
/// least recently used of theirs is closed if they hold as many as allowed. Only a
/// request that opens a session (an `initialize` without a session id) makes room. The
/// owner records of sessions rmcp already closed are gone by then (see
/// [`OwnedSessionManager`]).
async fn make_room_for_session(
    state: &AppState,
    manager: &OwnedSessionManager,
    caller: &Authenticated,
    session_id: Option<&String>,
    message: &ClientJsonRpcMessage,
) {
    let opens_session = session_id.is_none()
        && matches!(message, ClientJsonRpcMessage::Request(request)
            if matches!(request.request, ClientRequest::InitializeRequest(_)));
    if !opens_session {
        return;
    }
    let cap = state.config.max_sessions_per_user.max(1);
    loop {
        let least_recently_used = {
            let owners = state.sessions.streamable();
            let mine: Vec<(&String, &StreamableOwner)> = owners
                .iter()
                .filter(|(_, owner)| owner.caller.user.id == caller.user.id)
                .collect();
            if mine.len() < cap {
                return;
            }
            mine.into_iter()
                .min_by_key(|(_, owner)| owner.last_used)
                .map(|(id, _)| id.clone())
        };
        let Some(id) = least_recently_used else {
            return;
        };
        let _ = manager.close_session(&SessionId::from(id.as_str())).await;
        // `close_session` removed the record; make sure, so the loop always ends.
        state.sessions.streamable().remove(&id);
    }
}

/// The event id the initialize stream's priming event gets. rmcp primes it, and every
/// GET stream, with the id `0`, which is also the id of the first message on the GET
/// stream: "If present, the ID MUST be globally unique across all streams within that
/// session" (2025-11-25 transports, Resumability and Redelivery). The initialize
/// stream carries nothing after its response, so its id resumes nothing (rmcp answers
/// an unknown id with an empty stream).
const INITIALIZE_EVENT_ID: &str = "initialize";
/// Gives the initialize stream's priming event [`INITIALIZE_EVENT_ID`].
fn name_initialize_stream(config: &crate::Config, response: Response) -> Response {
    if is_event_stream(&response) && !crate::injected!(config, DuplicateEventIds) {
        rename_first_event_id(response, INITIALIZE_EVENT_ID.to_owned())
    } else {
        response
    }
}

/// GET streams are primed with `get-<n>`, unique in the server; resuming from one asks
/// rmcp for the standalone stream from its start (`0`).
const GET_STREAM_EVENT_ID_PREFIX: &str = "get-";
static GET_STREAM_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The version a session negotiates for the one its `initialize` asks for: that one
/// when the server knows it, else the newest with an `initialize` handshake (what
/// rmcp's negotiation and `handler.rs` answer).
fn negotiated_version(requested: &str) -> String {
    ProtocolVersion::KNOWN_VERSIONS
        .iter()
        .find(|known| known.as_str() == requested)
        .unwrap_or(&ProtocolVersion::V_2025_11_25)
        .to_string()
}

/// Gives a new GET stream's priming event a `get-<n>` id, unique in the server (rmcp
/// primes every GET stream with `0`). A resumed stream keeps the ids rmcp gives it.
fn name_get_stream(
    config: &crate::Config,
    method: &Method,
    resumed: bool,
    response: Response,
) -> Response {
    if method == Method::GET
        && !resumed
        && is_event_stream(&response)
        && !crate::injected!(config, DuplicateEventIds)
    {
        // Any number the counter has not given out before names the stream uniquely.
        let n = GET_STREAM_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        rename_first_event_id(response, format!("{GET_STREAM_EVENT_ID_PREFIX}{n}"))
    } else {
        response
    }
}

/// The `Last-Event-ID` of a GET (`None` for any other method), with the ids this layer
/// gave GET streams turned back into the one rmcp knows them by.
fn resumed_event_id(config: &crate::Config, request: &mut Request) -> Option<String> {
    if request.method() != Method::GET {
        return None;
    }
    let id = request
        .headers()
        .get(header::HeaderName::from_static("last-event-id"))?
        .to_str()
        .ok()?
        .to_owned();
    if id.starts_with(GET_STREAM_EVENT_ID_PREFIX) && !crate::injected!(config, DuplicateEventIds) {
        request.headers_mut().insert(
            header::HeaderName::from_static("last-event-id"),
            HeaderValue::from_static("0"),
        );
    }
    Some(id)
}

/// Gives the first event of an SSE stream that carries an id (rmcp's priming event)
/// the id `to` instead. rmcp writes each event as one frame.
fn rename_first_event_id(response: Response, to: String) -> Response {
    let (mut parts, body) = response.into_parts();
    let mut pending = Some(to);
    let stream = body.into_data_stream().map(move |chunk| {
        let Ok(bytes) = chunk else {
            return chunk;
        };
        let text = String::from_utf8_lossy(&bytes);
        if pending.is_none() || !text.lines().any(|line| line.starts_with("id:")) {
            return Ok(bytes);
        }
        let to = pending.take().unwrap_or_default();
        let renamed: String = text
            .split_inclusive('\n')
            .map(|line| {
                if line.starts_with("id:") {
                    format!("id: {to}\n")
                } else {
                    line.to_owned()
                }
            })
            .collect();
        Ok(axum::body::Bytes::from(renamed))
    });
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from_stream(stream))
}

/// How long one message of a batch may take to be answered.
const BATCH_ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// JSON-RPC batches, which 2025-03-26 requires servers to receive: "MCP implementations
/// MAY support sending JSON-RPC batches, but MUST support receiving JSON-RPC batches"
/// (2025-03-26, Base Protocol, Batching). rmcp reads one message per POST, so a batch in
/// a session that negotiated 2025-03-26 is split here: each message goes through the
/// rest of the layer and rmcp as a POST of its own, and the responses come back as one
/// JSON array (202 when the batch held no request). From 2025-06-18 "the body of the
/// POST request MUST be a single JSON-RPC request, notification, or response", and a
/// batch is refused by `read_message` as JSON that is no message.
/// Only a POST within a session can carry a batch the layer splits; everything else goes
/// on untouched.
fn may_hold_batch(request: &Request) -> bool {
    request.method() == Method::POST && request.headers().contains_key(SESSION_HEADER)
}

/// The one layer in front of rmcp's service on `/mcp` (each layer costs every request a
/// clone of the routes below it and a boxed future): a stateless `tools/list` or
/// `tools/call` that rmcp would answer with a result is answered at once by `Direct`;
/// a 2025-03-26 batch is split; every other request is bound to its session.
async fn dispatch(State(binding): State<Binding>, request: Request, next: Next) -> Response {
    let request = match &binding.2 {
        Some(direct) if request.extensions().get::<DirectDeclined>().is_none() => {
            match answer_directly(direct, request).await {
                Ok(answer) => return answer,
                Err(request) => request,
            }
        }
        _ => request,
    };
    // Boxed: their state machines are large, and the direct answers above should not
    // pay for moving them.
    if may_hold_batch(&request) {
        Box::pin(split_batches(binding, request, next)).await
    } else {
        Box::pin(bind_sessions(State(binding), request, next)).await
    }
}

/// The stateless requests that `Direct` answers, answered before the router: the same
/// checks in the same order as the layers on the way to `/mcp` (the Origin check, the
/// bearer check, the body's deadline, the log line), without the router's matching and
/// the boxed future and cloned routes of each layer. Everything else, a refusal of
/// either check included, goes to the router as it came, which judges it again.
pub struct FastPath {
    state: AppState,
    direct: super::stateless::Direct,
}

/// Marks a request `FastPath` read and handed on: `dispatch` does not try it again.
#[derive(Clone, Copy)]
struct DirectDeclined;

impl FastPath {
    /// `None` without Streamable HTTP, or where `Direct` is off (with faults).
    pub fn new(state: &AppState) -> Option<FastPath> {
        if !state.config.transports.streamable_http() {
            return None;
        }
        Some(FastPath {
            state: state.clone(),
            direct: super::stateless::Direct::new(state)?,
        })
    }

    /// Whether the request is one the fast path may answer: a POST to `/mcp` without a
    /// session. Every other request goes to the router without further look.
    pub fn may_answer(request: &Request) -> bool {
        request.method() == Method::POST
            && request.uri().path() == "/mcp"
            && !request.headers().contains_key(SESSION_HEADER)
    }

    /// The answer, or the request back for the router.
    pub async fn answer(&self, request: Request) -> Result<Response, Request> {
        if !FastPath::may_answer(&request)
            || crate::http_util::origin_refusal(&self.state, &request).is_some()
        {
            return Err(request);
        }
        let Some(caller) = crate::resource::authenticated_caller(&self.state, &request) else {
            return Err(request);
        };
        let started = std::time::Instant::now();
        let mut request =
            crate::http_util::with_body_deadline(self.state.config.body_timeout, request);
        request.extensions_mut().insert(caller);
        match answer_directly(&self.direct, request).await {
            Ok(response) => {
                crate::http_util::log_request_line(
                    &Method::POST,
                    "/mcp",
                    response.status(),
                    started,
                );
                Ok(response)
            }
            Err(mut request) => {
                request.extensions_mut().insert(DirectDeclined);
                Err(request)
            }
        }
    }
}

/// The direct answer to a POST without a session, or the request back for the rest of
/// the layer and rmcp. `Direct` exists only without faults, so nothing `bind_sessions`
/// does before rmcp applies to these requests.
async fn answer_directly(
    direct: &super::stateless::Direct,
    request: Request,
) -> Result<Response, Request> {
    if request.method() != Method::POST || request.headers().contains_key(SESSION_HEADER) {
        return Err(request);
    }
    let (mut parts, body) = request.into_parts();
    // Taken out rather than copied, and put back for the rest of the layer.
    let Some(caller) = parts.extensions.remove::<Authenticated>() else {
        return Err(Request::from_parts(parts, body));
    };
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return Ok(jsonrpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            INVALID_REQUEST,
            "Request body too large",
        ));
    };
    match direct.answer(&caller, &parts, &bytes).await {
        Some(answer) => Ok(answer),
        None => {
            parts.extensions.insert(caller);
            Err(Request::from_parts(parts, Body::from(bytes)))
        }
    }
}

/// Splits a 2025-03-26 batch into its messages and binds each to its session with
/// `bind_sessions`.
async fn split_batches(binding: Binding, request: Request, next: Next) -> Response {
    let state = &binding.0;
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return jsonrpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            INVALID_REQUEST,
            "Request body too large",
        );
    };
    let batch = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Array(batch)) => batch,
        _ => {
            return bind_sessions(
                State(binding),
                Request::from_parts(parts, Body::from(bytes)),
                next,
            )
            .await;
        }
    };
    let config = &state.config;
    let caller = parts.extensions.get::<Authenticated>();
    let session_version = parts
        .headers
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|id| {
            state
                .sessions
                .streamable()
                .get(id)
                .filter(|owner| caller.is_some_and(|caller| caller.user.id == owner.caller.user.id))
                .map(|owner| owner.protocol_version.clone())
        });
    let receives_batches = match session_version.as_deref() {
        Some(version) if crate::injected!(config, BatchesInEveryVersion) => {
            version != ProtocolVersion::V_2024_11_05.as_str()
        }
        Some(version) => version == ProtocolVersion::V_2025_03_26.as_str(),
        None => false,
    };
    if !receives_batches || crate::injected!(config, NoBatches) {
        // Unknown sessions, another user's, and later versions: the layer and rmcp
        // refuse them as they refuse any body that is not one message.
        return bind_sessions(
            State(binding),
            Request::from_parts(parts, Body::from(bytes)),
            next,
        )
        .await;
    }
    if batch.is_empty() {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "Invalid Request: an empty batch",
        );
    }
    // "The initialize request MUST NOT be part of a JSON-RPC batch, as other requests
    // and notifications are not possible until initialization has completed."
    if !crate::injected!(config, InitializeRunsInBatch)
        && batch.iter().any(|message| {
            message.get("method").and_then(serde_json::Value::as_str) == Some("initialize")
        })
    {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "Invalid Request: initialize must not be part of a batch",
        );
    }
    let mut answers = Vec::new();
    for message in batch {
        let mut single = Request::from_parts(parts.clone(), Body::from(message.to_string()));
        single.headers_mut().remove(header::CONTENT_LENGTH);
        let response = bind_sessions(State(binding.clone()), single, next.clone()).await;
        answers.extend(batch_answers(response).await);
    }
    if answers.is_empty() {
        return accepted(config, Transport::StreamableHttp);
    }
    (
        StatusCode::OK,
        axum::Json(serde_json::Value::Array(answers)),
    )
        .into_response()
}

/// The JSON-RPC responses in the answer to one message of a batch: none for an accepted
/// notification or response, the response an SSE stream carries (read up to it: the
/// server sends no requests or notifications of its own), or the JSON body of an error.
async fn batch_answers(response: Response) -> Vec<serde_json::Value> {
    if response.status() == StatusCode::ACCEPTED {
        return Vec::new();
    }
    let stream = is_event_stream(&response);
    let status = response.status();
    let read = async {
        let mut body = response.into_body().into_data_stream();
        let mut bytes = Vec::new();
        while let Some(Ok(chunk)) = body.next().await {
            bytes.extend_from_slice(&chunk);
            if read_enough(&bytes, stream) {
                break;
            }
        }
        bytes
    };
    let Ok(bytes) = tokio::time::timeout(BATCH_ANSWER_TIMEOUT, read).await else {
        return vec![json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {"code": INTERNAL_ERROR, "message": "Internal error: no answer in time"}
        })];
    };
    let responses = responses_in(&bytes, stream);
    if responses.is_empty() && !status.is_success() {
        return vec![json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {"code": INVALID_REQUEST, "message": status.canonical_reason().unwrap_or("Bad Request")}
        })];
    }
    responses
}

/// Whether what was read of an answer holds all it will: more than the size limit, or the
/// response on a stream (which rmcp ends after it, unless a fault keeps it open).
fn read_enough(bytes: &[u8], stream: bool) -> bool {
    bytes.len() > MAX_BODY_BYTES || (stream && !responses_in(bytes, stream).is_empty())
}

/// The JSON-RPC responses in an SSE body (its complete `data:` lines) or a JSON body.
fn responses_in(bytes: &[u8], stream: bool) -> Vec<serde_json::Value> {
    let text = String::from_utf8_lossy(bytes);
    let messages: Vec<serde_json::Value> = if stream {
        text.split_inclusive('\n')
            .filter(|line| line.ends_with('\n'))
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim()).ok())
            .collect()
    } else {
        serde_json::from_str(&text).into_iter().collect()
    };
    messages
        .into_iter()
        .filter(|message| message.get("result").is_some() || message.get("error").is_some())
        .collect()
}

/// Only with the `responses-on-get-stream` fault: per session, the channel on which its
/// GET streams get a copy of every response. Entries are never removed; the fault
/// exists only for the suite's own tests.
static RESPONSE_COPIES: std::sync::LazyLock<
    std::sync::Mutex<
        std::collections::HashMap<String, tokio::sync::broadcast::Sender<axum::body::Bytes>>,
    >,
> = std::sync::LazyLock::new(Default::default);

fn response_copies(session_id: &str) -> tokio::sync::broadcast::Sender<axum::body::Bytes> {
    RESPONSE_COPIES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry(session_id.to_owned())
        .or_insert_with(|| tokio::sync::broadcast::channel(64).0)
        .clone()
}

/// Only with the `responses-on-get-stream` fault: the GET stream also carries a copy of
/// every response the session sends.
fn with_response_copies(response: Response, session_id: &str) -> Response {
    let receiver = response_copies(session_id).subscribe();
    let copies = futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(frame) => return Some((Ok::<_, axum::Error>(frame), receiver)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let (parts, body) = response.into_parts();
    let merged = futures::stream::select(body.into_data_stream(), copies);
    Response::from_parts(parts, Body::from_stream(merged))
}

/// Only with the `responses-on-get-stream` fault: sends a copy of each response on a
/// POST's stream to the session's GET streams.
fn copy_responses(response: Response, session_id: &str) -> Response {
    let copies = response_copies(session_id);
    let (parts, body) = response.into_parts();
    let teed = body.into_data_stream().map(move |chunk| {
        if let Ok(bytes) = &chunk {
            for data in String::from_utf8_lossy(bytes)
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .filter(|data| data.contains("\"result\"") || data.contains("\"error\""))
            {
                let _ = copies.send(axum::body::Bytes::from(format!(
                    "data: {}\n\n",
                    data.trim()
                )));
            }
        }
        chunk
    });
    Response::from_parts(parts, Body::from_stream(teed))
}

/// Only with the `foreign-progress-on-post-stream` fault: after its first event, a POST's
/// stream carries a progress notification for a token no request of the client named.
fn with_foreign_progress(response: Response) -> Response {
    let foreign = json!({
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {"progressToken": "another-request", "progress": 1}
    });
    let frame = axum::body::Bytes::from(format!("data: {foreign}\n\n"));
    let (parts, body) = response.into_parts();
    let frames = body
        .into_data_stream()
        .enumerate()
        .flat_map(move |(index, chunk)| {
            let mut frames = vec![chunk];
            if index == 0 {
                frames.push(Ok(frame.clone()));
            }
            futures::stream::iter(frames)
        });
    Response::from_parts(parts, Body::from_stream(frames))
}

/// The `latin1-server-title` fault: the server's title in the `initialize` answer gets
/// an "é" written as the one Latin-1 byte 0xE9, which is no UTF-8.
fn with_latin1_title(response: Response) -> Response {
    const TITLE: &[u8] = b"GitHub profile MCP server";
    let (parts, body) = response.into_parts();
    let chunks = body.into_data_stream().map(|chunk| {
        chunk.map(|bytes| {
            match bytes
                .windows(TITLE.len())
                .position(|window| window == TITLE)
            {
                Some(at) => {
                    let end = at + TITLE.len();
                    let mut changed = bytes[..end].to_vec();
                    changed.extend_from_slice(b" \xE9dition");
                    changed.extend_from_slice(&bytes[end..]);
                    axum::body::Bytes::from(changed)
                }
                None => bytes,
            }
        })
    });
    Response::from_parts(parts, Body::from_stream(chunks))
}

/// The `request-before-initialized` fault: the `initialize` answer's stream carries a
/// `roots/list` request of the server after its first frame, before the client could
/// have sent `notifications/initialized`.
fn with_roots_request(response: Response) -> Response {
    let request =
        json!({"jsonrpc": "2.0", "id": "roots-before-initialized", "method": "roots/list"});
    let frame = axum::body::Bytes::from(format!("data: {request}\n\n"));
    let (parts, body) = response.into_parts();
    let frames = body
        .into_data_stream()
        .enumerate()
        .flat_map(move |(index, chunk)| {
            let mut frames = vec![chunk];
            if index == 0 {
                frames.push(Ok(frame.clone()));
            }
            futures::stream::iter(frames)
        });
    Response::from_parts(parts, Body::from_stream(frames))
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
async fn plain_text_to_jsonrpc(config: &crate::Config, response: Response) -> Response {
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
    let body = if parts.status == StatusCode::NOT_FOUND {
        unknown_session_error(config, &message)
    } else {
        json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {"code": INVALID_REQUEST, "message": message}
        })
    };
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
    // rmcp refuses an unsupported version on every method (400, "If the server receives a
    // request with an invalid or unsupported MCP-Protocol-Version, it MUST respond with
    // 400 Bad Request", 2025-06-18 transports); these faults hide the header from it.
    let unsupported = version.as_ref().is_some_and(|version| {
        !ProtocolVersion::KNOWN_VERSIONS
            .iter()
            .any(|known| known.as_str() == version)
    });
    if unsupported && crate::injected!(config, IgnoreUnsupportedProtocolVersion) {
        request.headers_mut().remove(PROTOCOL_VERSION_HEADER);
    }
    if unsupported
        && request.method() != Method::POST
        && crate::injected!(config, ProtocolVersionCheckedOnPostOnly)
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
            INVALID_REQUEST,
            "MCP-Protocol-Version is required",
        )
    })
}

/// Only with the `discover-without-cache-hints` fault: the `server/discover` result
/// loses `resultType`, `ttlMs` and `cacheScope`.
async fn drop_discover_cache_hints(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return jsonrpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            INTERNAL_ERROR,
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
        .find(|(_, owner)| owner.caller.grant_id == caller.grant_id)
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
                INVALID_REQUEST,
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
            INTERNAL_ERROR,
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
    let unprimed = crate::injected!(config, NoPrimingEvent);
    if !prefix && !unprimed && !super::rewrites_outgoing(config) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return jsonrpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            INTERNAL_ERROR,
            "Response too large",
        );
    };
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if unprimed {
        // Only with the `no-priming-event` fault: the events without data go.
        text = text
            .split_inclusive("\n\n")
            .filter(|event| !event.lines().any(|line| line.trim_end() == "data:"))
            .collect();
    }
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::{config::vars, store::GitHubUser};
    use tokio_util::sync::CancellationToken;

    /// rmcp calls `close_session` whenever a session ends: on DELETE, when the idle
    /// timeout closes it, and when its service stops. The owner record goes with it.
    #[tokio::test]
    async fn a_session_closed_by_rmcp_takes_its_owner_record_along() {
        let config = crate::Config::from_vars(
            [
                (vars::GITHUB_CLIENT_ID, "id"),
                (vars::GITHUB_CLIENT_SECRET, "secret"),
            ],
            "http://127.0.0.1:1".parse().unwrap(),
        )
        .unwrap();
        let state = crate::new_state(config, CancellationToken::new());
        let manager = OwnedSessionManager::new(&state);
        let (id, _transport) = manager.create_session().await.unwrap();
        state.sessions.streamable().insert(
            id.to_string(),
            StreamableOwner {
                caller: Authenticated {
                    grant_id: "grant".into(),
                    user: GitHubUser {
                        login: "octocat".into(),
                        id: 1,
                    },
                    ended: CancellationToken::new(),
                    expires_at: store::now(),
                    #[cfg(feature = "fault-injection")]
                    mcp_token: String::new(),
                },
                last_used: store::now(),
                protocol_version: "2025-11-25".into(),
            },
        );
        assert!(manager.has_session(&id).await.unwrap());
        manager.close_session(&id).await.unwrap();
        assert!(!manager.has_session(&id).await.unwrap());
        assert!(state.sessions.streamable().is_empty());
    }

    /// A session records the version its `initialize` asked for when the server knows it
    /// (only 2025-03-26 sessions receive batches), and the newest version with an
    /// `initialize` handshake for any other, as negotiation answers.
    #[test]
    fn a_session_records_the_version_it_negotiated() {
        for (requested, negotiated) in [
            ("2024-11-05", "2024-11-05"),
            ("2025-03-26", "2025-03-26"),
            ("2025-11-25", "2025-11-25"),
            ("2099-01-01", "2025-11-25"),
            ("", "2025-11-25"),
        ] {
            assert_eq!(negotiated_version(requested), negotiated, "{requested:?}");
        }
    }

    /// A token for `octocat` whose grant holds a GitHub token the mock issued.
    /// The caller the bearer check would find for `token`, octocat's.
    pub(in crate::mcp) fn caller(state: &AppState, token: &str) -> Authenticated {
        let (access, _) = state.store.access_token(token).unwrap();
        Authenticated {
            grant_id: access.grant_id,
            user: GitHubUser {
                login: "octocat".into(),
                id: 1,
            },
            ended: CancellationToken::new(),
            expires_at: access.expires_at,
            #[cfg(feature = "fault-injection")]
            mcp_token: token.to_owned(),
        }
    }

    pub(in crate::mcp) async fn octocat_token(state: &AppState) -> String {
        octocat_token_with_github_fault(state, None).await
    }

    /// A token for `octocat` whose GitHub token gets the mock's `fault` (such as
    /// `user_timeout`, where `GET /user` answers only after the mock's slow delay).
    pub(in crate::mcp) async fn octocat_token_with_github_fault(
        state: &AppState,
        fault: Option<&str>,
    ) -> String {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .unwrap();
        let mut authorize = state.github.authorize_url("state");
        if let Some(fault) = fault {
            authorize.query_pairs_mut().append_pair("fault", fault);
        }
        let redirect = http.get(authorize).send().await.unwrap();
        let location = redirect.headers()[header::LOCATION].to_str().unwrap();
        let code = url::Url::parse(location)
            .unwrap()
            .query_pairs()
            .find(|(name, _)| name == "code")
            .map(|(_, code)| code.into_owned())
            .unwrap();
        let github_token = state.github.exchange_code(&code).await.unwrap();
        let client_id = &format!("direct-test-client-{}", fault.unwrap_or("none"));
        state
            .store
            .register_client(store::Client {
                client_id: client_id.into(),
                secret_digest: None,
                client_name: None,
                redirect_uris: vec!["http://127.0.0.1/callback".into()],
                grant_types: vec!["authorization_code".into()],
            })
            .unwrap();
        state.store.insert_code(
            client_id,
            store::AuthorizationCode {
                redirect_uri: "http://127.0.0.1/callback".into(),
                code_challenge: None,
                grant: store::Grant {
                    user: GitHubUser {
                        login: "octocat".into(),
                        id: 1,
                    },
                    client_id: client_id.into(),
                    scope: state.config.mcp_scope.clone(),
                    resource: state.resources[0].clone(),
                    github_token,
                },
                expires_at: store::deadline(store::now(), std::time::Duration::from_secs(60)),
            },
        );
        let (_, tokens) = state
            .store
            .redeem_code(client_id, client_id, false)
            .unwrap();
        tokens.access_token
    }

    /// A 2026-07-28 request as `tools/list` or `tools/call` clients send it.
    fn stateless_request(
        http: &reqwest::Client,
        url: &str,
        token: &str,
        accept: &str,
        (method, name, params, id): (&str, Option<&str>, serde_json::Value, serde_json::Value),
    ) -> reqwest::RequestBuilder {
        let mut params = params;
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"}
        });
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut request = http
            .post(url)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, accept)
            .header(PROTOCOL_VERSION_HEADER, "2026-07-28")
            .header("mcp-method", method);
        if let Some(name) = name {
            request = request.header("mcp-name", name);
        }
        request.body(body.to_string())
    }

    /// Within `MCP_GITHUB_PROFILE_FRESHNESS_SECS` the tool answers from the grant's copy of
    /// the profile, and once the copy is older it asks GitHub again; with the default window
    /// of zero it asks on every call. The third call comes after the copy was aged past the
    /// window.
    #[tokio::test]
    async fn the_profile_is_asked_of_github_again_only_after_its_freshness_window() {
        for (freshness, expected_user_requests) in [("0", [1, 2, 3]), ("60", [1, 1, 2])] {
            let mock = mock_github::MockGitHub::start().await;
            let mut env: Vec<(&str, String)> = mock.server_env();
            env.push((vars::PROFILE_FRESHNESS_SECS, freshness.to_owned()));
            let config =
                crate::Config::from_vars(env, "http://127.0.0.1:1".parse().unwrap()).unwrap();
            let state = crate::new_state(config, CancellationToken::new());
            let token = octocat_token(&state).await;
            let caller = caller(&state, &token);
            let server = super::super::handler::ProfileServer::new(state.clone());
            let mut user_requests = Vec::new();
            for call in 0..3 {
                if call == 2
                    && let Some((_, Some(mut cached))) =
                        state.store.grant_with_profile(&caller.grant_id)
                {
                    cached.checked_at = store::now()
                        .checked_sub(std::time::Duration::from_secs(61))
                        .expect("the clock runs for more than a minute");
                    state.store.cache_profile(&caller.grant_id, cached);
                }
                let result = server
                    .call(
                        rmcp::model::CallToolRequestParams::new("get_user_profile"),
                        Some(&caller),
                        "2025-11-25",
                    )
                    .await
                    .unwrap();
                assert_ne!(result.is_error, Some(true), "{result:?}");
                user_requests.push(
                    mock.journal()
                        .await
                        .iter()
                        .filter(|request| request.path == mock_github::USER_PATH)
                        .count(),
                );
            }
            assert_eq!(
                user_requests, expected_user_requests,
                "GET /user requests after each call, with a freshness window of {freshness} s"
            );
        }
    }

    /// The requests the stateless layer answers itself get the answer rmcp gives them (the
    /// same status, media type and JSON): the same request with a quality value in
    /// `Accept` goes to rmcp. What the layer's stricter reading of the body refuses goes
    /// to rmcp too.
    #[tokio::test]
    async fn stateless_requests_answered_without_rmcp_get_rmcps_answer() {
        let mock = mock_github::MockGitHub::start().await;
        let config =
            crate::Config::from_vars(mock.server_env(), "http://127.0.0.1:1".parse().unwrap())
                .unwrap();
        let state = crate::new_state(config, CancellationToken::new());
        assert!(super::super::stateless::Direct::new(&state).is_some());
        let token = octocat_token(&state).await;
        let direct = super::super::stateless::Direct::new(&state).unwrap();
        let caller = caller(&state, &token);
        let meta = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}
        });
        let plain =
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}});
        let with = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut body = plain.clone();
            edit(&mut body);
            body
        };
        let strict = "application/json, text/event-stream";
        let cases = [
            (strict, plain.clone(), true),
            (
                "application/json;q=1, text/event-stream",
                plain.clone(),
                false,
            ),
            (strict, with(&|b| b["id"] = json!("req-1")), true),
            (strict, with(&|b| b["id"] = json!(-3)), true),
            (strict, with(&|b| b["id"] = json!("a\"b\\c\n")), true),
            (strict, with(&|b| b["id"] = json!(1.5)), false),
            (strict, with(&|b| b["id"] = json!(u64::MAX)), false),
            (strict, with(&|b| b["id"] = json!(null)), false),
            (strict, with(&|b| b["jsonrpc"] = json!("1.0")), false),
            (strict, with(&|b| b["extra"] = json!(1)), false),
            (strict, with(&|b| b["method"] = json!("tools/call")), false),
            (strict, with(&|b| b["params"]["cursor"] = json!("x")), false),
            (
                strict,
                with(&|b| {
                    b["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] =
                        json!("2025-11-25")
                }),
                false,
            ),
            (
                strict,
                with(&|b| {
                    b["params"]["_meta"]
                        .as_object_mut()
                        .unwrap()
                        .remove("io.modelcontextprotocol/clientCapabilities");
                }),
                false,
            ),
        ];
        for (accept, body, direct_answer) in cases {
            let (parts, ()) = http::Request::post("/mcp")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ACCEPT, accept)
                .header(PROTOCOL_VERSION_HEADER, "2026-07-28")
                .header("mcp-method", "tools/list")
                .body(())
                .unwrap()
                .into_parts();
            let bytes = body.to_string().into_bytes();
            let answered = direct.answer(&caller, &parts, &bytes).await.is_some();
            assert_eq!(answered, direct_answer, "{accept} {body}");
        }
        // With a freshness window the fast path answers calls from the grant's copy of the
        // profile, serialized once: the second and later calls of each case take that way.
        for freshness in ["0", "60"] {
            stateless_answers_match_rmcps(freshness).await;
        }
    }

    async fn stateless_answers_match_rmcps(freshness: &str) {
        let mock = mock_github::MockGitHub::start().await;
        let mut env: Vec<(&str, String)> = mock.server_env();
        env.push((vars::PROFILE_FRESHNESS_SECS, freshness.to_owned()));
        let config = crate::Config::from_vars(env, "http://127.0.0.1:1".parse().unwrap()).unwrap();
        let state = crate::new_state(config, CancellationToken::new());
        let token = octocat_token(&state).await;
        let app = super::super::routes(&state).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .unwrap();
        let cases = [
            ("tools/list", None, json!({})),
            (
                "tools/call",
                Some("get_user_profile"),
                json!({"name": "get_user_profile"}),
            ),
            (
                "tools/call",
                Some("get_user_profile"),
                json!({"name": "get_user_profile", "arguments": {}}),
            ),
            // A tool error, and an unknown tool's Invalid params error.
            (
                "tools/call",
                Some("get_user_profile"),
                json!({"name": "get_user_profile", "arguments": {"x": 1}}),
            ),
            ("tools/call", Some("nothing"), json!({"name": "nothing"})),
        ];
        let ids = [json!(7), json!("req-7"), json!("a\"b\\c\n\u{2028}")];
        for ((method, name, params), id) in cases
            .into_iter()
            .flat_map(|case| ids.iter().map(move |id| (case.clone(), id.clone())))
        {
            let mut answers = Vec::new();
            for accept in [
                "application/json, text/event-stream",
                "application/json;q=1, text/event-stream",
            ] {
                let request = (method, name, params.clone(), id.clone());
                let response = stateless_request(&http, &url, &token, accept, request)
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
                let body: serde_json::Value =
                    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
                answers.push((status, content_type, body));
            }
            assert_eq!(
                answers[0], answers[1],
                "{method} {params} {id}, freshness {freshness}"
            );
            assert_eq!(answers[0].2["id"], id, "{method} {params}");
        }
    }
}
