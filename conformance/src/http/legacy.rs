//! A raw client for the legacy HTTP+SSE transport (2024-11-05): `GET /sse` opens a stream whose
//! first event, `endpoint`, names the URI to POST messages to; responses come back on the stream
//! as `message` events and are matched to requests by `id`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::bail;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use url::Url;

use super::sse::SseEvent;
use super::streamable::initialize_params;
use super::{Exchange, Http, Req, SseReader};

/// Aborts the stream reader when the session is dropped, which closes the connection.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The outcome of `GET /sse`.
pub enum Connect {
    /// A stream whose first event was `endpoint`.
    Open(Box<LegacySession>),
    /// Anything but a `200 text/event-stream` response (e.g. 401, 403).
    Refused(Exchange),
    /// A stream that did not start with an `endpoint` event (within the timeout).
    NoEndpoint {
        exchange: Exchange,
        first: Option<SseEvent>,
        error: Option<String>,
    },
}

/// One open SSE connection and its POST endpoint.
pub struct LegacySession {
    pub http: Http,
    /// The `GET /sse` response head.
    pub opened: Exchange,
    /// The `endpoint` event's data as sent.
    pub endpoint_raw: String,
    /// The endpoint resolved against the SSE URL.
    pub endpoint: Url,
    pub token: Option<String>,
    events: mpsc::UnboundedReceiver<SseEvent>,
    /// Messages received but not yet claimed by a `wait_response`.
    backlog: Vec<Value>,
    /// Every message event received, for checks that audit the stream.
    pub received: Vec<Value>,
    next_id: Arc<AtomicU64>,
    _reader: AbortOnDrop,
}

