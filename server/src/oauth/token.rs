//! The token endpoint (authorization code with PKCE, refresh with rotation) and
//! RFC 7009 revocation.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Form, Json,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{OAuthError, authorize::is_valid_pkce_string, canonical_resource};
use crate::{
    AppState, http_util,
    store::{self, Client, Grant, IssuedTokens, RedeemError, RefreshError},
};

type Params = HashMap<String, String>;

pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let params = match parse_form(form) {
        Ok(params) => params,
        Err(error) => return error.into_response(),
    };
    #[cfg(feature = "fault-injection")]
    let checked = race::checked_before_use(&state, &headers, &params).await;
    #[cfg(not(feature = "fault-injection"))]
    let checked = Checked;
    let result = match params.get("grant_type").map(String::as_str) {
        None | Some("") => Err(OAuthError::invalid_request("grant_type is missing")),
        Some("authorization_code") => authenticate_client(&state, &headers, &params)
            .and_then(|client| authorization_code(&state, &client, &params, &checked)),
        Some("refresh_token") => authenticate_client(&state, &headers, &params)
            .and_then(|client| refresh_token(&state, &client, &params, &checked)),
        Some(other) => Err(OAuthError::new(
            if crate::injected!(state.config, WrongUnsupportedGrantError) {
                "invalid_request"
            } else {
                "unsupported_grant_type"
            },
            format!("grant type {other} is not supported"),
        )),
    };
    let response = result.unwrap_or_else(IntoResponse::into_response);
    if crate::injected!(state.config, ClientChallengeMissing) {
        let mut response = response;
        response.headers_mut().remove(header::WWW_AUTHENTICATE);
        return response;
    }
    response
}

/// What the race faults looked up before a pause; without the `fault-injection` feature
/// there is nothing.
#[cfg(not(feature = "fault-injection"))]
struct Checked;

#[cfg(feature = "fault-injection")]
use race::Checked;

/// The faults of the token endpoint that only concurrent or rotated requests show. They
/// need state of their own, which lives here rather than in the store.
#[cfg(feature = "fault-injection")]
mod race {
    use std::{
        collections::HashSet,
        sync::{Mutex, PoisonError},
        time::Duration,
    };

    use axum::http::HeaderMap;

    use super::{Params, authenticate_client};
    use crate::{
        AppState,
        store::{self, AuthorizationCode},
    };

    /// How long the race faults wait between checking and using.
    const GAP: Duration = Duration::from_millis(300);

    /// What `code-redemption-race` and `refresh-race` looked up before the pause; they
    /// then use it as if it were still true. Empty without those faults.
    #[derive(Default)]
    pub struct Checked {
        pub code: Option<AuthorizationCode>,
        pub refresh_grant: Option<String>,
    }

    /// The faulty check-then-use: look the code or refresh token up, then give the other
    /// requests carrying it time to do the same before any of them consumes it.
    pub async fn checked_before_use(
        state: &AppState,
        headers: &HeaderMap,
        params: &Params,
    ) -> Checked {
        let mut checked = Checked::default();
        if crate::injected!(state.config, CodeRedemptionRace)
            && let Some(code) = params.get("code")
        {
            checked.code = state.store.peek_code(code);
        }
        if crate::injected!(state.config, RefreshRace)
            && let Some(token) = params.get("refresh_token")
            && let Ok(client) = authenticate_client(state, headers, params)
        {
            checked.refresh_grant = state
                .store
                .refresh_token_grant(token, &client.client_id)
                .ok()
                .map(|(grant_id, _)| grant_id);
        }
        if checked.code.is_some() || checked.refresh_grant.is_some() {
            tokio::time::sleep(GAP).await;
        }
        checked
    }

    /// Digests of the refresh tokens that a refresh (rather than a login) issued, for
    /// `revocation-misses-rotated-tokens` and `first-refresh-token-never-rotates`.
    /// Tokens are random, so servers in one process never share an entry.
    static ISSUED_BY_REFRESH: Mutex<Option<HashSet<[u8; 32]>>> = Mutex::new(None);

    pub fn remember_issued_by_refresh(refresh_token: &str) {
        ISSUED_BY_REFRESH
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_default()
            .insert(store::digest(refresh_token));
    }

