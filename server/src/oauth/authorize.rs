//! The authorization endpoint, the per-client consent page and the GitHub leg.
//!
//! The GitHub OAuth App is shared by every client registered here, so a user who has
//! authorized it once at GitHub would otherwise be logged in silently for any new
//! client (the confused deputy of the MCP security best practices). The consent page
//! stops that: GitHub is only contacted after the user approved this client.

use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use url::Url;

use super::{canonical_resource, cimd::Cimd, client_redirect, register::is_loopback};
use crate::{
    AppState, http_util,
    http_util::html_escape,
    store::{self, AuthorizationCode, Client, GitHubUser, Grant, PendingAuthorization},
};

/// Name of the cookie that ties a consent form to the browser it was shown in.
/// `__Host-` makes browsers insist on `Secure`, `Path=/` and no `Domain`.
const CONSENT_COOKIE: &str = "__Host-mcp-consent";
/// Only with the `upstream-state-before-consent` fault: the cookie that carries the
/// upstream `state` from the consent page on.
const UPSTREAM_STATE_COOKIE: &str = "__Host-mcp-upstream-state";

/// The longest client `state` kept: it is stored until the login ends and echoed back,
/// so its size is bounded like everything an anonymous request can make the server
/// hold. Real clients send 22 to 64 characters.
const MAX_STATE_BYTES: usize = 1024;

pub async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    start_authorization(&state, &headers, params).await
}

/// OAuth 2.1 lets clients send the authorization request as a form POST too.
pub async fn authorize_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    start_authorization(&state, &headers, params).await
}

fn error_page(title: &str, message: &str) -> Response {
    http_util::html_page(
        StatusCode::BAD_REQUEST,
        title,
        &format!(
            "<p>{}</p><p>The application that sent you here may be misconfigured. \
             You can close this page.</p>",
            html_escape(message)
        ),
    )
}

/// Looks up a single-valued parameter. A repeated parameter is an error (RFC 6749
/// section 3.1), reported as `Err`.
fn single<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, ()> {
    let mut values = params.iter().filter(|(key, _)| key == name);
    let first = values.next().map(|(_, value)| value.as_str());
    match values.next() {
        Some(_) => Err(()),
        None => Ok(first),
    }
}

