//! In-memory state of the authorization server: registered clients, pending
//! authorizations, upstream `state` values, authorization codes and tokens.
//!
//! Secrets that clients present later (codes, access and refresh tokens) are stored
//! under their SHA-256 digest, so the maps never hold them in the clear and a lookup
//! does not compare secret bytes directly.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A random, URL-safe secret with 256 bits of entropy.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A random identifier with 128 bits of entropy, as lowercase hex.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// How long an expired access token is still recognised as "expired".
const EXPIRED_TOKEN_MEMORY: Duration = Duration::from_secs(600);

/// The digest a secret is stored under.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

/// A client registered through RFC 7591 dynamic registration.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    /// Digest of the secret for confidential clients; `None` for public clients.
    pub secret_digest: Option<[u8; 32]>,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
}

/// A validated `/authorize` request waiting for the user's consent.
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    pub client_id: String,
    pub redirect_uri: String,
    pub client_state: Option<String>,
    pub code_challenge: Option<String>,
    pub scope: String,
    pub resource: String,
    /// Must come back in the consent form.
    pub csrf_token: String,
    /// Must come back in the consent cookie: ties the form to the browser that saw it.
    pub browser_binding: String,
    pub expires_at: Instant,
}

/// The GitHub user an MCP grant belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubUser {
    pub login: String,
    pub id: u64,
}

/// One user's authorization of one client: what every token issued from it shares.
/// The GitHub token lives here and never leaves the server.
#[derive(Debug, Clone)]
pub struct Grant {
    pub user: GitHubUser,
    pub client_id: String,
    pub scope: String,
    pub resource: String,
    pub github_token: String,
}

/// An issued authorization code.
#[derive(Debug, Clone)]
pub struct AuthorizationCode {
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub grant: Grant,
    pub expires_at: Instant,
}

#[derive(Debug, Clone)]
pub struct AccessToken {
    pub grant_id: String,
    pub expires_at: Instant,
}

#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub grant_id: String,
    pub expires_at: Instant,
}

/// What a redeemed code left behind, so that a second redemption can revoke the
/// grant it produced (OAuth 2.1 section 4.1.3).
#[derive(Debug, Clone)]
struct RedeemedCode {
    grant_id: String,
    expires_at: Instant,
}

#[derive(Default)]
struct Maps {
    clients: HashMap<String, Client>,
    pending: HashMap<String, PendingAuthorization>,
    /// Upstream `state` value -> the approved pending authorization.
    upstream_states: HashMap<String, PendingAuthorization>,
    codes: HashMap<[u8; 32], AuthorizationCode>,
    redeemed_codes: HashMap<[u8; 32], RedeemedCode>,
    grants: HashMap<String, Grant>,
    access_tokens: HashMap<[u8; 32], AccessToken>,
    refresh_tokens: HashMap<[u8; 32], RefreshToken>,
    /// Client id -> the GitHub token of its latest login; only the
    /// `github-token-per-client` fault keeps it.
    #[cfg(feature = "fault-injection")]
    client_github_tokens: HashMap<String, String>,
}

/// Why a code could not be redeemed.
#[derive(Debug, PartialEq, Eq)]
pub enum RedeemError {
    Unknown,
    /// The code was redeemed before; the grant it produced has now been revoked.
    Reused,
}

/// Tokens issued together.
#[derive(Debug)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
}

/// The state store. A single mutex is plenty: every critical section is a few map
/// operations and never awaits.
#[derive(Default)]
pub struct Store {
    maps: Mutex<Maps>,
}

impl Store {
    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        // A panic while holding the lock cannot leave the maps half-updated in a way
        // that matters more than refusing all further requests would.
        self.maps
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn register_client(&self, client: Client) {
        self.maps().clients.insert(client.client_id.clone(), client);
    }

    pub fn client(&self, client_id: &str) -> Option<Client> {
        self.maps().clients.get(client_id).cloned()
    }

