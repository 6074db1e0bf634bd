//! The 2026-07-28 (stateless) side of `/mcp`. rmcp serves these requests itself: it
//! checks `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` against the body,
//! requires the `_meta` fields, and maps the protocol errors to their HTTP statuses.
//! This layer adds what rmcp leaves out (`X-Accel-Buffering: no` on SSE responses)
//! and holds the faults that break the stateless transport for the suite's tests.
//!
//! rmcp builds a whole service for every stateless request (a peer with its channels,
//! a spawned serve loop, the body parsed and re-serialized several times), which cost
//! most of a `tools/list` or `tools/call`. [`Direct`] answers the well-formed
//! `tools/list` and `tools/call` requests itself, from the same handler code, and
//! leaves everything else (every error rmcp reports, every other method) to rmcp.

use axum::{
    body::{Body, Bytes, to_bytes},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use rmcp::ServerHandler as _;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientJsonRpcMessage, ClientRequest, ErrorCode,
    GetMeta, PaginatedRequestParams, ProtocolVersion, RequestMetaObject, ServerJsonRpcMessage,
    ServerResult,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    EVENT_STREAM_MEDIA_TYPE, INTERNAL_ERROR, INVALID_REQUEST, JSON_MEDIA_TYPE,
    handler::ProfileServer, is_event_stream, is_json, jsonrpc_error,
};
use crate::{AppState, http_util::ScopedBody, resource::Authenticated};

const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";
const SESSION_HEADER: &str = super::streamable::SESSION_HEADER;
/// The prefix of a Base64-encoded header value: `=?base64?<payload>?=`.
const BASE64_PREFIX: &str = "=?base64?";
const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// rmcp's own limit on bodies, so a rewritten response is never cut shorter.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The stateless requests answered without an rmcp service: a `tools/list` whose
/// result is serialized once, and a `tools/call` dispatched straight to the tool.
///
/// A request takes this path only when rmcp would serve it with a 200 result: the
/// headers rmcp checks (`Accept`, `Content-Type`, `MCP-Protocol-Version`, `Mcp-Method`,
/// `Mcp-Name`) are exactly what it accepts, and the `_meta` carries every required
/// field of the 2026-07-28 version. Anything else, an unusual spelling rmcp would
/// still accept included, goes to rmcp, which stays the one judge of bad requests.
/// With any fault configured the path is off, so the faults act where they always did.
pub(super) struct Direct {
    server: ProfileServer,
    /// The whole `result` of `tools/list` at 2026-07-28, with its `_meta`.
    tools_list: String,
    /// `io.modelcontextprotocol/serverInfo`, for every other result's `_meta`.
    server_info: Value,
}

impl Direct {
    /// `None` when the path must stay off: a fault is configured, or the server does not
    /// support 2026-07-28 (rmcp would refuse the version).
    pub(super) fn new(state: &AppState) -> Option<Direct> {
        #[cfg(feature = "fault-injection")]
        if !state.config.faults.is_empty() {
            return None;
        }
        let server = ProfileServer::new(state.clone());
        let version = ProtocolVersion::V_2026_07_28;
        if !server.supported_protocol_versions().contains(&version) {
            return None;
        }
        let server_info = serde_json::to_value(server.get_info().server_info).ok()?;
        // What rmcp does to a result at 2026-07-28, then what `finish` adds.
        let mut result =
            ServerResult::ListToolsResult(server.tools_list(version.as_str(), None).ok()?);
        result.fill_missing_cache_hints();
        let mut message = json!({"result": serde_json::to_value(result).ok()?});
        add_server_info(&mut message, &server_info);
        let tools_list = message.get("result")?.to_string();
        Some(Direct {
            server,
            tools_list,
            server_info,
        })
    }

