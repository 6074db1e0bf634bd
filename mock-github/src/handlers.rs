//! Request handling: one wiremock responder that routes by method and path.
//!
//! A single catch-all responder (rather than one wiremock `Mock` per route) is used so that every
//! request, including ones to unknown paths, passes through the same code and is journaled exactly
//! once; wiremock would otherwise answer unmatched requests itself, out of our sight.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use url::Url;
use wiremock::http::{HeaderValue, Method};
use wiremock::{Request, Respond, ResponseTemplate};

use crate::fault::Fault;
use crate::journal::RecordedRequest;
use crate::state::{CodeGrant, Pkce, State};
use crate::users;
use crate::{
    ADMIN_PREFIX, AUTHORIZE_PATH, CLIENT_ID, CLIENT_SECRET, INTERCEPT_PATH, JOURNAL_PATH,
    REVOKE_PATH, TOKEN_PATH, TOKENS_PATH, USER_PATH, USERS_PATH,
};

const JSON: &str = "application/json; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// GitHub's documentation links, reproduced so clients that display `error_uri` or
/// `documentation_url` see realistic values.
const TOKEN_ERRORS_DOC: &str = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors";
const AUTHORIZE_ERRORS_DOC: &str =
    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors";
const USER_DOC: &str = "https://docs.github.com/rest/users/users#get-the-authenticated-user";
const REST_DOC: &str = "https://docs.github.com/rest";
const RATE_LIMIT_DOC: &str =
    "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api";
const USER_AGENT_DOC: &str =
    "https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required";

/// The body the `*_malformed` faults send: plausible for a misbehaving proxy and not JSON.
const MALFORMED_BODY: &str =
    "<html><body><p>Upstream sent something unexpected.</p></body></html>\n{\"access";

/// The body the `*_5xx` faults send, in the spirit of GitHub's "unicorn" error page.
const BAD_GATEWAY_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Unicorn! &middot; GitHub</title></head>\
<body><h1>502 Bad Gateway</h1><p>We had issues producing the response to your request. \
Sorry about that. Please try refreshing and contact us if the problem persists.</p></body></html>\n";

/// The wiremock responder behind every mock instance.
pub(crate) struct Router {
    state: Arc<State>,
    /// What `GET /_mock/intercept` answers; `None` when the mock does not intercept.
    intercept: Option<serde_json::Value>,
}

impl Router {
    pub fn new(state: Arc<State>, intercept: Option<serde_json::Value>) -> Router {
        Router { state, intercept }
    }
}

impl Respond for Router {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let path = request.url.path();
        // Admin requests are the test harness talking to the mock, not a server under test
        // talking to GitHub, so they stay out of the journal that checks inspect.
        if path.starts_with(ADMIN_PREFIX) {
            if path == INTERCEPT_PATH && request.method == Method::GET {
                return match &self.intercept {
                    Some(info) => json_response(200, info),
                    None => json_response(
                        404,
                        &serde_json::json!({"error": "this mock does not intercept GitHub's hosts"}),
                    ),
                };
            }
            return admin(&self.state, request);
        }
        self.state.record(RecordedRequest::from_wiremock(request));

