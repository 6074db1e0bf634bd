//! A raw Streamable HTTP client (`/mcp`): POSTs with `Accept: application/json,
//! text/event-stream`, JSON or SSE responses, the `Mcp-Session-Id` and `MCP-Protocol-Version`
//! headers, the GET stream and DELETE. It reports what the server sent and decides nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use reqwest::Method;
use serde_json::{Value, json};
use url::Url;

use super::sse::SseEvent;
use super::{Exchange, Http, Req, SseReader, Streaming, messages_from_events};

/// What conforming clients send (SHTTP-04).
pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// How long to keep reading an SSE response after its JSON-RPC response arrived, to see whether
/// the server closes the stream (SHTTP-08).
const LINGER: Duration = Duration::from_millis(500);

/// A POST and everything that came back.
#[derive(Debug, Clone)]
pub struct RpcReply {
    /// The exchange; for SSE responses `body` holds the raw stream bytes read.
    pub exchange: Exchange,
    /// JSON-RPC messages: the JSON body, or the `message` events of an SSE body.
    pub messages: Vec<Value>,
    /// The SSE events, when the response was a stream.
    pub events: Vec<SseEvent>,
    /// SSE data that was not JSON.
    pub bad_events: Vec<String>,
    /// For SSE responses: whether the server ended the stream after its response.
    pub stream_closed: bool,
    /// For SSE responses: the last `retry:` value the stream carried.
    pub retry: Option<u64>,
}

impl RpcReply {
    /// The response whose `id` equals `id`.
    pub fn response(&self, id: &Value) -> Option<&Value> {
        self.messages.iter().find(|m| {
            m.get("id") == Some(id) && (m.get("result").is_some() || m.get("error").is_some())
        })
    }

    pub fn is_sse(&self) -> bool {
        self.exchange.content_type().as_deref() == Some("text/event-stream")
    }
}

/// A Streamable HTTP client for one endpoint and (after `initialize`) one session.
#[derive(Clone)]
pub struct Shttp {
    pub http: Http,
    pub url: Url,
    pub token: Option<String>,
    pub session: Option<String>,
    /// Sent as `MCP-Protocol-Version` once negotiated (the header exists from 2025-06-18).
    pub version: Option<String>,
    next_id: Arc<AtomicU64>,
}

