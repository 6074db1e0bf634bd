//! RFC 8414 authorization server metadata.

use axum::{Json, extract::State};
use serde_json::{Value, json};

use crate::AppState;

pub async fn authorization_server(State(state): State<AppState>) -> Json<Value> {
    let config = &state.config;
    let issuer = if crate::injected!(config, WrongIssuer) {
        format!("{}/", config.issuer())
    } else {
        config.issuer()
    };
    let challenge_methods: &[&str] = if crate::injected!(config, OmitS256) {
        &["plain"]
    } else {
        &["S256"]
    };
    let auth_methods = ["none", "client_secret_post", "client_secret_basic"];
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": config.url("/authorize"),
        "token_endpoint": config.url("/token"),
        "registration_endpoint": config.url("/register"),
        "revocation_endpoint": config.url("/revoke"),
        "scopes_supported": [config.mcp_scope, "offline_access"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": challenge_methods,
        "authorization_response_iss_parameter_supported": true,
    }))
}
