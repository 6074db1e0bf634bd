//! The authorization server: metadata (RFC 8414), dynamic client registration
//! (RFC 7591), the authorization endpoint with its consent page and the GitHub leg,
//! the token endpoint (OAuth 2.1 with PKCE) and revocation (RFC 7009).

mod authorize;
pub mod cimd;
mod metadata;
mod register;
mod token;

use axum::{
    Json, Router,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::json;
use url::Url;

use crate::{AppState, config::Config, http_util};

/// The path the `authorization-server-under-path` fault moves the authorization server to.
const UNDER_PATH: &str = "/oauth";

/// The authorization server's issuer: the server's own URL, or with the
/// `authorization-server-under-path` fault a path below it.
pub fn issuer(config: &Config) -> String {
    if crate::injected!(config, AuthorizationServerUnderPath) {
        config.url(UNDER_PATH)
    } else {
        config.issuer()
    }
}

/// The URL of an authorization server endpoint, for a path that starts with `/`.
pub fn endpoint_url(config: &Config, path: &str) -> String {
    format!("{}{path}", issuer(config))
}

/// The endpoints a client calls directly. Browser-based clients call them across
/// origins, so they get CORS; the pages in [`browser_routes`] are navigations and do not.
pub fn routes(config: &Config) -> Router<AppState> {
    let endpoints = Router::new()
        .route("/register", post(register::register))
        .route("/token", post(token::token))
        .route("/revoke", post(token::revoke));
    let metadata = get(metadata::authorization_server);
    let router = if crate::injected!(config, AuthorizationServerUnderPath) {
        // RFC 8414 section 3.1: the well-known suffix goes between the host and the
        // issuer's path. Nothing is left at the root.
        Router::new()
            .route(
                &format!("/.well-known/oauth-authorization-server{UNDER_PATH}"),
                metadata,
            )
            .nest(UNDER_PATH, endpoints)
    } else {
        endpoints.route("/.well-known/oauth-authorization-server", metadata)
    };
    // Only the `oidc-discovery-only` fault serves an OpenID Connect document.
    #[cfg(feature = "fault-injection")]
    let router = router.route(
        "/.well-known/openid-configuration",
        get(metadata::openid_configuration),
    );
    router
}

/// The pages a person's browser navigates to; the GitHub callback is mounted where the
/// configured callback URL points.
pub fn browser_routes(config: &Config) -> Router<AppState> {
    let authorize = get(authorize::authorize).post(authorize::authorize_post);
    let authorize_path = if crate::injected!(config, AuthorizationServerUnderPath) {
        format!("{UNDER_PATH}/authorize")
    } else {
        "/authorize".to_owned()
    };
    Router::new()
        .route(&authorize_path, authorize)
        .route("/consent", post(authorize::consent))
        .route(
            config.github_callback.path(),
            get(authorize::github_callback),
        )
}

/// An RFC 6749 section 5.2 error from the token, registration or revocation endpoint.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> OAuthError {
        let status = if error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        OAuthError {
            status,
            error,
            description: description.into(),
        }
    }

    /// The same error with another HTTP status, for limits (413) and overload (503).
    pub fn with_status(mut self, status: StatusCode) -> OAuthError {
        self.status = status;
        self
    }

    pub fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_request", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_grant", description)
    }

    pub fn invalid_client(description: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_client", description)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response();
        let headers = response.headers_mut();
        http_util::no_store(headers);
        add_retry_hint(headers, self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6749 section 5.2: a 401 names the authentication scheme to use.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"token\""),
            );
        }
        response
    }
}

/// Tells a client refused for overload when to come back (RFC 9110 §10.2.3: a 503 "MAY"
/// send `Retry-After`). Only a hint: nothing a client must do depends on it.
fn add_retry_hint(headers: &mut HeaderMap, status: StatusCode) {
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    }
}

/// Appends parameters to a client's redirect URI, keeping its own query, and adds
/// `iss` (RFC 9207) so the client can tell which authorization server answered.
pub fn client_redirect(config: &Config, redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        // Redirect URIs are validated at registration, so this cannot happen for a
        // stored client; answer with a page rather than panic if it ever does.
        return http_util::html_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect URI",
            "<p>The client's redirect URI is not a valid URL.</p>",
        );
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
        if crate::injected!(config, IssTrailingSlash) {
            query.append_pair("iss", &format!("{}/", issuer(config)));
        } else if !crate::injected!(config, OmitIss) {
            query.append_pair("iss", &issuer(config));
        }
    }
    let mut response = (
        StatusCode::FOUND,
        [(header::LOCATION, url.as_str().to_owned())],
    )
        .into_response();
    http_util::no_store(response.headers_mut());
    response
}

/// The ways a request names a protected resource of this server (RFC 8707). A
/// token's audience is one of them; scheme and host compare case-insensitively and a
/// trailing slash is tolerated, as the MCP authorization spec asks.
pub fn canonical_resource(config: &Config, resource: &str) -> Option<String> {
    let parsed = Url::parse(resource).ok()?;
    if parsed.fragment().is_some() {
        return None;
    }
    let issuer = config.issuer();
    let ours = [issuer.clone(), config.url("/mcp"), config.url("/sse")];
    // `Url` lowercases the scheme and host; the path keeps its case.
    let normalized = parsed.as_str().trim_end_matches('/');
    ours.into_iter().find(|candidate| {
        Url::parse(candidate)
            .map(|candidate| candidate.as_str().trim_end_matches('/') == normalized)
            .unwrap_or(false)
    })
}
