//! The authorization-code flow with PKCE: building authorization URLs (also wrong ones, for
//! negative checks), walking them with the scripted browser, and the token endpoint requests.

use anyhow::{Context as _, bail};
use oauth2::PkceCodeChallenge;
use serde_json::Value;
use url::Url;

use super::browser::{Arrival, Browser, Script};
use super::registration::Client;
use crate::http::{Exchange, Http, Req};

/// A PKCE pair.
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
    pub method: String,
}

impl Pkce {
    /// A fresh S256 pair (43-character verifier from 32 random bytes).
    pub fn s256() -> Pkce {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        Pkce {
            verifier: verifier.secret().clone(),
            challenge: challenge.as_str().to_owned(),
            method: challenge.method().as_str().to_owned(),
        }
    }
}

/// The query of an authorization request; `None` leaves a parameter out.
#[derive(Debug, Clone, Default)]
pub struct AuthParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub resource: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
}

impl AuthParams {
    /// A complete, valid request for `client` with a fresh S256 challenge.
    pub fn for_client(
        client: &Client,
        pkce: &Pkce,
        state: &str,
        resource: Option<&str>,
        scope: Option<&str>,
    ) -> AuthParams {
        AuthParams {
            response_type: Some("code".into()),
            client_id: Some(client.client_id.clone()),
            redirect_uri: Some(client.redirect_uri.clone()),
            scope: scope.map(str::to_owned),
            state: Some(state.to_owned()),
            resource: resource.map(str::to_owned),
            code_challenge: Some(pkce.challenge.clone()),
            code_challenge_method: Some(pkce.method.clone()),
        }
    }

    pub fn url(&self, endpoint: &Url) -> Url {
        let mut url = endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            for (key, value) in [
                ("response_type", &self.response_type),
                ("client_id", &self.client_id),
                ("redirect_uri", &self.redirect_uri),
                ("scope", &self.scope),
                ("state", &self.state),
                ("resource", &self.resource),
                ("code_challenge", &self.code_challenge),
                ("code_challenge_method", &self.code_challenge_method),
            ] {
                if let Some(value) = value {
                    q.append_pair(key, value);
                }
            }
        }
        url
    }
}

/// The parameters of the final redirect to the client.
#[derive(Debug, Clone, Default)]
pub struct Callback {
    pub url: Option<Url>,
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub iss: Option<String>,
}

impl Callback {
    pub fn from_url(url: &Url) -> Callback {
        let mut cb = Callback {
            url: Some(url.clone()),
            ..Callback::default()
        };
        for (k, v) in url.query_pairs() {
            let v = Some(v.into_owned());
            match k.as_ref() {
                "code" => cb.code = v,
                "state" => cb.state = v,
                "error" => cb.error = v,
                "error_description" => cb.error_description = v,
                "iss" => cb.iss = v,
                _ => {}
            }
        }
        cb
    }
}

/// Where an authorization walk ended.
#[derive(Debug, Clone)]
pub struct AuthOutcome {
    pub arrival: Arrival,
    /// Every exchange of the walk.
    pub trail: Vec<Exchange>,
}

impl AuthOutcome {
    pub fn callback(&self) -> Option<Callback> {
        match &self.arrival {
            Arrival::Callback(url) => Some(Callback::from_url(url)),
            _ => None,
        }
    }

    /// The first exchange that answered a request to `path` (e.g. the GitHub callback).
    pub fn exchange_at(&self, pred: impl Fn(&Url) -> bool) -> Option<&Exchange> {
        self.trail.iter().find(|ex| pred(&ex.request.url))
    }

    /// A one-line description of where the walk stopped, with the last exchange as evidence.
    pub fn describe(&self, http: &Http) -> String {
        match &self.arrival {
            Arrival::Callback(url) => format!(
                "redirected to the client: {}",
                http.redactor.redact(url.as_str())
            ),
            Arrival::Page(ex) => format!("stopped at a page:\n{}", ex.evidence(&http.redactor)),
            Arrival::Offsite(url) => format!("redirected off this machine to {url}"),
        }
    }
}

/// Walks an authorization URL in `browser` with the given script.
pub async fn authorize(
    browser: &mut Browser,
    url: Url,
    script: &Script,
) -> anyhow::Result<AuthOutcome> {
    let arrival = browser.walk(url, script).await?;
    if let Arrival::Callback(url) = &arrival {
        let cb = Callback::from_url(url);
        if let Some(code) = &cb.code {
            browser.http().redactor.add(code, "code");
        }
    }
    Ok(AuthOutcome {
        arrival,
        trail: std::mem::take(&mut browser.trail),
    })
}