    /// The answer to the request in `body`, or `None` when rmcp is to answer it.
    ///
    /// The body is read into the one request type its `Mcp-Method` header names, not into
    /// rmcp's message enum, whose untagged variants are each tried in turn (most of the
    /// cost of reading a request). Whatever this stricter reading refuses (another
    /// member, `jsonrpc` or `method` spelled with escapes, an id that is no string and no
    /// integer within `i64`) goes to rmcp unchanged.
    pub(super) async fn answer(
        &self,
        caller: &Authenticated,
        parts: &Parts,
        body: &[u8],
    ) -> Option<Response> {
        match single_header(&parts.headers, METHOD_HEADER)? {
            "tools/list" => {
                let request: Envelope<PaginatedRequestParams> = read_envelope(body)?;
                let params = request.params;
                if request.method != "tools/list"
                    || params.cursor.is_some()
                    || !is_modern(params.meta.as_ref())
                    || !headers_fit(&parts.headers, "tools/list", None)
                {
                    return None;
                }
                let body = format!(
                    r#"{{"id":{},"jsonrpc":"2.0","result":{}}}"#,
                    request.id.text, self.tools_list
                );
                Some(json_response(StatusCode::OK, body))
            }
            "tools/call" => {
                let request: Envelope<CallToolRequestParams> = read_envelope(body)?;
                let params = request.params;
                // Answers to input requests belong to tools that ask for input, which
                // rmcp's task and input machinery handles.
                if request.method != "tools/call"
                    || params.input_responses.is_some()
                    || params.request_state.is_some()
                    || !is_modern(params.meta.as_ref())
                    || !headers_fit(&parts.headers, "tools/call", Some(&params.name))
                {
                    return None;
                }
                // Within the profile's freshness window every call of one grant gets the
                // same result: it is serialized once per profile, not once per call.
                if let Some(cached) = self.server.fresh_profile(&params, caller) {
                    let rendered = match cached.rendered.get() {
                        Some(rendered) => rendered,
                        None => {
                            let result = self.server.profile_result(
                                Value::clone(&cached.profile),
                                ProtocolVersion::V_2026_07_28.as_str(),
                            );
                            let rendered = self.result_json(result.ok()?)?;
                            cached.rendered.get_or_init(|| rendered)
                        }
                    };
                    let body = format!(
                        r#"{{"id":{},"jsonrpc":"2.0","result":{rendered}}}"#,
                        request.id.text
                    );
                    return Some(json_response(StatusCode::OK, body));
                }
                // Boxed: the call to GitHub is a large state machine, which the answers
                // above should not pay for moving.
                let outcome = Box::pin(self.server.call(
                    params,
                    Some(caller),
                    ProtocolVersion::V_2026_07_28.as_str(),
                ))
                .await;
                Some(self.call_response(request.id, outcome))
            }
            _ => None,
        }
    }

    /// The `tools/call` answer as rmcp and then `finish` would give it: the result
    /// with its cache hints and `serverInfo`, or the error with rmcp's HTTP status.
    fn call_response(
        &self,
        id: PlainId,
        outcome: Result<rmcp::model::CallToolResult, rmcp::ErrorData>,
    ) -> Response {
        let body = match outcome {
            Ok(result) => self
                .result_json(result)
                .map(|result| format!(r#"{{"id":{},"jsonrpc":"2.0","result":{result}}}"#, id.text)),
            // rmcp gives its 2026-07-28 peers Invalid params for a resource not found, but
            // the tool fails only with Invalid params (an unknown tool) or Internal error,
            // which it passes on unchanged: the error goes out as the tool made it.
            Err(error) => {
                serde_json::to_string(&ServerJsonRpcMessage::error(error, Some(id.id))).ok()
            }
        };
        // The tool fails with Invalid params or Internal error, which rmcp sends with 200
        // like a result; its other statuses answer the header checks, which come first.
        match body {
            Some(body) => json_response(StatusCode::OK, body),
            None => jsonrpc_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                INTERNAL_ERROR,
                "Unserialisable result",
            ),
        }
    }

    /// A tool's result as rmcp and then `finish` would serialize it at 2026-07-28: with
    /// its cache hints, and `serverInfo` in its `_meta` (where `add_server_info` puts it
    /// into rmcp's), serialized once rather than turned into a `Value` and back.
    fn result_json(&self, mut result: rmcp::model::CallToolResult) -> Option<String> {
        let meta = result.meta.get_or_insert_with(Default::default);
        if !meta.contains_key(SERVER_INFO) {
            meta.insert(SERVER_INFO.into(), self.server_info.clone());
        }
        let mut result = ServerResult::from(CallToolResponse::from(result));
        result.fill_missing_cache_hints();
        serde_json::to_string(&result).ok()
    }
}

/// A JSON-RPC request as the fast path reads it: exactly these members, no others.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a, P> {
    #[serde(borrow, deserialize_with = "json_rpc_2")]
    #[expect(dead_code, reason = "read only to check that it is \"2.0\"")]
    jsonrpc: &'a str,
    id: PlainId,
    #[serde(borrow)]
    method: &'a str,
    params: P,
}

