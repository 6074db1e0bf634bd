//! Small HTTP concerns shared by every route: request logging, the Origin check,
//! HTML escaping, the home page and the shutdown signal.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    body::{Body, Bytes, HttpBody},
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use hyper::body::{Frame, SizeHint};
use serde_json::json;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::AppState;

/// A body that ends early: with an error when its deadline passes (a request body
/// that is sent too slowly), or quietly when its deadline passes or its scope is
/// cancelled (the stream of a token that expired or was revoked). It can also carry a
/// guard, dropped once a frame with given bytes went out, or else with the body.
pub struct ScopedBody {
    inner: Body,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// A deadline whose timer starts only when the body first waits: most request
    /// bodies have arrived whole by then, and never need one.
    unarmed_deadline: Option<tokio::time::Instant>,
    error_at_deadline: bool,
    ended: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    release: Option<(Vec<u8>, Box<dyn Send + Sync>)>,
}

impl ScopedBody {
    pub fn new(inner: Body) -> ScopedBody {
        ScopedBody {
            inner,
            deadline: None,
            unarmed_deadline: None,
            error_at_deadline: false,
            ended: None,
            release: None,
        }
    }

    /// Ends the body quietly at `deadline`.
    pub fn until(mut self, deadline: tokio::time::Instant) -> ScopedBody {
        self.deadline = Some(Box::pin(tokio::time::sleep_until(deadline)));
        self
    }

    /// Fails the body if it has not ended within `timeout`.
    pub fn within(mut self, timeout: Duration) -> ScopedBody {
        // A timeout too large to add is no deadline at all.
        self.unarmed_deadline = tokio::time::Instant::now().checked_add(timeout);
        self.error_at_deadline = true;
        self
    }

    /// Ends the body quietly when `ended` is cancelled.
    pub fn ended_by(mut self, ended: CancellationToken) -> ScopedBody {
        self.ended = Some(Box::pin(ended.cancelled_owned()));
        self
    }

    /// Keeps `guard` alive until a frame containing `needle` is handed on, or the body
    /// is dropped.
    pub fn releasing(mut self, needle: Vec<u8>, guard: impl Send + Sync + 'static) -> ScopedBody {
        self.release = Some((needle, Box::new(guard)));
        self
    }

    pub fn into_body(self) -> Body {
        Body::new(self)
    }
}

impl HttpBody for ScopedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Some(ended) = &mut this.ended
            && ended.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if let (Some(Ok(frame)), Some((needle, _))) = (&frame, &this.release)
                && frame.data_ref().is_some_and(|data| {
                    data.windows(needle.len().max(1))
                        .any(|window| window == needle.as_slice())
                })
            {
                this.release = None;
            }
            return Poll::Ready(frame);
        }
        if let Some(deadline) = this.unarmed_deadline.take() {
            this.deadline = Some(Box::pin(tokio::time::sleep_until(deadline)));
        }
        if let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            this.deadline = None;
            this.ended = None;
            this.inner = Body::empty();
            return Poll::Ready(
                this.error_at_deadline
                    .then(|| Err(axum::Error::new("the request body took too long"))),
            );
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A writer that hands log lines to a thread of its own, so that writing them never
/// blocks a request; the guard flushes the queue when dropped. Lines are never
/// dropped: a full queue (128,000 lines) makes the logging thread wait instead.
/// That thread writes every line waiting in the queue, then flushes: through a buffer,
/// a busy server's lines go out a batch per system call instead of one each, and an
/// idle server's line still goes out at once.
pub fn log_writer<W: std::io::Write + Send + 'static>(
    sink: W,
) -> (
    tracing_appender::non_blocking::NonBlocking,
    tracing_appender::non_blocking::WorkerGuard,
) {
    tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("mcp-github-server-log")
        .finish(std::io::BufWriter::with_capacity(LOG_BUFFER_BYTES, sink))
}

/// Enough for a few hundred request lines per system call.
const LOG_BUFFER_BYTES: usize = 64 * 1024;

/// Logs one line per request, and gives every request body a deadline, so a client
/// that trickles a body cannot hold a connection (and the handler waiting on it) for
/// long. One layer does both: every layer costs each request a clone of the routes
/// below it and a boxed future.
///
/// Only the method and the path are logged: query strings carry authorization codes
/// and `state` values, and headers carry tokens.
pub async fn log_request(body_timeout: Duration, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(with_body_deadline(body_timeout, request)).await;
    log_request_line(&method, &path, response.status(), started);
    response
}

/// The line `log_request` writes, for the requests answered before the router too.
pub(crate) fn log_request_line(
    method: &axum::http::Method,
    path: &str,
    status: StatusCode,
    started: Instant,
) {
    tracing::info!(
        %method,
        path,
        status = status.as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
}

/// `request` with a body that fails once `timeout` has passed, unless it is empty.
pub(crate) fn with_body_deadline(timeout: Duration, request: Request) -> Request {
    if request.body().is_end_stream() {
        return request;
    }
    let (parts, body) = request.into_parts();
    let body = ScopedBody::new(body).within(timeout).into_body();
    Request::from_parts(parts, body)
}

/// CORS for the metadata, registration, token and revocation endpoints: they hold no
/// ambient credentials (no cookies), so any origin may call them, as browser-based MCP
/// clients must.
pub fn cors_for_browser_clients() -> tower_http::cors::CorsLayer {
    use axum::http::Method;
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("mcp-protocol-version"),
        ])
        .expose_headers([header::WWW_AUTHENTICATE])
}

pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "not_found", "error_description": "no such endpoint"})),
    )
        .into_response()
}