        let method = &request.method;
        match path {
            AUTHORIZE_PATH if method == Method::GET => authorize(&self.state, request),
            TOKEN_PATH if method == Method::POST => token(&self.state, request),
            _ if path == "/api" || path.starts_with("/api/") => api(&self.state, request),
            _ => html_page(
                404,
                "Page not found",
                "This is not the web page you are looking for.",
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Authorization (the browser leg).
// ---------------------------------------------------------------------------------------------

fn authorize(state: &State, request: &Request) -> ResponseTemplate {
    let params: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
    let param = |name: &str| first(&params, name);

    // GitHub shows an error page, and never redirects, when it cannot trust the client or the
    // redirect target: redirecting there would hand an error (or a code) to an unknown party.
    if param("client_id") != Some(CLIENT_ID) {
        return html_page(
            404,
            "Page not found",
            "No OAuth app is registered with this client_id.",
        );
    }
    let Some(redirect_uri) = param("redirect_uri") else {
        return html_page(
            404,
            "Redirect URI missing",
            "The redirect_uri parameter is required by this mock (GitHub would fall back to the registered callback URL).",
        );
    };
    let Ok(redirect) = Url::parse(redirect_uri) else {
        return html_page(
            404,
            "Redirect URI mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        );
    };

    let login = param("login").unwrap_or(users::DEFAULT_LOGIN);
    if users::find(login).is_none() {
        return html_page(
            404,
            "Page not found",
            "There is no fixture user with that login.",
        );
    }
    // A typo in a scripted fault must fail loudly rather than silently run a happy path.
    let fault = match param("fault").filter(|name| !name.is_empty()) {
        None => None,
        Some(name) => match name.parse::<Fault>() {
            Ok(fault) => Some(fault),
            Err(err) => return html_page(400, "Unknown fault", &err.to_string()),
        },
    };
    let state_param = param("state");

    if fault == Some(Fault::AccessDenied) {
        return redirect_to(
            redirect,
            &[
                ("error", "access_denied"),
                (
                    "error_description",
                    "The user has denied your application access.",
                ),
                (
                    "error_uri",
                    &format!("{AUTHORIZE_ERRORS_DOC}/#access-denied"),
                ),
            ],
            state_param,
        );
    }

    let pkce = match param("code_challenge").filter(|c| !c.is_empty()) {
        None => None,
        Some(challenge) => match param("code_challenge_method").unwrap_or("plain") {
            "S256" => Some(Pkce {
                challenge: challenge.to_owned(),
                s256: true,
            }),
            "plain" => Some(Pkce {
                challenge: challenge.to_owned(),
                s256: false,
            }),
            _ => {
                return redirect_to(
                    redirect,
                    &[
                        ("error", "invalid_request"),
                        (
                            "error_description",
                            "code_challenge_method must be S256 or plain.",
                        ),
                    ],
                    state_param,
                );
            }
        },
    };

    let code = state.issue_code(CodeGrant {
        login: login.to_owned(),
        fault,
        redirect_uri: redirect_uri.to_owned(),
        scope: normalise_scope(param("scope").unwrap_or("")),
        pkce,
        issued_at: std::time::Instant::now(),
    });
    redirect_to(redirect, &[("code", &code)], state_param)
}

/// GitHub reports granted scopes comma-separated, whatever separator the request used.
fn normalise_scope(requested: &str) -> String {
    requested
        .split([' ', ','])
        .filter(|scope| !scope.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

/// A 302 to `target` with `params` (then `state`, when the client sent one) appended to whatever
/// query the redirect URI already had.
fn redirect_to(mut target: Url, params: &[(&str, &str)], state: Option<&str>) -> ResponseTemplate {
    {
        let mut query = target.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    let location = target.to_string();
    // The url crate only produces ASCII, so this conversion cannot fail in practice; the fallback
    // keeps a surprise from turning into a panic inside the mock's server thread.
    let Ok(header) = HeaderValue::from_str(&location) else {
        return html_page(
            400,
            "Bad redirect",
            "The redirect_uri cannot be used in a Location header.",
        );
    };
    ResponseTemplate::new(302)
        .insert_header("location", header)
        .set_body_raw(
            format!(
                "<html><body>You are being <a href=\"{}\">redirected</a>.</body></html>",
                escape_html(&location)
            ),
            HTML,
        )
}

// ---------------------------------------------------------------------------------------------
// Code exchange.
// ---------------------------------------------------------------------------------------------

/// The token-endpoint errors GitHub reports with HTTP 200.
#[derive(Clone, Copy)]
enum TokenError {
    BadVerificationCode,
    IncorrectClientCredentials,
    RedirectUriMismatch,
}

impl TokenError {
    fn fields(self) -> [(&'static str, String); 3] {
        let (error, description, anchor) = match self {
            TokenError::BadVerificationCode => (
                "bad_verification_code",
                "The code passed is incorrect or expired.",
                "bad-verification-code",
            ),
            TokenError::IncorrectClientCredentials => (
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
                "incorrect-client-credentials",
            ),
            TokenError::RedirectUriMismatch => (
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
                "redirect-uri-mismatch",
            ),
        };
        [
            ("error", error.to_owned()),
            ("error_description", description.to_owned()),
            ("error_uri", format!("{TOKEN_ERRORS_DOC}/#{anchor}")),
        ]
    }
}

fn token(state: &State, request: &Request) -> ResponseTemplate {
    let want_json = accepts_json(request);
    let Some(params) = token_params(request) else {
        return problems_parsing_json();
    };
    let param = |name: &str| first(&params, name);

    if !client_authenticated(request, param("client_id"), param("client_secret")) {
        // The code is left untouched: a server that fixes its credentials can still redeem it.
        return token_error(TokenError::IncorrectClientCredentials, want_json);
    }
    let Some(grant) = param("code").and_then(|code| state.take_code(code)) else {
        return token_error(TokenError::BadVerificationCode, want_json);
    };
    if param("redirect_uri").is_some_and(|uri| uri != grant.redirect_uri) {
        return token_error(TokenError::RedirectUriMismatch, want_json);
    }
    if let Some(pkce) = &grant.pkce
        && !pkce_ok(pkce, param("code_verifier"))
    {
        return token_error(TokenError::BadVerificationCode, want_json);
    }

    match grant.fault {
        Some(Fault::Token5xx) => {
            return ResponseTemplate::new(502).set_body_raw(BAD_GATEWAY_PAGE, HTML);
        }
        Some(Fault::TokenMalformed) => {
            let mime = if want_json { JSON } else { FORM };
            return ResponseTemplate::new(200).set_body_raw(MALFORMED_BODY, mime);
        }
        Some(Fault::TokenError) => return token_error(TokenError::BadVerificationCode, want_json),
        _ => {}
    }

    let access_token = state.issue_token(&grant);
    let fields = [
        ("access_token", access_token),
        ("token_type", "bearer".to_owned()),
        ("scope", grant.scope.clone()),
    ];
    let response = token_response(&fields, want_json);
    if grant.fault == Some(Fault::TokenTimeout) {
        response.set_delay(state.config.slow_delay)
    } else {
        response
    }
}

/// Reads the token request's parameters from a JSON or form body; `None` means a JSON body that
/// does not parse as an object.
///
/// GitHub also reads them from the query string, but the mock does not: a server that puts its
/// client secret in a URL should fail visibly here rather than pass.
fn token_params(request: &Request) -> Option<Vec<(String, String)>> {
    let content_type = header(request, "content-type").unwrap_or("");
    if content_type
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        let value: serde_json::Value = serde_json::from_slice(&request.body).ok()?;
        // Non-string values (numbers, nulls) are treated as absent rather than guessed at.
        Some(
            value
                .as_object()?
                .iter()
                .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
                .collect(),
        )
    } else {
        // Form decoding is lossy rather than failing, so any bytes at all give some parameters.
        Some(
            url::form_urlencoded::parse(&request.body)
                .into_owned()
                .collect(),
        )
    }
}

/// GitHub's answer to a JSON body it cannot parse.
fn problems_parsing_json() -> ResponseTemplate {
    json_response(
        400,
        &serde_json::json!({
            "message": "Problems parsing JSON",
            "documentation_url": REST_DOC,
            "status": "400",
        }),
    )
}

/// Checks the client credentials from HTTP Basic (what the `oauth2` crate sends by default) or
/// from the body (what GitHub's documentation shows).
fn client_authenticated(
    request: &Request,
    body_id: Option<&str>,
    body_secret: Option<&str>,
) -> bool {
    let (id, secret) = match header(request, "authorization").and_then(basic_payload) {
        Some(payload) => {
            // A Basic header that does not decode is a failed authentication, not a reason to
            // fall back to the body.
            let Some((id, secret)) = decode_basic(payload) else {
                return false;
            };
            // Two different client ids in one request are ambiguous, so neither is trusted.
            if body_id.is_some_and(|body_id| body_id != id) {
                return false;
            }
            (id, secret)
        }
        None => match (body_id, body_secret) {
            (Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
            _ => return false,
        },
    };
    id == CLIENT_ID && secret == CLIENT_SECRET
}

/// The credentials part of an `Authorization: Basic ...` header, or `None` for other schemes.
fn basic_payload(value: &str) -> Option<&str> {
    let (scheme, payload) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("basic")
        .then_some(payload.trim())
}

fn decode_basic(payload: &str) -> Option<(String, String)> {
    let decoded = String::from_utf8(STANDARD.decode(payload).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // RFC 6749 section 2.3.1 form-encodes both halves before joining them.
    Some((form_decode(id), form_decode(secret)))
}

fn pkce_ok(pkce: &Pkce, verifier: Option<&str>) -> bool {
    let Some(verifier) = verifier else {
        return false;
    };
    if pkce.s256 {
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == pkce.challenge
    } else {
        verifier == pkce.challenge
    }
}

fn token_error(error: TokenError, want_json: bool) -> ResponseTemplate {
    token_response(&error.fields(), want_json)
}

/// GitHub answers the token endpoint in JSON only when asked to, and form-encoded otherwise.
fn token_response(fields: &[(&str, String)], want_json: bool) -> ResponseTemplate {
    if want_json {
        let object: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(key, value)| ((*key).to_owned(), serde_json::Value::from(value.as_str())))
            .collect();
        json_response(200, &object)
    } else {
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in fields {
            body.append_pair(key, value);
        }
        ResponseTemplate::new(200).set_body_raw(body.finish(), FORM)
    }
}

fn accepts_json(request: &Request) -> bool {
    request
        .headers
        .get_all("accept")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.to_ascii_lowercase().contains("application/json"))
}

// ---------------------------------------------------------------------------------------------
// REST API.
// ---------------------------------------------------------------------------------------------

fn api(state: &State, request: &Request) -> ResponseTemplate {
    // Real GitHub refuses API requests without a User-Agent before looking at anything else.
    if header(request, "user-agent").is_none_or(|agent| agent.trim().is_empty()) {
        return ResponseTemplate::new(403).set_body_raw(
            format!(
                "Request forbidden by administrative rules. Please make sure your request has a \
                 User-Agent header ({USER_AGENT_DOC}). Check https://developer.github.com for \
                 other possible causes.\n"
            ),
            TEXT,
        );
    }
    if request.url.path() != USER_PATH || request.method != Method::GET {
        return json_response(
            404,
            &serde_json::json!({"message": "Not Found", "documentation_url": REST_DOC, "status": "404"}),
        );
    }

    let issued = bearer_token(request).and_then(|token| state.read_profile(token));
    let Some(issued) = issued.filter(|issued| !issued.revoked) else {
        return bad_credentials();
    };
    let Some(user) = users::find(&issued.login) else {
        // Only fixture logins ever get tokens, so this is unreachable; answer as GitHub would for
        // a deleted account rather than panic.
        return bad_credentials();
    };

    let token = bearer_token(request).unwrap_or_default();
    let after_login = issued.profile_reads > 0;
    match issued.fault {
        Some(Fault::User401) => bad_credentials(),
        Some(Fault::User5xx) => ResponseTemplate::new(502).set_body_raw(BAD_GATEWAY_PAGE, HTML),
        Some(Fault::User5xxAfterLogin) if after_login => {
            ResponseTemplate::new(502).set_body_raw(BAD_GATEWAY_PAGE, HTML)
        }
        Some(Fault::User403RateLimitAfterLogin) if after_login => {
            primary_rate_limit_exceeded(&user.profile)
        }
        Some(Fault::User429AfterLogin) if after_login => secondary_rate_limit_exceeded(),
        Some(Fault::UserMalformed) => ResponseTemplate::new(200).set_body_raw(MALFORMED_BODY, JSON),
        fault => {
            let etag = profile_etag(&user.profile, &issued.scope);
            // GitHub answers a matching `If-None-Match` with 304 and no body, and does not
            // count it against the rate limit.
            let response =
                if header(request, "if-none-match").is_some_and(|tags| etag_matches(tags, &etag)) {
                    with_rate_limit_headers(ResponseTemplate::new(304), issued.counted_reads)
                        .insert_header("etag", header_value(&etag))
                } else {
                    let used = state.count_against_rate_limit(token);
                    with_rate_limit_headers(json_response(200, &user.profile), used)
                        .insert_header("etag", header_value(&etag))
                        .insert_header("x-oauth-scopes", header_value(&issued.scope))
                        .insert_header("x-accepted-oauth-scopes", HeaderValue::from_static(""))
                        .insert_header(
                            "x-github-media-type",
                            HeaderValue::from_static("github.v3; format=json"),
                        )
                };
            // A slow GitHub is slow for conditional requests too.
            if fault == Some(Fault::UserTimeout) {
                response.set_delay(state.config.slow_delay)
            } else {
                response
            }
        }
    }
}

/// The requests an hour GitHub allows a user token.
const RATE_LIMIT: u32 = 5_000;

/// When the mock's rate-limit window resets: the mock's limits never run out over time,
/// so this is always about a minute away.
fn rate_limit_reset() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
        + 60
}

/// GitHub's rate-limit headers, on every API answer.
fn with_rate_limit_headers(response: ResponseTemplate, used: u32) -> ResponseTemplate {
    let used = used.min(RATE_LIMIT);
    response
        .insert_header("x-ratelimit-limit", header_value(&RATE_LIMIT.to_string()))
        .insert_header(
            "x-ratelimit-remaining",
            header_value(&(RATE_LIMIT - used).to_string()),
        )
        .insert_header("x-ratelimit-used", header_value(&used.to_string()))
        .insert_header(
            "x-ratelimit-reset",
            header_value(&rate_limit_reset().to_string()),
        )
        .insert_header("x-ratelimit-resource", HeaderValue::from_static("core"))
}

/// A weak validator over what the answer depends on: the profile and the token's scopes.
fn profile_etag(profile: &serde_json::Value, scope: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(profile).unwrap_or_default());
    hasher.update(scope.as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("W/\"{hex}\"")
}

/// Whether `If-None-Match` names the current validator; weak comparison, as GitHub does.
fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    if_none_match
        .split(',')
        .any(|tag| tag.trim() == "*" || opaque(tag) == opaque(etag))
}

/// GitHub's answer when a user token's hourly limit is used up.
fn primary_rate_limit_exceeded(profile: &serde_json::Value) -> ResponseTemplate {
    with_rate_limit_headers(
        json_response(
            403,
            &serde_json::json!({
                "message": format!("API rate limit exceeded for user ID {}.", profile["id"]),
                "documentation_url": RATE_LIMIT_DOC,
                "status": "403",
            }),
        ),
        RATE_LIMIT,
    )
}

/// GitHub's answer to too many requests in a short time (a secondary rate limit).
fn secondary_rate_limit_exceeded() -> ResponseTemplate {
    json_response(
        429,
        &serde_json::json!({
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes \
                        before you try again.",
            "documentation_url": RATE_LIMIT_DOC,
            "status": "429",
        }),
    )
    .insert_header("retry-after", HeaderValue::from_static("60"))
}

/// The token from `Authorization: Bearer <t>` or GitHub's older `Authorization: token <t>`.
fn bearer_token(request: &Request) -> Option<&str> {
    let (scheme, token) = header(request, "authorization")?.trim().split_once(' ')?;
    let token = token.trim();
    ((scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        && !token.is_empty())
    .then_some(token)
}

fn bad_credentials() -> ResponseTemplate {
    json_response(
        401,
        &serde_json::json!({
            "message": "Bad credentials",
            "documentation_url": USER_DOC,
            "status": "401",
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// Admin endpoints for out-of-process use.
// ---------------------------------------------------------------------------------------------

fn admin(state: &State, request: &Request) -> ResponseTemplate {
    let path = request.url.path();
    let method = &request.method;
    match path {
        JOURNAL_PATH if method == Method::GET => json_response(200, &state.journal()),
        USERS_PATH if method == Method::GET => json_response(200, &users::profiles_json()),
        TOKENS_PATH if method == Method::GET => json_response(200, &state.issued_tokens()),
        REVOKE_PATH if method == Method::POST => {
            #[derive(serde::Deserialize)]
            struct Revoke {
                access_token: String,
            }
            match serde_json::from_slice::<Revoke>(&request.body) {
                Ok(revoke) => json_response(
                    200,
                    &serde_json::json!({"revoked": state.revoke(&revoke.access_token)}),
                ),
                Err(err) => json_response(
                    400,
                    &serde_json::json!({
                        "error": format!("expected {{\"access_token\": \"...\"}}: {err}"),
                    }),
                ),
            }
        }
        _ => json_response(
            404,
            &serde_json::json!({"error": "unknown mock admin endpoint"}),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers.
// ---------------------------------------------------------------------------------------------

fn first<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn form_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

fn json_response<T: serde::Serialize + ?Sized>(status: u16, body: &T) -> ResponseTemplate {
    match serde_json::to_vec(body) {
        Ok(bytes) => ResponseTemplate::new(status).set_body_raw(bytes, JSON),
        // Only maps with non-string keys fail to serialise and the mock has none; a 500 is still
        // a better answer than a panic on the server thread.
        Err(err) => ResponseTemplate::new(500).set_body_raw(err.to_string(), TEXT),
    }
}

fn html_page(status: u16, title: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(
        format!(
            "<!DOCTYPE html>\n<html><head><title>{title} &middot; GitHub</title></head>\
             <body><h1>{status}</h1><p>{message}</p></body></html>\n",
            title = escape_html(title),
            message = escape_html(message),
        ),
        HTML,
    )
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_reported_comma_separated() {
        assert_eq!(
            normalise_scope("read:user user:email"),
            "read:user,user:email"
        );
        assert_eq!(normalise_scope("repo,gist"), "repo,gist");
        assert_eq!(normalise_scope(""), "");
    }

    #[test]
    fn form_decoding_handles_plus_and_percent() {
        assert_eq!(form_decode("a+b%21"), "a b!");
        assert_eq!(form_decode("%ZZ"), "%ZZ");
    }

    #[test]
    fn s256_matches_the_rfc_7636_example() {
        let pkce = Pkce {
            challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            s256: true,
        };
        assert!(pkce_ok(
            &pkce,
            Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        ));
        assert!(!pkce_ok(&pkce, Some("wrong")));
        assert!(!pkce_ok(&pkce, None));
    }
}