    pub fn insert_pending(&self, id: String, pending: PendingAuthorization) {
        let mut maps = self.maps();
        let now = Instant::now();
        maps.pending.retain(|_, pending| pending.expires_at > now);
        maps.pending.insert(id, pending);
    }

    /// Removes and returns a pending authorization: a consent decision is single use.
    pub fn take_pending(&self, id: &str) -> Option<PendingAuthorization> {
        let pending = self.maps().pending.remove(id)?;
        (pending.expires_at > Instant::now()).then_some(pending)
    }

    /// Puts back a pending authorization whose consent form failed validation, so a
    /// forged submission cannot cancel the real user's pending request.
    pub fn restore_pending(&self, id: String, pending: PendingAuthorization) {
        self.maps().pending.insert(id, pending);
    }

    pub fn insert_upstream_state(&self, state: String, pending: PendingAuthorization) {
        let mut maps = self.maps();
        let now = Instant::now();
        maps.upstream_states
            .retain(|_, pending| pending.expires_at > now);
        maps.upstream_states.insert(state, pending);
    }

    /// Consumes an upstream `state`: each is valid for exactly one callback.
    pub fn take_upstream_state(&self, state: &str, consume: bool) -> Option<PendingAuthorization> {
        let mut maps = self.maps();
        let pending = if consume {
            maps.upstream_states.remove(state)?
        } else {
            maps.upstream_states.get(state)?.clone()
        };
        (pending.expires_at > Instant::now()).then_some(pending)
    }

    pub fn insert_code(&self, code: &str, authorization: AuthorizationCode) {
        let mut maps = self.maps();
        let now = Instant::now();
        maps.codes.retain(|_, code| code.expires_at > now);
        maps.redeemed_codes.retain(|_, code| code.expires_at > now);
        maps.codes.insert(digest(code), authorization);
    }

    /// Looks a code up without consuming it, for checks that must pass before redemption.
    pub fn peek_code(&self, code: &str) -> Option<AuthorizationCode> {
        let maps = self.maps();
        maps.codes
            .get(&digest(code))
            .filter(|code| code.expires_at > Instant::now())
            .cloned()
    }

    /// Redeems a code once, creating its grant and first tokens. A second redemption
    /// revokes everything the first one issued.
    pub fn redeem_code(
        &self,
        code: &str,
        allow_reuse: bool,
        access_ttl: Duration,
        refresh_ttl: Duration,
    ) -> Result<(AuthorizationCode, IssuedTokens), RedeemError> {
        let key = digest(code);
        let mut maps = self.maps();
        let now = Instant::now();
        let Some(authorization) = maps.codes.remove(&key).filter(|code| code.expires_at > now)
        else {
            if let Some(redeemed) = maps.redeemed_codes.remove(&key) {
                revoke_grant_locked(&mut maps, &redeemed.grant_id);
                return Err(RedeemError::Reused);
            }
            return Err(RedeemError::Unknown);
        };
        if allow_reuse {
            maps.codes.insert(key, authorization.clone());
        }
        let grant_id = random_id();
        maps.grants
            .insert(grant_id.clone(), authorization.grant.clone());
        maps.redeemed_codes.insert(
            key,
            RedeemedCode {
                grant_id: grant_id.clone(),
                expires_at: authorization.expires_at,
            },
        );
        let tokens = issue_locked(&mut maps, grant_id, access_ttl, refresh_ttl);
        Ok((authorization, tokens))
    }

    /// Exchanges a refresh token for new tokens. With `rotate`, the old refresh token
    /// stops working (OAuth 2.1 section 4.3.1).
    pub fn refresh(
        &self,
        refresh_token: &str,
        rotate: bool,
        access_ttl: Duration,
        refresh_ttl: Duration,
    ) -> Option<(Grant, IssuedTokens)> {
        let key = digest(refresh_token);
        let mut maps = self.maps();
        let now = Instant::now();
        let current = maps
            .refresh_tokens
            .get(&key)
            .filter(|token| token.expires_at > now)?
            .clone();
        let grant = maps.grants.get(&current.grant_id)?.clone();
        if rotate {
            maps.refresh_tokens.remove(&key);
        }
        let tokens = issue_locked(&mut maps, current.grant_id, access_ttl, refresh_ttl);
        Some((grant, tokens))
    }

