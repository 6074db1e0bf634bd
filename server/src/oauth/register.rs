//! RFC 7591 dynamic client registration.

use axum::{
    Json,
    body::{Body, to_bytes},
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};
use url::{Host, Url};

use super::OAuthError;
use crate::{
    AppState, http_util,
    store::{self, Client},
};

/// Registration is open to anyone, so everything a client stores is bounded: the
/// body, the number and length of redirect URIs, the lists and the name.
const MAX_BODY_BYTES: usize = 16 * 1024;
pub(super) const MAX_REDIRECT_URIS: usize = 10;
pub(super) const MAX_REDIRECT_URI_BYTES: usize = 512;
/// Longer than any list of the values this server supports, duplicates included.
const MAX_LIST_ITEMS: usize = 8;
const MAX_CLIENT_NAME_CHARS: usize = 200;

const AUTH_METHODS: [&str; 3] = ["none", "client_secret_post", "client_secret_basic"];
const GRANT_TYPES: [&str; 2] = ["authorization_code", "refresh_token"];
/// The client metadata of RFC 7591 section 2 and OpenID Connect's `application_type`;
/// only the `reject-unknown-client-metadata` fault looks at this list.
const KNOWN_METADATA: [&str; 17] = [
    "redirect_uris",
    "token_endpoint_auth_method",
    "grant_types",
    "response_types",
    "client_name",
    "client_uri",
    "logo_uri",
    "scope",
    "contacts",
    "tos_uri",
    "policy_uri",
    "jwks_uri",
    "jwks",
    "software_id",
    "software_version",
    "software_statement",
    "application_type",
];

