//! The MCP connection `connect` holds: Streamable HTTP, or the legacy HTTP+SSE transport, picked
//! as the spec's backwards-compatibility section tells clients to (2025-03-26, "Backwards
//! Compatibility"): "Attempt to POST an InitializeRequest to the server URL ... If it fails with
//! an HTTP 4xx status code (e.g., 405 Method Not Allowed or 404 Not Found): Issue a GET request
//! to the server URL, expecting that this will open an SSE stream and return an endpoint event".

use anyhow::anyhow;
use serde_json::{Value, json};
use url::Url;

use crate::http::legacy::{self, LegacySession};
use crate::http::streamable::{Shttp, initialize_params};
use crate::http::{Exchange, Http};

/// Which transport to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportChoice {
    /// Streamable HTTP, falling back to HTTP+SSE when the server does not take the POST.
    Auto,
    StreamableHttp,
    Sse,
}

/// An initialized MCP session.
pub enum Conn {
    Streamable(Box<Shttp>),
    Legacy(Box<LegacySession>),
}

/// Why a request did not get a JSON-RPC response.
pub enum Failure {
    /// HTTP 401: the token is no longer good.
    Unauthorized(Box<Exchange>),
    /// HTTP 404 on a session: the server forgot it, so a new one is needed.
    SessionGone,
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Other(e)
    }
}

/// Statuses after which a client falls back from Streamable HTTP to HTTP+SSE.
const FALLBACK_STATUSES: [u16; 3] = [400, 404, 405];

impl Conn {
    pub fn set_token(&mut self, token: &str) {
        match self {
            Conn::Streamable(s) => s.token = Some(token.to_owned()),
            Conn::Legacy(s) => s.token = Some(token.to_owned()),
        }
    }

    pub fn transport_name(&self) -> &'static str {
        match self {
            Conn::Streamable(_) => "Streamable HTTP",
            Conn::Legacy(_) => "HTTP+SSE",
        }
    }

    /// Sends a request and returns its JSON-RPC response message.
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, Failure> {
        match self {
            Conn::Streamable(s) => {
                let id = s.next_id();
                let reply = s
                    .post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
                    .await?;
                match reply.exchange.status {
                    401 => return Err(Failure::Unauthorized(Box::new(reply.exchange))),
                    404 if s.session.is_some() => return Err(Failure::SessionGone),
                    _ => {}
                }
                reply.response(&id).cloned().ok_or_else(|| {
                    Failure::Other(anyhow!(
                        "{method}: no JSON-RPC response:\n{}",
                        reply.exchange.evidence(&s.http.redactor)
                    ))
                })
            }
            Conn::Legacy(s) => {
                let id = s.next_id();
                let exchange = s
                    .post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
                    .await?;
                match exchange.status {
                    401 => return Err(Failure::Unauthorized(Box::new(exchange))),
                    404 => return Err(Failure::SessionGone),
                    200..=299 => {}
                    _ => {
                        return Err(Failure::Other(anyhow!(
                            "{method}: the POST was refused:\n{}",
                            exchange.evidence(&s.http.redactor)
                        )));
                    }
                }
                let wait = s.http.timeout;
                s.wait_response(&id, wait).await.ok_or_else(|| {
                    Failure::Other(anyhow!(
                        "{method}: no response on the SSE stream within {wait:?}"
                    ))
                })
            }
        }
    }

    /// Ends a Streamable HTTP session politely (DELETE); SSE sessions end with their stream.
    pub async fn close(self) {
        if let Conn::Streamable(s) = self
            && s.session.is_some()
        {
            let _ = s.delete().await;
        }
    }
}