    /// The refresh token's grant, without using it.
    pub fn refresh_token_grant(&self, refresh_token: &str) -> Option<(String, Grant)> {
        let maps = self.maps();
        let token = maps.refresh_tokens.get(&digest(refresh_token))?;
        let grant = maps.grants.get(&token.grant_id)?;
        Some((token.grant_id.clone(), grant.clone()))
    }

    /// The access token's grant, if the token exists. Expiry is the caller's to judge.
    pub fn access_token(&self, access_token: &str) -> Option<(AccessToken, Grant)> {
        let maps = self.maps();
        let token = maps.access_tokens.get(&digest(access_token))?.clone();
        let grant = maps.grants.get(&token.grant_id)?.clone();
        Some((token, grant))
    }

    pub fn grant(&self, grant_id: &str) -> Option<Grant> {
        self.maps().grants.get(grant_id).cloned()
    }

    /// Whether any live grant holds this GitHub token: lets the resource server name a
    /// GitHub token presented as a bearer token for what it is in its logs.
    pub fn is_github_token(&self, token: &str) -> bool {
        self.maps()
            .grants
            .values()
            .any(|grant| grant.github_token == token)
    }

    /// The grant holding a GitHub token; used only by the `accept-github-tokens` fault.
    #[cfg(feature = "fault-injection")]
    pub fn grant_by_github_token(&self, token: &str) -> Option<(String, Grant)> {
        self.maps()
            .grants
            .iter()
            .find(|(_, grant)| grant.github_token == token)
            .map(|(id, grant)| (id.clone(), grant.clone()))
    }

    /// Remembers a GitHub token under its client; used only by the
    /// `github-token-per-client` fault.
    #[cfg(feature = "fault-injection")]
    pub fn cache_client_github_token(&self, client_id: &str, github_token: &str) {
        self.maps()
            .client_github_tokens
            .insert(client_id.to_owned(), github_token.to_owned());
    }

    /// The GitHub token last cached for a client; used only by the
    /// `github-token-per-client` fault.
    #[cfg(feature = "fault-injection")]
    pub fn client_github_token(&self, client_id: &str) -> Option<String> {
        self.maps().client_github_tokens.get(client_id).cloned()
    }

    pub fn revoke_access_token(&self, access_token: &str) {
        self.maps().access_tokens.remove(&digest(access_token));
    }

    /// Revokes a grant and every token issued from it.
    pub fn revoke_grant(&self, grant_id: &str) {
        revoke_grant_locked(&mut self.maps(), grant_id);
    }
}

fn issue_locked(
    maps: &mut Maps,
    grant_id: String,
    access_ttl: Duration,
    refresh_ttl: Duration,
) -> IssuedTokens {
    let now = Instant::now();
    // Expired tokens linger for a while so that a client presenting one is told it
    // expired rather than that it is unknown; validity is judged at use.
    maps.access_tokens
        .retain(|_, token| token.expires_at + EXPIRED_TOKEN_MEMORY > now);
    maps.refresh_tokens
        .retain(|_, token| token.expires_at > now);
    let access_token = random_secret();
    let refresh_token = random_secret();
    maps.access_tokens.insert(
        digest(&access_token),
        AccessToken {
            grant_id: grant_id.clone(),
            expires_at: now + access_ttl,
        },
    );
    maps.refresh_tokens.insert(
        digest(&refresh_token),
        RefreshToken {
            grant_id,
            expires_at: now + refresh_ttl,
        },
    );
    IssuedTokens {
        access_token,
        refresh_token,
    }
}

fn revoke_grant_locked(maps: &mut Maps, grant_id: &str) {
    maps.grants.remove(grant_id);
    maps.access_tokens
        .retain(|_, token| token.grant_id != grant_id);
    maps.refresh_tokens
        .retain(|_, token| token.grant_id != grant_id);
}
