//! The server's own client for GitHub: the code-for-token exchange at login and the
//! `/user` API call behind the tool. Every call is bounded by the upstream timeout.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::config::{Config, GitHubConfig};

/// The largest answer read from GitHub: a token response or a profile is a few
/// kilobytes, and a larger body is refused rather than buffered.
const MAX_UPSTREAM_BODY_BYTES: usize = 1024 * 1024;

/// Why a call to GitHub failed, worded for the person who will read it.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("GitHub did not answer within {0} seconds")]
    Timeout(u64),
    #[error("GitHub could not be reached")]
    Unreachable,
    #[error("GitHub answered with HTTP {0}")]
    Status(u16),
    #[error("GitHub rejected the stored credentials (HTTP 401)")]
    Unauthorized,
    #[error("GitHub refused the authorization code: {0}")]
    Refused(String),
    #[error("GitHub's answer could not be understood")]
    Malformed,
}

impl UpstreamError {
    /// Whether the failure is on GitHub's side and may go away on a retry, which
    /// decides between OAuth's `temporarily_unavailable` and `server_error`.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            UpstreamError::Timeout(_) | UpstreamError::Unreachable | UpstreamError::Status(500..)
        )
    }
}

#[derive(Clone)]
pub struct GitHubClient {
    http: reqwest::Client,
    config: GitHubConfig,
    callback: Url,
    timeout_secs: u64,
}

impl fmt::Debug for GitHubClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// GitHub's token endpoint answers HTTP 200 for failures too, with `error` set.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl GitHubClient {
    pub fn new(config: &Config) -> GitHubClient {
        let http = reqwest::Client::builder()
            // GitHub rejects API requests that carry no User-Agent.
            .user_agent(concat!("mcp-github-server/", env!("CARGO_PKG_VERSION")))
            .timeout(config.upstream_timeout)
            .connect_timeout(config.upstream_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        GitHubClient {
            http,
            config: config.github.clone(),
            callback: config.github_callback.clone(),
            timeout_secs: config.upstream_timeout.as_secs(),
        }
    }

    /// Where to send the browser to log in at GitHub.
    pub fn authorize_url(&self, upstream_state: &str) -> Url {
        let mut url = self.config.authorize_url.clone();
        url.query_pairs_mut()
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", self.callback.as_str())
            .append_pair("scope", &self.config.scope)
            .append_pair("state", upstream_state)
            .append_pair("allow_signup", "false");
        url
    }

    /// Exchanges GitHub's authorization code for a GitHub access token.
    pub async fn exchange_code(&self, code: &str) -> Result<String, UpstreamError> {
        let response = self
            .http
            .post(self.config.token_url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[
                ("client_id", self.config.client_id.as_str()),
                ("client_secret", self.config.client_secret.as_str()),
                ("code", code),
                ("redirect_uri", self.callback.as_str()),
            ])
            .send()
            .await
            .map_err(|error| self.transport_error(&error))?;
        let status = response.status();
        if !status.is_success() {
            return Err(UpstreamError::Status(status.as_u16()));
        }
        let body = self.read_body(response).await?;
        let token: TokenResponse =
            serde_json::from_slice(&body).map_err(|_| UpstreamError::Malformed)?;
        match (token.access_token, token.error) {
            (Some(access_token), None) if !access_token.is_empty() => Ok(access_token),
            (_, Some(error)) => Err(UpstreamError::Refused(
                token.error_description.unwrap_or(error),
            )),
            _ => Err(UpstreamError::Malformed),
        }
    }

    /// Reads the authenticated user's profile, exactly as GitHub returns it.
    pub async fn user(&self, github_token: &str) -> Result<Value, UpstreamError> {
        let url = format!(
            "{}/user",
            self.config.api_base_url.as_str().trim_end_matches('/')
        );
        let response = self
            .http
            .get(url)
            .bearer_auth(github_token)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await
            .map_err(|error| self.transport_error(&error))?;
        match response.status().as_u16() {
            200 => {}
            401 => return Err(UpstreamError::Unauthorized),
            other => return Err(UpstreamError::Status(other)),
        }
        let body = self.read_body(response).await?;
        // The numeric id is what grants and sessions are bound to: a profile without
        // one is not understood, never user 0.
        match serde_json::from_slice::<Value>(&body) {
            Ok(profile @ Value::Object(_))
                if profile.get("login").is_some_and(Value::is_string)
                    && profile.get("id").and_then(Value::as_u64).is_some() =>
            {
                Ok(profile)
            }
            _ => Err(UpstreamError::Malformed),
        }
    }

    /// Reads a response body, refusing one larger than [`MAX_UPSTREAM_BODY_BYTES`]
    /// before buffering it.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, UpstreamError> {
        if response
            .content_length()
            .is_some_and(|length| length > MAX_UPSTREAM_BODY_BYTES as u64)
        {
            return Err(UpstreamError::Malformed);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| self.transport_error(&error))?
        {
            if body.len() + chunk.len() > MAX_UPSTREAM_BODY_BYTES {
                return Err(UpstreamError::Malformed);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport_error(&self, error: &reqwest::Error) -> UpstreamError {
        if error.is_timeout() {
            UpstreamError::Timeout(self.timeout_secs)
        } else if error.is_decode() || error.is_body() {
            UpstreamError::Malformed
        } else {
            UpstreamError::Unreachable
        }
    }
}
