//! The mock GitHub's admin endpoints (`/_mock/journal`, `/_mock/revoke`, `/_mock/users`), used
//! over HTTP so the suite works the same against a mock in this process or in another one.

use anyhow::Context as _;
use serde_json::{Value, json};
use url::Url;

use crate::http::{Http, Req};

pub use mock_github::{IssuedToken, RecordedRequest as JournalEntry};

/// The bearer token of a request to the API (`Authorization: Bearer x` or `token x`).
pub fn bearer_of(entry: &JournalEntry) -> Option<&str> {
    let value = entry.header("authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then_some(token.trim())
}

/// A client for the mock's admin endpoints.
#[derive(Clone)]
pub struct MockAdmin {
    pub http: Http,
    /// The mock's base URL; `None` in live mode, where every call refuses with
    /// [`live_reason::NEEDS_MOCK`](crate::checks::live_reason::NEEDS_MOCK) and sends nothing.
    pub base: Option<Url>,
}

impl MockAdmin {
    /// The URL of an admin endpoint, or the live-mode refusal.
    fn at(&self, path: &str) -> anyhow::Result<Url> {
        match &self.base {
            Some(base) => Ok(base.join(path)?),
            None => Err(crate::checks::refuse(
                crate::checks::live_reason::NEEDS_MOCK,
            )),
        }
    }

    pub async fn journal(&self) -> anyhow::Result<Vec<JournalEntry>> {
        let ex = self.http.send(Req::get(self.at("/_mock/journal")?)).await?;
        anyhow::ensure!(
            ex.status == 200,
            "GET /_mock/journal answered {}",
            ex.status
        );
        let entries: Vec<JournalEntry> = serde_json::from_slice(&ex.body)
            .context("the mock journal is not a JSON list of requests")?;
        for e in &entries {
            if let Some(token) = bearer_of(e) {
                self.http.redactor.add(token, "github-token");
            }
        }
        Ok(entries)
    }

    /// Every GitHub token the mock issued.
    pub async fn tokens(&self) -> anyhow::Result<Vec<IssuedToken>> {
        let ex = self
            .http
            .send(Req::get(self.at(mock_github::TOKENS_PATH)?))
            .await?;
        anyhow::ensure!(
            ex.status == 200,
            "GET {} answered {}",
            mock_github::TOKENS_PATH,
            ex.status
        );
        let tokens: Vec<IssuedToken> =
            serde_json::from_slice(&ex.body).context("the mock's token list is not JSON")?;
        for t in &tokens {
            self.http.redactor.add(&t.access_token, "github-token");
        }
        Ok(tokens)
    }

    /// Revokes a GitHub access token at the mock.
    pub async fn revoke(&self, access_token: &str) -> anyhow::Result<()> {
        let ex = self
            .http
            .send(Req::post(self.at("/_mock/revoke")?).json(&json!({"access_token": access_token})))
            .await?;
        anyhow::ensure!(
            (200..300).contains(&ex.status),
            "POST /_mock/revoke answered {}",
            ex.status
        );
        Ok(())
    }

    /// The fixture profiles, as `GET /user` returns them.
    pub async fn users(&self) -> anyhow::Result<Vec<Value>> {
        let ex = self.http.send(Req::get(self.at("/_mock/users")?)).await?;
        anyhow::ensure!(ex.status == 200, "GET /_mock/users answered {}", ex.status);
        let doc: Value =
            serde_json::from_slice(&ex.body).context("GET /_mock/users is not JSON")?;
        Ok(match doc {
            Value::Array(items) => items,
            Value::Object(map) => map.into_values().collect(),
            _ => Vec::new(),
        })
    }

    /// The profile of `login`.
    pub async fn user(&self, login: &str) -> anyhow::Result<Value> {
        self.users()
            .await?
            .into_iter()
            .find(|u| u.get("login").and_then(Value::as_str) == Some(login))
            .with_context(|| format!("the mock has no user {login:?}"))
    }
}
