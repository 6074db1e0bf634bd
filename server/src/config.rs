//! Server configuration, read from environment variables whose names match the
//! official Python SDK's GitHub `simple-auth` example (`MCP_GITHUB_...`).

use std::{collections::HashMap, fmt, time::Duration};

use url::Url;

/// Names of the environment variables the server reads.
pub mod vars {
    pub const GITHUB_CLIENT_ID: &str = "MCP_GITHUB_GITHUB_CLIENT_ID";
    pub const GITHUB_CLIENT_SECRET: &str = "MCP_GITHUB_GITHUB_CLIENT_SECRET";
    pub const GITHUB_AUTH_URL: &str = "MCP_GITHUB_GITHUB_AUTH_URL";
    pub const GITHUB_TOKEN_URL: &str = "MCP_GITHUB_GITHUB_TOKEN_URL";
    pub const GITHUB_API_URL: &str = "MCP_GITHUB_GITHUB_API_URL";
    pub const GITHUB_SCOPE: &str = "MCP_GITHUB_GITHUB_SCOPE";
    pub const GITHUB_CALLBACK_PATH: &str = "MCP_GITHUB_GITHUB_CALLBACK_PATH";
    pub const SERVER_URL: &str = "MCP_GITHUB_SERVER_URL";
    pub const MCP_SCOPE: &str = "MCP_GITHUB_MCP_SCOPE";
    pub const ACCESS_TOKEN_TTL_SECS: &str = "MCP_GITHUB_ACCESS_TOKEN_TTL_SECS";
    pub const REFRESH_TOKEN_TTL_SECS: &str = "MCP_GITHUB_REFRESH_TOKEN_TTL_SECS";
    pub const UPSTREAM_TIMEOUT_SECS: &str = "MCP_GITHUB_UPSTREAM_TIMEOUT_SECS";
    pub const ALLOWED_ORIGINS: &str = "MCP_GITHUB_ALLOWED_ORIGINS";
    pub const GRANT_TTL_SECS: &str = "MCP_GITHUB_GRANT_TTL_SECS";
    pub const PENDING_AUTHORIZATION_TTL_SECS: &str = "MCP_GITHUB_PENDING_AUTHORIZATION_TTL_SECS";
    pub const MAX_PENDING_AUTHORIZATIONS: &str = "MCP_GITHUB_MAX_PENDING_AUTHORIZATIONS";
    pub const MAX_CLIENTS: &str = "MCP_GITHUB_MAX_CLIENTS";
    pub const UNUSED_CLIENT_TTL_SECS: &str = "MCP_GITHUB_UNUSED_CLIENT_TTL_SECS";
    pub const MAX_SESSIONS_PER_USER: &str = "MCP_GITHUB_MAX_SESSIONS_PER_USER";
    pub const SESSION_IDLE_TIMEOUT_SECS: &str = "MCP_GITHUB_SESSION_IDLE_TIMEOUT_SECS";
    pub const MAX_CONNECTIONS: &str = "MCP_GITHUB_MAX_CONNECTIONS";
    pub const HEADER_TIMEOUT_SECS: &str = "MCP_GITHUB_HEADER_TIMEOUT_SECS";
    pub const BODY_TIMEOUT_SECS: &str = "MCP_GITHUB_BODY_TIMEOUT_SECS";
    pub const CIMD_ALLOW_LOOPBACK: &str = "MCP_GITHUB_CIMD_ALLOW_LOOPBACK";
    pub const PROFILE_FRESHNESS_SECS: &str = "MCP_GITHUB_PROFILE_FRESHNESS_SECS";
}

/// Every lifetime and timeout is capped at this, so that adding one to the current
/// instant can never overflow, however large a setting is.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Which MCP transports the server mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transports {
    /// The legacy HTTP+SSE transport (`GET /sse` + `POST /messages/`, protocol 2024-11-05).
    Sse,
    /// Streamable HTTP at `/mcp`.
    StreamableHttp,
    /// Both transports at once.
    Both,
}

impl Transports {
    pub fn sse(self) -> bool {
        matches!(self, Transports::Sse | Transports::Both)
    }

    pub fn streamable_http(self) -> bool {
        matches!(self, Transports::StreamableHttp | Transports::Both)
    }
}

/// The GitHub OAuth App the server logs users in with, and where GitHub lives.
#[derive(Clone)]
pub struct GitHubConfig {
    pub client_id: String,
    /// Never printed: `Debug` redacts it.
    pub client_secret: String,
    /// GitHub's browser-facing authorize URL.
    pub authorize_url: Url,
    /// GitHub's code-for-token exchange URL.
    pub token_url: Url,
    /// Base of the REST API; the profile is read from `{api_base_url}/user`.
    pub api_base_url: Url,
    /// Scopes requested from GitHub (space separated).
    pub scope: String,
}

