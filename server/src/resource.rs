//! The resource-server side: RFC 9728 protected resource metadata, and the bearer
//! check in front of every MCP endpoint (RFC 6750 challenges, audience and scope).

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{AppState, config::Config, http_util, store, store::GitHubUser};

const PRM_PATH: &str = "/.well-known/oauth-protected-resource";

/// The caller of an MCP request, as proven by its access token. The bearer check
/// puts it in the request's extensions; the MCP layer reads it from there.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub grant_id: String,
    pub user: GitHubUser,
    /// Cancelled when the token or its grant is revoked or the grant expires: streams
    /// opened with the token end then.
    pub ended: CancellationToken,
    /// When the access token expires: streams opened with it end then too.
    pub expires_at: Instant,
    /// The MCP access token itself, kept only so a fault can misuse it.
    #[cfg(feature = "fault-injection")]
    pub mcp_token: String,
}

pub fn metadata_routes() -> Router<AppState> {
    Router::new()
        .route(PRM_PATH, get(root_metadata))
        .route(&format!("{PRM_PATH}/mcp"), get(mcp_metadata))
        .route(&format!("{PRM_PATH}/sse"), get(sse_metadata))
}

fn protected_resource_metadata(config: &Config, resource: String, root: bool) -> Response {
    if crate::injected!(config, NoResourceMetadata) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut authorization_servers = vec![crate::oauth::issuer(config)];
    if crate::injected!(config, RelativeAuthorizationServer) {
        authorization_servers.push("/oauth".into());
    }
    if root && crate::injected!(config, RootMetadataDisagrees) {
        authorization_servers = vec![config.url("/other-issuer")];
    }
    let mut scopes = vec![config.mcp_scope.clone()];
    if crate::injected!(config, OmnibusScope) {
        scopes.push("all".into());
    }
    let resource = if !root && crate::injected!(config, PrmResourceTrailingSlash) {
        format!("{resource}/")
    } else {
        resource
    };
    Json(json!({
        "resource": resource,
        "authorization_servers": authorization_servers,
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": "GitHub profile MCP server",
    }))
    .into_response()
}

async fn root_metadata(State(state): State<AppState>) -> Response {
    let resource = if crate::injected!(state.config, RootPrmNamesEndpoint) {
        state.config.url("/mcp")
    } else {
        state.config.issuer()
    };
    protected_resource_metadata(&state.config, resource, true)
}

async fn mcp_metadata(State(state): State<AppState>) -> Response {
    let path = if crate::injected!(state.config, SwappedResources) {
        "/sse"
    } else {
        "/mcp"
    };
    protected_resource_metadata(&state.config, state.config.url(path), false)
}

async fn sse_metadata(State(state): State<AppState>) -> Response {
    let path = if crate::injected!(state.config, SwappedResources) {
        "/mcp"
    } else {
        "/sse"
    };
    protected_resource_metadata(&state.config, state.config.url(path), false)
}

/// Why a request was refused.
enum Refusal {
    /// No credentials at all: the challenge carries no error code (RFC 6750 3.1).
    Missing,
    /// Credentials that are not a bearer token. The MCP spec asks 401 for them like
    /// for any invalid token.
    Malformed(&'static str),
    Invalid(&'static str),
    /// The token lacks the scope; it carries the scopes it was granted.
    InsufficientScope(String),
}

/// Requires a valid access token that this server issued for itself.
pub async fn require_bearer(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    match authenticate(&state, &request) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(Refusal::Missing) => {
            let metadata_url = metadata_url_for(&state, &request);
            if let Some(owner) = session_standing_in(&state, &request) {
                request.extensions_mut().insert(owner);
                return next.run(request).await;
            }
            if session_checked_first(&state, &request) {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({
                        "jsonrpc": "2.0",
                        "id": null,
                        "error": {"code": -32600, "message": "Bad Request: a live session is required"}
                    })),
                )
                    .into_response();
            }
            if crate::injected!(state.config, ChallengeOnlyWhereSessionsOpen)
                && !opens_session(&request)
            {
                return without_metadata_url(refuse(
                    &state.config,
                    &metadata_url,
                    Refusal::Missing,
                ));
            }
            refuse(&state.config, &metadata_url, Refusal::Missing)
        }
        Err(Refusal::Invalid(description)) => {
            let metadata_url = metadata_url_for(&state, &request);
            if crate::injected!(state.config, AcceptUpstreamTokens)
                && let Some(caller) = upstream_caller(&state, presented_bearer(&request)).await
            {
                request.extensions_mut().insert(caller);
                return next.run(request).await;
            }
            if crate::injected!(state.config, SessionOverridesInvalidToken)
                && let Some(owner) = state.sessions.owner_of(&request)
            {
                request.extensions_mut().insert(owner);
                return next.run(request).await;
            }
            refuse(&state.config, &metadata_url, Refusal::Invalid(description))
        }
        Err(refusal) => refuse(&state.config, &metadata_url_for(&state, &request), refusal),
    }
}