async fn start_authorization(
    state: &AppState,
    headers: &HeaderMap,
    params: Vec<(String, String)>,
) -> Response {
    let config = &state.config;

    // Until the client and its redirect URI are known to be good, errors are shown
    // here and never redirected: redirecting to an unverified URI is an open redirect.
    let Ok(client_id) = single(&params, "client_id") else {
        return error_page("Invalid request", "The client_id parameter is repeated.");
    };
    let Some(client_id) = client_id.filter(|id| !id.is_empty()) else {
        if crate::injected!(config, RedirectWithoutClientId) {
            return redirect_unverified(config, &params, "client_id is missing");
        }
        return error_page("Invalid request", "The client_id parameter is missing.");
    };
    // A URL names a client ID metadata document (MCP 2025-11-25): the client is what the
    // document says, fetched and validated before anything else is looked at.
    let metadata_client = Cimd::handles(config, client_id);
    let client = if metadata_client {
        match state.cimd.client(config, &state.store, client_id).await {
            Ok(client) => Some(client),
            Err(error) => {
                tracing::info!(%error, "client metadata document refused");
                return error_page(
                    "Invalid client",
                    &format!("The application could not be identified (invalid_client): {error}."),
                );
            }
        }
    } else {
        state.store.client(client_id)
    };
    let Some(client) = client else {
        if crate::injected!(config, RedirectUnknownClients) {
            return redirect_unverified(config, &params, "the client is not registered");
        }
        return error_page(
            "Unknown client",
            "This application is not registered with this server.",
        );
    };
    let Ok(requested_redirect) = single(&params, "redirect_uri") else {
        return error_page("Invalid request", "The redirect_uri parameter is repeated.");
    };
    let redirect_uri = match requested_redirect {
        Some(requested) => {
            let loopback_schemes = loopback_scheme_faults(config).unwrap_or(&["http"]);
            let registered = client
                .redirect_uris
                .iter()
                .any(|registered| redirect_uri_matches(registered, requested, loopback_schemes));
            let unchecked = [
                crate::injected!(config, AcceptAnyRedirectUri),
                crate::injected!(config, CimdAnyRedirectUri) && metadata_client,
            ];
            if !registered && !unchecked.contains(&true) {
                return error_page(
                    "Invalid redirect URI",
                    "The redirect_uri does not match any redirect URI registered for this application.",
                );
            }
            requested.to_owned()
        }
        None if client.redirect_uris.len() == 1
            && !crate::injected!(config, RedirectUriAlwaysRequired) =>
        {
            client.redirect_uris[0].clone()
        }
        None => {
            return error_page(
                "Invalid request",
                "The redirect_uri parameter is required because this application registered several.",
            );
        }
    };

    let client_state = single(&params, "state").ok().flatten().map(str::to_owned);
    if client_state
        .as_ref()
        .is_some_and(|state| state.len() > MAX_STATE_BYTES)
        && !crate::injected!(config, UnboundedState)
    {
        return error_page(
            "Invalid request",
            &format!("The state parameter is longer than {MAX_STATE_BYTES} bytes."),
        );
    }
    // From here on, RFC 6749 section 4.1.2.1 sends errors back to the client with its
    // state. But anyone can register a client, so before the user approved it, its
    // redirect URI is not trusted: "the authorization server [...] SHOULD only
    // automatically redirect the user agent if it trusts the redirection URI" (RFC
    // 9700 section 4.11.1). A loopback URI leads to the user's own machine and cannot
    // be an open redirect; any other gets the error on a page here.
    let trusted = is_loopback_uri(&redirect_uri)
        || crate::injected!(config, RedirectErrorsToAnyRegisteredUri);
    let fail = |error: &str, description: &str| {
        if !trusted {
            return error_page(
                "Invalid request",
                &format!("The application's request was refused ({error}): {description}."),
            );
        }
        let mut query = vec![("error", error), ("error_description", description)];
        if let Some(client_state) = &client_state {
            query.push(("state", client_state));
        }
        client_redirect(config, &redirect_uri, &query)
    };

    let repeated = [
        "response_type",
        "code_challenge",
        "code_challenge_method",
        "scope",
        "resource",
    ]
    .into_iter()
    .find(|name| single(&params, name).is_err());
    if let Some(name) = repeated {
        return fail(
            "invalid_request",
            &format!("the {name} parameter is repeated"),
        );
    }
    let get = |name: &str| single(&params, name).ok().flatten().map(str::to_owned);
    let response_type = get("response_type");
    let code_challenge = get("code_challenge");
    let challenge_method = get("code_challenge_method");
    let scope = get("scope");
    let resource = get("resource");

    match response_type.as_deref() {
        Some("code") => {}
        None if crate::injected!(config, DefaultResponseType) => {}
        None => return fail("invalid_request", "the response_type parameter is missing"),
        Some(_) => {
            return fail(
                "unsupported_response_type",
                "only the response type \"code\" is supported",
            );
        }
    }
    let needed_grant = if crate::injected!(config, AuthorizeRequiresRefreshGrant) {
        "refresh_token"
    } else {
        "authorization_code"
    };
    if !client.grant_types.iter().any(|grant| grant == needed_grant) {
        return fail(
            "unauthorized_client",
            "this client did not register the authorization_code grant",
        );
    }

    // PKCE is mandatory, and only S256 is offered (OAuth 2.1 section 4.1.1).
    let code_challenge = match code_challenge {
        Some(challenge) => {
            if challenge_method.as_deref() != Some("S256")
                && !crate::injected!(config, AcceptAnyChallengeMethod)
            {
                return fail("invalid_request", "code_challenge_method must be S256");
            }
            if !is_valid_pkce_string(&challenge) && !crate::injected!(config, PkceSyntaxUnchecked) {
                return fail(
                    "invalid_request",
                    "code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~]",
                );
            }
            Some(challenge)
        }
        None if crate::injected!(config, AllowMissingPkce) => None,
        None => {
            return fail(
                "invalid_request",
                "code_challenge is required (PKCE with S256)",
            );
        }
    };

    let scope = scope.unwrap_or_else(|| config.mcp_scope.clone());
    let scope = scope_faults(config, &scope).unwrap_or(scope);
    let supported_scopes = [config.mcp_scope.as_str(), "offline_access"];
    // Only the known scopes are kept, each once (below), so a long scope parameter costs one
    // pass over a request the server's size limits already bound, and is never stored.
    if scope
        .split(' ')
        .any(|item| !supported_scopes.contains(&item))
    {
        return fail(
            "invalid_scope",
            &format!("supported scopes are: {}", supported_scopes.join(" ")),
        );
    }
    // Each scope once, in the order of the list above.
    let scope = supported_scopes
        .into_iter()
        .filter(|supported| scope.split(' ').any(|item| item == *supported))
        .collect::<Vec<_>>()
        .join(" ");

    // Only the fault tells a resource whose scheme or host is not in lower case from one
    // that is; the server compares resources in canonical form.
    if crate::injected!(config, CaseSensitiveResource)
        && resource.as_deref().is_some_and(|resource| {
            Url::parse(resource).is_ok_and(|parsed| {
                !resource.starts_with(parsed.origin().ascii_serialization().as_str())
            })
        })
    {
        return fail(
            "invalid_target",
            "the resource parameter does not name this MCP server",
        );
    }
    let resource = match resource {
        None => config.issuer(),
        Some(resource) => match canonical_resource(config, &resource) {
            Some(canonical) => canonical,
            None if crate::injected!(config, AcceptForeignResourceTokens) => resource,
            None => {
                return fail(
                    "invalid_target",
                    "the resource parameter does not name this MCP server",
                );
            }
        },
    };

    let pending = PendingAuthorization {
        client_id: client.client_id.clone(),
        redirect_uri,
        client_state,
        code_challenge,
        scope,
        resource,
        csrf_token: store::random_secret(),
        // Always a fresh value of ours: adopting one the browser sent would let whoever
        // planted it share the binding.
        browser_binding: binding_faults(state, headers).unwrap_or_else(store::random_secret),
        expires_at: store::deadline(store::now(), pending_lifetime(config)),
    };

    if crate::injected!(config, SkipConsent) {
        return send_to_github(state, pending, None);
    }
    let request_id = store::random_secret();
    let mut page = consent_page(state, &client, &pending, &request_id);
    if crate::injected!(config, UpstreamStateBeforeConsent) {
        let upstream_state = store::random_secret();
        state
            .store
            .insert_upstream_state(upstream_state.clone(), pending.clone());
        let cookie = format!(
            "{UPSTREAM_STATE_COOKIE}={upstream_state}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
            config.pending_authorization_ttl.as_secs()
        );
        if let Ok(cookie) = HeaderValue::from_str(&cookie) {
            page.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    state.store.insert_pending(request_id, pending.clone());
    page
}

/// Only with the `grant-required-scope` fault: the scope with the server's own added, for a
/// request that did not ask for it. `None`, the scope as it came, without the fault.
fn scope_faults(config: &crate::Config, scope: &str) -> Option<String> {
    (crate::injected!(config, GrantRequiredScope)
        && !scope.split(' ').any(|item| item == config.mcp_scope))
    .then(|| format!("{} {scope}", config.mcp_scope).trim().to_owned())
}

/// How long a pending authorization (its consent request, then its upstream `state`) is
/// kept: the configured lifetime, or a day with the `upstream-state-never-expires` fault,
/// while the consent cookie still advertises the configured one.
fn pending_lifetime(config: &crate::Config) -> std::time::Duration {
    if crate::injected!(config, UpstreamStateNeverExpires) {
        // A day.
        std::time::Duration::from_secs(86_400)
    } else {
        config.pending_authorization_ttl
    }
}

/// Only with the `redirect-without-client-id` and `redirect-unknown-clients` faults:
/// the error goes to whatever `redirect_uri` the request names, unverified (an open
/// redirect).
fn redirect_unverified(
    config: &crate::Config,
    params: &[(String, String)],
    description: &str,
) -> Response {
    match single(params, "redirect_uri") {
        Ok(Some(redirect_uri)) => client_redirect(
            config,
            redirect_uri,
            &[
                ("error", "invalid_request"),
                ("error_description", description),
            ],
        ),
        _ => error_page("Invalid request", description),
    }
}

/// The schemes whose loopback redirect URIs may change their port, when a fault chooses
/// them: `https` too with `https-loopback-any-port`, none with `loopback-port-matched-exactly`.
fn loopback_scheme_faults(config: &crate::Config) -> Option<&'static [&'static str]> {
    if crate::injected!(config, HttpsLoopbackAnyPort) {
        return Some(&["http", "https"]);
    }
    crate::injected!(config, LoopbackPortMatchedExactly).then_some(&[])
}

/// Exact string comparison, except that a loopback redirect URI may use any port at
/// request time (RFC 8252 section 7.3): native apps get a free port from the OS. The
/// exception is for the schemes in `loopback_schemes`, which is `http` alone ("Loopback
/// redirect URIs use the "http" scheme", RFC 8252 section 7.3) but for one fault.
fn redirect_uri_matches(registered: &str, requested: &str, loopback_schemes: &[&str]) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(registered_url), Ok(requested_url)) = (Url::parse(registered), Url::parse(requested))
    else {
        return false;
    };
    // Only URIs already in canonical form qualify, so that no normalisation (case,
    // dot segments, escapes) can make two different strings match.
    if registered_url.as_str() != registered || requested_url.as_str() != requested {
        return false;
    }
    if !loopback_schemes.contains(&registered_url.scheme())
        || !registered_url.host().as_ref().is_some_and(is_loopback)
    {
        return false;
    }
    let mut with_registered_port = requested_url;
    if with_registered_port
        .set_port(registered_url.port())
        .is_err()
    {
        return false;
    }
    with_registered_port.as_str() == registered
}

