//! RFC 8414 authorization server metadata.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::AppState;

pub async fn authorization_server(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if crate::injected!(state.config, OidcDiscoveryOnly) {
        return crate::http_util::not_found().await;
    }
    metadata_response(&state, &headers)
}

/// Only in fault-injection builds, and only with the `oidc-discovery-only`,
/// `oidc-without-pkce-methods` or `oidc-wrong-issuer` fault: the same document (or a
/// broken copy) as an OpenID Connect discovery document.
#[cfg(feature = "fault-injection")]
pub async fn openid_configuration(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if crate::injected!(state.config, OidcWithoutPkceMethods) {
        let mut document = document(&state);
        if let Value::Object(fields) = &mut document {
            fields.remove("code_challenge_methods_supported");
        }
        return Json(document).into_response();
    }
    if crate::injected!(state.config, OidcWrongIssuer) {
        let mut document = document(&state);
        document["issuer"] = json!(format!("{}/oidc", state.config.issuer()));
        return Json(document).into_response();
    }
    if !crate::injected!(state.config, OidcDiscoveryOnly) {
        return crate::http_util::not_found().await;
    }
    metadata_response(&state, &headers)
}

fn metadata_response(state: &AppState, headers: &HeaderMap) -> Response {
    let config = &state.config;
    if refused_by_protocol_version_fault(state, headers) {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let mut response = Json(document(state)).into_response();
    if crate::injected!(config, MetadataAsText) {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    response
}

/// Only with the `metadata-checks-protocol-version` fault: whether the request names an
/// MCP protocol version rmcp does not know. Without the fault it is always false, so
/// `.cargo/mutants.toml` leaves it unmutated, as it does the fault table.
fn refused_by_protocol_version_fault(state: &AppState, headers: &HeaderMap) -> bool {
    crate::injected!(state.config, MetadataChecksProtocolVersion)
        && headers
            .get("mcp-protocol-version")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|version| {
                !rmcp::model::ProtocolVersion::KNOWN_VERSIONS
                    .iter()
                    .any(|known| known.as_str() == version)
            })
}

fn document(state: &AppState) -> Value {
    let config = &state.config;
    let issuer = if crate::injected!(config, WrongIssuer) {
        format!("{}/", super::issuer(config))
    } else {
        super::issuer(config)
    };
    let challenge_methods: &[&str] = if crate::injected!(config, OmitS256) {
        &["plain"]
    } else {
        &["S256"]
    };
    let auth_methods: &[&str] = if crate::injected!(config, MetadataListsDisagree) {
        &["client_secret_post", "client_secret_basic"]
    } else {
        &["none", "client_secret_post", "client_secret_basic"]
    };
    let grant_types: &[&str] = if crate::injected!(config, MetadataListsDisagree) {
        &["authorization_code"]
    } else {
        &["authorization_code", "refresh_token"]
    };
    let mut document = json!({
        "issuer": issuer,
        "authorization_endpoint": super::endpoint_url(config, "/authorize"),
        "token_endpoint": super::endpoint_url(config, "/token"),
        "registration_endpoint": super::endpoint_url(config, "/register"),
        "revocation_endpoint": super::endpoint_url(config, "/revoke"),
        "scopes_supported": [config.mcp_scope, "offline_access"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grant_types,
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": challenge_methods,
        "authorization_response_iss_parameter_supported": true,
    });
    if let Value::Object(fields) = &mut document {
        if super::cimd::supported(config) {
            fields.insert("client_id_metadata_document_supported".into(), json!(true));
        }
        if crate::injected!(config, IssNotAdvertised) {
            fields.remove("authorization_response_iss_parameter_supported");
        }
        if crate::injected!(config, CimdFlagNotBoolean) {
            fields.insert(
                "client_id_metadata_document_supported".into(),
                json!("true"),
            );
        }
        if crate::injected!(config, OmitResponseTypes) {
            fields.remove("response_types_supported");
        }
        let unadvertised = [
            crate::injected!(config, UnadvertisedRegistration),
            crate::injected!(config, NoRegistrationEndpoint),
        ];
        if unadvertised.contains(&true) {
            fields.remove("registration_endpoint");
        }
        if crate::injected!(config, NoRevocationEndpoint) {
            fields.remove("revocation_endpoint");
            fields.remove("revocation_endpoint_auth_methods_supported");
        }
        if crate::injected!(config, NoRefreshTokens) {
            fields.insert(
                "grant_types_supported".into(),
                json!(["authorization_code"]),
            );
        }
        if crate::injected!(config, PlainHttpEndpoint) {
            fields.insert(
                "introspection_endpoint".into(),
                json!("http://introspection.internal.example/introspect"),
            );
        }
    }
    document
}