pub async fn register(State(state): State<AppState>, body: Body) -> Response {
    if crate::injected!(state.config, NoRegistrationEndpoint) {
        return crate::http_util::not_found().await;
    }
    let limit = if crate::injected!(state.config, UnboundedClientMetadata) {
        usize::MAX
    } else {
        MAX_BODY_BYTES
    };
    let body = match to_bytes(body, limit).await {
        Ok(body) => body,
        Err(error) => return body_refusal(&error),
    };
    match register_client(&state, &body) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// A body that was not read whole: too large (413) or too slow (408). Both are refusals
/// in RFC 7591's form; which status names which cause no requirement fixes.
fn body_refusal(error: &axum::Error) -> Response {
    // http-body-util's `LengthLimitError`, as axum wraps it.
    if error.to_string().contains("length limit") {
        return OAuthError::new(
            "invalid_client_metadata",
            format!("the client metadata is larger than {MAX_BODY_BYTES} bytes"),
        )
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        .into_response();
    }
    OAuthError::invalid_request("the body was not received in time")
        .with_status(StatusCode::REQUEST_TIMEOUT)
        .into_response()
}

/// Whether the redirect URIs pass this server's limits on their number and length, which
/// sit below the body limit so that one registration stays small in the store.
fn redirect_uris_within_limits(config: &crate::config::Config, redirect_uris: &[String]) -> bool {
    crate::injected!(config, UnboundedClientMetadata)
        || (redirect_uris.len() <= MAX_REDIRECT_URIS
            && redirect_uris
                .iter()
                .all(|uri| uri.len() <= MAX_REDIRECT_URI_BYTES))
}

/// Whether a list of client metadata other than the redirect URIs (which have their own,
/// larger limit) is short enough to keep.
fn list_within_limit(field: &str, items: &[Value]) -> bool {
    field == "redirect_uris" || items.len() <= MAX_LIST_ITEMS
}

fn register_client(state: &AppState, body: &[u8]) -> Result<Response, OAuthError> {
    let metadata: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(metadata)) => metadata,
        _ => {
            return Err(OAuthError::new(
                "invalid_client_metadata",
                "the body must be a JSON object of client metadata",
            ));
        }
    };

    if crate::injected!(state.config, RejectUnknownClientMetadata)
        && let Some(unknown) = metadata
            .keys()
            .find(|field| !KNOWN_METADATA.contains(&field.as_str()))
    {
        return Err(OAuthError::new(
            "invalid_client_metadata",
            format!("unknown client metadata field {unknown}"),
        ));
    }
    if crate::injected!(state.config, RejectApplicationType)
        && metadata.contains_key("application_type")
    {
        return Err(OAuthError::new(
            "invalid_client_metadata",
            "application_type is not supported",
        ));
    }
    let redirect_uris = string_list(&metadata, "redirect_uris")?.unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err(OAuthError::new(
            "invalid_redirect_uri",
            "redirect_uris must list at least one redirect URI",
        ));
    }
    if !redirect_uris_within_limits(&state.config, &redirect_uris) {
        return Err(OAuthError::new(
            "invalid_redirect_uri",
            format!(
                "at most {MAX_REDIRECT_URIS} redirect URIs of at most \
                 {MAX_REDIRECT_URI_BYTES} bytes each"
            ),
        ));
    }
    for uri in &redirect_uris {
        check_redirect_uri(
            uri,
            crate::injected!(state.config, AcceptInsecureRedirectUris),
        )
        .map_err(|reason| OAuthError::new("invalid_redirect_uri", format!("{uri}: {reason}")))?;
    }
    if crate::injected!(state.config, StricterRedirectPolicy)
        && let Some(named) = redirect_uris
            .iter()
            .find(|uri| Url::parse(uri).is_ok_and(|parsed| parsed.host_str() == Some("localhost")))
    {
        return Err(OAuthError::new(
            "invalid_redirect_uri",
            format!("{named}: use the loopback address 127.0.0.1 or [::1], not localhost"),
        ));
    }

    let auth_method = match metadata.get("token_endpoint_auth_method") {
        None => "client_secret_basic".to_owned(),
        Some(Value::String(method)) if AUTH_METHODS.contains(&method.as_str()) => method.clone(),
        Some(other) => {
            return Err(OAuthError::new(
                "invalid_client_metadata",
                format!(
                    "token_endpoint_auth_method {other} is not supported; use one of {}",
                    AUTH_METHODS.join(", ")
                ),
            ));
        }
    };
    if crate::injected!(state.config, MalformedMetadataBlamesRedirectUris)
        && metadata
            .get("grant_types")
            .is_some_and(|value| !value.is_array())
    {
        return Err(OAuthError::new(
            "invalid_redirect_uri",
            "grant_types must be an array of strings",
        ));
    }
    let grant_types = string_list(&metadata, "grant_types")?
        .unwrap_or_else(|| vec!["authorization_code".to_owned()]);
    if let Some(unsupported) = grant_types
        .iter()
        .find(|grant| !GRANT_TYPES.contains(&grant.as_str()))
    {
        return Err(OAuthError::new(
            "invalid_client_metadata",
            format!("grant type {unsupported} is not supported"),
        ));
    }
    let response_types =
        string_list(&metadata, "response_types")?.unwrap_or_else(|| vec!["code".to_owned()]);
    if response_types.iter().any(|kind| kind != "code") {
        return Err(OAuthError::new(
            "invalid_client_metadata",
            "only the response type \"code\" is supported",
        ));
    }
    let client_name = match metadata.get("client_name") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) if crate::injected!(state.config, ClientNameKeepsBidi) => {
            Some(name.clone())
        }
        Some(Value::String(name)) => Some(displayable_name(name)).filter(|name| !name.is_empty()),
        Some(_) => {
            return Err(OAuthError::new(
                "invalid_client_metadata",
                "client_name must be a string",
            ));
        }
    };

    let client_id = store::random_id();
    let client_secret = (auth_method != "none").then(store::random_secret);
    let issued_at = if crate::injected!(state.config, ClientIssuedAtEpoch) {
        0
    } else {
        store::unix_now()
    };
    state
        .store
        .register_client(Client {
            client_id: client_id.clone(),
            secret_digest: client_secret.as_deref().map(store::digest),
            client_name: client_name.clone(),
            redirect_uris: redirect_uris.clone(),
            grant_types: grant_types.clone(),
        })
        .map_err(|store::ClientsFull| {
            OAuthError::new(
                "temporarily_unavailable",
                "the server holds as many clients as it may; try again later",
            )
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
        })?;

    // Echo what was registered (RFC 7591 section 3.2.1), including metadata this
    // server does not use, such as `application_type`.
    let mut response = metadata;
    response.insert("client_id".into(), json!(client_id));
    response.insert("client_id_issued_at".into(), json!(issued_at));
    response.insert("redirect_uris".into(), json!(redirect_uris));
    response.insert("token_endpoint_auth_method".into(), json!(auth_method));
    response.insert("grant_types".into(), json!(grant_types));
    response.insert("response_types".into(), json!(response_types));
    match client_name {
        Some(name) => response.insert("client_name".into(), json!(name)),
        None => response.remove("client_name"),
    };
    response.remove("client_secret");
    if let Some(secret) = client_secret {
        response.insert("client_secret".into(), json!(secret));
        if !crate::injected!(state.config, OmitSecretExpiry) {
            response.insert("client_secret_expires_at".into(), json!(0));
        }
    }
    let mut response = (StatusCode::CREATED, Json(Value::Object(response))).into_response();
    http_util::no_store(response.headers_mut());
    Ok(response)
}

