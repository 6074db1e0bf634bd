//! Raw HTTP: every request the suite sends goes through [`Http`], which never follows redirects,
//! never uses a proxy, only talks to loopback addresses, bounds every wait, and hands back the
//! whole [`Exchange`] (status, headers, body bytes) so checks can judge what the server really
//! sent. Bodies are read up to a limit ([`MAX_BODY`]), so a hostile server cannot exhaust the
//! suite's memory; the cut is noted in the check's evidence.

pub mod challenge;
pub mod legacy;
pub mod sse;
pub mod streamable;
pub mod trace;

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

/// The most of one response body the suite reads from the server under test (1 MiB). What is
/// beyond is not read, and a note says so.
pub const MAX_BODY: usize = 1 << 20;

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

    /// Adds `Authorization: Bearer` with the token; an empty token (the login of a server that
    /// asks for no authorization) adds nothing.
    pub fn bearer(self, token: Option<&str>) -> Req {
        match token {
            Some(token) if !token.is_empty() => {
                self.header("Authorization", format!("Bearer {token}"))
            }
            _ => self,
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

    /// What was sent and what came back, with secrets removed: what a failure shows the reader.
    /// The first line is `METHOD url -> status`; below it, `>` lines are the request's headers
    /// and body (an excerpt), `<` lines the response's telling headers and body (an excerpt).
    pub fn evidence(&self, redactor: &Redactor) -> String {
        let mut out = format!("{} -> {}", self.request.line(), self.status);
        for (name, value) in &self.request.headers {
            let _ = write!(out, "\n> {name}: {}", sent_header_value(name, value));
        }
        if let Some(body) = self.request.body.as_deref().filter(|b| !b.is_empty()) {
            let _ = write!(out, "\n> {}", excerpt(&String::from_utf8_lossy(body), 300));
        }
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
                let _ = write!(out, "\n< {name}: {value}");
            }
        }
        let body = self.text();
        if body.is_empty() {
            out.push_str("\n< (empty body)");
        } else {
            let _ = write!(out, "\n< {}", excerpt(&body, 600));
        }
        redactor.redact(&out)
    }
}

/// The first `limit` characters of `text` on one line each (continuation lines keep the
/// evidence's `>`/`<` column), marked when cut.
fn excerpt(text: &str, limit: usize) -> String {
    let mut shown: String = text.chars().take(limit).collect();
    if text.chars().count() > limit {
        shown.push_str(" [...]");
    }
    shown.trim_end().replace('\n', "\n  ")
}

/// A request header's value as evidence shows it: credentials whose shape the redactor does not
/// know (Basic authentication carries the client secret, cookies carry sessions) are blanked.
fn sent_header_value(name: &str, value: &str) -> String {
    if name.eq_ignore_ascii_case("authorization") {
        if let Some((scheme, _)) = value.split_once(' ')
            && !scheme.eq_ignore_ascii_case("bearer")
        {
            return format!("{scheme} [redacted]");
        }
    } else if name.eq_ignore_ascii_case("cookie") {
        return "[redacted]".into();
    }
    value.to_owned()
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
    /// The most of one body that is read ([`MAX_BODY`] unless changed with
    /// [`Http::with_max_body`]).
    pub max_body: usize,
}

/// Reads a body up to `limit` bytes; the flag says whether there was more. Reading stops at the
/// limit, so the rest is never buffered.
pub async fn read_capped(
    response: &mut reqwest::Response,
    limit: usize,
) -> reqwest::Result<(Vec<u8>, bool)> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit.saturating_sub(body.len());
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// Notes in the running check's evidence that a body was cut.
pub(crate) fn note_cut(line: &str, limit: usize) {
    trace::note(format!(
        "the response to {line} was larger than {limit} bytes; only that much was read"
    ));
}

/// Whether an error means the connection was reset or closed under the request (as uvicorn does
/// after some error answers), so an idempotent request may be sent again.
pub fn is_connection_reset(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            );
        }
        let text = cause.to_string().to_ascii_lowercase();
        text.contains("connection closed before message completed")
            || text.contains("connection reset")
            || text.contains("broken pipe")
            || text.contains("incomplete message")
    })
}