/// The PKCE code verifier and S256 challenge alphabet and length (RFC 7636 4.1).
pub fn is_valid_pkce_string(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte))
}

/// Whether the request comes from the browser the consent page was shown in: its
/// consent cookie holds the binding, compared in constant time.
fn same_browser(
    config: &crate::Config,
    headers: &HeaderMap,
    pending: &PendingAuthorization,
) -> bool {
    let Some(binding) = cookie(headers, CONSENT_COOKIE) else {
        return false;
    };
    #[cfg(feature = "fault-injection")]
    if crate::injected!(config, XorBrowserBinding) {
        return store::xor_eq(binding.as_bytes(), pending.browser_binding.as_bytes());
    }
    let _ = config;
    store::constant_time_eq(binding.as_bytes(), pending.browser_binding.as_bytes())
}

/// A redirect URI on a loopback host: the user's own machine.
fn is_loopback_uri(uri: &str) -> bool {
    Url::parse(uri)
        .is_ok_and(|url| url.scheme() == "http" && url.host().as_ref().is_some_and(is_loopback))
}

/// The consent binding the faults choose, `None` without them: with
/// `adopt-planted-consent-cookie`, a consent cookie the browser already holds, of the length
/// the server's own have, is taken as the binding (session fixation); with
/// `predictable-consent-cookie`, every browser gets the same one.
fn binding_faults(state: &AppState, headers: &HeaderMap) -> Option<String> {
    if crate::injected!(state.config, PredictableConsentCookie) {
        return Some("predictable-consent-binding-0123456789abcde".into());
    }
    if !crate::injected!(state.config, AdoptPlantedConsentCookie) {
        return None;
    }
    cookie(headers, CONSENT_COOKIE).filter(|value| value.len() == 43)
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

fn consent_page(
    state: &AppState,
    client: &Client,
    pending: &PendingAuthorization,
    request_id: &str,
) -> Response {
    let redirect_host = Url::parse(&pending.redirect_uri)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_default();
    // Only with the `cimd-consent-hides-redirect-host` fault: for a client of a metadata
    // document, the page does not say where the user will be sent back.
    let hide_redirect = crate::injected!(state.config, CimdConsentHidesRedirectHost)
        && Cimd::handles(&state.config, &client.client_id);
    let (redirect_host, redirect_uri) = if hide_redirect {
        (String::new(), String::new())
    } else {
        (redirect_host, pending.redirect_uri.clone())
    };
    let client_name = client
        .client_name
        .as_deref()
        .unwrap_or("An application that did not give its name");
    let body = format!(
        "<p><strong>{client_name}</strong> wants to use this MCP server as you.</p>\n\
         <dl>\n\
         <dt>Application</dt><dd>{client_name} <small>(client id <code>{client_id}</code>)</small></dd>\n\
         <dt>Where you will be sent back</dt><dd><strong>{redirect_host}</strong> \
         (<code>{redirect_uri}</code>)</dd>\n\
         <dt>Access to this server</dt><dd><code>{scope}</code></dd>\n\
         <dt>Access to your GitHub account</dt><dd><code>{github_scope}</code>: \
         read your GitHub profile</dd>\n\
         </dl>\n\
         <p>If you approve, you will log in at GitHub next. Only approve applications you trust.</p>\n\
         <form method=\"post\" action=\"{action}\">\n\
         <input type=\"hidden\" name=\"request_id\" value=\"{request_id}\">\n\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\n\
         <div class=\"actions\">\n\
         <button type=\"submit\" name=\"action\" value=\"approve\" class=\"primary\">Approve</button>\n\
         <button type=\"submit\" name=\"action\" value=\"deny\">Deny</button>\n\
         </div>\n</form>",
        client_name = html_escape(client_name),
        client_id = html_escape(&client.client_id),
        redirect_host = html_escape(&redirect_host),
        redirect_uri = html_escape(&redirect_uri),
        scope = html_escape(&pending.scope),
        github_scope = html_escape(&state.config.github.scope),
        action = html_escape(&state.config.url("/consent")),
        request_id = html_escape(request_id),
        csrf = html_escape(&pending.csrf_token),
    );
    let body = if crate::injected!(state.config, ConsentAutoSubmits) {
        format!(
            "{body}\n<script>document.forms[0].requestSubmit(document.querySelector('button[value=approve]'));</script>"
        )
    } else {
        body
    };
    let mut response = http_util::html_page(StatusCode::OK, "Authorize access", &body);
    set_binding_cookie(state, &mut response, pending);
    response
}

/// Gives the browser the consent cookie holding the request's binding.
fn set_binding_cookie(state: &AppState, response: &mut Response, pending: &PendingAuthorization) {
    let http_only = if crate::injected!(state.config, ConsentCookieNotHttpOnly) {
        ""
    } else {
        " HttpOnly;"
    };
    let cookie = format!(
        "{CONSENT_COOKIE}={}; Path=/; Secure;{http_only} SameSite=Lax; Max-Age={}",
        pending.browser_binding,
        state.config.pending_authorization_ttl.as_secs()
    );
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
}

#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    action: String,
}