/// Opens `GET url` and waits for the `endpoint` event.
pub async fn connect(
    http: &Http,
    url: &Url,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> anyhow::Result<Connect> {
    let mut req = Req::get(url.clone())
        .header("Accept", "text/event-stream")
        .bearer(token);
    for (name, value) in extra {
        req = req.header(name, *value);
    }
    let mut streaming = http.open(req).await?;
    let mut exchange = streaming.exchange;
    if exchange.status != 200 || exchange.content_type().as_deref() != Some("text/event-stream") {
        exchange.body = http.read_rest(&mut streaming.response, &exchange).await;
        super::trace::exchange(&exchange);
        return Ok(Connect::Refused(exchange));
    }
    super::trace::exchange(&exchange);
    let mut reader = SseReader::new(streaming.response);
    let first = reader.next(http.timeout).await;
    let first = match first {
        Ok(Some(event)) => event,
        Ok(None) => {
            exchange.body = reader.raw;
            return Ok(Connect::NoEndpoint {
                exchange,
                first: None,
                error: Some("the stream ended".into()),
            });
        }
        Err(e) => {
            exchange.body = reader.raw;
            return Ok(Connect::NoEndpoint {
                exchange,
                first: None,
                error: Some(e.to_string()),
            });
        }
    };
    if first.kind() != "endpoint" {
        exchange.body = reader.raw;
        return Ok(Connect::NoEndpoint {
            exchange,
            first: Some(first),
            error: None,
        });
    }
    let Ok(endpoint) = url.join(first.data.trim()) else {
        exchange.body = reader.raw;
        return Ok(Connect::NoEndpoint {
            exchange,
            first: Some(first.clone()),
            error: Some(format!(
                "the endpoint {:?} is not a URI reference",
                first.data
            )),
        });
    };
    for (key, value) in endpoint.query_pairs() {
        if key.eq_ignore_ascii_case("session_id") || key.eq_ignore_ascii_case("sessionid") {
            http.redactor.add(&value, "session-id");
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        // The reader lives as long as the session; each wait is bounded by a long idle limit so a
        // silent server does not keep the task forever after the session is gone.
        while let Ok(Some(event)) = reader.next(Duration::from_secs(300)).await {
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    Ok(Connect::Open(Box::new(LegacySession {
        http: http.clone(),
        opened: exchange,
        endpoint_raw: first.data,
        endpoint,
        token: token.map(str::to_owned),
        events: rx,
        backlog: Vec::new(),
        received: Vec::new(),
        next_id: Arc::new(AtomicU64::new(1)),
        _reader: AbortOnDrop(task),
    })))
}

impl LegacySession {
    pub fn next_id(&self) -> Value {
        json!(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// The session id carried in the endpoint URI's query, if any.
    pub fn session_id(&self) -> Option<String> {
        self.endpoint
            .query_pairs()
            .find(|(k, _)| {
                k.eq_ignore_ascii_case("session_id") || k.eq_ignore_ascii_case("sessionid")
            })
            .map(|(_, v)| v.into_owned())
    }

    /// A POST to the endpoint with this session's token.
    pub fn req(&self) -> Req {
        Req::post(self.endpoint.clone()).bearer(self.token.as_deref())
    }

    pub async fn post(&self, message: &Value) -> anyhow::Result<Exchange> {
        self.http.send(self.req().json(message)).await
    }

    /// Waits up to `wait` for the response with this id.
    pub async fn wait_response(&mut self, id: &Value, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(pos) = self
                .backlog
                .iter()
                .position(|m| m.get("id") == Some(id) && m.get("method").is_none())
            {
                return Some(self.backlog.remove(pos));
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => self.take_event(event),
                _ => return None,
            }
        }
    }

    /// Every message that arrives within `wait`.
    pub async fn drain(&mut self, wait: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            self.take_event(event);
        }
        std::mem::take(&mut self.backlog)
    }

    fn take_event(&mut self, event: SseEvent) {
        if event.kind() != "message" {
            return;
        }
        let parsed = match serde_json::from_str::<Value>(&event.data) {
            Ok(Value::Array(items)) => items,
            Ok(v) => vec![v],
            Err(_) => vec![json!({"unparseable": event.data})],
        };
        self.received.extend(parsed.iter().cloned());
        self.backlog.extend(parsed);
    }

    /// Sends a request and waits for its response on the stream. Returns the POST exchange and
    /// the response message.
    pub async fn call(&mut self, method: &str, params: Value) -> anyhow::Result<(Exchange, Value)> {
        let id = self.next_id();
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.call_raw(&message).await
    }

    /// Sends a prepared request message and waits for the response with its id.
    pub async fn call_raw(&mut self, message: &Value) -> anyhow::Result<(Exchange, Value)> {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let exchange = self.post(message).await?;
        if !(200..300).contains(&exchange.status) {
            bail!(
                "the POST was refused:\n{}",
                exchange.evidence(&self.http.redactor)
            );
        }
        let Some(response) = self.wait_response(&id, self.http.timeout).await else {
            bail!(
                "no response with id {id} on the SSE stream within {:?} (POST: {})",
                self.http.timeout,
                exchange.evidence(&self.http.redactor)
            );
        };
        Ok((exchange, response))
    }

    pub async fn notify(&self, method: &str, params: Option<Value>) -> anyhow::Result<Exchange> {
        let mut message = json!({"jsonrpc": "2.0", "method": method});
        if let Some(params) = params {
            message["params"] = params;
        }
        self.post(&message).await
    }

    /// `initialize` then `notifications/initialized`.
    pub async fn initialize(&mut self, version: &str) -> anyhow::Result<(Exchange, Value)> {
        let (exchange, response) = self.call("initialize", initialize_params(version)).await?;
        let Some(result) = response.get("result").cloned() else {
            bail!("initialize failed: {response}");
        };
        let ack = self.notify("notifications/initialized", None).await?;
        if !(200..300).contains(&ack.status) {
            bail!(
                "notifications/initialized was refused:\n{}",
                ack.evidence(&self.http.redactor)
            );
        }
        Ok((exchange, result))
    }
}