impl fmt::Debug for GitHubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("authorize_url", &self.authorize_url.as_str())
            .field("token_url", &self.token_url.as_str())
            .field("api_base_url", &self.api_base_url.as_str())
            .field("scope", &self.scope)
            .finish()
    }
}

/// Everything the server needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The public base URL. The issuer is this URL serialized without a trailing slash,
    /// and every advertised URL (endpoints, resources, the GitHub callback) hangs off it.
    pub base_url: Url,
    /// Path of the GitHub callback below the base URL, or a full URL to register at GitHub.
    pub github_callback: Url,
    pub github: GitHubConfig,
    pub transports: Transports,
    /// The scope an MCP access token needs to use the MCP endpoints.
    pub mcp_scope: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Authorization codes live at most this long (OAuth 2.1 recommends minutes).
    pub authorization_code_ttl: Duration,
    /// A consent page and the upstream `state` expire after this long.
    pub pending_authorization_ttl: Duration,
    /// Upper bound for every call to GitHub.
    pub upstream_timeout: Duration,
    /// Browser origins allowed to call the MCP endpoints besides the server's own.
    pub allowed_origins: Vec<String>,
    /// The absolute lifetime of a grant: refreshing never extends it.
    pub grant_ttl: Duration,
    /// Cap on consent pages waiting for an answer, and separately on approved
    /// requests waiting for GitHub; the oldest is dropped first.
    pub max_pending_authorizations: usize,
    /// Cap on registered clients; the oldest never-used client is dropped first.
    pub max_clients: usize,
    /// A registered client that never obtained a grant is forgotten after this long.
    pub unused_client_ttl: Duration,
    /// Cap on one user's open sessions, per transport; the least recently used
    /// session is closed first.
    pub max_sessions_per_user: usize,
    /// A Streamable HTTP session without any request for this long is closed.
    pub session_idle_timeout: Duration,
    /// Cap on open connections; further connections wait in the accept queue.
    pub max_connections: usize,
    /// Time allowed for a request's headers, and for the next request on an idle
    /// kept-alive connection.
    pub header_timeout: Duration,
    /// Time allowed for a request's whole body.
    pub body_timeout: Duration,
    /// Test only: client ID metadata documents may be fetched from a loopback IP literal
    /// (`http://127.0.0.1:PORT/...` or `https://`), where a test suite serves them. Host
    /// names are still resolved and refused when they lead to a loopback, private or
    /// link-local address, so `localhost` stays refused.
    pub cimd_allow_loopback: bool,
    /// How long a profile GitHub confirmed is served without asking GitHub again.
    /// Zero (the default) revalidates on every tool call, with `If-None-Match`: a 304
    /// costs no rate limit and still proves the GitHub token valid, which the
    /// 2025-03-26 spec asks for before honouring an MCP token ("Validate third-party
    /// token status before honoring MCP tokens"). A window trades that for fewer calls.
    pub profile_freshness: Duration,
    /// Test-only defects, each breaking exactly one requirement.
    #[cfg(feature = "fault-injection")]
    pub faults: std::collections::BTreeSet<crate::fault::Fault>,
}

