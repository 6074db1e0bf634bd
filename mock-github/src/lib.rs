//! A deterministic mock of the parts of GitHub that a "log in with GitHub" OAuth App uses:
//! the authorize page, the code exchange and `GET /user`.
//!
//! # Keyed design
//!
//! One mock is shared by many login flows running at the same time, each with its own user and
//! its own failure mode. It therefore keeps no "what should the next request get" state. Instead:
//!
//! * The scripted browser chooses the account and the fault on the authorize URL
//!   (`&login=mona&fault=token_5xx`), the way a real user chooses an account in the browser.
//! * The mock puts both into the authorization code it issues (`ghc_<login>_<fault|none>_<n>`),
//!   and the code exchange puts them into the access token (`gho_<login>_<fault|none>_<n>_<random>`).
//! * Every later request is answered from what its code or token says, so a flow only ever sees
//!   its own fault, whatever else is running.
//!
//! Codes are single use and expire (10 minutes by default), tokens stay valid until revoked with
//! [`MockGitHub::revoke_token`] or [`REVOKE_PATH`]. Every request except the admin ones is
//! journaled, so a check can prove what a server did or did not send to GitHub (for example, that
//! it never forwarded its own MCP tokens): see [`MockGitHub::journal`] and
//! [`RecordedRequest::mentions`].
//!
//! # Endpoints
//!
//! | Path | Purpose |
//! |---|---|
//! | `GET` [`AUTHORIZE_PATH`] | Redirects back with a `code` (or `error=access_denied`). |
//! | `POST` [`TOKEN_PATH`] | Exchanges a code; GitHub's HTTP-200 error bodies; JSON or form answers. |
//! | `GET` [`USER_PATH`] | The fixture profile for a live token; 401/403 like GitHub. |
//! | `GET` [`JOURNAL_PATH`] | Admin: the journal as a JSON array of [`RecordedRequest`]. |
//! | `POST` [`REVOKE_PATH`] | Admin: `{"access_token": "..."}` revokes a token. |
//! | `GET` [`USERS_PATH`] | Admin: the fixture profiles. |
//! | `GET` [`TOKENS_PATH`] | Admin: every token issued, as [`IssuedToken`]. |
//! | `GET` [`INTERCEPT_PATH`] | Admin: whether the mock intercepts `github.com` (404 when not). |
//!
//! # Servers with GitHub's URLs fixed in their code
//!
//! [`MockGitHubBuilder::intercept`] also starts an intercepting HTTPS proxy for `github.com` and
//! `api.github.com`, with a CA generated for this run: a server given [`MockGitHub::intercept_env`]
//! (`HTTPS_PROXY` and the CA file in `SSL_CERT_FILE`, `NODE_EXTRA_CA_CERTS`, ...) reaches the mock
//! when it calls `https://github.com/login/oauth/access_token` or `https://api.github.com/user`,
//! and those requests are journaled like direct ones. Other hosts are refused with 403.
//!
//! # Where the mock knowingly differs from GitHub
//!
//! * `redirect_uri` is required on the authorize URL (GitHub would fall back to the registered
//!   callback URL; the mock has none), and any absolute URL is accepted as a callback.
//! * The token endpoint reads its parameters from the body only, never from the query string, so
//!   a server that puts its client secret in a URL fails visibly.
//! * A missing `Authorization` header on `GET /user` gets the same 401 "Bad credentials" body as
//!   an unknown token (GitHub words that case "Requires authentication").
//! * PKCE is checked when the authorize request carried a `code_challenge`; a missing or wrong
//!   `code_verifier` gets `bad_verification_code`.
//! * Only one OAuth App exists: [`CLIENT_ID`] / [`CLIENT_SECRET`].
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() {
//! let github = mock_github::MockGitHub::start().await;
//! for (name, value) in github.server_env() {
//!     println!("{name}={value}");
//! }
//! // ... drive a server under test; the scripted browser adds `login` and `fault` to the
//! // authorize URL the server redirects to, e.g. with `mock_github::pick_account`.
//! let journal = github.journal().await;
//! assert!(journal.iter().all(|request| !request.mentions("my-mcp-access-token")));
//! # }
//! ```

mod fault;
mod handlers;
mod intercept;
mod journal;
mod state;
mod users;

use std::fmt;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use wiremock::{Mock, MockServer};

pub use fault::{Fault, FaultStage, UnknownFault};
pub use intercept::{
    API_HOST, CA_FILE_VARIABLES, GITHUB_HOST, INTERCEPTED_HOSTS, InterceptError, NO_PROXY,
    PROXY_VARIABLES,
};
pub use journal::RecordedRequest;
pub use state::IssuedToken;
pub use users::{DEFAULT_LOGIN, GitHubUser, user, users};

use intercept::{Authority, Interception};
use state::{Config, State};

/// The only OAuth App client id the mock knows.
pub const CLIENT_ID: &str = "mock-github-client-id";
/// The secret of that OAuth App. It is fake, so printing it is fine.
pub const CLIENT_SECRET: &str = "mock-github-client-secret";

/// The authorize page a server redirects the browser to.
pub const AUTHORIZE_PATH: &str = "/login/oauth/authorize";
/// The code exchange endpoint.
pub const TOKEN_PATH: &str = "/login/oauth/access_token";
/// The prefix of the REST API; [`MockGitHub::api_base_url`] ends with it.
pub const API_PREFIX: &str = "/api";
/// The authenticated-user endpoint (`{api}/user`).
pub const USER_PATH: &str = "/api/user";

/// Every admin path starts with this; requests under it are never journaled.
pub const ADMIN_PREFIX: &str = "/_mock/";
/// `GET`: the journal as a JSON array of [`RecordedRequest`].
pub const JOURNAL_PATH: &str = "/_mock/journal";
/// `POST` `{"access_token": "..."}`: revokes the token; answers `{"revoked": bool}` where the
/// boolean says whether the mock had issued that token.
pub const REVOKE_PATH: &str = "/_mock/revoke";
/// `GET`: the fixture users' profiles as a JSON array.
pub const USERS_PATH: &str = "/_mock/users";
/// `GET`: every access token issued so far, as a JSON array of [`IssuedToken`].
pub const TOKENS_PATH: &str = "/_mock/tokens";
/// `GET`: `{"hosts": [...], "proxy_url": "..."}` when the mock intercepts GitHub's hosts (see
/// [`MockGitHubBuilder::intercept`]), 404 otherwise. The scripted browser asks it before it
/// follows a redirect to `https://github.com`.
pub const INTERCEPT_PATH: &str = "/_mock/intercept";

/// Environment variable names for a server under test, as the MCP Python SDK's GitHub example
/// (`MCP_GITHUB_` prefix) reads them.
pub const ENV_CLIENT_ID: &str = "MCP_GITHUB_GITHUB_CLIENT_ID";
/// See [`ENV_CLIENT_ID`].
pub const ENV_CLIENT_SECRET: &str = "MCP_GITHUB_GITHUB_CLIENT_SECRET";
/// See [`ENV_CLIENT_ID`]; the value is [`MockGitHub::authorize_url`].
pub const ENV_AUTH_URL: &str = "MCP_GITHUB_GITHUB_AUTH_URL";
/// See [`ENV_CLIENT_ID`]; the value is [`MockGitHub::token_url`].
pub const ENV_TOKEN_URL: &str = "MCP_GITHUB_GITHUB_TOKEN_URL";
/// See [`ENV_CLIENT_ID`]; the value is [`MockGitHub::api_base_url`].
pub const ENV_API_URL: &str = "MCP_GITHUB_GITHUB_API_URL";
/// Set to `1` for a server under interception: Node.js 22.21 and later route `fetch` and
/// `http(s).request` through `HTTPS_PROXY` only when it is set.
pub const ENV_NODE_USE_ENV_PROXY: &str = "NODE_USE_ENV_PROXY";

/// How long GitHub keeps an authorization code redeemable.
pub const DEFAULT_CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// How long the `*_timeout` faults hold their answer back by default: longer than any sensible
/// upstream timeout, so the server's own timeout must fire first.
pub const DEFAULT_SLOW_DELAY: Duration = Duration::from_secs(30);

/// A running mock. Dropping it stops the server.
pub struct MockGitHub {
    /// Always `Some` until the mock is dropped (see the `Drop` impl).
    server: Option<MockServer>,
    state: Arc<State>,
    /// The server's address, kept so it stays readable without the server.
    address: std::net::SocketAddr,
    uri: String,
    /// The intercepting proxy, when the builder asked for one.
    interception: Option<Interception>,
}

/// Options for [`MockGitHub`], from [`MockGitHub::builder`].
#[derive(Debug)]
pub struct MockGitHubBuilder {
    listener: Option<TcpListener>,
    proxy_listener: Option<TcpListener>,
    config: Config,
}

impl MockGitHubBuilder {
    /// How long the `token_timeout` and `user_timeout` faults wait before answering
    /// (default [`DEFAULT_SLOW_DELAY`]). Tests use a short value with a shorter client timeout.
    pub fn slow_delay(mut self, delay: Duration) -> Self {
        self.config.slow_delay = delay;
        self
    }

    /// How long a code stays redeemable (default [`DEFAULT_CODE_TTL`]). `Duration::ZERO` makes
    /// every code expire at once, which tests the expired-code path without waiting.
    pub fn code_ttl(mut self, ttl: Duration) -> Self {
        self.config.code_ttl = ttl;
        self
    }

    /// Serve on an already bound listener (for a fixed port) instead of `127.0.0.1:0`.
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Also act as an intercepting HTTPS proxy for `github.com` and `api.github.com` on
    /// `listener` (bind `127.0.0.1:0`), with a CA generated for this mock: see
    /// [`MockGitHub::proxy_url`], [`MockGitHub::ca_certificate_pem`] and
    /// [`MockGitHub::intercept_env`].
    pub fn intercept(mut self, listener: TcpListener) -> Self {
        self.proxy_listener = Some(listener);
        self
    }

    /// Starts the server. Must be called inside a Tokio runtime.
    ///
    /// # Panics
    ///
    /// When interception was asked for and cannot start (see [`Self::try_start`]); a mock
    /// without interception always starts.
    pub async fn start(self) -> MockGitHub {
        match self.try_start().await {
            Ok(github) => github,
            Err(err) => panic!("mock-github: {err}"),
        }
    }

    /// Starts the server, or says why the intercepting proxy could not start. Must be called
    /// inside a Tokio runtime.
    pub async fn try_start(self) -> Result<MockGitHub, InterceptError> {
        // The certificates and the proxy's address come first, so the admin endpoint can name
        // the proxy from the mock's first request on.
        let proxy = match self.proxy_listener {
            Some(listener) => {
                let address = listener.local_addr()?;
                Some((listener, address, Authority::generate()?))
            }
            None => None,
        };
        let intercept_info = proxy.as_ref().map(|(_, address, _)| {
            serde_json::json!({
                "hosts": INTERCEPTED_HOSTS,
                "proxy_url": format!("http://{address}"),
            })
        });
        // wiremock's own request recording is off: the mock keeps its own journal (which leaves
        // out admin requests), and a long-running standalone mock should not hold two copies.
        let mut builder = MockServer::builder().disable_request_recording();
        if let Some(listener) = self.listener {
            builder = builder.listener(listener);
        }
        let server = builder.start().await;
        let state = Arc::new(State::new(self.config));
        Mock::given(wiremock::matchers::any())
            .respond_with(handlers::Router::new(Arc::clone(&state), intercept_info))
            .named("mock-github")
            .mount(&server)
            .await;
        let interception = match proxy {
            Some((listener, _, authority)) => Some(Interception::start(
                listener,
                authority,
                *server.address(),
                Arc::clone(&state),
            )?),
            None => None,
        };
        Ok(MockGitHub {
            address: *server.address(),
            uri: server.uri(),
            server: Some(server),
            state,
            interception,
        })
    }
}

impl MockGitHub {
    /// A builder for non-default options (slow delay, code lifetime, listener).
    pub fn builder() -> MockGitHubBuilder {
        MockGitHubBuilder {
            listener: None,
            proxy_listener: None,
            config: Config {
                slow_delay: DEFAULT_SLOW_DELAY,
                code_ttl: DEFAULT_CODE_TTL,
            },
        }
    }

    /// Starts a mock on `127.0.0.1` with a port chosen by the OS.
    pub async fn start() -> MockGitHub {
        MockGitHub::builder().start().await
    }

    /// Starts a mock on a listener the caller bound, e.g. to a fixed port.
    pub async fn start_on(listener: TcpListener) -> MockGitHub {
        MockGitHub::builder().listener(listener).start().await
    }

    /// `http://HOST:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.uri.clone()
    }

    /// The address the mock listens on.
    pub fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    /// `{base}/login/oauth/authorize`.
    pub fn authorize_url(&self) -> String {
        format!("{}{AUTHORIZE_PATH}", self.base_url())
    }

    /// `{base}/login/oauth/access_token`.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.base_url())
    }

    /// `{base}/api`; the profile is `GET {api}/user`.
    pub fn api_base_url(&self) -> String {
        format!("{}{API_PREFIX}", self.base_url())
    }

    /// `{base}/_mock/journal`, for clients in other processes.
    pub fn journal_url(&self) -> String {
        format!("{}{JOURNAL_PATH}", self.base_url())
    }

    /// The environment for a server under test, in this order: client id, client secret,
    /// authorize URL, token URL, API base URL (see the `ENV_*` constants).
    pub fn server_env(&self) -> Vec<(&'static str, String)> {
        vec![
            (ENV_CLIENT_ID, CLIENT_ID.to_owned()),
            (ENV_CLIENT_SECRET, CLIENT_SECRET.to_owned()),
            (ENV_AUTH_URL, self.authorize_url()),
            (ENV_TOKEN_URL, self.token_url()),
            (ENV_API_URL, self.api_base_url()),
        ]
    }

    /// `http://127.0.0.1:PORT` of the intercepting proxy, when the mock intercepts.
    pub fn proxy_url(&self) -> Option<String> {
        self.interception
            .as_ref()
            .map(|interception| format!("http://{}", interception.address()))
    }

    /// The address of the intercepting proxy, when the mock intercepts.
    pub fn proxy_address(&self) -> Option<std::net::SocketAddr> {
        self.interception.as_ref().map(Interception::address)
    }

    /// The PEM of this mock's CA, which signed the certificate the proxy presents for
    /// `github.com` and `api.github.com`, when the mock intercepts. A client must trust it.
    pub fn ca_certificate_pem(&self) -> Option<&str> {
        self.interception.as_ref().map(Interception::ca_pem)
    }

    /// The environment for a server whose GitHub URLs are fixed in its code, when the mock
    /// intercepts: the OAuth App's credentials, the proxy in [`PROXY_VARIABLES`] with
    /// [`NO_PROXY`] for loopback, `ca_file` (where the caller wrote
    /// [`Self::ca_certificate_pem`]) in every one of [`CA_FILE_VARIABLES`], and
    /// [`ENV_NODE_USE_ENV_PROXY`]. GitHub's URL variables are left out on purpose: the server's
    /// own defaults are what is checked.
    pub fn intercept_env(&self, ca_file: &str) -> Option<Vec<(&'static str, String)>> {
        let proxy = self.proxy_url()?;
        let mut env = vec![
            (ENV_CLIENT_ID, CLIENT_ID.to_owned()),
            (ENV_CLIENT_SECRET, CLIENT_SECRET.to_owned()),
        ];
        env.extend(PROXY_VARIABLES.iter().map(|name| (*name, proxy.clone())));
        env.extend([
            ("NO_PROXY", NO_PROXY.to_owned()),
            ("no_proxy", NO_PROXY.to_owned()),
        ]);
        env.extend(
            CA_FILE_VARIABLES
                .iter()
                .map(|name| (*name, ca_file.to_owned())),
        );
        env.push((ENV_NODE_USE_ENV_PROXY, "1".to_owned()));
        Some(env)
    }

    /// Every request received so far, in arrival order, except requests to the admin paths.
    ///
    /// A request is recorded when it arrives, before any fault delay, so a timed-out request is
    /// in the journal even though its answer never reached the client.
    pub async fn journal(&self) -> Vec<RecordedRequest> {
        self.state.journal()
    }

    /// Revokes an access token: later `GET /user` calls with it answer 401. Unknown tokens are
    /// ignored (there is nothing to revoke).
    pub fn revoke_token(&self, access_token: &str) {
        self.state.revoke(access_token);
    }

    /// Every access token the mock has issued, in issue order, with its user, fault and whether
    /// it was revoked. A check can use this to prove that a server never handed a GitHub token
    /// to its own clients.
    pub fn issued_tokens(&self) -> Vec<IssuedToken> {
        self.state.issued_tokens()
    }
}