/// The parts of [`Http`] that never change once built, behind one pointer so the many
/// structures that hold an `Http` stay small.
struct Inner {
    client: reqwest::Client,
    stream_client: reqwest::Client,
    /// The same two without idle connections, for the one retry after a reset: a server that
    /// drops connections without `Connection: close` may have left more than one dead
    /// connection in the pool, and the retry must not land on another of them.
    fresh_client: reqwest::Client,
    fresh_stream_client: reqwest::Client,
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
                // Servers close idle keep-alive connections (uvicorn and Node after 5 s); a
                // request sent on one just as the server closes it is reset, and the check
                // would end in an error that says nothing of the server. Idle connections
                // are dropped well before that.
                .pool_idle_timeout(Duration::from_secs(2))
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
                fresh_client: base().timeout(timeout).pool_max_idle_per_host(0).build()?,
                fresh_stream_client: base().pool_max_idle_per_host(0).build()?,
                remote,
                observer: None,
            }),
            timeout,
            redactor,
            max_body: MAX_BODY,
        })
    }

    /// A client like this one (sharing its connections) whose `observer` sees every exchange.
    pub fn with_observer(self, observer: Observer) -> Http {
        Http {
            inner: Arc::new(Inner {
                client: self.inner.client.clone(),
                stream_client: self.inner.stream_client.clone(),
                fresh_client: self.inner.fresh_client.clone(),
                fresh_stream_client: self.inner.fresh_stream_client.clone(),
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

    /// The same client with another body limit (the mock GitHub's journal of a whole run is
    /// larger than any answer the server under test has reason to send).
    pub fn with_max_body(&self, max_body: usize) -> Http {
        Http {
            max_body,
            ..self.clone()
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

    /// Sends a request and reads the whole response (up to the body limit), within the request
    /// timeout. A GET or HEAD whose connection was reset is sent once more, on a new
    /// connection, and the check's evidence says so.
    pub async fn send(&self, req: Req) -> anyhow::Result<Exchange> {
        let idempotent = matches!(req.method, Method::GET | Method::HEAD);
        match self.send_once(&self.inner.client, req.clone()).await {
            Err(e) if idempotent && is_connection_reset(&e) => {
                self.retried(&req, &e);
                self.send_once(&self.inner.fresh_client, req).await
            }
            other => other,
        }
    }

    /// Notes that a request is sent again after its connection was reset.
    pub fn retried(&self, req: &Req, error: &anyhow::Error) {
        trace::note(format!(
            "{} lost its connection ({}); the request was sent once more",
            self.redactor.redact(&req.line()),
            self.redactor.redact(&format!("{error:#}"))
        ));
    }

    async fn send_once(&self, client: &reqwest::Client, req: Req) -> anyhow::Result<Exchange> {
        let builder = self.build(client, &req)?;
        let line = self.redactor.redact(&req.line());
        let mut response = builder
            .send()
            .await
            .with_context(|| format!("{line}: no response"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let (body, cut) = read_capped(&mut response, self.max_body)
            .await
            .with_context(|| format!("{line}: reading the body failed"))?;
        if cut {
            note_cut(&line, self.max_body);
        }
        let ex = Exchange {
            request: req,
            status,
            headers,
            body,
        };
        self.observe(&ex);
        trace::exchange(&ex);
        Ok(ex)
    }

    /// Sends a request and returns as soon as the response head arrives, for SSE streams.
    pub async fn open(&self, req: Req) -> anyhow::Result<Streaming> {
        let idempotent = matches!(req.method, Method::GET | Method::HEAD);
        match self.open_once(&self.inner.stream_client, req.clone()).await {
            Err(e) if idempotent && is_connection_reset(&e) => {
                self.retried(&req, &e);
                self.open_once(&self.inner.fresh_stream_client, req).await
            }
            other => other,
        }
    }

    async fn open_once(&self, client: &reqwest::Client, req: Req) -> anyhow::Result<Streaming> {
        let builder = self.build(client, &req)?;
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

/// How much of a stream an [`SseReader`] keeps for evidence.
pub const MAX_SSE_KEPT: usize = 1 << 20;
/// How much of a stream an [`SseReader`] reads at all before it treats the stream as ended: a
/// server that floods a stream cannot keep the suite reading forever.
pub const MAX_SSE_READ: usize = 16 << 20;

/// Reads an SSE body event by event, keeping the raw bytes (up to [`MAX_SSE_KEPT`]) for
/// evidence.
pub struct SseReader {
    response: reqwest::Response,
    parser: sse::SseParser,
    queue: std::collections::VecDeque<sse::SseEvent>,
    /// The bytes read so far, up to [`MAX_SSE_KEPT`].
    pub raw: Vec<u8>,
    pub ended: bool,
    /// How many bytes were read in all.
    pub read: usize,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> SseReader {
        SseReader {
            response,
            parser: sse::SseParser::new(),
            queue: Default::default(),
            raw: Vec::new(),
            ended: false,
            read: 0,
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
                    let room = MAX_SSE_KEPT.saturating_sub(self.raw.len());
                    self.raw.extend_from_slice(&bytes[..bytes.len().min(room)]);
                    self.read += bytes.len();
                    self.queue.extend(self.parser.push(&bytes));
                    if self.read > MAX_SSE_READ {
                        trace::note(format!(
                            "an event stream sent more than {MAX_SSE_READ} bytes; the suite \
                             stopped reading it"
                        ));
                        self.ended = true;
                    }
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
        let Streaming {
            mut exchange,
            mut response,
        } = self.open(req).await?;
        if exchange.content_type().as_deref() != Some("text/event-stream") {
            exchange.body = self.read_rest(&mut response, &exchange).await;
        }
        trace::exchange(&exchange);
        Ok(exchange)
    }

    /// The body of an opened response that is not a stream, within the timeout and the body
    /// limit; what did not arrive in time is left out.
    pub async fn read_rest(&self, response: &mut reqwest::Response, ex: &Exchange) -> Vec<u8> {
        match tokio::time::timeout(self.timeout, read_capped(response, self.max_body)).await {
            Ok(Ok((body, cut))) => {
                if cut {
                    note_cut(&self.redactor.redact(&ex.request.line()), self.max_body);
                }
                body
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that answers one request per connection, keeps the connection open as if for
    /// more, and resets it when the next request comes: every idle connection in the client's
    /// pool is a dead one, as after the Python SDK's failed SSE handshakes.
    async fn one_answer_per_connection() -> Url {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                    // The next request on this connection is met with a reset.
                    if stream.read(&mut byte).await.unwrap_or(0) > 0 {
                        let _ = stream.set_zero_linger();
                    }
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn a_reset_get_is_sent_again_on_a_new_connection() {
        let url = one_answer_per_connection().await;
        let http = Http::new(Duration::from_secs(5), Arc::new(Redactor::default())).unwrap();
        // Two requests at once leave two idle connections in the pool, both dead now.
        let (first, second) = tokio::join!(
            http.send(Req::get(url.clone())),
            http.send(Req::get(url.clone()))
        );
        assert_eq!(first.unwrap().status, 200);
        assert_eq!(second.unwrap().status, 200);
        let third = http.send(Req::get(url.clone())).await;
        assert_eq!(
            third
                .expect("the retry reaches the server on a connection of its own")
                .status,
            200
        );
        // The same for the client that opens streams, whose pool is its own.
        let (first, second) = tokio::join!(
            http.send_head(Req::get(url.clone())),
            http.send_head(Req::get(url.clone()))
        );
        assert_eq!(first.unwrap().status, 200);
        assert_eq!(second.unwrap().status, 200);
        let streamed = http.send_head(Req::get(url)).await;
        assert_eq!(
            streamed
                .expect("the retry of a stream's request gets through too")
                .status,
            200
        );
    }

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