/// Why a configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}", missing_credentials_message(.0))]
    MissingGitHubCredentials(Vec<&'static str>),
    #[error("{name} is not a valid URL ({value:?}): {reason}")]
    InvalidUrl {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("{name} must be a whole number of seconds, got {value:?}")]
    InvalidSeconds { name: &'static str, value: String },
    #[error("{name} must be a positive whole number, got {value:?}")]
    InvalidCount { name: &'static str, value: String },
    #[error("{name} must be true or false (or 1 or 0), got {value:?}")]
    InvalidFlag { name: &'static str, value: String },
}

fn missing_credentials_message(missing: &[&'static str]) -> String {
    let names = missing.join(" and ");
    let mut message = format!(
        "{names} must be set to the client id and secret of a GitHub OAuth App.\n\
         Register one at https://github.com/settings/developers with homepage URL \
         http://localhost:8000 and callback URL http://localhost:8000/github/callback, then set:\n"
    );
    message.push_str("\n  bash:\n");
    for name in missing {
        message.push_str(&format!("    export {name}=...\n"));
    }
    message.push_str("\n  PowerShell:\n");
    for name in missing {
        message.push_str(&format!("    $env:{name} = \"...\"\n"));
    }
    message.push_str("\n  CMD:\n");
    for name in missing {
        message.push_str(&format!("    set {name}=...\n"));
    }
    message
}

impl Config {
    /// Builds a configuration from variables named as in [`vars`] (typically the
    /// process environment) and the public base URL.
    pub fn from_vars<K, V>(
        vars: impl IntoIterator<Item = (K, V)>,
        base_url: Url,
    ) -> Result<Config, ConfigError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .map(|(key, value)| (key.into(), value.into()))
            .filter(|(_, value)| !value.trim().is_empty())
            .collect();
        let get = |name: &str| vars.get(name).map(|value| value.trim().to_owned());

        let missing: Vec<&'static str> = [vars::GITHUB_CLIENT_ID, vars::GITHUB_CLIENT_SECRET]
            .into_iter()
            .filter(|name| get(name).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(ConfigError::MissingGitHubCredentials(missing));
        }

        let url = |name: &'static str, default: &str| -> Result<Url, ConfigError> {
            let value = get(name).unwrap_or_else(|| default.to_owned());
            Url::parse(&value).map_err(|error| ConfigError::InvalidUrl {
                name,
                value,
                reason: error.to_string(),
            })
        };
        let seconds = |name: &'static str, default: u64| -> Result<Duration, ConfigError> {
            match get(name) {
                None => Ok(Duration::from_secs(default)),
                Some(value) => value
                    .parse::<u64>()
                    .ok()
                    .filter(|seconds| *seconds > 0)
                    .map(|seconds| Duration::from_secs(seconds).min(MAX_DURATION))
                    .ok_or(ConfigError::InvalidSeconds { name, value }),
            }
        };
        let count = |name: &'static str, default: usize| -> Result<usize, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(value) => value
                    .parse::<usize>()
                    .ok()
                    .filter(|count| *count > 0)
                    .ok_or(ConfigError::InvalidCount { name, value }),
            }
        };

        let flag = |name: &'static str| -> Result<bool, ConfigError> {
            match get(name).map(|value| value.to_ascii_lowercase()) {
                None => Ok(false),
                Some(value) if value == "1" || value == "true" => Ok(true),
                Some(value) if value == "0" || value == "false" => Ok(false),
                Some(value) => Err(ConfigError::InvalidFlag { name, value }),
            }
        };

        let base_url = match get(vars::SERVER_URL) {
            Some(value) => Url::parse(&value).map_err(|error| ConfigError::InvalidUrl {
                name: vars::SERVER_URL,
                value,
                reason: error.to_string(),
            })?,
            None => base_url,
        };
        if base_url.path() != "/" || base_url.query().is_some() || base_url.host().is_none() {
            return Err(ConfigError::InvalidUrl {
                name: vars::SERVER_URL,
                value: base_url.to_string(),
                reason: "the public base URL must be an origin such as https://mcp.example.com, \
                         without a path"
                    .into(),
            });
        }
        let callback = get(vars::GITHUB_CALLBACK_PATH).unwrap_or_else(|| "/github/callback".into());
        // A bare path hangs off the base URL; a full URL (the Python example's form) is kept.
        let github_callback = match Url::parse(&callback) {
            Ok(full) => full,
            Err(_) => join_path(&base_url, &callback),
        };

        Ok(Config {
            github: GitHubConfig {
                client_id: get(vars::GITHUB_CLIENT_ID).unwrap_or_default(),
                client_secret: get(vars::GITHUB_CLIENT_SECRET).unwrap_or_default(),
                authorize_url: url(
                    vars::GITHUB_AUTH_URL,
                    "https://github.com/login/oauth/authorize",
                )?,
                token_url: url(
                    vars::GITHUB_TOKEN_URL,
                    "https://github.com/login/oauth/access_token",
                )?,
                api_base_url: url(vars::GITHUB_API_URL, "https://api.github.com")?,
                scope: get(vars::GITHUB_SCOPE).unwrap_or_else(|| "read:user".into()),
            },
            github_callback,
            base_url,
            transports: Transports::Both,
            mcp_scope: get(vars::MCP_SCOPE).unwrap_or_else(|| "user".into()),
            access_token_ttl: seconds(vars::ACCESS_TOKEN_TTL_SECS, 3600)?,
            refresh_token_ttl: seconds(vars::REFRESH_TOKEN_TTL_SECS, 30 * 24 * 3600)?,
            authorization_code_ttl: Duration::from_secs(300),
            pending_authorization_ttl: seconds(vars::PENDING_AUTHORIZATION_TTL_SECS, 600)?,
            upstream_timeout: seconds(vars::UPSTREAM_TIMEOUT_SECS, 10)?,
            grant_ttl: seconds(vars::GRANT_TTL_SECS, 90 * 24 * 3600)?,
            max_pending_authorizations: count(vars::MAX_PENDING_AUTHORIZATIONS, 5_000)?,
            max_clients: count(vars::MAX_CLIENTS, 5_000)?,
            unused_client_ttl: seconds(vars::UNUSED_CLIENT_TTL_SECS, 24 * 3600)?,
            max_sessions_per_user: count(vars::MAX_SESSIONS_PER_USER, 64)?,
            session_idle_timeout: seconds(vars::SESSION_IDLE_TIMEOUT_SECS, 300)?,
            max_connections: count(vars::MAX_CONNECTIONS, 1_024)?,
            header_timeout: seconds(vars::HEADER_TIMEOUT_SECS, 10)?,
            body_timeout: seconds(vars::BODY_TIMEOUT_SECS, 30)?,
            cimd_allow_loopback: flag(vars::CIMD_ALLOW_LOOPBACK)?,
            // Zero is a valid window here (revalidate every time), unlike a lifetime.
            profile_freshness: match get(vars::PROFILE_FRESHNESS_SECS) {
                None => Duration::ZERO,
                Some(value) => value
                    .parse::<u64>()
                    .map(|seconds| Duration::from_secs(seconds).min(MAX_DURATION))
                    .map_err(|_| ConfigError::InvalidSeconds {
                        name: vars::PROFILE_FRESHNESS_SECS,
                        value,
                    })?,
            },
            allowed_origins: get(vars::ALLOWED_ORIGINS)
                .map(|list| {
                    list.split(',')
                        .map(|origin| origin.trim().trim_end_matches('/').to_owned())
                        .filter(|origin| !origin.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            #[cfg(feature = "fault-injection")]
            faults: Default::default(),
        })
    }

    /// The issuer identifier: the base URL without a trailing slash, byte for byte
    /// what clients compare against (RFC 8414 section 3.3).
    pub fn issuer(&self) -> String {
        self.base_url.as_str().trim_end_matches('/').to_owned()
    }

    /// A URL on this server, for a path that starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer(), path)
    }

    /// The server's own origin, as browsers send it in `Origin`.
    pub fn origin(&self) -> String {
        self.base_url.origin().ascii_serialization()
    }
}