/// `GET /`: the URL registered as the GitHub OAuth App's homepage, so a person who opens
/// it learns what this server is and how to connect a client, instead of a 404.
pub async fn home(State(state): State<AppState>) -> Response {
    let config = &state.config;
    let mut endpoints = String::new();
    if config.transports.streamable_http() {
        endpoints.push_str(&format!(
            "<li>Streamable HTTP: <code>{}</code></li>\n",
            html_escape(&config.url("/mcp"))
        ));
    }
    if config.transports.sse() {
        endpoints.push_str(&format!(
            "<li>legacy HTTP+SSE: <code>{}</code></li>\n",
            html_escape(&config.url("/sse"))
        ));
    }
    let body = format!(
        "<p>This is <strong>mcp-github-server</strong>, the reference server of \
         mcp-auth-conformance: an MCP server with one tool, <code>get_user_profile</code>, \
         that is its own OAuth 2.1 authorization server and lets users log in with GitHub.</p>\n\
         <h2>MCP endpoints</h2>\n<ul>\n{endpoints}</ul>\n\
         <h2>How to connect</h2>\n\
         <p>Give one of these URLs to an MCP client that speaks remote MCP with OAuth \
         (MCP Inspector, the TypeScript SDK, ...). The client discovers this server's \
         authorization server from the 401 answer, registers itself, and opens a browser: \
         first this server's consent page, then GitHub's login.</p>\n\
         <p>Authorization server metadata: <code>{metadata}</code><br>\n\
         GitHub OAuth App callback URL: <code>{callback}</code></p>\n\
         <p>Client configurations and troubleshooting are in the project's README.md \
         (sections \u{201c}Connect a client\u{201d} and \u{201c}Troubleshooting\u{201d}).</p>",
        metadata = html_escape(&config.url("/.well-known/oauth-authorization-server")),
        callback = html_escape(config.github_callback.as_str()),
    );
    html_page(StatusCode::OK, "MCP server with GitHub login", &body)
}

/// The refusal of a browser request from a foreign origin on the MCP endpoints, the
/// defence against DNS rebinding that the transport specification requires (403 since
/// 2025-11-25). Requests without `Origin` (non-browser clients) pass. A `Host` that
/// names neither this server nor loopback is refused too, for the same reason.
pub fn origin_refusal(state: &AppState, request: &Request) -> Option<Response> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    if let Some(host) = host
        && !is_allowed_host(&state.config, host)
    {
        return Some(forbidden_origin(
            StatusCode::FORBIDDEN,
            "Forbidden: Host is not allowed",
        ));
    }
    if let Some(origin) = request.headers().get(header::ORIGIN)
        && !crate::injected!(state.config, SkipOriginCheck)
    {
        let allowed = origin.to_str().is_ok_and(|origin| {
            let origin = origin.trim_end_matches('/');
            origin == state.config.origin()
                || state
                    .config
                    .allowed_origins
                    .iter()
                    .any(|allowed| allowed == origin)
        });
        if !allowed {
            let status = if crate::injected!(state.config, ForeignOriginGets400)
                && request.uri().path() == "/mcp"
            {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::FORBIDDEN
            };
            return Some(forbidden_origin(status, "Forbidden: Origin is not allowed"));
        }
    }
    None
}

fn forbidden_origin(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "jsonrpc": "2.0",
            "error": {"code": -32600, "message": message}
        })),
    )
        .into_response()
}

fn is_allowed_host(config: &crate::Config, host: &str) -> bool {
    let name = host_name(host);
    let ours = config.base_url.host_str().unwrap_or_default();
    name.eq_ignore_ascii_case(ours)
        || ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .any(|loopback| name.eq_ignore_ascii_case(loopback))
}

/// The name part of a `Host` header: `example.com:8000` -> `example.com`,
/// `[::1]:8000` -> `[::1]`. Split by hand because this runs on every MCP request.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|byte| byte.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Headers every response that carries a secret or a per-user page gets.
pub fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn html_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// A small, self-contained HTML page (no scripts, no external resources).
pub fn html_page(status: StatusCode, title: &str, body_html: &str) -> Response {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <h1>{title}</h1>\n{body_html}\n</main>\n</body>\n</html>\n",
        title = html_escape(title),
    );
    let mut response = (status, axum::response::Html(page)).into_response();
    let headers = response.headers_mut();
    no_store(headers);
    // The pages are never meant to be framed: clickjacking a consent page would
    // let another site obtain the user's approval.
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f6f8fa;color:#1f2328}\
main{max-width:34rem;margin:3rem auto;padding:2rem;background:#fff;border:1px solid #d0d7de;border-radius:8px}\
h1{font-size:1.4rem;margin-top:0}code{background:#eff1f3;padding:0 .2em;border-radius:4px;word-break:break-all}\
.actions{display:flex;gap:1rem;margin-top:1.5rem}\
button{font-size:1rem;padding:.6rem 1.4rem;border-radius:6px;border:1px solid #d0d7de;background:#f6f8fa;cursor:pointer}\
button.primary{background:#1f883d;border-color:#1a7f37;color:#fff}\
button:focus-visible{outline:3px solid #0969da;outline-offset:2px}";

/// Resolves when the process receives Ctrl-C or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::html_escape;

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(super::host_name("example.com:8000"), "example.com");
        assert_eq!(super::host_name("example.com"), "example.com");
        assert_eq!(super::host_name("[::1]:8000"), "[::1]");
        assert_eq!(super::host_name("[::1]"), "[::1]");
        assert_eq!(super::host_name("127.0.0.1:1"), "127.0.0.1");
    }

    #[test]
    fn html_escape_neutralises_markup_and_attribute_quotes() {
        assert_eq!(
            html_escape(r#"<script>"a" & 'b'</script>"#),
            "&lt;script&gt;&quot;a&quot; &amp; &#x27;b&#x27;&lt;/script&gt;"
        );
    }
}