/// The token response fields the suite uses.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<u64>,
    pub token_type: Option<String>,
    pub scope: Option<String>,
    pub exchange: Exchange,
    /// When the token response arrived, which `expires_in` counts from.
    pub received: std::time::Instant,
}

impl Tokens {
    /// Whether half the access token's announced lifetime is gone: a check that makes many
    /// requests with one token logs in again then, rather than having a slow server's
    /// short-lived token expire under it. Without `expires_in`, never.
    pub fn past_half_life(&self) -> bool {
        self.expires_in
            .is_some_and(|s| self.received.elapsed().as_secs_f64() >= s as f64 / 2.0)
    }
}

/// Adds the client's authentication (or its `client_id` for public clients) to token-endpoint
/// form fields.
pub fn with_client_auth(
    client: &Client,
    mut fields: Vec<(String, String)>,
) -> Vec<(String, String)> {
    fields.push(("client_id".into(), client.client_id.clone()));
    if let Some(secret) = &client.client_secret {
        fields.push(("client_secret".into(), secret.clone()));
    }
    fields
}

/// POSTs form fields to the token endpoint.
pub async fn token_request(
    http: &Http,
    endpoint: &Url,
    fields: &[(String, String)],
) -> anyhow::Result<Exchange> {
    http.send(
        Req::post(endpoint.clone())
            .header("Accept", "application/json")
            .form(fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    )
    .await
}

/// The authorization-code grant for `client`.
pub async fn exchange_code(
    http: &Http,
    endpoint: &Url,
    client: &Client,
    code: &str,
    verifier: Option<&str>,
    resource: Option<&str>,
) -> anyhow::Result<Exchange> {
    let mut fields = vec![
        ("grant_type".to_owned(), "authorization_code".to_owned()),
        ("code".to_owned(), code.to_owned()),
        ("redirect_uri".to_owned(), client.redirect_uri.clone()),
    ];
    if let Some(v) = verifier {
        fields.push(("code_verifier".into(), v.into()));
    }
    if let Some(r) = resource {
        fields.push(("resource".into(), r.into()));
    }
    token_request(http, endpoint, &with_client_auth(client, fields)).await
}

/// The refresh-token grant.
pub async fn refresh(
    http: &Http,
    endpoint: &Url,
    client: &Client,
    refresh_token: &str,
    resource: Option<&str>,
) -> anyhow::Result<Exchange> {
    let mut fields = vec![
        ("grant_type".to_owned(), "refresh_token".to_owned()),
        ("refresh_token".to_owned(), refresh_token.to_owned()),
    ];
    if let Some(r) = resource {
        fields.push(("resource".into(), r.into()));
    }
    token_request(http, endpoint, &with_client_auth(client, fields)).await
}

/// Reads a successful token response and registers its secrets with the redactor.
pub fn parse_tokens(http: &Http, ex: Exchange) -> anyhow::Result<Tokens> {
    if ex.status != 200 {
        bail!(
            "the token endpoint refused:\n{}",
            ex.evidence(&http.redactor)
        );
    }
    let doc = ex.json().context("the token response is not JSON")?;
    let access_token = doc
        .get("access_token")
        .and_then(Value::as_str)
        .context("the token response has no access_token")?
        .to_owned();
    http.redactor.add(&access_token, "access_token");
    let refresh_token = doc
        .get("refresh_token")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(r) = &refresh_token {
        http.redactor.add(r, "refresh_token");
    }
    Ok(Tokens {
        access_token,
        refresh_token,
        expires_in: doc.get("expires_in").and_then(Value::as_u64),
        token_type: doc
            .get("token_type")
            .and_then(Value::as_str)
            .map(str::to_owned),
        scope: doc.get("scope").and_then(Value::as_str).map(str::to_owned),
        exchange: ex,
        received: std::time::Instant::now(),
    })
}

/// A fresh random `state` of URL-safe characters: what the suite's logins send, so that one
/// server's trouble with special characters fails AUTH-FLOW-08 alone instead of every login.
pub fn random_state() -> String {
    use rand::Rng as _;
    let n: u128 = rand::rng().random();
    format!("st{n:032x}")
}

/// The fixed part of [`special_state`]: characters that need encoding in a query (space, `+`,
/// `/`) and the unreserved punctuation. It is no secret, so evidence may show it.
pub const SPECIAL_STATE_PREFIX: &str = "st a+b/";
pub const SPECIAL_STATE_SUFFIX: &str = "~.-_";

/// A fresh random `state` with characters that need encoding, so echoing it is a real test
/// (AUTH-FLOW-08 sends it).
pub fn special_state() -> String {
    use rand::Rng as _;
    let n: u64 = rand::rng().random();
    format!("{SPECIAL_STATE_PREFIX}{n:016x}{SPECIAL_STATE_SUFFIX}")
}
