//! Dynamic client registration (RFC 7591).

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use url::Url;

use crate::http::{Exchange, Http, Req};

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// `token_endpoint_auth_method: none`.
    Public,
    /// `client_secret_post`, so a wrong secret is easy to send.
    Confidential,
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_uri: String,
    pub auth_method: String,
    pub name: String,
}

/// The registration body the suite sends.
pub fn metadata(kind: ClientKind, name: &str, redirect_uris: &[&str]) -> Value {
    json!({
        "client_name": name,
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": match kind {
            ClientKind::Public => "none",
            ClientKind::Confidential => "client_secret_post",
        },
    })
}

/// POSTs a registration document and returns the raw exchange.
pub async fn post(http: &Http, endpoint: &Url, body: &Value) -> anyhow::Result<Exchange> {
    http.send(
        Req::post(endpoint.clone())
            .header("Accept", "application/json")
            .json(body),
    )
    .await
}

/// Registers a client and checks the minimum the flow needs (a `client_id`).
pub async fn register(
    http: &Http,
    endpoint: &Url,
    kind: ClientKind,
    name: &str,
    redirect_uri: &str,
) -> anyhow::Result<Client> {
    let body = metadata(kind, name, &[redirect_uri]);
    let ex = post(http, endpoint, &body).await?;
    if !(200..300).contains(&ex.status) {
        bail!("registration was refused:\n{}", ex.evidence(&http.redactor));
    }
    let doc = ex.json().context("the registration response is not JSON")?;
    let client_id = doc
        .get("client_id")
        .and_then(Value::as_str)
        .context("the registration response has no client_id")?
        .to_owned();
    let client_secret = doc
        .get("client_secret")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(secret) = &client_secret {
        http.redactor.add(secret, "client_secret");
    }
    if kind == ClientKind::Confidential && client_secret.is_none() {
        bail!("a confidential registration returned no client_secret");
    }
    let auth_method = doc
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
        .unwrap_or(match kind {
            ClientKind::Public => "none",
            ClientKind::Confidential => "client_secret_post",
        })
        .to_owned();
    Ok(Client {
        client_id,
        client_secret,
        redirect_uri: redirect_uri.to_owned(),
        auth_method,
        name: name.to_owned(),
    })
}