fn string_list(
    metadata: &Map<String, Value>,
    field: &str,
) -> Result<Option<Vec<String>>, OAuthError> {
    let Some(value) = metadata.get(field) else {
        return Ok(None);
    };
    let invalid = || {
        let error = if field == "redirect_uris" {
            "invalid_redirect_uri"
        } else {
            "invalid_client_metadata"
        };
        OAuthError::new(error, format!("{field} must be an array of strings"))
    };
    let Value::Array(items) = value else {
        return Err(invalid());
    };
    if !list_within_limit(field, items) {
        return Err(OAuthError::new(
            "invalid_client_metadata",
            format!("{field} may list at most {MAX_LIST_ITEMS} values"),
        ));
    }
    items
        .iter()
        .map(|item| item.as_str().map(str::to_owned).ok_or_else(invalid))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The client's name as the consent page may show it: without control characters and
/// without the bidirectional formatting characters that can make a name read as
/// another (Trojan Source), and at most [`MAX_CLIENT_NAME_CHARS`] characters.
pub(super) fn displayable_name(name: &str) -> String {
    name.chars()
        .filter(|character| {
            !character.is_control()
                && !matches!(
                    character,
                    '\u{061C}'
                        | '\u{200E}'
                        | '\u{200F}'
                        | '\u{202A}'..='\u{202E}'
                        | '\u{2066}'..='\u{2069}'
                )
        })
        .take(MAX_CLIENT_NAME_CHARS)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Redirect URIs must be https, or http on a loopback host (MCP authorization spec;
/// RFC 8252 section 7.3 for native apps), and carry no fragment (RFC 6749 3.1.2).
pub(super) fn check_redirect_uri(uri: &str, allow_insecure: bool) -> Result<(), &'static str> {
    let url = Url::parse(uri).map_err(|_| "not an absolute URL")?;
    if url.fragment().is_some() {
        return Err("a redirect URI must not contain a fragment");
    }
    match url.scheme() {
        // An https URL always has a host: the URL standard gives special schemes one.
        "https" => Ok(()),
        "http" => {
            if allow_insecure || url.host().as_ref().is_some_and(is_loopback) {
                Ok(())
            } else {
                Err("plain http is only allowed for loopback hosts (localhost, 127.0.0.1, [::1])")
            }
        }
        _ => Err("the scheme must be https, or http for loopback hosts"),
    }
}

pub fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(domain) => domain.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(address) => address.is_loopback(),
        Host::Ipv6(address) => address.is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::{check_redirect_uri, displayable_name};

    #[test]
    fn client_names_lose_control_and_bidi_characters() {
        assert_eq!(
            displayable_name("Good\u{202E}exe.txt\u{2066}\n\u{0007}App"),
            "Goodexe.txtApp"
        );
        assert_eq!(displayable_name(&"x".repeat(500)).len(), 200);
    }

    #[test]
    fn redirect_uris_must_be_https_or_loopback_without_fragment() {
        for good in [
            "http://localhost:33418/cb",
            "http://127.0.0.1:33418/cb",
            "http://[::1]/cb",
            "https://app.example/cb",
        ] {
            assert_eq!(check_redirect_uri(good, false), Ok(()), "{good}");
        }
        for bad in [
            "http://evil.example/cb",
            "javascript:alert(1)",
            "https://app.example/cb#frag",
            "com.example.app:/cb",
            "/relative",
        ] {
            assert!(check_redirect_uri(bad, false).is_err(), "{bad}");
        }
        // Why `https` needs no host check: what parses as an https URL has a host.
        for odd in [
            "https:///cb",
            "https:cb",
            "https://",
            "https:/",
            "HTTPS:/\\x/cb",
        ] {
            if let Ok(url) = url::Url::parse(odd) {
                assert!(url.host().is_some(), "{odd}");
            }
        }
    }
}
