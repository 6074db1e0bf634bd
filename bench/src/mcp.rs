//! MCP clients for the two HTTP transports, as thin as a load generator can be:
//! bodies are formatted strings, responses are parsed once to check them.

use std::{net::IpAddr, time::Duration};

use anyhow::{Context, bail};
use bytes::Bytes;
use hyper::{
    Method, StatusCode,
    header::{self, HeaderName, HeaderValue},
};
use serde_json::Value;

use crate::client::{Conn, Endpoint, EventStream};

/// The protocol version sessions negotiate on Streamable HTTP (and the one the
/// 2026-07-28 stateless mode replaces).
pub const SESSION_PROTOCOL: &str = "2025-11-25";
/// The protocol of the legacy HTTP+SSE transport.
pub const SSE_PROTOCOL: &str = "2024-11-05";
/// The protocol whose requests need no session (SEP-2567).
pub const STATELESS_PROTOCOL: &str = "2026-07-28";
pub const TOOL: &str = "get_user_profile";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Streamable HTTP, one session per client.
    Streamable,
    /// Streamable HTTP with 2026-07-28 self-contained requests, no session.
    Stateless,
    /// The legacy HTTP+SSE transport.
    Sse,
}

impl Transport {
    pub fn parse(value: &str) -> anyhow::Result<Transport> {
        Ok(match value {
            "streamable-http" => Transport::Streamable,
            "stateless" => Transport::Stateless,
            "sse" => Transport::Sse,
            _ => bail!("unknown transport {value:?} (streamable-http, stateless, sse)"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Transport::Streamable => "streamable-http",
            Transport::Stateless => "stateless",
            Transport::Sse => "sse",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ToolsList,
    ToolsCall,
}

impl Op {
    pub fn parse(value: &str) -> anyhow::Result<Op> {
        Ok(match value {
            "tools/list" => Op::ToolsList,
            "tools/call" => Op::ToolsCall,
            _ => bail!("unknown operation {value:?} (tools/list, tools/call)"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Op::ToolsList => "tools/list",
            Op::ToolsCall => "tools/call",
        }
    }
}

/// What the 2026-07-28 protocol wants in every request's `_meta`.
fn stateless_meta() -> &'static str {
    concat!(
        r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","#,
        r#""io.modelcontextprotocol/clientCapabilities":{},"#,
        r#""io.modelcontextprotocol/clientInfo":{"name":"mcp-bench","version":"0.1.0"}}"#
    )
}

pub fn request_body(op: Op, id: u64, stateless: bool) -> Bytes {
    let meta = if stateless { stateless_meta() } else { "" };
    Bytes::from(match op {
        Op::ToolsList => {
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list","params":{{{meta}}}}}"#)
        }
        Op::ToolsCall => {
            let separator = if stateless { "," } else { "" };
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{TOOL}","arguments":{{}}{separator}{meta}}}}}"#
            )
        }
    })
}

fn initialize_body(protocol: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{protocol}","capabilities":{{}},"clientInfo":{{"name":"mcp-bench","version":"0.1.0"}}}}}}"#
    ))
}

/// The `Mcp-Method` (and `Mcp-Name`) headers 2026-07-28 requests carry (SEP-2243).
pub fn standard_headers(op: Op) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = vec![(
        HeaderName::from_static("mcp-method"),
        HeaderValue::from_static(op.name()),
    )];
    if op == Op::ToolsCall {
        headers.push((
            HeaderName::from_static("mcp-name"),
            HeaderValue::from_static(TOOL),
        ));
    }
    headers
}

const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// Checks that `value` is the successful answer to request `id` of `op`.
pub fn check_response(value: &Value, id: u64, op: Op) -> anyhow::Result<()> {
    if value.get("id").and_then(Value::as_u64) != Some(id) {
        bail!("a response to another request: {:.200}", value.to_string());
    }
    if let Some(error) = value.get("error") {
        bail!("JSON-RPC error: {:.200}", error.to_string());
    }
    let result = value.get("result").context("a response without result")?;
    match op {
        Op::ToolsList => {
            let tools = result["tools"]
                .as_array()
                .context("tools/list without tools")?;
            if !tools.iter().any(|tool| tool["name"] == TOOL) {
                bail!("tools/list does not list {TOOL}");
            }
        }
        Op::ToolsCall => {
            if result.get("isError").and_then(Value::as_bool) == Some(true) {
                bail!("the tool failed: {:.200}", result.to_string());
            }
            if result["content"].as_array().is_none_or(Vec::is_empty) {
                bail!("tools/call without content");
            }
        }
    }
    Ok(())
}

fn bearer(token: &str) -> anyhow::Result<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// One MCP client with its own connection(s) and, where the transport has one,
/// its own session.
pub enum Client {
    Streamable {
        conn: Conn,
        headers: Vec<(HeaderName, HeaderValue)>,
        path: String,
        stateless: bool,
        next_id: u64,
    },
    Sse {
        conn: Conn,
        stream: EventStream,
        headers: Vec<(HeaderName, HeaderValue)>,
        post_path: String,
        next_id: u64,
    },
}

impl Client {
    /// Connects and initializes (except in stateless mode, which has no handshake).
    pub async fn connect(
        endpoint: &Endpoint,
        transport: Transport,
        mcp_path: &str,
        sse_path: &str,
        token: &str,
        source: Option<IpAddr>,
        timeout: Duration,
    ) -> anyhow::Result<Client> {
        let auth = bearer(token)?;
        match transport {
            Transport::Streamable | Transport::Stateless => {
                let stateless = transport == Transport::Stateless;
                let protocol = if stateless {
                    STATELESS_PROTOCOL
                } else {
                    SESSION_PROTOCOL
                };
                let mut conn = Conn::open(endpoint, source).await?;
                let mut headers = vec![
                    (header::AUTHORIZATION, auth),
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    ),
                    (
                        header::ACCEPT,
                        HeaderValue::from_static("application/json, text/event-stream"),
                    ),
                ];
                if !stateless {
                    let reply = tokio::time::timeout(
                        timeout,
                        conn.exchange(Method::POST, mcp_path, &headers, initialize_body(protocol)),
                    )
                    .await
                    .context("initialize timed out")??;
                    if reply.status != StatusCode::OK {
                        bail!("initialize: HTTP {}: {:.200}", reply.status, reply.text());
                    }
                    let answer = reply.jsonrpc()?;
                    if answer.get("result").is_none() {
                        bail!("initialize failed: {:.200}", answer.to_string());
                    }
                    if let Some(session) = reply.header("mcp-session-id") {
                        headers.push((
                            HeaderName::from_static("mcp-session-id"),
                            HeaderValue::from_str(session)?,
                        ));
                    }
                }
                headers.push((
                    HeaderName::from_static("mcp-protocol-version"),
                    HeaderValue::from_static(protocol),
                ));
                if !stateless {
                    let reply = tokio::time::timeout(
                        timeout,
                        conn.exchange(Method::POST, mcp_path, &headers, Bytes::from(INITIALIZED)),
                    )
                    .await
                    .context("notifications/initialized timed out")??;
                    if !reply.status.is_success() {
                        bail!("notifications/initialized: HTTP {}", reply.status);
                    }
                }
                Ok(Client::Streamable {
                    conn,
                    headers,
                    path: mcp_path.to_owned(),
                    stateless,
                    next_id: 1,
                })
            }
            Transport::Sse => {
                let get_headers = [
                    (header::AUTHORIZATION, auth.clone()),
                    (
                        header::ACCEPT,
                        HeaderValue::from_static("text/event-stream"),
                    ),
                ];
                let stream_conn = Conn::open(endpoint, source).await?;
                let mut stream = tokio::time::timeout(
                    timeout,
                    EventStream::open(stream_conn, sse_path, &get_headers),
                )
                .await
                .context("GET /sse timed out")??;
                let first = stream.next(timeout).await?;
                if first.event != "endpoint" {
                    bail!(
                        "the stream began with {:?}, not an endpoint event",
                        first.event
                    );
                }
                let post_path = relative_path(sse_path, &first.data)?;
                let conn = Conn::open(endpoint, source).await?;
                let headers = vec![
                    (header::AUTHORIZATION, auth),
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    ),
                ];
                let mut client = Client::Sse {
                    conn,
                    stream,
                    headers,
                    post_path,
                    next_id: 1,
                };
                client.sse_initialize(timeout).await?;
                Ok(client)
            }
        }
    }

    /// Builds an SSE client from a stream that is already open and a shared POST
    /// connection (the scale test holds thousands of streams and few POST connections).
    pub async fn open_sse_stream(
        endpoint: &Endpoint,
        sse_path: &str,
        token: &str,
        source: Option<IpAddr>,
        timeout: Duration,
    ) -> anyhow::Result<(EventStream, String)> {
        let get_headers = [
            (header::AUTHORIZATION, bearer(token)?),
            (
                header::ACCEPT,
                HeaderValue::from_static("text/event-stream"),
            ),
        ];
        let stream_conn = Conn::open(endpoint, source).await?;
        let mut stream = tokio::time::timeout(
            timeout,
            EventStream::open(stream_conn, sse_path, &get_headers),
        )
        .await
        .context("GET /sse timed out")??;
        let first = stream.next(timeout).await?;
        if first.event != "endpoint" {
            bail!(
                "the stream began with {:?}, not an endpoint event",
                first.event
            );
        }
        let post_path = relative_path(sse_path, &first.data)?;
        Ok((stream, post_path))
    }

    async fn sse_initialize(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let Client::Sse {
            conn,
            stream,
            headers,
            post_path,
            ..
        } = self
        else {
            unreachable!("only called on SSE clients")
        };
        sse_handshake(conn, stream, headers, post_path, timeout).await
    }

    /// One request, answered and checked. Returns an error for a transport failure
    /// (the client is unusable after it) or a wrong answer (it is not).
    pub async fn call(&mut self, op: Op, timeout: Duration) -> Result<(), CallError> {
        match self {
            Client::Streamable {
                conn,
                headers,
                path,
                stateless,
                next_id,
            } => {
                let id = *next_id;
                *next_id += 1;
                let body = request_body(op, id, *stateless);
                let with_method;
                let headers = if *stateless {
                    // SEP-2243: 2026-07-28 requests name their method (and tool) in headers.
                    let mut all = headers.clone();
                    all.extend(standard_headers(op));
                    with_method = all;
                    &with_method
                } else {
                    &*headers
                };
                let reply =
                    tokio::time::timeout(timeout, conn.exchange(Method::POST, path, headers, body))
                        .await
                        .map_err(|_| CallError::Fatal("timed out".into()))?
                        .map_err(|error| CallError::Fatal(format!("{error:#}")))?;
                if reply.status != StatusCode::OK {
                    return Err(CallError::Answer(format!(
                        "HTTP {}: {:.200}",
                        reply.status,
                        reply.text()
                    )));
                }
                let value = reply
                    .jsonrpc()
                    .map_err(|error| CallError::Answer(format!("{error:#}")))?;
                check_response(&value, id, op)
                    .map_err(|error| CallError::Answer(format!("{error:#}")))
            }
            Client::Sse {
                conn,
                stream,
                headers,
                post_path,
                next_id,
            } => {
                let id = *next_id;
                *next_id += 1;
                let body = request_body(op, id, false);
                let deadline = tokio::time::Instant::now() + timeout;
                let reply = tokio::time::timeout_at(
                    deadline,
                    conn.exchange(Method::POST, post_path, headers, body),
                )
                .await
                .map_err(|_| CallError::Fatal("the POST timed out".into()))?
                .map_err(|error| CallError::Fatal(format!("{error:#}")))?;
                if !reply.status.is_success() {
                    return Err(CallError::Fatal(format!(
                        "POST: HTTP {}: {:.200}",
                        reply.status,
                        reply.text()
                    )));
                }
                let value = sse_response(stream, id, deadline)
                    .await
                    .map_err(|error| CallError::Fatal(format!("{error:#}")))?;
                check_response(&value, id, op)
                    .map_err(|error| CallError::Answer(format!("{error:#}")))
            }
        }
    }

    /// Ends the session where the transport has one to end (best effort).
    pub async fn close(self, timeout: Duration) {
        if let Client::Streamable {
            mut conn,
            headers,
            path,
            stateless: false,
            ..
        } = self
            && headers.iter().any(|(name, _)| name == "mcp-session-id")
        {
            let _ = tokio::time::timeout(
                timeout,
                conn.exchange(Method::DELETE, &path, &headers, Bytes::new()),
            )
            .await;
        }
    }
}