/// The protected resource metadata URL a refusal names, built only for refusals.
fn metadata_url_for(state: &AppState, request: &Request) -> String {
    if request.uri().path().starts_with("/mcp") {
        state.config.url(&format!("{PRM_PATH}/mcp"))
    } else {
        state.config.url(&format!("{PRM_PATH}/sse"))
    }
}

/// Only with the `session-authenticates` fault: the user who opened the session a
/// request without credentials names.
fn session_standing_in(state: &AppState, request: &Request) -> Option<Authenticated> {
    if !crate::injected!(state.config, SessionAuthenticates) {
        return None;
    }
    state.sessions.owner_of(request)
}

/// Only with the `session-check-before-auth` fault: whether a request without
/// credentials is refused for naming no live session before it is challenged.
fn session_checked_first(state: &AppState, request: &Request) -> bool {
    if !crate::injected!(state.config, SessionCheckBeforeAuth) {
        return false;
    }
    !opens_session(request) && state.sessions.owner_of(request).is_none()
}

/// Whether a request is the first of a session: POST on `/mcp` without a session
/// header, or `GET /sse`.
fn opens_session(request: &Request) -> bool {
    match request.uri().path() {
        "/mcp" => {
            request.method() == axum::http::Method::POST
                && !request.headers().contains_key("mcp-session-id")
        }
        path => path == "/sse",
    }
}