pub async fn consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ConsentForm>,
) -> Response {
    let Some(pending) = state.store.take_pending(&form.request_id) else {
        return error_page(
            "Authorization expired",
            "This authorization request is unknown, was already answered, or expired. \
             Start again from the application.",
        );
    };
    let skip_csrf = crate::injected!(state.config, SkipConsentCsrf);
    let same_token =
        store::constant_time_eq(form.csrf_token.as_bytes(), pending.csrf_token.as_bytes());
    #[cfg(feature = "fault-injection")]
    let same_token = if crate::injected!(state.config, XorCsrfComparison) {
        store::xor_eq(form.csrf_token.as_bytes(), pending.csrf_token.as_bytes())
    } else {
        same_token
    };
    if !(skip_csrf || same_token && same_browser(&state.config, &headers, &pending)) {
        // Keep the real request alive: a forged submission must not cancel it.
        if !crate::injected!(state.config, ForgedApprovalCancelsRequest) {
            state.store.restore_pending(form.request_id, pending);
        }
        return http_util::html_page(
            StatusCode::FORBIDDEN,
            "Request refused",
            "<p>This approval did not come from the consent page shown in this browser.</p>",
        );
    }
    match form.action.as_str() {
        "approve" => {
            // Only with the `upstream-state-before-consent` fault: the state minted with the
            // consent page goes to GitHub.
            let early_state = cookie(&headers, UPSTREAM_STATE_COOKIE)
                .filter(|_| crate::injected!(state.config, UpstreamStateBeforeConsent));
            send_to_github(&state, pending, early_state)
        }
        "deny" => {
            let mut query = vec![
                ("error", "access_denied"),
                ("error_description", "the user denied the request"),
            ];
            if let Some(client_state) = &pending.client_state {
                query.push(("state", client_state));
            }
            client_redirect(&state.config, &pending.redirect_uri, &query)
        }
        _ => {
            state.store.restore_pending(form.request_id, pending);
            error_page("Invalid request", "Choose Approve or Deny.")
        }
    }
}