impl Shttp {
    pub fn new(http: Http, url: Url, token: Option<String>) -> Shttp {
        Shttp {
            http,
            url,
            token,
            session: None,
            version: None,
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    pub fn next_id(&self) -> Value {
        json!(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// A request to the endpoint with the client's usual headers.
    pub fn req(&self, method: Method) -> Req {
        let mut req = Req::new(method.clone(), self.url.clone()).bearer(self.token.as_deref());
        req = if method == Method::GET {
            req.header("Accept", "text/event-stream")
        } else {
            req.header("Accept", ACCEPT_BOTH)
        };
        if let Some(session) = &self.session {
            req = req.header("Mcp-Session-Id", session);
        }
        if let Some(version) = self.version.as_deref().filter(|v| *v >= "2025-06-18") {
            req = req.header("MCP-Protocol-Version", version);
        }
        req
    }

    /// POSTs a JSON-RPC message.
    pub async fn post(&self, message: &Value) -> anyhow::Result<RpcReply> {
        self.send(self.req(Method::POST).json(message)).await
    }

    /// Sends a prepared POST and reads a JSON or SSE response. For SSE, reading stops when the
    /// stream ends, or shortly after every request id in the body has its response.
    pub async fn send(&self, req: Req) -> anyhow::Result<RpcReply> {
        let wanted: Vec<Value> = req
            .body
            .as_deref()
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
            .map(|v| match v {
                Value::Array(items) => items,
                other => vec![other],
            })
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.get("method").is_some())
            .filter_map(|m| m.get("id").cloned())
            .collect();
        let Streaming {
            mut exchange,
            mut response,
        } = self.http.open(req).await?;
        if exchange.content_type().as_deref() != Some("text/event-stream") {
            let (body, cut) = tokio::time::timeout(
                self.http.timeout,
                super::read_capped(&mut response, self.http.max_body),
            )
            .await
            .context("the response body did not arrive in time")?
            .context("reading the response body failed")?;
            if cut {
                super::note_cut(
                    &self.http.redactor.redact(&exchange.request.line()),
                    self.http.max_body,
                );
            }
            exchange.body = body;
            super::trace::exchange(&exchange);
            let messages = match serde_json::from_slice::<Value>(&exchange.body) {
                Ok(Value::Array(items)) => items,
                Ok(v) if !exchange.body.is_empty() => vec![v],
                _ => Vec::new(),
            };
            return Ok(RpcReply {
                exchange,
                messages,
                events: Vec::new(),
                bad_events: Vec::new(),
                stream_closed: true,
                retry: None,
            });
        }
        let mut reader = SseReader::new(response);
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + self.http.timeout;
        let mut answered = false;
        loop {
            let now = tokio::time::Instant::now();
            let wait = if answered {
                LINGER
            } else {
                deadline.saturating_duration_since(now)
            };
            if wait.is_zero() {
                break;
            }
            match reader.next(wait).await {
                Ok(Some(event)) => {
                    events.push(event);
                    let (messages, _) = messages_from_events(&events);
                    answered = wanted.iter().all(|id| {
                        messages
                            .iter()
                            .any(|m| m.get("id") == Some(id) && m.get("method").is_none())
                    });
                }
                Ok(None) => break,
                Err(_) => break,
            }
        }
        let (messages, bad_events) = messages_from_events(&events);
        exchange.body = std::mem::take(&mut reader.raw);
        super::trace::exchange(&exchange);
        Ok(RpcReply {
            exchange,
            messages,
            events,
            bad_events,
            stream_closed: reader.ended,
            retry: reader.parser().last_retry,
        })
    }

    /// Sends a request and returns the reply with the matching response object.
    pub async fn call(&self, method: &str, params: Value) -> anyhow::Result<(RpcReply, Value)> {
        let id = self.next_id();
        let reply = self
            .post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        let Some(response) = reply.response(&id).cloned() else {
            bail!(
                "{method}: HTTP {} without a JSON-RPC response for id {id}:\n{}",
                reply.exchange.status,
                reply.exchange.evidence(&self.http.redactor)
            );
        };
        Ok((reply, response))
    }

    pub async fn notify(&self, method: &str, params: Option<Value>) -> anyhow::Result<RpcReply> {
        let mut message = json!({"jsonrpc": "2.0", "method": method});
        if let Some(params) = params {
            message["params"] = params;
        }
        self.post(&message).await
    }

    /// `initialize` followed by `notifications/initialized`; remembers the session id and the
    /// negotiated version. Returns the initialize reply and its `result`.
    pub async fn initialize(&mut self, version: &str) -> anyhow::Result<(RpcReply, Value)> {
        let (reply, result) = self.initialize_request(version).await?;
        let ack = self.notify("notifications/initialized", None).await?;
        if !(200..300).contains(&ack.exchange.status) {
            bail!(
                "notifications/initialized was refused:\n{}",
                ack.exchange.evidence(&self.http.redactor)
            );
        }
        Ok((reply, result))
    }

    /// Only the `initialize` request, without the `notifications/initialized` that completes
    /// the handshake, for checks that judge that notification's answer themselves. Remembers
    /// the session id and the negotiated version.
    pub async fn initialize_request(&mut self, version: &str) -> anyhow::Result<(RpcReply, Value)> {
        let (reply, response) = self.call("initialize", initialize_params(version)).await?;
        let Some(result) = response.get("result").cloned() else {
            bail!(
                "initialize failed:\n{}",
                reply.exchange.evidence(&self.http.redactor)
            );
        };
        self.session = reply.exchange.header("mcp-session-id").map(str::to_owned);
        if let Some(session) = &self.session {
            self.http.redactor.add(session, "session-id");
        }
        self.version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok((reply, result))
    }

    /// Opens the GET stream.
    pub async fn get_stream(&self) -> anyhow::Result<Streaming> {
        self.http.open(self.req(Method::GET)).await
    }

    pub async fn delete(&self) -> anyhow::Result<Exchange> {
        self.http.send(self.req(Method::DELETE)).await
    }
}

/// The `initialize` params the suite sends: no capabilities, so the server has no reason to send
/// requests of its own.
pub fn initialize_params(version: &str) -> Value {
    json!({
        "protocolVersion": version,
        "capabilities": {},
        "clientInfo": {"name": "mcp-auth-conformance", "version": env!("CARGO_PKG_VERSION")}
    })
}