fn join_path(base: &Url, path: &str) -> Url {
    let mut joined = base.clone();
    let prefix = base.path().trim_end_matches('/');
    joined.set_path(&format!("{prefix}/{}", path.trim_start_matches('/')));
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://localhost:8000").unwrap()
    }

    #[test]
    fn missing_credentials_name_every_variable_and_every_shell() {
        let error = Config::from_vars([(vars::GITHUB_CLIENT_ID, " ")], base()).unwrap_err();
        let message = error.to_string();
        assert!(message.contains(vars::GITHUB_CLIENT_ID));
        assert!(message.contains(vars::GITHUB_CLIENT_SECRET));
        assert!(message.contains("export MCP_GITHUB_GITHUB_CLIENT_ID"));
        assert!(message.contains("$env:MCP_GITHUB_GITHUB_CLIENT_SECRET"));
        assert!(message.contains("set MCP_GITHUB_GITHUB_CLIENT_ID"));
    }

    #[test]
    fn advertised_urls_follow_the_base_url() {
        let config = Config::from_vars(
            [
                (vars::GITHUB_CLIENT_ID, "id"),
                (vars::GITHUB_CLIENT_SECRET, "secret"),
            ],
            Url::parse("http://localhost:9123/").unwrap(),
        )
        .unwrap();
        assert_eq!(config.issuer(), "http://localhost:9123");
        assert_eq!(config.url("/mcp"), "http://localhost:9123/mcp");
        assert_eq!(
            config.github_callback.as_str(),
            "http://localhost:9123/github/callback"
        );
        assert!(!format!("{config:?}").contains("secret\""));
    }

    #[test]
    fn huge_lifetimes_are_capped_and_bad_counts_refused() {
        let config = Config::from_vars(
            [
                (vars::GITHUB_CLIENT_ID, "id"),
                (vars::GITHUB_CLIENT_SECRET, "secret"),
                (vars::ACCESS_TOKEN_TTL_SECS, "18446744073709551615"),
                (vars::GRANT_TTL_SECS, "18446744073709551615"),
            ],
            base(),
        )
        .unwrap();
        assert_eq!(config.access_token_ttl, MAX_DURATION);
        assert_eq!(config.grant_ttl, MAX_DURATION);
        // Adding the cap to now must not overflow.
        let _ = std::time::Instant::now() + config.grant_ttl;
        for bad in ["0", "-1", "many"] {
            let error = Config::from_vars(
                [
                    (vars::GITHUB_CLIENT_ID, "id"),
                    (vars::GITHUB_CLIENT_SECRET, "secret"),
                    (vars::MAX_CLIENTS, bad),
                ],
                base(),
            )
            .unwrap_err();
            assert!(error.to_string().contains(vars::MAX_CLIENTS), "{error}");
        }
    }
}