fn json_rpc_2<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<&'de str, D::Error> {
    let version = <&str>::deserialize(deserializer)?;
    if version == "2.0" {
        Ok(version)
    } else {
        Err(serde::de::Error::custom("not JSON-RPC 2.0"))
    }
}

/// A request id as rmcp holds it (an integer that fits an `i64`, or a string) and as
/// JSON, to go back in the answer.
struct PlainId {
    id: rmcp::model::RequestId,
    text: String,
}

impl<'de> Deserialize<'de> for PlainId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = Value::deserialize(deserializer)?;
        let id = match &value {
            Value::Number(number) => rmcp::model::NumberOrString::Number(
                number
                    .as_i64()
                    .ok_or_else(|| D::Error::custom("not an i64"))?,
            ),
            Value::String(text) => rmcp::model::NumberOrString::String(text.as_str().into()),
            _ => return Err(D::Error::custom("not a request id")),
        };
        Ok(PlainId {
            id,
            text: value.to_string(),
        })
    }
}

fn read_envelope<'a, P: Deserialize<'a>>(body: &'a [u8]) -> Option<Envelope<'a, P>> {
    serde_json::from_slice(body).ok()
}

/// Whether a request's `_meta` names 2026-07-28 and carries every field that version
/// requires, as rmcp asks of it.
fn is_modern(meta: Option<&RequestMetaObject>) -> bool {
    meta.is_some_and(|meta| {
        meta.protocol_version()
            .is_some_and(|version| version == ProtocolVersion::V_2026_07_28)
            && meta
                .missing_required_keys(&ProtocolVersion::V_2026_07_28)
                .is_empty()
    })
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, Body::from(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_MEDIA_TYPE),
    );
    response
}

/// Whether rmcp would let the headers of a `method` request through, by a rule
/// stricter than rmcp's own: `Accept` lists both media types without parameters,
/// `Content-Type` is JSON, `MCP-Protocol-Version` is 2026-07-28, and `Mcp-Method`
/// (and for `tools/call` a plain `Mcp-Name`) match the body, each sent once.
fn headers_fit(headers: &HeaderMap, method: &str, name: Option<&str>) -> bool {
    let mut accepts_json = false;
    let mut accepts_event_stream = false;
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        // Quality values and quoted strings are left to rmcp's parser.
        if value.contains([';', '"']) {
            return false;
        }
        for media_type in value.split(',').map(str::trim) {
            accepts_json |= media_type.eq_ignore_ascii_case(JSON_MEDIA_TYPE);
            accepts_event_stream |= media_type.eq_ignore_ascii_case(EVENT_STREAM_MEDIA_TYPE);
        }
    }
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let essence = value.split_once(';').map_or(value, |(essence, _)| essence);
            essence.trim().eq_ignore_ascii_case(JSON_MEDIA_TYPE)
        });
    let name_fits = match name {
        Some(name) => {
            !name.starts_with(BASE64_PREFIX) && single_header(headers, NAME_HEADER) == Some(name)
        }
        None => true,
    };
    accepts_json
        && accepts_event_stream
        && json_body
        && single_header(headers, PROTOCOL_VERSION_HEADER)
            == Some(ProtocolVersion::V_2026_07_28.as_str())
        && single_header(headers, METHOD_HEADER) == Some(method)
        && name_fits
}

/// A header sent exactly once, as text.
fn single_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()
}

/// Puts `serverInfo` into a result's `_meta` unless it is there already (see
/// `name_the_server`).
fn add_server_info(message: &mut Value, server_info: &Value) {
    let Some(result) = message.get_mut("result").and_then(Value::as_object_mut) else {
        return;
    };
    let meta = result.entry("_meta").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut()
        && !meta.contains_key(SERVER_INFO)
    {
        meta.insert(SERVER_INFO.into(), server_info.clone());
    }
}

/// What the response side needs to know about a 2026-07-28 message.
pub(super) struct Modern {
    /// The JSON-RPC method, `None` for a response or error object.
    method: Option<String>,
    /// Whether it is a notification (a method without an id).
    notification: bool,
}

