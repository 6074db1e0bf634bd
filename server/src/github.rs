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
    /// GitHub's rate limit for this token ran out (403 with `x-ratelimit-remaining: 0`)
    /// or GitHub asked the server to slow down (429, or 403 with `retry-after`).
    #[error("{}", rate_limit_message(*.retry_after_secs, *.resets_at))]
    RateLimited {
        /// From `retry-after`: how long GitHub asks the caller to wait.
        retry_after_secs: Option<u64>,
        /// From `x-ratelimit-reset`: when the limit resets, in seconds since the epoch.
        resets_at: Option<u64>,
    },
}

/// What a person reads when GitHub's rate limit stops the tool: when to try again,
/// from the headers GitHub sent.
fn rate_limit_message(retry_after_secs: Option<u64>, resets_at: Option<u64>) -> String {
    let wait = retry_after_secs
        .or_else(|| resets_at.map(|reset| reset.saturating_sub(crate::store::unix_now())));
    match wait {
        Some(seconds) => format!(
            "GitHub's API rate limit for this user is used up; try again in {seconds} seconds"
        ),
        None => "GitHub's API rate limit for this user is used up; try again later".to_owned(),
    }
}

/// A profile GitHub answered, with the validator to revalidate it later.
#[derive(Debug, Clone)]
pub struct Profile {
    pub profile: Value,
    /// GitHub's `ETag`, sent back as `If-None-Match`: a 304 answer does not count
    /// against the user's rate limit.
    pub etag: Option<String>,
}

/// GitHub's answer to a conditional profile read.
#[derive(Debug)]
pub enum Revalidated {
    /// 304: the profile the server holds is still current (and the token still valid).
    NotModified,
    /// 200: a new profile.
    Changed(Profile),
}

impl UpstreamError {
    /// Whether the failure is on GitHub's side and may go away on a retry, which
    /// decides between OAuth's `temporarily_unavailable` and `server_error`.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            UpstreamError::Timeout(_)
                | UpstreamError::Unreachable
                | UpstreamError::Status(500..)
                | UpstreamError::RateLimited { .. }
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

/// GitHub's rate-limit answers: 429, or 403 with `x-ratelimit-remaining: 0` (the
/// primary limit) or with `retry-after` (a secondary limit). Any other 403 is a
/// refusal, not a limit.
fn rate_limited(status: u16, headers: &reqwest::header::HeaderMap) -> Option<UpstreamError> {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
    };
    let retry_after_secs = number("retry-after");
    let remaining = number("x-ratelimit-remaining");
    let limited = status == 429 || remaining == Some(0) || retry_after_secs.is_some();
    limited.then(|| UpstreamError::RateLimited {
        retry_after_secs,
        resets_at: number("x-ratelimit-reset"),
    })
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
        match self.user_if_changed(github_token, None).await? {
            Revalidated::Changed(profile) => Ok(profile.profile),
            // Without `If-None-Match` a 304 is not an answer GitHub gives.
            Revalidated::NotModified => Err(UpstreamError::Malformed),
        }
    }

    /// Reads the profile, conditionally when `etag` names the one the server holds:
    /// GitHub then answers 304 without a body, and does not count the request
    /// against the rate limit, while still checking the token.
    pub async fn user_if_changed(
        &self,
        github_token: &str,
        etag: Option<&str>,
    ) -> Result<Revalidated, UpstreamError> {
        let url = format!(
            "{}/user",
            self.config.api_base_url.as_str().trim_end_matches('/')
        );
        let mut request = self
            .http
            .get(url)
            .bearer_auth(github_token)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(etag) = etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let response = request
            .send()
            .await
            .map_err(|error| self.transport_error(&error))?;
        match response.status().as_u16() {
            200 => {}
            304 if etag.is_some() => return Ok(Revalidated::NotModified),
            401 => return Err(UpstreamError::Unauthorized),
            status @ (403 | 429) => {
                return Err(rate_limited(status, response.headers())
                    .unwrap_or(UpstreamError::Status(status)));
            }
            other => return Err(UpstreamError::Status(other)),
        }
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = self.read_body(response).await?;
        // The numeric id is what grants and sessions are bound to: a profile without
        // one is not understood, never user 0.
        match serde_json::from_slice::<Value>(&body) {
            Ok(profile @ Value::Object(_))
                if profile.get("login").is_some_and(Value::is_string)
                    && profile.get("id").and_then(Value::as_u64).is_some() =>
            {
                Ok(Revalidated::Changed(Profile { profile, etag }))
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

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    reqwest::header::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn rate_limit_answers_are_told_from_other_refusals() {
        let primary = rate_limited(
            403,
            &headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "0")]),
        )
        .expect("403 with no requests left is a rate limit");
        assert!(primary.to_string().contains("rate limit"), "{primary}");
        let secondary = rate_limited(429, &headers(&[("retry-after", "60")])).unwrap();
        assert!(
            secondary.to_string().contains("in 60 seconds"),
            "{secondary}"
        );
        assert!(secondary.is_transient());
        assert!(rate_limited(429, &HeaderMap::new()).is_some());
        // A 403 with requests left is a refusal (for example a missing scope).
        assert!(rate_limited(403, &headers(&[("x-ratelimit-remaining", "12")])).is_none());
        assert!(rate_limited(403, &HeaderMap::new()).is_none());
    }
}
