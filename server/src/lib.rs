//! A reference MCP server that is its own OAuth 2.1 authorization server and
//! delegates the user's login to a GitHub OAuth App.
//!
//! The server exposes the tool `get_user_profile` over both HTTP transports: the
//! legacy HTTP+SSE transport (`GET /sse` + `POST /messages/`) and Streamable HTTP
//! (`/mcp`). Every MCP endpoint requires a bearer token that this server issued for
//! itself; the GitHub token it obtained at login stays on the server.
//!
//! Build the router with [`app`], or bind and run with [`serve`]:
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let base_url = format!("http://127.0.0.1:{}", listener.local_addr()?.port()).parse()?;
//! let config = mcp_github_server::Config::from_vars(std::env::vars(), base_url)?;
//! mcp_github_server::serve(listener, config).await?;
//! # Ok(()) }
//! ```

pub mod config;
#[cfg(feature = "fault-injection")]
pub mod fault;
mod github;
mod http_util;
mod mcp;
mod oauth;
mod resource;
#[cfg(feature = "fault-injection")]
mod robustness_faults;
mod store;

use std::sync::Arc;

use axum::Router;
use tokio_util::sync::CancellationToken;

pub use config::{Config, ConfigError, GitHubConfig, Transports};
#[cfg(feature = "fault-injection")]
pub use fault::Fault;
pub use http_util::log_writer;

/// True when the named fault is switched on. Without the `fault-injection` feature
/// this is the constant `false`, so the faulty branches compile away.
#[macro_export]
#[doc(hidden)]
macro_rules! injected {
    ($config:expr, $fault:ident) => {{
        #[cfg(feature = "fault-injection")]
        let on = $config.faults.contains(&$crate::fault::Fault::$fault);
        #[cfg(not(feature = "fault-injection"))]
        let on = {
            let _ = &$config;
            false
        };
        on
    }};
}

/// Shared state behind every handler. One `Arc`, because axum clones the state for
/// every middleware and extractor of every request: cloning each field's `Arc` and the
/// shutdown token (whose clone takes a lock) cost several percent of a request.
#[derive(Clone)]
pub(crate) struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

pub(crate) struct SharedState {
    pub config: Arc<Config>,
    pub store: Arc<store::Store>,
    pub github: Arc<github::GitHubClient>,
    /// Client ID metadata documents: the fetcher and its cache.
    pub cimd: Arc<oauth::cimd::Cimd>,
    pub sessions: Arc<mcp::Sessions>,
    /// The identifiers a token's audience may name: this server's RFC 8707
    /// resources, computed once because the bearer check compares against them on
    /// every request.
    pub resources: Arc<[String]>,
    /// `tools/list` answers, built once per protocol-version shape.
    pub tools: Arc<mcp::ToolList>,
    /// Cancelled when the server shuts down, so long-lived SSE streams end and the
    /// graceful shutdown does not wait on them forever.
    pub shutdown: CancellationToken,
}

/// The complete application: authorization server, resource metadata and the MCP
/// transports selected in the configuration.
pub fn app(config: Config) -> Router {
    build(config, CancellationToken::new())
}

fn new_state(config: Config, shutdown: CancellationToken) -> AppState {
    let config = Arc::new(config);
    AppState(Arc::new(SharedState {
        github: Arc::new(github::GitHubClient::new(&config)),
        cimd: Arc::new(oauth::cimd::Cimd::new(&config)),
        store: Arc::new(store::Store::new(store::Limits::new(&config))),
        sessions: Arc::default(),
        // The bearer check relies on this order.
        resources: [config.issuer(), config.url("/mcp"), config.url("/sse")].into(),
        tools: Arc::new(mcp::ToolList::new(&config)),
        config,
        shutdown,
    }))
}

fn build(config: Config, shutdown: CancellationToken) -> Router {
    build_with_fast_path(config, shutdown).0
}

