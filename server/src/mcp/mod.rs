//! The MCP endpoints: Streamable HTTP at `/mcp` (rmcp's transport behind a thin
//! layer) and the legacy HTTP+SSE transport at `/sse` + `/messages/` (ours, on top of
//! rmcp's message handling). Both sit behind the Origin and bearer checks.

mod handler;
mod sse;
mod stateless;
mod streamable;

pub use handler::ToolList;
pub use streamable::FastPath;

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::StatusCode,
    middleware::{Next, from_fn_with_state},
    response::{IntoResponse, Response},
};
use rmcp::model::ClientJsonRpcMessage;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Config;

use crate::{AppState, http_util, resource, resource::Authenticated};

pub fn routes(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    if state.config.transports.streamable_http() {
        router = router.merge(streamable::routes(state));
    }
    if state.config.transports.sse() {
        router = router.merge(sse::routes());
    }
    router.route_layer(from_fn_with_state(state.clone(), guard))
}

/// What every MCP request passes before its transport: the Origin check first, then
/// the bearer check. One layer rather than two: each layer costs every request a clone
/// of the routes below it and a boxed future.
async fn guard(state: State<AppState>, request: Request, next: Next) -> Response {
    if let Some(refusal) = http_util::origin_refusal(&state, &request) {
        return refusal;
    }
    resource::require_bearer(state, request, next).await
}

/// An open legacy SSE session: who opened it and where its POSTed messages go.
struct SseSession {
    owner: Authenticated,
    opened: Instant,
    /// Cancelling it ends the stream and the MCP service behind it.
    service: CancellationToken,
    /// Ids of requests whose response has not gone out yet: a second request with one
    /// of them would have its reply lost, so it is refused.
    in_flight: HashSet<String>,
    /// Where its POSTed messages go: answered by the thin path, or passed to rmcp.
    dispatch: sse::Dispatch,
    /// Whether `initialize` arrived; only the `ignore-before-initialize` fault asks.
    initialized: bool,
    /// Only with the `response-only-in-post-body` fault: the requests whose response
    /// goes to the POST that carried them instead of to the stream, by serialized id.
    diverted: Option<std::sync::Arc<sse::Diverted>>,
}

/// Every live session and the caller who opened it, so that another user's token
/// cannot use it (MCP security best practices: bind sessions to the user).
#[derive(Default)]
pub struct Sessions {
    streamable_owners: Mutex<HashMap<String, StreamableOwner>>,
    /// Boxed: a table sized for many sessions then holds pointers, not sessions.
    sse: Mutex<HashMap<String, Box<SseSession>>>,
    /// (session id, JSON-RPC id) of every Streamable HTTP request still being answered.
    streamable_in_flight: Mutex<HashSet<(String, String)>>,
    /// Only with the `sequential-session-ids` fault: the counter id a client holds, and
    /// the id rmcp knows the session by.
    streamable_aliases: Mutex<HashMap<String, String>>,
}

/// Who opened a Streamable HTTP session, and when it was last used: at a user's cap,
/// the least recently used session is closed.
struct StreamableOwner {
    caller: Authenticated,
    last_used: Instant,
    /// The protocol version the session negotiated: JSON-RPC batches are received
    /// only in 2025-03-26 sessions.
    protocol_version: String,
}