    /// `revocation-misses-rotated-tokens`: revoking a refresh token that a refresh issued
    /// leaves its grant alone.
    pub fn revocation_missed(state: &AppState, refresh_token: &str) -> bool {
        crate::injected!(state.config, RevocationMissesRotatedTokens)
            && issued_by_refresh(refresh_token)
    }

    pub fn issued_by_refresh(refresh_token: &str) -> bool {
        ISSUED_BY_REFRESH
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|issued| issued.contains(&store::digest(refresh_token)))
    }
}

/// Reads a form body, refusing repeated parameters (RFC 6749 section 3.2).
fn parse_form(
    form: Result<Form<Vec<(String, String)>>, axum::extract::rejection::FormRejection>,
) -> Result<Params, OAuthError> {
    let Ok(Form(pairs)) = form else {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    };
    let mut params = Params::new();
    for (name, value) in pairs {
        if params.insert(name.clone(), value).is_some() {
            return Err(OAuthError::invalid_request(format!(
                "the {name} parameter is repeated"
            )));
        }
    }
    Ok(params)
}

/// Authenticates the client: HTTP Basic or `client_secret` in the body for
/// confidential clients, `client_id` alone for public ones (RFC 6749 section 2.3).
fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Arc<Client>, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, credentials) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(credentials)
        });
    if basic.is_some() && crate::injected!(state.config, BasicCredentialsRefused) {
        return Err(OAuthError::invalid_client("client authentication failed"));
    }
    // The client the request is for, when the `basic-and-body-client-ids-mixed` fault takes
    // it from the body while the secret is checked for the Basic client.
    let mut body_client = None;
    let (client_id, secret) = match basic {
        Some(credentials) => {
            let decoded = STANDARD
                .decode(credentials.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            let id = form_decode(id);
            let body_id = params.get("client_id").filter(|body_id| **body_id != id);
            if body_id.is_some() && crate::injected!(state.config, BasicAndBodyClientIdsMixed) {
                body_client = body_id.and_then(|body_id| state.store.client(body_id));
            } else if body_id.is_some() {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the Basic credentials",
                ));
            } else if params.contains_key("client_id")
                && crate::injected!(state.config, BasicWithBodyClientIdRefused)
            {
                return Err(OAuthError::invalid_request(
                    "client_id is not accepted in the body with Basic credentials",
                ));
            }
            (id, Some(form_decode(secret)))
        }
        None => {
            let id = params
                .get("client_id")
                .filter(|id| !id.is_empty())
                .ok_or_else(|| OAuthError::invalid_client("client authentication is missing"))?
                .clone();
            (id, params.get("client_secret").cloned())
        }
    };
    let client = state
        .store
        .client(&client_id)
        .ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
    let client = match (&client.secret_digest, secret) {
        (None, _) => Ok(client),
        (Some(_), _) if crate::injected!(state.config, SkipClientSecretCheck) => Ok(client),
        (Some(_), _)
            if basic.is_none() && crate::injected!(state.config, SecretCheckedOnlyOverBasic) =>
        {
            Ok(client)
        }
        (Some(expected), Some(secret))
            if store::constant_time_eq(&store::digest(&secret), expected) =>
        {
            Ok(client)
        }
        (Some(_), _) => Err(OAuthError::invalid_client("client authentication failed")),
    }?;
    Ok(body_client.unwrap_or(client))
}

/// Basic credentials are form-encoded before base64 (RFC 6749 section 2.3.1).
fn form_decode(value: &str) -> String {
    url::form_urlencoded::parse(format!("x={value}").as_bytes())
        .next()
        .map(|(_, decoded)| decoded.into_owned())
        .unwrap_or_default()
}

