//! Raw HTTP: every request the suite sends goes through [`Http`], which never follows redirects,
//! never uses a proxy, only talks to loopback addresses, bounds every wait, and hands back the
//! whole [`Exchange`] (status, headers, body bytes) so checks can judge what the server really
//! sent.

pub mod challenge;
pub mod legacy;
pub mod sse;
pub mod streamable;

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use url::Url;

use crate::redact::Redactor;

/// A request to send: method, URL, headers and an optional body.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl Req {
    pub fn new(method: Method, url: Url) -> Req {
        Req {
            method,
            url,
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn get(url: Url) -> Req {
        Req::new(Method::GET, url)
    }

    pub fn post(url: Url) -> Req {
        Req::new(Method::POST, url)
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Req {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn bearer(self, token: Option<&str>) -> Req {
        match token {
            Some(token) => self.header("Authorization", format!("Bearer {token}")),
            None => self,
        }
    }

    pub fn json(self, body: &Value) -> Req {
        self.raw(body.to_string().into_bytes(), "application/json")
    }

    pub fn form<'a>(self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Req {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.raw(body.into_bytes(), "application/x-www-form-urlencoded")
    }

    pub fn raw(mut self, body: Vec<u8>, content_type: &str) -> Req {
        self.headers
            .push(("Content-Type".into(), content_type.into()));
        self.body = Some(body);
        self
    }

    /// `METHOD url`, the request line shown in evidence.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.url)
    }
}

/// A completed request and its full response.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: Req,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Exchange {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    /// The media type without parameters, lower-cased (`application/json`).
    pub fn content_type(&self) -> Option<String> {
        media_type(self.header("content-type"))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The `Location` header resolved against the request URL.
    pub fn location(&self) -> Option<Url> {
        let loc = self.header("location")?;
        self.request.url.join(loc).ok()
    }

    pub fn is_redirect(&self) -> bool {
        (300..400).contains(&self.status) && self.headers.contains_key("location")
    }

    /// The request line, status, the interesting headers and a body excerpt, with secrets
    /// removed: what a failure shows the reader.
    pub fn evidence(&self, redactor: &Redactor) -> String {
        let mut out = format!("{} -> {}", self.request.line(), self.status);
        for name in [
            "content-type",
            "location",
            "www-authenticate",
            "mcp-session-id",
            "cache-control",
            "x-frame-options",
            "content-security-policy",
            "set-cookie",
        ] {
            for value in self.header_all(name) {
                let _ = write!(out, "\n{name}: {value}");
            }
        }
        let body = self.text();
        if !body.is_empty() {
            let excerpt: String = body.chars().take(600).collect();
            let _ = write!(out, "\n{excerpt}");
            if body.chars().count() > 600 {
                out.push_str(" [...]");
            }
        }
        redactor.redact(&out)
    }
}

pub fn media_type(value: Option<&str>) -> Option<String> {
    value.map(|v| {
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    })
}

/// The response head of a streaming request, with the body still to be read.
pub struct Streaming {
    pub exchange: Exchange,
    pub response: reqwest::Response,
}

/// The suite's HTTP client.
#[derive(Clone)]
pub struct Http {
    inner: Arc<Inner>,
    pub timeout: Duration,
    pub redactor: Arc<Redactor>,
}

/// The parts of [`Http`] that never change once built, behind one pointer so the many
/// structures that hold an `Http` stay small.
struct Inner {
    client: reqwest::Client,
    stream_client: reqwest::Client,
    /// Whether requests may leave this machine. Only `connect`, which talks to deployed
    /// servers, sets it ([`Http::for_remote`]); the suite stays on loopback.
    remote: bool,
    /// Sees every exchange (only the head, for streams): `connect --trace`.
    observer: Option<Observer>,
}

/// A callback that sees every exchange an [`Http`] completes.
pub type Observer = Arc<dyn Fn(&Exchange) + Send + Sync>;

impl Http {
    pub fn new(timeout: Duration, redactor: Arc<Redactor>) -> anyhow::Result<Http> {
        Http::build_clients(timeout, redactor, false, false)
    }

    /// A client for `connect`, which talks to servers anywhere (https, other machines). It honours
    /// the system's proxy settings when `system_proxy` is set; loopback targets pass `false`.
    pub fn for_remote(
        timeout: Duration,
        redactor: Arc<Redactor>,
        system_proxy: bool,
    ) -> anyhow::Result<Http> {
        Http::build_clients(timeout, redactor, true, system_proxy)
    }

    fn build_clients(
        timeout: Duration,
        redactor: Arc<Redactor>,
        remote: bool,
        system_proxy: bool,
    ) -> anyhow::Result<Http> {
        let base = || {
            let builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(timeout)
                .user_agent(concat!("mcp-auth-conformance/", env!("CARGO_PKG_VERSION")));
            if system_proxy {
                builder
            } else {
                builder.no_proxy()
            }
        };
        Ok(Http {
            inner: Arc::new(Inner {
                client: base().timeout(timeout).build()?,
                // Streams stay open longer than one request timeout; every read on them is
                // bounded by the caller instead.
                stream_client: base().build()?,
                remote,
                observer: None,
            }),
            timeout,
            redactor,
        })
    }

    /// A client like this one (sharing its connections) whose `observer` sees every exchange.
    pub fn with_observer(self, observer: Observer) -> Http {
        Http {
            inner: Arc::new(Inner {
                client: self.inner.client.clone(),
                stream_client: self.inner.stream_client.clone(),
                remote: self.inner.remote,
                observer: Some(observer),
            }),
            ..self
        }
    }

    fn observe(&self, exchange: &Exchange) {
        if let Some(observer) = &self.inner.observer {
            observer(exchange);
        }
    }

    fn build(
        &self,
        client: &reqwest::Client,
        req: &Req,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        if self.inner.remote {
            if !matches!(req.url.scheme(), "http" | "https") {
                bail!(
                    "refusing to send a request to {}: only http(s) URLs",
                    req.url
                );
            }
        } else {
            ensure_loopback(&req.url)?;
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &req.headers {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).context("header name")?,
                HeaderValue::from_str(value).context("header value")?,
            );
        }
        let mut builder = client
            .request(req.method.clone(), req.url.clone())
            .headers(headers);
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        Ok(builder)
    }

    /// Sends a request and reads the whole response, within the request timeout.
    pub async fn send(&self, req: Req) -> anyhow::Result<Exchange> {
        let builder = self.build(&self.inner.client, &req)?;
        let line = self.redactor.redact(&req.line());
        let response = builder
            .send()
            .await
            .with_context(|| format!("{line}: no response"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .with_context(|| format!("{line}: reading the body failed"))?
            .to_vec();
        let exchange = Exchange {
            request: req,
            status,
            headers,
            body,
        };
        self.observe(&exchange);
        Ok(exchange)
    }

    /// Sends a request and returns as soon as the response head arrives, for SSE streams.
    pub async fn open(&self, req: Req) -> anyhow::Result<Streaming> {
        let builder = self.build(&self.inner.stream_client, &req)?;
        let line = self.redactor.redact(&req.line());
        let response = tokio::time::timeout(self.timeout, builder.send())
            .await
            .with_context(|| format!("{line}: no response head within {:?}", self.timeout))?
            .with_context(|| format!("{line}: no response"))?;
        let exchange = Exchange {
            request: req,
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: Vec::new(),
        };
        self.observe(&exchange);
        Ok(Streaming { exchange, response })
    }
}

/// The suite only ever talks to this machine: a URL elsewhere is an error, not a request.
pub fn ensure_loopback(url: &Url) -> anyhow::Result<()> {
    let ok = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    if !ok || !matches!(url.scheme(), "http" | "https") {
        bail!("refusing to send a request to {url}: the suite only talks to loopback http(s) URLs");
    }
    Ok(())
}

/// Whether a URL points at this machine (used to judge redirects before following them).
pub fn is_loopback(url: &Url) -> bool {
    ensure_loopback(url).is_ok()
}

/// Reads an SSE body event by event, keeping the raw bytes for evidence.
pub struct SseReader {
    response: reqwest::Response,
    parser: sse::SseParser,
    queue: std::collections::VecDeque<sse::SseEvent>,
    /// Every byte read so far.
    pub raw: Vec<u8>,
    pub ended: bool,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> SseReader {
        SseReader {
            response,
            parser: sse::SseParser::new(),
            queue: Default::default(),
            raw: Vec::new(),
            ended: false,
        }
    }

    /// The next event, `Ok(None)` when the stream ended, an error when nothing came within
    /// `wait`.
    pub async fn next(&mut self, wait: Duration) -> anyhow::Result<Option<sse::SseEvent>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .map_err(|_| anyhow::anyhow!("no SSE event within {wait:?}"))?;
            match chunk {
                Ok(Some(bytes)) => {
                    self.raw.extend_from_slice(&bytes);
                    self.queue.extend(self.parser.push(&bytes));
                }
                Ok(None) | Err(_) => self.ended = true,
            }
        }
    }

    /// The parser, for its comment count and last `retry:`.
    pub fn parser(&self) -> &sse::SseParser {
        &self.parser
    }
}