/// Only with the `challenge-only-where-sessions-open` fault: the challenge loses its
/// `resource_metadata` parameter and keeps the others.
fn without_metadata_url(mut response: Response) -> Response {
    let stripped = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|value| value.to_str().ok())
        .map(|challenge| {
            let params: Vec<&str> = challenge
                .trim_start_matches("Bearer")
                .split(',')
                .map(str::trim)
                .filter(|param| !param.is_empty() && !param.starts_with("resource_metadata="))
                .collect();
            format!("Bearer {}", params.join(", "))
        })
        .and_then(|challenge| HeaderValue::from_str(challenge.trim_end()).ok());
    if let Some(value) = stripped {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Whether a token for `resource` may be used at `path`. A token names one resource (RFC
/// 8707): the endpoint it is presented at, or the server as a whole (the root metadata's
/// resource, which 2025-03-26 clients ask for). A token for `/sse` is no token for `/mcp`.
fn accepts_resource(state: &AppState, path: &str, resource: &str) -> bool {
    // The order of `AppState::resources`: the issuer, `/mcp`, `/sse`.
    let [whole, streamable, sse] = &state.resources[..] else {
        return false;
    };
    // An endpoint's resource is the one its metadata names, swapped or not.
    let (streamable, sse) = if crate::injected!(state.config, SwappedResources) {
        (sse, streamable)
    } else {
        (streamable, sse)
    };
    let endpoint = match path {
        "/mcp" => streamable,
        path if path == "/sse" || path.starts_with("/messages") => sse,
        _ => return state.resources.iter().any(|known| known == resource),
    };
    resource == whole
        || resource == endpoint
        || (crate::injected!(state.config, AcceptSiblingResourceTokens)
            && state.resources.iter().any(|known| known == resource))
}

/// The caller a request's bearer token names, when the bearer check lets it through
/// as it is; `None` for every refusal (which `require_bearer` words).
pub(crate) fn authenticated_caller(state: &AppState, request: &Request) -> Option<Authenticated> {
    authenticate(state, request).ok()
}

fn authenticate(state: &AppState, request: &Request) -> Result<Authenticated, Refusal> {
    let config = &state.config;
    let mut headers = request.headers().get_all(header::AUTHORIZATION).iter();
    let token = match (headers.next(), headers.next()) {
        (None, _) => query_string_token(config, request).ok_or(Refusal::Missing)?,
        (Some(_), Some(_)) => return Err(Refusal::Invalid("send one Authorization header")),
        (Some(value), None) => {
            let value = value
                .to_str()
                .map_err(|_| Refusal::Invalid("malformed Authorization header"))?;
            // The scheme is case-insensitive (RFC 9110 section 11.1).
            match value.split_once(' ') {
                Some((scheme, token))
                    if scheme.eq_ignore_ascii_case("bearer")
                        || crate::injected!(config, AnyAuthorizationScheme) =>
                {
                    let token = token.trim();
                    if is_malformed_bearer(token) {
                        return Err(Refusal::Malformed("malformed bearer token"));
                    }
                    token.to_owned()
                }
                _ => return Err(Refusal::Malformed("use the Bearer authorization scheme")),
            }
        }
    };

    let path = request.uri().path();
    let checked = state.store.with_access_token(&token, |access, grant| {
        if access.expires_at <= store::now() && !crate::injected!(config, AcceptExpiredTokens) {
            return Err(Refusal::Invalid("the access token expired"));
        }
        if !accepts_resource(state, path, &grant.resource)
            && !crate::injected!(config, AcceptForeignResourceTokens)
        {
            return Err(Refusal::Invalid(
                "the access token was issued for another resource",
            ));
        }
        if !access
            .scope
            .split(' ')
            .any(|scope| scope == config.mcp_scope)
            && !crate::injected!(config, IgnoreTokenScope)
        {
            return Err(Refusal::InsufficientScope(access.scope.clone()));
        }
        Ok(Authenticated {
            grant_id: access.grant_id.clone(),
            user: grant.user.clone(),
            ended: if crate::injected!(config, StreamsOutliveRevocation) {
                tokio_util::sync::CancellationToken::new()
            } else {
                access.ended.clone()
            },
            expires_at: access.expires_at,
            #[cfg(feature = "fault-injection")]
            mcp_token: token.clone(),
        })
    });
    let Some(checked) = checked else {
        if state.store.is_github_token(&token) {
            if crate::injected!(config, AcceptGitHubTokens) {
                return github_token_grant(state, &token);
            }
            // No token passthrough: GitHub's tokens are not ours to accept.
            tracing::warn!("refused a GitHub token presented as an MCP access token");
        }
        return Err(Refusal::Invalid("the access token is unknown or revoked"));
    };
    checked
}

/// A bearer token that cannot be one: empty, or with a space inside (RFC 6750 §2.1's
/// `b64token` has none).
fn is_malformed_bearer(token: &str) -> bool {
    token.is_empty() || token.contains(' ')
}

/// Only with a fault switched on: an `access_token` query parameter is honoured,
/// which RFC 6750 and the MCP spec forbid.
fn query_string_token(config: &Config, request: &Request) -> Option<String> {
    if !crate::injected!(config, AcceptQueryStringTokens) {
        return None;
    }
    url::form_urlencoded::parse(request.uri().query()?.as_bytes())
        .find(|(name, _)| name == "access_token")
        .map(|(_, value)| value.into_owned())
}

#[cfg(feature = "fault-injection")]
fn github_token_grant(state: &AppState, token: &str) -> Result<Authenticated, Refusal> {
    state
        .store
        .grant_by_github_token(token)
        .map(|(grant_id, grant, stand_in)| Authenticated {
            grant_id,
            user: grant.user,
            ended: stand_in.ended,
            expires_at: stand_in.expires_at,
            mcp_token: token.to_owned(),
        })
        .ok_or(Refusal::Invalid("unknown token"))
}

/// The token of a `Bearer` authorization header, read before anything awaits (a request's
/// body cannot be held across an await).
fn presented_bearer(request: &Request) -> Option<String> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    Some(value.split_once(' ')?.1.trim().to_owned())
}

/// Only with the `accept-upstream-tokens` fault: the caller GitHub says a bearer token
/// belongs to, whoever issued it. No grant stands behind it.
#[cfg(feature = "fault-injection")]
async fn upstream_caller(state: &AppState, token: Option<String>) -> Option<Authenticated> {
    let token = token?;
    let profile = state.github.user(&token).await.ok()?;
    let user = GitHubUser {
        login: profile["login"].as_str()?.to_owned(),
        id: profile["id"].as_u64()?,
    };
    Some(Authenticated {
        grant_id: format!("upstream-{}", user.id),
        user,
        ended: CancellationToken::new(),
        expires_at: Instant::now() + std::time::Duration::from_secs(3600),
        mcp_token: token,
    })
}

#[cfg(not(feature = "fault-injection"))]
async fn upstream_caller(_: &AppState, _: Option<String>) -> Option<Authenticated> {
    None
}

#[cfg(not(feature = "fault-injection"))]
fn github_token_grant(_: &AppState, _: &str) -> Result<Authenticated, Refusal> {
    Err(Refusal::Invalid("unknown token"))
}

fn refuse(config: &Config, metadata_url: &str, refusal: Refusal) -> Response {
    let mut challenge = format!("Bearer resource_metadata=\"{metadata_url}\"");
    let scope = if crate::injected!(config, ChallengeNamesEveryScope) {
        format!(", scope=\"{} offline_access\"", config.mcp_scope)
    } else {
        format!(", scope=\"{}\"", config.mcp_scope)
    };
    let refusal = match refusal {
        Refusal::Malformed(description) if crate::injected!(config, MalformedCredentialsGet400) => {
            let mut response = (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_request", "error_description": description})),
            )
                .into_response();
            http_util::no_store(response.headers_mut());
            return response;
        }
        Refusal::Malformed(description) => Refusal::Invalid(description),
        other => other,
    };
    let (status, error, description) = match refusal {
        Refusal::Missing => {
            if !crate::injected!(config, NoScopeInChallenge) {
                challenge.push_str(&scope);
            }
            if crate::injected!(config, ErrorInBareChallenge) {
                challenge.push_str(", error=\"invalid_token\"");
            }
            (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "authorization required: send an access token issued by this server",
            )
        }
        Refusal::Malformed(description) | Refusal::Invalid(description) => {
            let scope_dropped = [
                crate::injected!(config, NoScopeInChallenge),
                crate::injected!(config, NoScopeInInvalidTokenChallenge),
            ];
            if !scope_dropped.contains(&true) {
                challenge.push_str(&scope);
            }
            if !crate::injected!(config, InvalidTokenWithoutError) {
                challenge.push_str(", error=\"invalid_token\"");
            }
            challenge.push_str(&format!(", error_description=\"{description}\""));
            (StatusCode::UNAUTHORIZED, "invalid_token", description)
        }
        Refusal::InsufficientScope(granted) => {
            if crate::injected!(config, ChallengeNamesGrantedScopes) {
                challenge.push_str(&format!(", scope=\"{granted}\""));
            } else if !crate::injected!(config, InsufficientScopeWithoutScope) {
                challenge.push_str(&scope);
            }
            let description = "the access token lacks the scope this endpoint needs";
            challenge.push_str(&format!(
                ", error=\"insufficient_scope\", error_description=\"{description}\""
            ));
            (StatusCode::FORBIDDEN, "insufficient_scope", description)
        }
    };
    let mut response = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    if !crate::injected!(config, DropWwwAuthenticate)
        && let Ok(value) = HeaderValue::from_str(&challenge)
    {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}