/// The router, and the stateless requests answered before it (`mcp::FastPath`).
fn build_with_fast_path(
    config: Config,
    shutdown: CancellationToken,
) -> (Router, Option<Arc<mcp::FastPath>>) {
    let state = new_state(config, shutdown);
    let fast_path = mcp::FastPath::new(&state).map(Arc::new);
    let body_timeout = state.config.body_timeout;
    let pre_registered = [
        injected!(state.config, NoRegistrationEndpoint),
        injected!(state.config, UnadvertisedRegistration),
    ];
    if pre_registered.contains(&true) {
        // The client a server without registration has been told about out of band.
        let _ = state.store.register_client(store::Client {
            client_id: "conformance-preregistered".into(),
            secret_digest: None,
            client_name: Some("pre-registered conformance client".into()),
            redirect_uris: vec!["http://127.0.0.1:33418/callback".into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        });
    }
    let router = Router::new()
        .merge(
            oauth::routes(&state.config)
                .merge(resource::metadata_routes())
                .layer(http_util::cors_for_browser_clients()),
        )
        .merge(oauth::browser_routes(&state.config))
        .merge(mcp::routes(&state))
        .route("/", axum::routing::get(http_util::home))
        .fallback(http_util::not_found);
    #[cfg(feature = "fault-injection")]
    let router = router.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        robustness_faults::layer,
    ));
    let router = router
        .layer(axum::middleware::from_fn(move |request, next| {
            http_util::log_request(body_timeout, request, next)
        }))
        .with_state(state);
    (router, fast_path)
}

/// Serves [`app`] on a bound listener until the process is asked to stop
/// (Ctrl-C or SIGTERM).
///
/// The accept loop is the server's own rather than `axum::serve`, for the bounds a
/// public server needs: at most `max_connections` connections at once (others wait in
/// the listen queue), and hyper's header timeout, which needs a timer, for slow or
/// idle clients. Requests' bodies have their own deadline (`limit_body_time`).
pub async fn serve(listener: tokio::net::TcpListener, config: Config) -> std::io::Result<()> {
    serve_until(listener, config, http_util::shutdown_signal()).await
}

async fn serve_until(
    listener: tokio::net::TcpListener,
    config: Config,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::{
        rt::{TokioExecutor, TokioIo, TokioTimer},
        server::{conn::auto, graceful::GracefulShutdown},
        service::TowerToHyperService,
    };

    let connections = Arc::new(tokio::sync::Semaphore::new(config.max_connections.max(1)));
    let header_timeout = config.header_timeout;
    let shutdown = CancellationToken::new();
    let (router, fast_path) = build_with_fast_path(config, shutdown.clone());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The header timeout also runs while a kept-alive connection waits for its next
    // request, so it is the idle timeout too; it never runs while a response (such as
    // an SSE stream) is being written.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(header_timeout)
        .keep_alive_timeout(header_timeout);
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Running out of file descriptors must not spin the loop.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Responses go out in several small writes; without TCP_NODELAY, Nagle's
        // algorithm holds the last one back until the client's delayed ACK, some 40 ms
        // per request on a kept-alive connection.
        let _ = stream.set_nodelay(true);
        let service = {
            let router = TowerToHyperService::new(router.clone());
            let fast_path = fast_path.clone();
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let router = router.clone();
                let fast_path = fast_path.clone();
                async move {
                    let mut request = request.map(axum::body::Body::new);
                    if let Some(fast_path) = &fast_path
                        && mcp::FastPath::may_answer(&request)
                    {
                        // Boxed: hyper keeps room for this future for as long as the
                        // connection lives (an SSE stream's for hours), so it stays small.
                        match Box::pin(fast_path.answer(request)).await {
                            Ok(response) => return Ok(response),
                            Err(declined) => request = declined,
                        }
                    }
                    hyper::service::Service::call(&router, request).await
                }
            })
        };
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let http1 = http1.clone();
        tokio::spawn(async move {
            // The first bytes tell HTTP/1 from HTTP/2 before hyper's header timer starts,
            // so a connection that sends nothing at all is timed out here.
            let mut first = [0u8; 3];
            if let Ok(Ok(read @ 1..)) =
                tokio::time::timeout(header_timeout, stream.peek(&mut first)).await
            {
                // Only HTTP/2's preface starts with "PRI" (RFC 9113 §3.4). Every other
                // connection goes to hyper's HTTP/1 directly: the auto builder hands it the
                // bytes it read to decide, after which hyper's first reserve doubles its
                // read buffer to 16 KiB for the connection's lifetime (8 KiB more per open
                // SSE stream).
                if b"PRI".starts_with(&first[..read]) {
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let _ = watcher.watch(connection).await;
                } else {
                    let connection = http1.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(connection).await;
                }
            }
            drop(permit);
        });
    }
    // Long-lived SSE streams end on this, so the graceful shutdown does not wait on
    // them forever.
    shutdown.cancel();
    graceful.shutdown().await;
    Ok(())
}