/// Opens a Streamable HTTP session; a 400, 404 or 405 to the initialize POST is handed back as
/// `Ok(Err(exchange))` so the caller can try HTTP+SSE.
pub async fn open_streamable_or_fallback(
    http: &Http,
    url: &Url,
    token: Option<&str>,
    version: &str,
) -> Result<Result<Conn, Box<Exchange>>, Failure> {
    let mut shttp = Shttp::new(http.clone(), url.clone(), token.map(str::to_owned));
    let id = shttp.next_id();
    let reply = shttp
        .post(&json!({"jsonrpc": "2.0", "id": id, "method": "initialize",
                       "params": initialize_params(version)}))
        .await?;
    let status = reply.exchange.status;
    if status == 401 {
        return Err(Failure::Unauthorized(Box::new(reply.exchange)));
    }
    if FALLBACK_STATUSES.contains(&status) {
        return Ok(Err(Box::new(reply.exchange)));
    }
    let result = reply
        .response(&id)
        .and_then(|r| r.get("result"))
        .cloned()
        .ok_or_else(|| {
            Failure::Other(anyhow!(
                "initialize failed:\n{}",
                reply.exchange.evidence(&http.redactor)
            ))
        })?;
    shttp.session = reply.exchange.header("mcp-session-id").map(str::to_owned);
    if let Some(session) = &shttp.session {
        http.redactor.add(session, "session-id");
    }
    shttp.version = result
        .get("protocolVersion")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let ack = shttp.notify("notifications/initialized", None).await?;
    if !(200..300).contains(&ack.exchange.status) {
        return Err(Failure::Other(anyhow!(
            "notifications/initialized was refused:\n{}",
            ack.exchange.evidence(&http.redactor)
        )));
    }
    Ok(Ok(Conn::Streamable(Box::new(shttp))))
}

async fn open_streamable(
    http: &Http,
    url: &Url,
    token: Option<&str>,
    version: &str,
) -> Result<Conn, Failure> {
    open_streamable_or_fallback(http, url, token, version)
        .await?
        .map_err(|exchange| {
            Failure::Other(anyhow!(
                "the server refused the initialize POST (is this a legacy SSE URL? try \
                 --transport sse or auto):\n{}",
                exchange.evidence(&http.redactor)
            ))
        })
}

pub async fn open_legacy(
    http: &Http,
    url: &Url,
    token: Option<&str>,
    version: &str,
) -> Result<Conn, Failure> {
    match legacy::connect(http, url, token, &[]).await? {
        legacy::Connect::Open(mut session) => {
            session.initialize(version).await?;
            Ok(Conn::Legacy(session))
        }
        legacy::Connect::Refused(ex) if ex.status == 401 => {
            Err(Failure::Unauthorized(Box::new(ex)))
        }
        legacy::Connect::Refused(ex) => Err(Failure::Other(anyhow!(
            "GET {url} did not open an SSE stream:\n{}",
            ex.evidence(&http.redactor)
        ))),
        legacy::Connect::NoEndpoint {
            exchange, error, ..
        } => Err(Failure::Other(anyhow!(
            "the SSE stream did not start with an endpoint event{}:\n{}",
            error.map(|e| format!(" ({e})")).unwrap_or_default(),
            exchange.evidence(&http.redactor)
        ))),
    }
}

/// Opens a session on the chosen transport; `auto` falls back to HTTP+SSE as described above.
pub async fn open(
    http: &Http,
    url: &Url,
    token: Option<&str>,
    choice: TransportChoice,
    version: &str,
) -> Result<(Conn, Option<String>), Failure> {
    match choice {
        TransportChoice::Sse => Ok((open_legacy(http, url, token, version).await?, None)),
        TransportChoice::StreamableHttp => {
            Ok((open_streamable(http, url, token, version).await?, None))
        }
        TransportChoice::Auto => {
            match open_streamable_or_fallback(http, url, token, version).await? {
                Ok(conn) => Ok((conn, None)),
                Err(refused) => {
                    let conn = open_legacy(http, url, token, version).await?;
                    Ok((
                        conn,
                        Some(format!(
                            "{url} answered the initialize POST with {}; falling back to HTTP+SSE",
                            refused.status
                        )),
                    ))
                }
            }
        }
    }
}

/// The error to show for a failure the caller does not handle itself.
pub fn failure_message(failure: Failure, http: &Http) -> anyhow::Error {
    match failure {
        Failure::Unauthorized(ex) => anyhow!(
            "the server refused the token:\n{}",
            ex.evidence(&http.redactor)
        ),
        Failure::SessionGone => anyhow!("the server forgot the session"),
        Failure::Other(e) => e,
    }
}