impl Sessions {
    fn streamable(&self) -> std::sync::MutexGuard<'_, HashMap<String, StreamableOwner>> {
        self.streamable_owners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn streamable_in_flight(&self) -> std::sync::MutexGuard<'_, HashSet<(String, String)>> {
        self.streamable_in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn streamable_aliases(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.streamable_aliases
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn sse(&self) -> std::sync::MutexGuard<'_, HashMap<String, Box<SseSession>>> {
        self.sse
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Sessions {
    /// Who opened the session a request names (`Mcp-Session-Id` on `/mcp`, the
    /// `session_id` query parameter on the message endpoint), if it is live. Only the
    /// faults that let a session stand in for the token ask.
    pub(crate) fn owner_of<B>(&self, request: &http::Request<B>) -> Option<Authenticated> {
        if request.uri().path() == "/mcp" {
            let id = request.headers().get(streamable::SESSION_HEADER)?;
            return self
                .streamable()
                .get(id.to_str().ok()?)
                .map(|owner| owner.caller.clone());
        }
        let id = url::form_urlencoded::parse(request.uri().query()?.as_bytes())
            .find(|(name, _)| name == "session_id")
            .map(|(_, value)| value.into_owned())?;
        self.sse().get(&id).map(|session| session.owner.clone())
    }
}

/// Faults that alter the JSON-RPC messages the server sends, the same way on both
/// transports: each transport passes every outgoing message through here.
pub(crate) fn rewrite_outgoing(config: &crate::Config, message: &mut serde_json::Value) {
    let is_response = message.get("result").is_some() || message.get("error").is_some();
    if !is_response {
        return;
    }
    if crate::injected!(config, DoubleEncodedStringIds)
        && let Some(serde_json::Value::String(id)) = message.get("id")
    {
        message["id"] = serde_json::Value::String(serde_json::Value::from(id.as_str()).to_string());
    }
    // Only `ping` answers with an empty result.
    if crate::injected!(config, PingResultNotEmpty)
        && message.get("result") == Some(&serde_json::json!({}))
    {
        message["result"] = serde_json::json!({"status": "ok"});
    }
    // A tool result is the only result with `content`.
    if crate::injected!(config, ToolResultIsErrorAsString)
        && let Some(result) = message.get_mut("result")
        && result.get("content").is_some()
        && result.get("isError") != Some(&serde_json::json!(true))
    {
        result["isError"] = serde_json::json!("false");
    }
    // Here rather than in the tool's definition: rmcp drops an outputSchema that is not
    // of type object before it reaches a client of an earlier version than 2026-07-28.
    if crate::injected!(config, UntypedOutputSchema)
        && let Some(tools) = message
            .pointer_mut("/result/tools")
            .and_then(serde_json::Value::as_array_mut)
    {
        for schema in tools
            .iter_mut()
            .filter_map(|tool| tool.get_mut("outputSchema"))
            .filter_map(serde_json::Value::as_object_mut)
        {
            schema.remove("type");
        }
    }
}

/// Whether the streams a token opened outlive its expiry: under `accept-expired-tokens`,
/// which keeps the token itself valid, and `streams-outlive-expiry`.
fn stream_expiry_faults(config: &crate::Config) -> bool {
    // An array rather than `||`: without fault injection both are the same `false`.
    [
        crate::injected!(config, AcceptExpiredTokens),
        crate::injected!(config, StreamsOutliveExpiry),
    ]
    .contains(&true)
}

/// Whether any fault asks for outgoing messages to be rewritten, so that streams are
/// only buffered when one does.
pub(crate) fn rewrites_outgoing(config: &crate::Config) -> bool {
    let rewriting = [
        crate::injected!(config, DoubleEncodedStringIds),
        crate::injected!(config, PingResultNotEmpty),
        crate::injected!(config, ToolResultIsErrorAsString),
        crate::injected!(config, UntypedOutputSchema),
    ];
    rewriting.contains(&true)
}

/// The transport a POST arrived on: they acknowledge accepted input differently.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Sse,
    StreamableHttp,
}

/// A JSON-RPC error without an `id`, for what a transport answers itself instead of
/// passing it to rmcp.
const JSON_MEDIA_TYPE: &str = "application/json";
const EVENT_STREAM_MEDIA_TYPE: &str = "text/event-stream";

/// The response's media type, without parameters such as `charset`.
fn media_type(response: &Response) -> Option<&str> {
    let value = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    Some(value.split(';').next().unwrap_or(value).trim())
}

fn is_event_stream(response: &Response) -> bool {
    media_type(response) == Some(EVENT_STREAM_MEDIA_TYPE)
}

fn is_json(response: &Response) -> bool {
    media_type(response) == Some(JSON_MEDIA_TYPE)
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

/// The JSON-RPC error a transport answers for a session it does not know: a JSON-RPC
/// 2.0 message without an id, with an integer code. The `error-code-as-string` fault
/// writes the code as a string, `error-without-jsonrpc-version` leaves out `jsonrpc`.
fn unknown_session_error(config: &crate::Config, message: &str) -> Value {
    let mut body = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": INVALID_REQUEST, "message": message}
    });
    if crate::injected!(config, ErrorCodeAsString) {
        body["error"]["code"] = json!("-32600");
    }
    if crate::injected!(config, LegacyRangeSessionError) {
        body["error"]["code"] = json!(-32001);
    }
    if crate::injected!(config, ErrorWithoutJsonrpcVersion)
        && let Value::Object(fields) = &mut body
    {
        fields.remove("jsonrpc");
    }
    body
}