/// Stores a fresh single-use upstream `state` for the approved request and sends the
/// browser to GitHub. The state is created only now, after consent (MCP security best
/// practices, "Confused Deputy Problem").
fn send_to_github(
    state: &AppState,
    pending: PendingAuthorization,
    early_state: Option<String>,
) -> Response {
    let upstream_state = if crate::injected!(state.config, ReuseUpstreamState) {
        "fixed-upstream-state".to_owned()
    } else {
        early_state.unwrap_or_else(store::random_secret)
    };
    let location = state.github.authorize_url(&upstream_state);
    let mut response = (
        StatusCode::FOUND,
        [(header::LOCATION, location.as_str().to_owned())],
    )
        .into_response();
    http_util::no_store(response.headers_mut());
    // The callback asks for this cookie. It is set here as well as on the consent page
    // because the `skip-consent` fault comes here without showing one.
    set_binding_cookie(state, &mut response, &pending);
    state.store.insert_upstream_state(upstream_state, pending);
    response
}

#[derive(Deserialize)]
pub struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub async fn github_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Response {
    let Some(upstream_state) = params.state.filter(|value| !value.is_empty()) else {
        return error_page(
            "Invalid login response",
            "GitHub's answer carried no state parameter.",
        );
    };
    let consume = !crate::injected!(state.config, ReuseUpstreamState);
    let Some(pending) = state.store.take_upstream_state(&upstream_state, consume) else {
        return error_page(
            "Login expired",
            "This login response is unknown, was already used, or expired. \
             Start again from the application.",
        );
    };
    // GitHub logs in whichever browser follows the link, silently if it authorized the
    // app before; only the browser that approved the consent page may collect the
    // code, or an attacker could send their approved link to a victim and receive a
    // code for the victim's account.
    if !same_browser(&state.config, &headers, &pending)
        && !crate::injected!(state.config, CallbackNotBoundToBrowser)
    {
        return http_util::html_page(
            StatusCode::FORBIDDEN,
            "Login refused",
            "<p>This login was not started in this browser. Start again from the \
             application.</p>",
        );
    }
    let config = &state.config;
    let fail = |error: &str, description: &str| {
        let mut query = vec![("error", error), ("error_description", description)];
        if let Some(client_state) = &pending.client_state {
            query.push(("state", client_state));
        }
        client_redirect(config, &pending.redirect_uri, &query)
    };

    if let Some(error) = params.error {
        return if error == "access_denied" {
            fail("access_denied", "the user denied access at GitHub")
        } else {
            fail("server_error", "GitHub reported an error during login")
        };
    }
    let Some(code) = params.code.filter(|code| !code.is_empty()) else {
        return fail("server_error", "GitHub's answer carried no code");
    };

    let upstream_failure = |error: crate::github::UpstreamError| {
        tracing::warn!(%error, "GitHub login failed");
        let kind = if error.is_transient() {
            "temporarily_unavailable"
        } else {
            "server_error"
        };
        fail(kind, &format!("login at GitHub failed: {error}"))
    };
    let github_token = match state.github.exchange_code(&code).await {
        Ok(token) => token,
        #[cfg(feature = "fault-injection")]
        Err(error) if crate::injected!(config, TokenFailureErrorPage) => {
            return upstream_error_page(&error);
        }
        Err(error) => return upstream_failure(error),
    };
    let profile = match state.github.user(&github_token).await {
        Ok(profile) => profile,
        #[cfg(feature = "fault-injection")]
        Err(error) if crate::injected!(config, ProfileFailureErrorPage) => {
            return upstream_error_page(&error);
        }
        Err(error) => return upstream_failure(error),
    };
    // `GitHubClient::user` only returns profiles with a login and a numeric id.
    let (Some(login), Some(id)) = (profile["login"].as_str(), profile["id"].as_u64()) else {
        return upstream_failure(crate::github::UpstreamError::Malformed);
    };
    let user = GitHubUser {
        login: login.to_owned(),
        id,
    };

    let github_code = code;
    let code = if crate::injected!(config, ForwardGitHubCode) {
        github_code
    } else {
        store::random_secret()
    };
    state.store.insert_code(
        &code,
        AuthorizationCode {
            redirect_uri: pending.redirect_uri.clone(),
            code_challenge: pending.code_challenge.clone(),
            grant: Grant {
                user,
                client_id: pending.client_id.clone(),
                scope: pending.scope.clone(),
                resource: pending.resource.clone(),
                github_token,
            },
            expires_at: store::deadline(store::now(), config.authorization_code_ttl),
        },
    );
    let mut query = vec![("code", code.as_str())];
    if let Some(client_state) = &pending.client_state
        && !crate::injected!(config, DropClientState)
    {
        query.push(("state", client_state));
    }
    client_redirect(config, &pending.redirect_uri, &query)
}