/// wiremock's `MockServer` verifies its expectations when dropped, with a
/// `futures::executor::block_on` over a tokio lock. Dropped inside a tokio task that has
/// used up its cooperative budget, that lock answers "pending, try again" for ever and the
/// drop spins at full CPU. This mock sets no expectations, so the verification has
/// nothing to say; it runs on a thread of its own, outside any runtime, which can never
/// hold up the caller.
impl Drop for MockGitHub {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = std::thread::Builder::new()
                .name("mock-github-drop".into())
                .spawn(move || drop(server));
        }
    }
}

impl fmt::Debug for MockGitHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockGitHub")
            .field("base_url", &self.base_url())
            .finish_non_exhaustive()
    }
}

/// What the scripted browser does on the mock's authorize page: picks `login` and optionally a
/// fault by setting those query parameters on the authorize URL a server redirected to.
///
/// Existing `login` and `fault` parameters are replaced; every other parameter is kept as is.
pub fn pick_account(
    authorize_url: &str,
    login: &str,
    fault: Option<Fault>,
) -> Result<String, url::ParseError> {
    let mut url = url::Url::parse(authorize_url)?;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| name != "login" && name != "fault")
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    {
        let mut query = url.query_pairs_mut();
        query.clear();
        query.extend_pairs(kept);
        query.append_pair("login", login);
        if let Some(fault) = fault {
            query.append_pair("fault", fault.as_str());
        }
    }
    Ok(url.to_string())
}