/// Initialize over the SSE transport: POST `initialize`, read its answer from the
/// stream, POST `notifications/initialized`.
pub async fn sse_handshake(
    conn: &mut Conn,
    stream: &mut EventStream,
    headers: &[(HeaderName, HeaderValue)],
    post_path: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let reply = tokio::time::timeout_at(
        deadline,
        conn.exchange(
            Method::POST,
            post_path,
            headers,
            initialize_body(SSE_PROTOCOL),
        ),
    )
    .await
    .context("POST initialize timed out")??;
    if !reply.status.is_success() {
        bail!(
            "POST initialize: HTTP {}: {:.200}",
            reply.status,
            reply.text()
        );
    }
    let answer = sse_response(stream, 0, deadline).await?;
    if answer.get("result").is_none() {
        bail!("initialize failed: {:.200}", answer.to_string());
    }
    let reply = tokio::time::timeout_at(
        deadline,
        conn.exchange(Method::POST, post_path, headers, Bytes::from(INITIALIZED)),
    )
    .await
    .context("POST notifications/initialized timed out")??;
    if !reply.status.is_success() {
        bail!("POST notifications/initialized: HTTP {}", reply.status);
    }
    Ok(())
}

/// Reads message events from the stream until the answer to `id` arrives.
async fn sse_response(
    stream: &mut EventStream,
    id: u64,
    deadline: tokio::time::Instant,
) -> anyhow::Result<Value> {
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let event = stream.next(left).await?;
        if event.event != "message" && !event.event.is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&event.data)
            .with_context(|| format!("an event that is not JSON: {:.200}", event.data))?;
        if value.get("id").and_then(Value::as_u64) == Some(id) {
            return Ok(value);
        }
    }
}

/// The POST path named by an `endpoint` event, resolved against the SSE path.
fn relative_path(sse_path: &str, endpoint: &str) -> anyhow::Result<String> {
    let base = url::Url::parse("http://localhost")?.join(sse_path)?;
    let url = base.join(endpoint.trim())?;
    Ok(match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    })
}

/// Why a request failed.
#[derive(Debug)]
pub enum CallError {
    /// The connection or stream is unusable: the client stops.
    Fatal(String),
    /// A wrong or failed answer: counted, and the client goes on.
    Answer(String),
}

impl CallError {
    pub fn message(&self) -> &str {
        match self {
            CallError::Fatal(message) | CallError::Answer(message) => message,
        }
    }
}