/// Only with the `token-failure-error-page` and `profile-failure-error-page` faults:
/// the login ends here instead of going back to the client.
#[cfg(feature = "fault-injection")]
fn upstream_error_page(error: &crate::github::UpstreamError) -> Response {
    http_util::html_page(
        StatusCode::BAD_GATEWAY,
        "Login failed",
        &format!("<p>{}</p>", html_escape(&error.to_string())),
    )
}

#[cfg(test)]
mod tests {
    use super::{is_valid_pkce_string, redirect_uri_matches};

    #[test]
    fn redirect_uris_match_exactly_except_for_the_loopback_port() {
        let http = &["http"][..];
        let registered = "http://localhost:33418/cb";
        assert!(redirect_uri_matches(registered, registered, http));
        assert!(redirect_uri_matches(
            registered,
            "http://localhost:40000/cb",
            http
        ));
        assert!(redirect_uri_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5555/cb",
            http
        ));
        for different in [
            "http://localhost:33418/cb/x",
            "http://localhost:33418/cb?x=1",
            "http://localhost:33418/CB",
            "https://evil.example/cb",
            "http://localhost:33418/cb/../cb",
            "http://LOCALHOST:33418/cb",
        ] {
            assert!(
                !redirect_uri_matches(registered, different, http),
                "{different}"
            );
        }
        assert!(!redirect_uri_matches(
            "https://app.example/cb",
            "https://app.example:8443/cb",
            http
        ));
        // The port exception is for http loopback URIs only.
        assert!(!redirect_uri_matches(
            "https://127.0.0.1:33418/cb",
            "https://127.0.0.1:33419/cb",
            http
        ));
    }

    #[test]
    fn pkce_strings_have_the_rfc_7636_shape() {
        assert!(is_valid_pkce_string(&"a".repeat(43)));
        assert!(is_valid_pkce_string(&"-._~".repeat(32)));
        assert!(!is_valid_pkce_string(&"a".repeat(42)));
        assert!(!is_valid_pkce_string(&"a".repeat(129)));
        assert!(!is_valid_pkce_string(&format!("{}+", "a".repeat(43))));
    }
}
