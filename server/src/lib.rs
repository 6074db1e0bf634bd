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
mod store;

use std::sync::Arc;

use axum::Router;
use tokio_util::sync::CancellationToken;

pub use config::{Config, ConfigError, GitHubConfig, Transports};
#[cfg(feature = "fault-injection")]
pub use fault::Fault;

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

/// Shared state behind every handler.
#[derive(Clone)]
pub(crate) struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<store::Store>,
    pub github: Arc<github::GitHubClient>,
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

fn build(config: Config, shutdown: CancellationToken) -> Router {
    let config = Arc::new(config);
    let state = AppState {
        github: Arc::new(github::GitHubClient::new(&config)),
        store: Arc::default(),
        sessions: Arc::default(),
        // The bearer check relies on this order.
        resources: [config.issuer(), config.url("/mcp"), config.url("/sse")].into(),
        tools: Arc::new(mcp::ToolList::new(&config)),
        config,
        shutdown,
    };
    let pre_registered = [
        injected!(state.config, NoRegistrationEndpoint),
        injected!(state.config, UnadvertisedRegistration),
    ];
    if pre_registered.contains(&true) {
        // The client a server without registration has been told about out of band.
        state.store.register_client(store::Client {
            client_id: "conformance-preregistered".into(),
            secret_digest: None,
            client_name: Some("pre-registered conformance client".into()),
            redirect_uris: vec!["http://127.0.0.1:33418/callback".into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        });
    }
    Router::new()
        .merge(
            oauth::routes()
                .merge(resource::metadata_routes())
                .layer(http_util::cors_for_browser_clients()),
        )
        .merge(oauth::browser_routes(&state.config))
        .merge(mcp::routes(&state))
        .fallback(http_util::not_found)
        .layer(axum::middleware::from_fn(http_util::log_request))
        .with_state(state)
}

/// Serves [`app`] on a bound listener until the process is asked to stop
/// (Ctrl-C or SIGTERM).
pub async fn serve(listener: tokio::net::TcpListener, config: Config) -> std::io::Result<()> {
    let shutdown = CancellationToken::new();
    let router = build(config, shutdown.clone());
    use axum::serve::ListenerExt;
    // Responses go out in several small writes; without TCP_NODELAY, Nagle's
    // algorithm holds the last one back until the client's delayed ACK, some 40 ms
    // per request on a kept-alive connection.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // `into_make_service` prepares the router once, not once per connection.
    axum::serve(listener, router.into_make_service())
        .with_graceful_shutdown(async move {
            http_util::shutdown_signal().await;
            shutdown.cancel();
        })
        .await
}
