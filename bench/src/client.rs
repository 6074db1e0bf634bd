//! A lean HTTP/1.1 client on connection-level hyper: one TCP connection per
//! `Conn`, opened from a chosen loopback source address, with no pool, no proxy
//! logic and no redirects, so the load generator spends as little of the shared
//! cores as possible.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::{
    Method, Request, Response, StatusCode,
    body::Incoming,
    client::conn::http1::{self, SendRequest},
    header::{self, HeaderMap, HeaderName, HeaderValue},
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

/// Where requests go: the server's socket address and the `Host` it expects.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub address: SocketAddr,
    pub host: HeaderValue,
}

impl Endpoint {
    pub fn from_url(url: &url::Url) -> anyhow::Result<Endpoint> {
        let address = url
            .socket_addrs(|| Some(80))?
            .into_iter()
            .next()
            .with_context(|| format!("{url} resolves to no address"))?;
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        Ok(Endpoint {
            address,
            host: HeaderValue::from_str(&host)?,
        })
    }
}

impl Conn {
    /// Opens a connection, from `source` when given (a loopback address such as
    /// 127.0.0.2, to spread many connections over several source addresses).
    pub async fn open(endpoint: &Endpoint, source: Option<IpAddr>) -> anyhow::Result<Conn> {
        let socket = match endpoint.address {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if let Some(source) = source {
            socket
                .bind(SocketAddr::new(source, 0))
                .with_context(|| format!("cannot bind the source address {source}"))?;
        }
        let stream = socket
            .connect(endpoint.address)
            .await
            .with_context(|| format!("cannot connect to {}", endpoint.address))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the connection closes; errors show up on the request side.
            let _ = connection.await;
        });
        Ok(Conn {
            sender,
            host: endpoint.host.clone(),
        })
    }

    /// Sends a request and returns the response with its body still streaming.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> anyhow::Result<Response<Incoming>> {
        let mut request = Request::builder().method(method).uri(path);
        let request_headers = request.headers_mut().context("invalid request")?;
        request_headers.insert(header::HOST, self.host.clone());
        for (name, value) in headers {
            request_headers.append(name.clone(), value.clone());
        }
        let request = request.body(Full::new(body))?;
        self.sender.ready().await.context("the connection closed")?;
        Ok(self.sender.send_request(request).await?)
    }

    /// Sends a request and reads the whole body.
    pub async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> anyhow::Result<Reply> {
        let response = self.send(method, path, headers, body).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

/// A complete response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The JSON-RPC message in the body: the body itself, or for an event stream
    /// the first `data` that is a JSON-RPC response.
    pub fn jsonrpc(&self) -> anyhow::Result<serde_json::Value> {
        let is_stream = self
            .header("content-type")
            .is_some_and(|value| value.starts_with("text/event-stream"));
        if !is_stream {
            return serde_json::from_slice(&self.body).with_context(|| {
                format!(
                    "HTTP {}: the body is not JSON: {:.200}",
                    self.status,
                    self.text()
                )
            });
        }
        let mut parser = SseParser::default();
        parser.push(&self.body);
        parser.push(b"\n\n");
        while let Some(event) = parser.next_event() {
            if event.data.is_empty() {
                continue;
            }
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&event.data)
                && (value.get("result").is_some() || value.get("error").is_some())
            {
                return Ok(value);
            }
        }
        bail!(
            "HTTP {}: the event stream carried no JSON-RPC response: {:.200}",
            self.status,
            self.text()
        )
    }
}

/// One server-sent event.
#[derive(Debug, Default, Clone)]
pub struct Event {
    pub event: String,
    pub data: String,
}

/// An incremental `text/event-stream` parser (LF or CRLF line ends).
#[derive(Default)]
pub struct SseParser {
    buffer: BytesMut,
}

impl SseParser {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete event, if the buffer holds one. Comment-only blocks
    /// (keep-alive pings) come out as events with empty fields.
    pub fn next_event(&mut self) -> Option<Event> {
        let (end, separator) = find_blank_line(&self.buffer)?;
        let block = self.buffer.split_to(end + separator);
        let text = String::from_utf8_lossy(&block[..end]);
        let mut event = Event::default();
        let mut data: Vec<&str> = Vec::new();
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event.event = value.to_owned(),
                "data" => data.push(value),
                _ => {}
            }
        }
        event.data = data.join("\n");
        Some(event)
    }
}

/// Position and length of the first blank line (`\n\n`, `\r\n\r\n` or mixed).
fn find_blank_line(buffer: &[u8]) -> Option<(usize, usize)> {
    let mut index = 0;
    while index < buffer.len() {
        if buffer[index] == b'\n' {
            let rest = &buffer[index + 1..];
            if rest.first() == Some(&b'\n') {
                return Some((index, 2));
            }
            if rest.starts_with(b"\r\n") {
                return Some((index, 3));
            }
        }
        index += 1;
    }
    None
}

/// An open event stream (the legacy SSE transport's `GET /sse`).
pub struct EventStream {
    body: Incoming,
    parser: SseParser,
    /// Keeps the connection's request side alive as long as the stream.
    _conn: Conn,
}

impl EventStream {
    /// Opens `GET path` with the given headers and checks for a 200 event stream.
    pub async fn open(
        mut conn: Conn,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
    ) -> anyhow::Result<EventStream> {
        let response = conn.send(Method::GET, path, headers, Bytes::new()).await?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if status != StatusCode::OK || !content_type.starts_with("text/event-stream") {
            let body = response.into_body().collect().await?.to_bytes();
            bail!(
                "GET {path}: HTTP {status} {content_type}: {:.200}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(EventStream {
            body: response.into_body(),
            parser: SseParser::default(),
            _conn: conn,
        })
    }

    /// The next event that has a name or data, waiting at most `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> anyhow::Result<Event> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            while let Some(event) = self.parser.next_event() {
                if !event.event.is_empty() || !event.data.is_empty() {
                    return Ok(event);
                }
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .context("no event within the timeout")?;
            match frame {
                None => bail!("the event stream ended"),
                Some(frame) => {
                    if let Ok(data) = frame?.into_data() {
                        self.parser.push(&data);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SseParser;

    #[test]
    fn events_split_on_blank_lines_with_either_line_end() {
        let mut parser = SseParser::default();
        parser.push(b"event: endpoint\r\ndata: /messages/?session_id=1\r\n\r\n: ping\r\n\r\n");
        parser.push(b"event: message\ndata: {\"a\":\n");
        let first = parser.next_event().unwrap();
        assert_eq!(first.event, "endpoint");
        assert_eq!(first.data, "/messages/?session_id=1");
        let ping = parser.next_event().unwrap();
        assert!(ping.event.is_empty() && ping.data.is_empty());
        assert!(parser.next_event().is_none());
        parser.push(b"data: 1}\n\n");
        let message = parser.next_event().unwrap();
        assert_eq!(message.data, "{\"a\":\n1}");
    }
}