impl Modern {
    /// Whether it opens a `subscriptions/listen` stream, which lasts until the client
    /// closes it and so must never be read to its end.
    pub(super) fn is_subscription(&self) -> bool {
        self.method.as_deref() == Some("subscriptions/listen")
    }
}

/// Only with the `notification-before-subscription-ack` fault: the subscription stream
/// sends `notifications/tools/list_changed` before its acknowledgment, and then ends.
fn notification_before_ack(response: Response) -> Response {
    let (parts, _) = response.into_parts();
    let changed = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
    let ack = json!({
        "jsonrpc": "2.0",
        "method": "notifications/subscriptions/acknowledged",
        "params": {"_meta": {"io.modelcontextprotocol/subscriptionId": "subscription"}}
    });
    event_stream(parts.status, &[changed], &ack, true)
}

/// Whether a POSTed message is a 2026-07-28 one: a request that carries its protocol
/// version in `_meta`, or any message sent with `MCP-Protocol-Version: 2026-07-28` or
/// later (notifications and responses have no `_meta` version of their own).
pub(super) fn classify(parts: &Parts, message: &ClientJsonRpcMessage) -> Option<Modern> {
    let header_is_modern = parts
        .headers
        .get(PROTOCOL_VERSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28.as_str());
    let meta_version = matches!(message, ClientJsonRpcMessage::Request(request)
        if request.request.get_meta().protocol_version().is_some());
    if !(header_is_modern || meta_version) {
        return None;
    }
    let value = serde_json::to_value(message).unwrap_or_default();
    Some(Modern {
        method: value
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_owned),
        notification: matches!(message, ClientJsonRpcMessage::Notification(_)),
    })
}

/// The faults that act on a 2026-07-28 request before rmcp reads it. They rewrite the
/// headers or the body (`bytes`), or answer in rmcp's place.
pub(super) fn request_faults(
    config: &crate::Config,
    modern: &Modern,
    parts: &mut Parts,
    bytes: &mut Bytes,
) -> Option<Response> {
    let any = [
        crate::injected!(config, McpMethodNotChecked),
        crate::injected!(config, McpNameNotChecked),
        crate::injected!(config, Base64McpNameNotDecoded),
        crate::injected!(config, MissingVersionHeaderServedAsModern),
        crate::injected!(config, MissingClientCapabilitiesAccepted),
        crate::injected!(config, StatelessResponseObjectAccepted),
    ];
    if !any.contains(&true) {
        return None;
    }
    let Ok(mut body) = serde_json::from_slice::<Value>(bytes) else {
        return None;
    };
    let id = body.get("id").cloned().unwrap_or(Value::Null);
    // A server that routes on the body alone never looks at `Mcp-Method`.
    if crate::injected!(config, McpMethodNotChecked)
        && let Some(value) = modern
            .method
            .as_deref()
            .and_then(|method| HeaderValue::from_str(method).ok())
    {
        parts.headers.insert(METHOD_HEADER, value);
    }
    let name = body
        .pointer("/params/name")
        .or_else(|| body.pointer("/params/uri"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let sent_name = parts
        .headers
        .get(NAME_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let encoded = sent_name
        .as_deref()
        .is_some_and(|name| name.starts_with(BASE64_PREFIX));
    // Nor at a plain `Mcp-Name`; Base64 ones are still decoded and compared.
    if crate::injected!(config, McpNameNotChecked)
        && !encoded
        && let Some(value) = name
            .as_deref()
            .and_then(|name| HeaderValue::from_str(name).ok())
    {
        parts.headers.insert(NAME_HEADER, value);
    }
    // A server that compares the raw header: an encoded name never matches the body.
    if crate::injected!(config, Base64McpNameNotDecoded) && encoded {
        return Some(
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({
                    "jsonrpc": "2.0",
                    "id": id,
                    "error": {"code": -32020, "message": "Mcp-Name does not match the body"}
                })),
            )
                .into_response(),
        );
    }
    let meta_version = body
        .pointer("/params/_meta/io.modelcontextprotocol~1protocolVersion")
        .and_then(Value::as_str)
        .and_then(|version| HeaderValue::from_str(version).ok());
    // A missing header is taken from `_meta`, so the request is served as 2026-07-28.
    if crate::injected!(config, MissingVersionHeaderServedAsModern)
        && !parts.headers.contains_key(PROTOCOL_VERSION_HEADER)
        && let Some(version) = meta_version
    {
        parts.headers.insert(PROTOCOL_VERSION_HEADER, version);
    }
    // Missing client capabilities count as none instead of a malformed request.
    if crate::injected!(config, MissingClientCapabilitiesAccepted)
        && let Some(meta) = body
            .pointer_mut("/params/_meta")
            .and_then(Value::as_object_mut)
        && !meta.contains_key("io.modelcontextprotocol/clientCapabilities")
    {
        meta.insert(
            "io.modelcontextprotocol/clientCapabilities".into(),
            json!({}),
        );
        *bytes = Bytes::from(body.to_string());
        parts.headers.remove(header::CONTENT_LENGTH);
    }
    if crate::injected!(config, StatelessResponseObjectAccepted) && modern.method.is_none() {
        return Some(StatusCode::ACCEPTED.into_response());
    }
    None
}

/// Only with the `initialize-refused-without-versions` fault: the server acts as one
/// that serves 2026-07-28 alone and refuses the handshake without saying which versions
/// it supports.
pub(super) fn initialize_fault(
    config: &crate::Config,
    message: &ClientJsonRpcMessage,
) -> Option<Response> {
    let ClientJsonRpcMessage::Request(request) = message else {
        return None;
    };
    let initialize = matches!(request.request, ClientRequest::InitializeRequest(_));
    (initialize && crate::injected!(config, InitializeRefusedWithoutVersions)).then(|| {
        let id = serde_json::to_value(&request.id).unwrap_or_default();
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": {"code": INVALID_REQUEST, "message": "initialize is not supported"}
            })),
        )
            .into_response()
    })
}