fn authorization_code(
    state: &AppState,
    client: &Client,
    params: &Params,
    checked: &Checked,
) -> Result<Response, OAuthError> {
    let config = &state.config;
    let code = params
        .get("code")
        .filter(|code| !code.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;

    // Everything is checked before the code is consumed, so that a request with a
    // wrong verifier cannot burn the legitimate client's code.
    if let Some(pending) = state.store.peek_code(code) {
        let unbound = crate::injected!(config, UnboundCodes);
        if pending.grant.client_id != client.client_id && !unbound {
            return Err(OAuthError::invalid_grant(
                "the code was issued to another client",
            ));
        }
        if params
            .get("redirect_uri")
            .is_some_and(|uri| *uri != pending.redirect_uri)
            && !unbound
        {
            return Err(OAuthError::invalid_grant(
                "redirect_uri differs from the authorization request",
            ));
        }
        if let Some(challenge) = &pending.code_challenge {
            let verifier = params
                .get("code_verifier")
                .ok_or_else(|| OAuthError::invalid_request("code_verifier is missing (PKCE)"))?;
            if !is_valid_pkce_string(verifier) && !crate::injected!(config, PkceSyntaxUnchecked) {
                return Err(OAuthError::invalid_request(
                    "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]",
                ));
            }
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if computed != *challenge && !crate::injected!(config, SkipPkce) {
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
        check_resource(state, params, &pending.grant)?;
    }

    // `code-redemption-race`: the code checked before the pause is put back and redeemed
    // again, whether or not a parallel request consumed it meanwhile.
    #[cfg(feature = "fault-injection")]
    if let Some(authorization) = &checked.code {
        state.store.insert_code(code, authorization.clone());
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = checked;
    let allow_reuse = crate::injected!(config, AcceptReusedCode);
    match state
        .store
        .redeem_code(code, &client.client_id, allow_reuse)
    {
        Ok((authorization, tokens)) => {
            #[cfg(feature = "fault-injection")]
            if crate::injected!(config, GitHubTokenPerClient) {
                state.store.cache_client_github_token(
                    &authorization.grant.client_id,
                    &authorization.grant.github_token,
                );
            }
            let _ = authorization;
            Ok(token_response(state, tokens))
        }
        Err(RedeemError::Reused) => Err(OAuthError::invalid_grant(
            "the code was already used; tokens issued from it are revoked",
        )),
        Err(RedeemError::Unknown) => {
            Err(OAuthError::invalid_grant("the code is unknown or expired"))
        }
    }
}

fn refresh_token(
    state: &AppState,
    client: &Client,
    params: &Params,
    checked: &Checked,
) -> Result<Response, OAuthError> {
    let config = &state.config;
    let refresh_token = params
        .get("refresh_token")
        .filter(|token| !token.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
    #[cfg(feature = "fault-injection")]
    if let Some(grant_id) = &checked.refresh_grant {
        // `refresh-race`: new tokens for the grant checked before the pause, whether or
        // not a parallel refresh rotated the token out meanwhile.
        let (_, tokens) = state
            .store
            .refresh_checked(refresh_token, grant_id)
            .ok_or_else(|| OAuthError::invalid_grant("the grant was revoked"))?;
        race::remember_issued_by_refresh(&tokens.refresh_token);
        return Ok(token_response(state, tokens));
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = checked;
    // A rotated-out refresh token revokes its grant only when its own client presents it;
    // the `no-refresh-reuse-detection` fault names no client, so nothing is revoked.
    let reuse_client = if crate::injected!(config, NoRefreshReuseDetection) {
        ""
    } else {
        client.client_id.as_str()
    };
    let (_, grant) = state
        .store
        .refresh_token_grant(refresh_token, reuse_client)
        .map_err(refresh_error)?;
    if grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    // RFC 6749 section 6: the requested scope "MUST NOT include any scope not
    // originally granted", and a narrower one applies to the new access token.
    let narrowed = match params.get("scope") {
        None => None,
        Some(scope) => {
            let granted: Vec<&str> = grant.scope.split(' ').collect();
            if scope.split(' ').any(|item| !granted.contains(&item))
                && !crate::injected!(config, RefreshWidensScope)
            {
                return Err(OAuthError::new(
                    "invalid_scope",
                    "a refresh cannot widen the granted scope",
                ));
            }
            // In the grant's order, each scope once.
            let requested: Vec<&str> = scope.split(' ').collect();
            let kept: Vec<&str> = granted
                .into_iter()
                .filter(|item| requested.contains(item))
                .collect();
            Some(kept.join(" "))
        }
    };
    if params.contains_key("resource") && crate::injected!(config, RefuseResourceOnRefresh) {
        return Err(OAuthError::new(
            "invalid_target",
            "resource is not accepted when refreshing",
        ));
    }
    check_resource(state, params, &grant)?;
    let rotate = !rotation_faults(config, refresh_token);
    let (_, tokens) = state
        .store
        .refresh(refresh_token, reuse_client, rotate, narrowed)
        .map_err(refresh_error)?;
    #[cfg(feature = "fault-injection")]
    race::remember_issued_by_refresh(&tokens.refresh_token);
    Ok(token_response(state, tokens))
}

/// Whether a fault keeps the refresh token from rotating: `no-refresh-rotation` always,
/// `first-refresh-token-never-rotates` for the token the login issued.
fn rotation_faults(config: &crate::Config, refresh_token: &str) -> bool {
    #[cfg(feature = "fault-injection")]
    if crate::injected!(config, FirstRefreshTokenNeverRotates)
        && !race::issued_by_refresh(refresh_token)
    {
        return true;
    }
    let _ = refresh_token;
    crate::injected!(config, NoRefreshRotation)
}

fn refresh_error(error: RefreshError) -> OAuthError {
    match error {
        RefreshError::Unknown => {
            OAuthError::invalid_grant("the refresh token is unknown, used or expired")
        }
        // RFC 9700 section 4.14.2: a rotated-out refresh token coming back means one
        // of its holders is an attacker, so the whole grant ends.
        RefreshError::Reused => OAuthError::invalid_grant(
            "the refresh token was already used; every token of this grant is revoked",
        ),
    }
}

/// A `resource` sent to the token endpoint must name the same resource as the grant
/// (RFC 8707 section 2.2).
fn check_resource(state: &AppState, params: &Params, grant: &Grant) -> Result<(), OAuthError> {
    let Some(resource) = params.get("resource") else {
        return Ok(());
    };
    if crate::injected!(state.config, TokenEndpointIgnoresResource) {
        return Ok(());
    }
    let same = canonical_resource(&state.config, resource).as_deref() == Some(&grant.resource);
    if same || crate::injected!(state.config, AcceptForeignResourceTokens) {
        Ok(())
    } else {
        Err(OAuthError::new(
            "invalid_target",
            "resource differs from the one authorized",
        ))
    }
}

fn token_response(state: &AppState, tokens: IssuedTokens) -> Response {
    let mut body = json!({
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "expires_in": tokens.expires_in,
        "refresh_token": tokens.refresh_token,
        "scope": tokens.scope,
    });
    if crate::injected!(state.config, NoRefreshTokens)
        && let Value::Object(fields) = &mut body
    {
        fields.remove("refresh_token");
    }
    let mut response = Json(body).into_response();
    if !crate::injected!(state.config, CacheableTokenResponses) {
        http_util::no_store(response.headers_mut());
    }
    response
}

/// RFC 7009: revoking an access token ends that token; revoking a refresh token ends
/// the whole grant. Unknown tokens are answered with 200, as the RFC asks.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let result = parse_form(form).and_then(|params| {
        let client = authenticate_client(&state, &headers, &params)?;
        let token = params
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
        if crate::injected!(state.config, AcceptRevokedTokens) {
            return Ok(());
        }
        if crate::injected!(state.config, RevokeAfterAnswering) {
            let later = state.clone();
            let (client, token) = (client.clone(), token.clone());
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                let _ = revoke_now(&later, &client, &token);
            });
            return Ok(());
        }
        revoke_now(&state, &client, token)
    });
    match result {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            http_util::no_store(response.headers_mut());
            response
        }
        Err(error) => error.into_response(),
    }
}

/// Revokes an access token, or the whole grant of a refresh token, for its own client.
fn revoke_now(state: &AppState, client: &Client, token: &str) -> Result<(), OAuthError> {
    if let Some((_, grant)) = state.store.access_token(token) {
        if grant.client_id != client.client_id {
            return Err(OAuthError::invalid_request(
                "the token was issued to another client",
            ));
        }
        if crate::injected!(state.config, RevocationUnsupportedTokenType) {
            return Err(OAuthError::new(
                "unsupported_token_type",
                "only refresh tokens can be revoked here",
            ));
        }
        state.store.revoke_access_token(token);
    } else if let Ok((grant_id, grant)) = state.store.refresh_token_grant(token, &client.client_id)
    {
        if grant.client_id != client.client_id {
            return Err(OAuthError::invalid_request(
                "the token was issued to another client",
            ));
        }
        #[cfg(feature = "fault-injection")]
        if race::revocation_missed(state, token) {
            return Ok(());
        }
        if crate::injected!(state.config, RefreshTokenRevocationIgnored) {
            return Ok(());
        }
        state.store.revoke_grant(&grant_id);
    }
    Ok(())
}