/// JSON-RPC messages carried by SSE events (`message` events; a data field holding an array is a
/// batch). Events that are not JSON are returned as errors so checks can report them.
pub fn messages_from_events(events: &[sse::SseEvent]) -> (Vec<Value>, Vec<String>) {
    let mut messages = Vec::new();
    let mut bad = Vec::new();
    for event in events {
        if event.kind() != "message" || event.data.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&event.data) {
            Ok(Value::Array(items)) => messages.extend(items),
            Ok(v) => messages.push(v),
            Err(e) => bad.push(format!("event data is not JSON ({e}): {}", event.data)),
        }
    }
    (messages, bad)
}

impl Http {
    /// Sends a request and keeps only the response head plus, for non-streams, the body: for
    /// GETs that may open an SSE stream.
    pub async fn send_head(&self, req: Req) -> anyhow::Result<Exchange> {
        let streaming = self.open(req).await?;
        let mut ex = streaming.exchange;
        if ex.content_type().as_deref() != Some("text/event-stream") {
            ex.body = tokio::time::timeout(self.timeout, streaming.response.bytes())
                .await
                .ok()
                .and_then(Result::ok)
                .map(|b| b.to_vec())
                .unwrap_or_default();
        }
        Ok(ex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suite_client_refuses_urls_off_this_machine_and_the_remote_one_does_not() {
        let suite = Http::new(Duration::from_secs(1), Arc::default()).unwrap();
        let remote = Http::for_remote(Duration::from_secs(1), Arc::default(), false).unwrap();
        let far = Req::get(Url::parse("https://mcp.example.com/mcp").unwrap());
        let near = Req::get(Url::parse("http://127.0.0.1:1/mcp").unwrap());
        let refused = suite.build(&suite.inner.client, &far).err().unwrap();
        assert!(refused.to_string().contains("loopback"), "{refused}");
        assert!(suite.build(&suite.inner.client, &near).is_ok());
        assert!(remote.build(&remote.inner.client, &far).is_ok());
        let ftp = Req::get(Url::parse("ftp://mcp.example.com/").unwrap());
        assert!(remote.build(&remote.inner.client, &ftp).is_err());
    }
}