/// What every SSE response to a 2026-07-28 request gets, then the faults that rewrite
/// the response.
pub(super) async fn finish(
    state: &AppState,
    caller: &Authenticated,
    modern: &Modern,
    request_session: Option<&HeaderValue>,
    mut response: Response,
) -> Response {
    let config = &state.config;
    if modern.is_subscription() && is_event_stream(&response) {
        if crate::injected!(config, NotificationBeforeSubscriptionAck) {
            return notification_before_ack(response);
        }
        // A subscription lasts no longer than the token that opened it, like the
        // standalone stream of the earlier revisions.
        let (parts, body) = response.into_parts();
        let mut body = ScopedBody::new(body);
        if !crate::injected!(config, SubscriptionOutlivesRevocation) {
            body = body.ended_by(caller.ended.clone());
        }
        if !super::stream_expiry_faults(config) {
            body = body.until(caller.expires_at);
        }
        response = Response::from_parts(parts, body.into_body());
    }
    // Only with `subscription-held-back`: the subscription's stream is read whole like a
    // JSON result, so nothing of it leaves before it ends.
    let held_back = modern.is_subscription() && crate::injected!(config, SubscriptionHeldBack);
    if is_json(&response) && response.status() == StatusCode::OK || held_back {
        response = name_the_server(state, response).await;
    }
    if is_event_stream(&response) {
        // "When initiating an SSE stream, servers SHOULD include the
        // `X-Accel-Buffering: no` header in the HTTP response" (2026-07-28 transports),
        // so that proxies such as nginx pass each event on as it comes.
        response
            .headers_mut()
            .insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    response_faults(config, modern, request_session, response).await
}

/// "Servers SHOULD include the following `io.modelcontextprotocol/*` field in every
/// result's `_meta`, unless specifically configured not to do so, to identify themselves
/// without relying on any prior connection state: `io.modelcontextprotocol/serverInfo`"
/// (2026-07-28 base protocol). rmcp puts it only into the `server/discover` result, so
/// the JSON answers of the other methods get it here, with the same identity.
async fn name_the_server(state: &AppState, response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return jsonrpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            INTERNAL_ERROR,
            "Response too large",
        );
    };
    let Ok(mut message) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let Some(result) = message.get_mut("result").and_then(Value::as_object_mut) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let meta = result.entry("_meta").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if !meta.contains_key(SERVER_INFO) {
        let info = ProfileServer::new(state.clone()).get_info().server_info;
        meta.insert(
            SERVER_INFO.into(),
            serde_json::to_value(info).unwrap_or_default(),
        );
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(message.to_string()))
}