/// The answer to a request that reuses the id of a request still in progress in the
/// same session: JSON-RPC ids must be unique among a session's requests, and the
/// SDK would otherwise lose one of the two replies.
fn id_in_use(id: &Value) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {
                "code": INVALID_REQUEST,
                "message": "Invalid Request: a request with this id is still in progress in this session"
            }
        })),
    )
        .into_response()
}

/// The answer to input the server accepted without a response body: 202 on both
/// transports (the SDKs' SSE endpoints say "Accepted").
/// The answer the `answer-notifications` fault gives a notification: a JSON-RPC
/// response (with id null, as there is no request id to echo) where the receiver must
/// send none.
fn notification_answer() -> Response {
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({"jsonrpc": "2.0", "id": null, "result": {}})),
    )
        .into_response()
}

fn accepted(config: &Config, transport: Transport) -> Response {
    match transport {
        Transport::Sse => {
            let status = if crate::injected!(config, SsePostsGet200) {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            (status, Body::from("Accepted")).into_response()
        }
        Transport::StreamableHttp => StatusCode::ACCEPTED.into_response(),
    }
}

/// JSON-RPC 2.0 §5.1: "Invalid JSON was received by the server."
const PARSE_ERROR: i64 = -32700;
/// JSON-RPC 2.0 §5.1: "The JSON sent is not a valid Request object."
pub(super) const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC 2.0 §5.1: "Internal JSON-RPC error."
pub(super) const INTERNAL_ERROR: i64 = -32603;

/// Whether invalid input carries an id a response could name; only the faults that treat
/// such input differently ask.
fn has_usable_id(value: &Value) -> bool {
    value
        .get("id")
        .is_some_and(|id| id.is_string() || id.is_number())
}

/// Reads a POSTed body as one JSON-RPC message. rmcp answers both kinds of bad input
/// with 415 although the media type is right; JSON-RPC asks for a parse error
/// (-32700) for what is not JSON and an Invalid Request error (-32600) for JSON that
/// is not a message, and the transport spec for an error status such as 400.
fn read_message(
    config: &Config,
    transport: Transport,
    bytes: &[u8],
) -> Result<ClientJsonRpcMessage, Box<Response>> {
    if let Ok(message) = serde_json::from_slice::<ClientJsonRpcMessage>(bytes) {
        return Ok(message);
    }
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        let code = if crate::injected!(config, WrongParseErrorCode) {
            INVALID_REQUEST
        } else {
            PARSE_ERROR
        };
        return Err(Box::new(jsonrpc_error(
            StatusCode::BAD_REQUEST,
            code,
            "Parse error",
        )));
    };
    let id = value.get("id");
    if crate::injected!(config, DropInvalidRequests) && has_usable_id(&value) {
        return Err(Box::new(accepted(config, transport)));
    }
    if crate::injected!(config, NullIdAsNotification)
        && id.is_some_and(Value::is_null)
        && value.get("method").is_some()
    {
        return Err(Box::new(accepted(config, transport)));
    }
    let status = if crate::injected!(config, InvalidInputGets200)
        && transport == Transport::StreamableHttp
        && !has_usable_id(&value)
    {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let code = if crate::injected!(config, InvalidRequestAsParseError) {
        PARSE_ERROR
    } else {
        INVALID_REQUEST
    };
    Err(Box::new(jsonrpc_error(
        status,
        code,
        "Invalid Request: not a JSON-RPC request, notification or response",
    )))
}