async fn response_faults(
    config: &crate::Config,
    modern: &Modern,
    request_session: Option<&HeaderValue>,
    mut response: Response,
) -> Response {
    let any = [
        crate::injected!(config, StatelessEchoesSessionId),
        crate::injected!(config, StatelessNotificationWithBody),
        crate::injected!(config, StatelessRequestGets202),
        crate::injected!(config, StatelessResultInArray),
        crate::injected!(config, ResultWithoutResultType),
        crate::injected!(config, ResultWithoutServerInfo),
        crate::injected!(config, RequestOnResponseStream),
        crate::injected!(config, SseWithoutAccelBuffering),
        crate::injected!(config, LogWithoutLogLevel),
        crate::injected!(config, RetiredErrorCode),
    ];
    if !any.contains(&true) {
        return response;
    }
    if let Some(session) = request_session
        && crate::injected!(config, StatelessEchoesSessionId)
    {
        response
            .headers_mut()
            .insert(SESSION_HEADER, session.clone());
    }
    if modern.notification
        && response.status() == StatusCode::ACCEPTED
        && crate::injected!(config, StatelessNotificationWithBody)
    {
        return (StatusCode::ACCEPTED, axum::Json(json!({"accepted": true}))).into_response();
    }
    let method = modern.method.as_deref().unwrap_or_default();
    let rewrites = match method {
        "tools/list" => [
            crate::injected!(config, StatelessRequestGets202),
            crate::injected!(config, StatelessResultInArray),
            crate::injected!(config, ResultWithoutServerInfo),
        ]
        .contains(&true),
        "tools/call" => [
            crate::injected!(config, ResultWithoutResultType),
            crate::injected!(config, RequestOnResponseStream),
            crate::injected!(config, SseWithoutAccelBuffering),
            crate::injected!(config, LogWithoutLogLevel),
            crate::injected!(config, RetiredErrorCode),
            crate::injected!(config, ResultWithoutServerInfo),
        ]
        .contains(&true),
        _ => false,
    };
    if !rewrites || !is_json(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return jsonrpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            INTERNAL_ERROR,
            "Response too large",
        );
    };
    let Ok(mut message) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if let Some(result) = message.get_mut("result").and_then(Value::as_object_mut) {
        if method == "tools/call" && crate::injected!(config, ResultWithoutResultType) {
            result.remove("resultType");
        }
        if crate::injected!(config, ResultWithoutServerInfo)
            && let Some(meta) = result.get_mut("_meta").and_then(Value::as_object_mut)
        {
            meta.remove(SERVER_INFO);
        }
    }
    if crate::injected!(config, RetiredErrorCode)
        && message.pointer("/error/code") == Some(&json!(ErrorCode::INVALID_PARAMS.0))
    {
        // -32002 was "resource not found" before 2026-07-28 retired it.
        message["error"]["code"] = json!(-32002);
    }
    let is_result = message.get("result").is_some();
    if method == "tools/list" && is_result {
        if crate::injected!(config, StatelessRequestGets202) {
            // As if the response went out on some other stream.
            return StatusCode::ACCEPTED.into_response();
        }
        if crate::injected!(config, StatelessResultInArray) {
            message = json!([message]);
        }
    }
    if method == "tools/call" && is_result {
        let mut before = Vec::new();
        if crate::injected!(config, RequestOnResponseStream) {
            before.push(json!({"jsonrpc": "2.0", "id": "server-1", "method": "ping"}));
        }
        if crate::injected!(config, LogWithoutLogLevel) {
            before.push(json!({
                "jsonrpc": "2.0",
                "method": "notifications/message",
                "params": {"level": "info", "data": "calling GitHub"}
            }));
        }
        let accel = !crate::injected!(config, SseWithoutAccelBuffering);
        if !before.is_empty() || !accel {
            return event_stream(parts.status, &before, &message, accel);
        }
    }
    let mut parts = parts;
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(message.to_string()))
}

/// An SSE response carrying `before`, then `last`, then its end.
fn event_stream(status: StatusCode, before: &[Value], last: &Value, accel: bool) -> Response {
    let mut text = String::new();
    for message in before.iter().chain(std::iter::once(last)) {
        text.push_str(&format!("event: message\ndata: {message}\n\n"));
    }
    let mut response = (status, Body::from(text)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(EVENT_STREAM_MEDIA_TYPE),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if accel {
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    response
}
