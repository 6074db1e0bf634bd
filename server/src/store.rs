//! In-memory state of the authorization server: registered clients, pending
//! authorizations, upstream `state` values, authorization codes, grants and tokens.
//!
//! Secrets that clients present later (codes, access and refresh tokens, and the
//! GitHub token a grant holds) are looked up by their SHA-256 digest, so the maps never
//! hold them as keys in the clear and a lookup never compares secret bytes directly.
//!
//! Memory stays bounded under anonymous load: every entry that a request without
//! credentials can create (clients, consent pages, upstream states) has a lifetime and
//! a cap, and everything else (codes, grants, tokens) expires. Expiry is an ordered
//! index per map, so pruning costs only the entries that actually expired.
//!
//! The maps sit behind three locks, so that the bearer check on every MCP request
//! never waits on a registration or a login: clients, the browser legs of logins
//! (consent pages and upstream states), and codes, grants and tokens. The last is a
//! read-write lock whose read side is all that token validation takes.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    hash::Hash,
    sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, MAX_DURATION};

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

/// Compares two secrets in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Only for the faults that break a secret's comparison on purpose: the differences XORed
/// together instead of ORed, so that two equal differences cancel out.
#[cfg(feature = "fault-injection")]
pub fn xor_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff ^ (x ^ y)) == 0
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

/// The current instant on tokio's clock, which tests can pause and advance.
pub fn now() -> Instant {
    Instant::now()
}

/// `now + ttl` without overflow: lifetimes are capped at [`MAX_DURATION`] when the
/// configuration is read, and this caps them again for any other caller. A century
/// after any monotonic clock's start fits in an `Instant`, so the fallback (expired at
/// once, the safe side) is for clocks this server does not know.
pub fn deadline(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl.min(MAX_DURATION)).unwrap_or(now)
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
    /// Must come back in the consent cookie, on the consent form and on GitHub's
    /// callback: ties the whole login to the browser that saw the consent page.
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
    /// The scope of this token: the grant's, or narrower when a refresh asked for less.
    pub scope: String,
    /// Cancelled when this token or its grant is revoked or the grant expires, so that
    /// streams opened with the token end with it.
    pub ended: CancellationToken,
}

#[derive(Debug, Clone)]
struct RefreshToken {
    grant_id: String,
    expires_at: Instant,
}

/// What a redeemed code left behind, so that a second redemption can revoke the
/// grant it produced (OAuth 2.1 section 4.1.3).
#[derive(Debug, Clone)]
struct RedeemedCode {
    grant_id: String,
    client_id: String,
}

/// The GitHub profile last read for a grant, kept with the grant (so never shared
/// with another user's grant, and gone with it) to be revalidated conditionally.
#[derive(Debug, Clone)]
pub struct CachedProfile {
    pub profile: Arc<serde_json::Value>,
    /// GitHub's `ETag` for it, for `If-None-Match`.
    pub etag: Option<String>,
    /// When GitHub last confirmed it (200 or 304).
    pub checked_at: Instant,
    /// The tool's result built from this profile, serialized by the stateless fast path on
    /// first use and shared by every copy of this entry; a new profile starts empty.
    pub rendered: Arc<std::sync::OnceLock<String>>,
}

/// A grant and everything issued from it, so revoking it touches only its own entries.
#[derive(Debug)]
struct GrantEntry {
    grant: Grant,
    /// Digests of its access tokens, refresh tokens and rotated-out refresh tokens.
    tokens: HashSet<[u8; 32]>,
    ended: CancellationToken,
    /// Its own lock, so that keeping a profile needs only the read side of the map's.
    profile: Mutex<Option<CachedProfile>>,
}

/// A map whose entries expire, with an index ordered by expiry: pruning pops only
/// what expired, and the oldest entry is the first to go when a cap is reached.
struct Expiring<K, V> {
    entries: HashMap<K, (Instant, V)>,
    order: BTreeSet<(Instant, K)>,
}

impl<K: Hash + Ord + Clone, V> Default for Expiring<K, V> {
    fn default() -> Self {
        Expiring {
            entries: HashMap::new(),
            order: BTreeSet::new(),
        }
    }
}

impl<K: Hash + Ord + Clone, V> Expiring<K, V> {
    fn insert(&mut self, key: K, value: V, expires_at: Instant) {
        if let Some((old, _)) = self.entries.insert(key.clone(), (expires_at, value)) {
            self.order.remove(&(old, key.clone()));
        }
        self.order.insert((expires_at, key));
    }

    fn remove(&mut self, key: &K) -> Option<(Instant, V)> {
        let (expires_at, value) = self.entries.remove(key)?;
        self.order.remove(&(expires_at, key.clone()));
        Some((expires_at, value))
    }

    fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|(_, value)| value)
    }

    /// The entry, unless it expired by `now`: readers that do not prune see the map
    /// as pruning would leave it.
    fn get_live<Q>(&self, key: &Q, now: Instant) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.entries
            .get(key)
            .filter(|(expires_at, _)| *expires_at > now)
            .map(|(_, value)| value)
    }

    fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.entries.get_mut(key).map(|(_, value)| value)
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Removes the entry that expires first if it has expired by `now`.
    fn pop_expired(&mut self, now: Instant) -> Option<(K, V)> {
        let (expires_at, _) = self.order.first()?;
        if *expires_at > now {
            return None;
        }
        self.pop_oldest()
    }

    /// Removes the entry that expires first.
    fn pop_oldest(&mut self) -> Option<(K, V)> {
        let (_, key) = self.order.pop_first()?;
        let (_, value) = self.entries.remove(&key)?;
        Some((key, value))
    }

    /// Evicts the oldest entries until there is room for one more under `cap`.
    fn make_room(&mut self, cap: usize) {
        while self.len() >= cap.max(1) && self.pop_oldest().is_some() {}
    }
}

/// The bounds and lifetimes the store enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_clients: usize,
    pub unused_client_ttl: Duration,
    pub max_pending: usize,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub grant_ttl: Duration,
}

impl Limits {
    pub fn new(config: &Config) -> Limits {
        Limits {
            max_clients: config.max_clients,
            unused_client_ttl: config.unused_client_ttl,
            max_pending: config.max_pending_authorizations,
            access_ttl: if crate::injected!(config, LongLivedAccessTokens) {
                Duration::from_secs(30 * 24 * 3600)
            } else {
                config.access_token_ttl
            },
            refresh_ttl: config.refresh_token_ttl,
            grant_ttl: config.grant_ttl,
        }
    }
}

#[derive(Default)]
struct ClientMaps {
    clients: HashMap<String, Arc<Client>>,
    /// Clients that never obtained a grant, by when they are forgotten.
    unused_clients: Expiring<String, ()>,
}

/// The browser legs of logins in progress.
#[derive(Default)]
struct AuthorizationMaps {
    pending: Expiring<String, PendingAuthorization>,
    /// Upstream `state` value -> the approved pending authorization.
    upstream_states: Expiring<String, PendingAuthorization>,
}

/// Codes, grants and everything issued from them.
#[derive(Default)]
struct GrantMaps {
    codes: Expiring<[u8; 32], AuthorizationCode>,
    redeemed_codes: Expiring<[u8; 32], RedeemedCode>,
    grants: Expiring<String, GrantEntry>,
    /// Digest of a grant's GitHub token -> the grant.
    github_tokens: HashMap<[u8; 32], String>,
    /// Keyed by digest; an entry outlives its token's expiry by
    /// [`EXPIRED_TOKEN_MEMORY`] so a late client is told its token expired.
    access_tokens: Expiring<[u8; 32], AccessToken>,
    refresh_tokens: Expiring<[u8; 32], RefreshToken>,
    /// Refresh tokens replaced by rotation -> their grant: presenting one again means
    /// it was stolen (RFC 9700 section 4.14.2).
    rotated_refresh_tokens: Expiring<[u8; 32], String>,
    /// Client id -> the GitHub token of its latest login; only the
    /// `github-token-per-client` fault keeps it.
    #[cfg(feature = "fault-injection")]
    client_github_tokens: HashMap<String, String>,
}

/// Why a code could not be redeemed.
#[derive(Debug, PartialEq, Eq)]
pub enum RedeemError {
    Unknown,
    /// The code was redeemed before by the same client; the grant it produced has now
    /// been revoked.
    Reused,
}

/// Why a refresh token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum RefreshError {
    Unknown,
    /// A refresh token that rotation had replaced came back; the grant is revoked.
    Reused,
}

/// Registration refused because every slot holds a client that is in use.
#[derive(Debug, PartialEq, Eq)]
pub struct ClientsFull;

/// Tokens issued together.
#[derive(Debug)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    /// The access token's scope.
    pub scope: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// The state store. Every critical section is a few map operations and never awaits;
/// none of the three locks is taken while another of them is held (a grant's own
/// profile lock is taken inside the grants' lock, and nothing inside it).
pub struct Store {
    clients: Mutex<ClientMaps>,
    authorizations: Mutex<AuthorizationMaps>,
    grants: RwLock<GrantMaps>,
    limits: Limits,
}

// A panic while holding a lock cannot leave the maps half-updated in a way that
// matters more than refusing all further requests would, so poisoning is ignored.
impl Store {
    pub fn new(limits: Limits) -> Store {
        Store {
            clients: Mutex::default(),
            authorizations: Mutex::default(),
            grants: RwLock::default(),
            limits,
        }
    }

    /// The clients, with those forgotten by now removed first.
    fn clients(&self) -> MutexGuard<'_, ClientMaps> {
        let mut maps = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        maps.prune(now());
        maps
    }

    /// The logins in progress, with those expired by now removed first.
    fn authorizations(&self) -> MutexGuard<'_, AuthorizationMaps> {
        let mut maps = self
            .authorizations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        maps.prune(now());
        maps
    }

    /// Codes, grants and tokens for a change, with everything expired by now removed
    /// first.
    fn grants_mut(&self) -> RwLockWriteGuard<'_, GrantMaps> {
        let mut maps = self
            .grants
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        maps.prune(now());
        maps
    }

    /// Codes, grants and tokens to read. Nothing is pruned, so readers look entries up
    /// with [`Expiring::get_live`].
    fn grants(&self) -> RwLockReadGuard<'_, GrantMaps> {
        self.grants
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn register_client(&self, client: Client) -> Result<(), ClientsFull> {
        let mut maps = self.clients();
        while maps.clients.len() >= self.limits.max_clients.max(1) {
            let (oldest, ()) = maps.unused_clients.pop_oldest().ok_or(ClientsFull)?;
            maps.clients.remove(&oldest);
        }
        let forget_at = deadline(now(), self.limits.unused_client_ttl);
        maps.unused_clients
            .insert(client.client_id.clone(), (), forget_at);
        maps.clients
            .insert(client.client_id.clone(), Arc::new(client));
        Ok(())
    }

    pub fn client(&self, client_id: &str) -> Option<Arc<Client>> {
        self.clients().clients.get(client_id).cloned()
    }

    pub fn insert_pending(&self, id: String, pending: PendingAuthorization) {
        let mut maps = self.authorizations();
        maps.pending.make_room(self.limits.max_pending);
        let expires_at = pending.expires_at;
        maps.pending.insert(id, pending, expires_at);
    }

    /// Removes and returns a pending authorization: a consent decision is single use.
    pub fn take_pending(&self, id: &str) -> Option<PendingAuthorization> {
        self.authorizations()
            .pending
            .remove(&id.to_owned())
            .map(|(_, pending)| pending)
    }

    /// Puts back a pending authorization whose consent form failed validation, so a
    /// forged submission cannot cancel the real user's pending request.
    pub fn restore_pending(&self, id: String, pending: PendingAuthorization) {
        self.insert_pending(id, pending);
    }

    pub fn insert_upstream_state(&self, state: String, pending: PendingAuthorization) {
        let mut maps = self.authorizations();
        maps.upstream_states.make_room(self.limits.max_pending);
        let expires_at = pending.expires_at;
        maps.upstream_states.insert(state, pending, expires_at);
    }

    /// Consumes an upstream `state`: each is valid for exactly one callback.
    pub fn take_upstream_state(&self, state: &str, consume: bool) -> Option<PendingAuthorization> {
        let mut maps = self.authorizations();
        let key = state.to_owned();
        if consume {
            maps.upstream_states
                .remove(&key)
                .map(|(_, pending)| pending)
        } else {
            maps.upstream_states.get(&key).cloned()
        }
    }

    pub fn insert_code(&self, code: &str, authorization: AuthorizationCode) {
        let expires_at = authorization.expires_at;
        self.grants_mut()
            .codes
            .insert(digest(code), authorization, expires_at);
    }

    /// Looks a code up without consuming it, for checks that must pass before redemption.
    pub fn peek_code(&self, code: &str) -> Option<AuthorizationCode> {
        self.grants().codes.get_live(&digest(code), now()).cloned()
    }

    /// Redeems a code once, creating its grant and first tokens. A second redemption by
    /// the client the code was issued to revokes everything the first one issued; one
    /// from another client cannot touch that grant.
    pub fn redeem_code(
        &self,
        code: &str,
        client_id: &str,
        allow_reuse: bool,
    ) -> Result<(AuthorizationCode, IssuedTokens), RedeemError> {
        let key = digest(code);
        let mut maps = self.grants_mut();
        let now = now();
        let Some((_, authorization)) = maps.codes.remove(&key) else {
            return match maps.redeemed_codes.get(&key) {
                Some(redeemed) if redeemed.client_id == client_id => {
                    let grant_id = redeemed.grant_id.clone();
                    maps.redeemed_codes.remove(&key);
                    maps.revoke_grant(&grant_id);
                    Err(RedeemError::Reused)
                }
                _ => Err(RedeemError::Unknown),
            };
        };
        if allow_reuse {
            maps.codes
                .insert(key, authorization.clone(), authorization.expires_at);
        }
        let grant_id = random_id();
        let grant = authorization.grant.clone();
        maps.github_tokens
            .insert(digest(&grant.github_token), grant_id.clone());
        maps.grants.insert(
            grant_id.clone(),
            GrantEntry {
                grant,
                tokens: HashSet::new(),
                ended: CancellationToken::new(),
                profile: Mutex::new(None),
            },
            deadline(now, self.limits.grant_ttl),
        );
        maps.redeemed_codes.insert(
            key,
            RedeemedCode {
                grant_id: grant_id.clone(),
                client_id: authorization.grant.client_id.clone(),
            },
            authorization.expires_at,
        );
        let scope = authorization.grant.scope.clone();
        let tokens = maps
            .issue(&self.limits, &grant_id, scope, now)
            .ok_or(RedeemError::Unknown)?;
        drop(maps);
        // The client is in use now: it is no longer forgotten when unused.
        self.clients()
            .unused_clients
            .remove(&authorization.grant.client_id);
        Ok((authorization, tokens))
    }

    /// The live grant of a refresh token, without using it. A rotated-out refresh token
    /// presented by its own client revokes the grant (RFC 9700 section 4.14.2).
    pub fn refresh_token_grant(
        &self,
        refresh_token: &str,
        client_id: &str,
    ) -> Result<(String, Grant), RefreshError> {
        let mut maps = self.grants_mut();
        let key = digest(refresh_token);
        if let Some(token) = maps.refresh_tokens.get(&key) {
            let grant_id = token.grant_id.clone();
            let grant = maps.grants.get(&grant_id).ok_or(RefreshError::Unknown)?;
            return Ok((grant_id, grant.grant.clone()));
        }
        Err(maps.detect_reuse(&key, client_id))
    }

    /// Exchanges a refresh token for new tokens. With `rotate`, the old refresh token
    /// stops working (OAuth 2.1 section 4.3.1) and is remembered, so that its reuse can
    /// be detected. `scope`, when given, narrows the new access token; the grant and
    /// the new refresh token keep the scope the user approved (RFC 6749 section 6).
    pub fn refresh(
        &self,
        refresh_token: &str,
        client_id: &str,
        rotate: bool,
        scope: Option<String>,
    ) -> Result<(Grant, IssuedTokens), RefreshError> {
        let key = digest(refresh_token);
        let mut maps = self.grants_mut();
        let now = now();
        let Some(current) = maps.refresh_tokens.get(&key).cloned() else {
            return Err(maps.detect_reuse(&key, client_id));
        };
        let grant = maps
            .grants
            .get(&current.grant_id)
            .ok_or(RefreshError::Unknown)?
            .grant
            .clone();
        if rotate {
            maps.refresh_tokens.remove(&key);
            maps.rotated_refresh_tokens
                .insert(key, current.grant_id.clone(), current.expires_at);
        }
        let scope = scope.unwrap_or_else(|| grant.scope.clone());
        let tokens = maps
            .issue(&self.limits, &current.grant_id, scope, now)
            .ok_or(RefreshError::Unknown)?;
        Ok((grant, tokens))
    }

    /// The access token's grant, if the token exists. Expiry is the caller's to judge.
    /// This is the bearer check of every MCP request: it takes only the read side of
    /// the grants' lock.
    pub fn access_token(&self, access_token: &str) -> Option<(AccessToken, Grant)> {
        self.with_access_token(access_token, |token, grant| (token.clone(), grant.clone()))
    }

    /// `inspect` applied to a live access token and its grant, read in place: the bearer
    /// check of every request takes only what it keeps, not a copy of the grant.
    pub fn with_access_token<T>(
        &self,
        access_token: &str,
        inspect: impl FnOnce(&AccessToken, &Grant) -> T,
    ) -> Option<T> {
        let now = now();
        let maps = self.grants();
        let token = maps.access_tokens.get_live(&digest(access_token), now)?;
        let grant = &maps.grants.get_live(&token.grant_id, now)?.grant;
        Some(inspect(token, grant))
    }

    /// A live grant with the profile last read for it, if any.
    pub fn grant_with_profile(&self, grant_id: &str) -> Option<(Grant, Option<CachedProfile>)> {
        let maps = self.grants();
        let entry = maps.grants.get_live(grant_id, now())?;
        let profile = entry
            .profile
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        Some((entry.grant.clone(), profile))
    }

    /// The profile kept with a live grant, without the grant itself.
    pub fn cached_profile(&self, grant_id: &str) -> Option<CachedProfile> {
        let maps = self.grants();
        let entry = maps.grants.get_live(grant_id, now())?;
        entry
            .profile
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Keeps a profile GitHub confirmed for a grant; nothing when the grant has ended
    /// meanwhile.
    pub fn cache_profile(&self, grant_id: &str, profile: CachedProfile) {
        let maps = self.grants();
        if let Some(entry) = maps.grants.get_live(grant_id, now()) {
            *entry
                .profile
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(profile);
        }
    }

    /// Whether any live grant holds this GitHub token: lets the resource server name a
    /// GitHub token presented as a bearer token for what it is in its logs.
    pub fn is_github_token(&self, token: &str) -> bool {
        let maps = self.grants();
        maps.github_tokens
            .get(&digest(token))
            .is_some_and(|grant_id| maps.grants.get_live(grant_id, now()).is_some())
    }

    /// The grant holding a GitHub token; used only by the `accept-github-tokens` fault.
    #[cfg(feature = "fault-injection")]
    pub fn grant_by_github_token(&self, token: &str) -> Option<(String, Grant, AccessToken)> {
        let maps = self.grants_mut();
        let grant_id = maps.github_tokens.get(&digest(token))?.clone();
        let (expires_at, entry) = maps.grants.entries.get(&grant_id)?;
        let stand_in = AccessToken {
            grant_id: grant_id.clone(),
            expires_at: *expires_at,
            scope: entry.grant.scope.clone(),
            ended: entry.ended.child_token(),
        };
        Some((grant_id, entry.grant.clone(), stand_in))
    }

    /// New tokens for a grant whose refresh token was looked up earlier, rotating the
    /// token out if it is still live; used only by the `refresh-race` fault, which thus
    /// refreshes once per request that saw the token live.
    #[cfg(feature = "fault-injection")]
    pub fn refresh_checked(
        &self,
        refresh_token: &str,
        grant_id: &str,
    ) -> Option<(Grant, IssuedTokens)> {
        let key = digest(refresh_token);
        let mut maps = self.grants_mut();
        if let Some((_, current)) = maps.refresh_tokens.remove(&key) {
            maps.rotated_refresh_tokens
                .insert(key, current.grant_id, current.expires_at);
        }
        let grant = maps.grants.get(&grant_id.to_owned())?.grant.clone();
        let tokens = maps.issue(&self.limits, grant_id, grant.scope.clone(), now())?;
        Some((grant, tokens))
    }

    /// Remembers a GitHub token under its client; used only by the
    /// `github-token-per-client` fault.
    #[cfg(feature = "fault-injection")]
    pub fn cache_client_github_token(&self, client_id: &str, github_token: &str) {
        self.grants_mut()
            .client_github_tokens
            .insert(client_id.to_owned(), github_token.to_owned());
    }

    /// The GitHub token last cached for a client; used only by the
    /// `github-token-per-client` fault.
    #[cfg(feature = "fault-injection")]
    pub fn client_github_token(&self, client_id: &str) -> Option<String> {
        self.grants().client_github_tokens.get(client_id).cloned()
    }

    pub fn revoke_access_token(&self, access_token: &str) {
        let mut maps = self.grants_mut();
        let key = digest(access_token);
        if let Some((_, token)) = maps.access_tokens.remove(&key) {
            token.ended.cancel();
            if let Some(grant) = maps.grants.get_mut(&token.grant_id) {
                grant.tokens.remove(&key);
            }
        }
    }

    /// Revokes a grant and every token issued from it.
    pub fn revoke_grant(&self, grant_id: &str) {
        self.grants_mut().revoke_grant(grant_id);
    }

    /// How many entries each map holds, for tests of the bounds.
    #[cfg(test)]
    fn sizes(&self) -> [usize; 8] {
        let clients = self.clients().clients.len();
        let (pending, upstream_states) = {
            let maps = self.authorizations();
            (maps.pending.len(), maps.upstream_states.len())
        };
        let maps = self.grants_mut();
        [
            clients,
            pending,
            upstream_states,
            maps.codes.len(),
            maps.grants.len(),
            maps.access_tokens.len(),
            maps.refresh_tokens.len(),
            maps.github_tokens.len(),
        ]
    }
}

impl ClientMaps {
    /// Forgets the unused clients whose time is up.
    fn prune(&mut self, now: Instant) {
        while let Some((client_id, ())) = self.unused_clients.pop_expired(now) {
            self.clients.remove(&client_id);
        }
    }
}

impl AuthorizationMaps {
    fn prune(&mut self, now: Instant) {
        while self.pending.pop_expired(now).is_some() {}
        while self.upstream_states.pop_expired(now).is_some() {}
    }
}

impl GrantMaps {
    /// Removes everything that expired by `now`. Each map's expiry index is ordered,
    /// so this costs only the entries it removes.
    fn prune(&mut self, now: Instant) {
        while self.codes.pop_expired(now).is_some() {}
        while self.redeemed_codes.pop_expired(now).is_some() {}
        while let Some((grant_id, entry)) = self.grants.pop_expired(now) {
            self.forget_grant(&grant_id, entry);
        }
        while let Some((key, token)) = self.access_tokens.pop_expired(now) {
            token.ended.cancel();
            if let Some(grant) = self.grants.get_mut(&token.grant_id) {
                grant.tokens.remove(&key);
            }
        }
        while let Some((key, token)) = self.refresh_tokens.pop_expired(now) {
            if let Some(grant) = self.grants.get_mut(&token.grant_id) {
                grant.tokens.remove(&key);
            }
        }
        while let Some((key, grant_id)) = self.rotated_refresh_tokens.pop_expired(now) {
            if let Some(grant) = self.grants.get_mut(&grant_id) {
                grant.tokens.remove(&key);
            }
        }
    }

    /// A refresh token that is not live: if rotation replaced it and its own client
    /// presents it again, the grant is revoked.
    fn detect_reuse(&mut self, key: &[u8; 32], client_id: &str) -> RefreshError {
        let Some(grant_id) = self.rotated_refresh_tokens.get(key).cloned() else {
            return RefreshError::Unknown;
        };
        let same_client = self
            .grants
            .get(&grant_id)
            .is_some_and(|entry| entry.grant.client_id == client_id);
        if same_client {
            self.revoke_grant(&grant_id);
            return RefreshError::Reused;
        }
        RefreshError::Unknown
    }

    /// Issues an access and a refresh token from a live grant. Neither outlives the
    /// grant: its lifetime is absolute.
    fn issue(
        &mut self,
        limits: &Limits,
        grant_id: &str,
        scope: String,
        now: Instant,
    ) -> Option<IssuedTokens> {
        let grant_key = grant_id.to_owned();
        let grant_expires_at = self.grants.entries.get(&grant_key)?.0;
        let access_expires_at = deadline(now, limits.access_ttl).min(grant_expires_at);
        let refresh_expires_at = deadline(now, limits.refresh_ttl).min(grant_expires_at);
        let access_token = random_secret();
        let refresh_token = random_secret();
        let (access_key, refresh_key) = (digest(&access_token), digest(&refresh_token));
        let entry = self.grants.get_mut(&grant_key)?;
        entry.tokens.insert(access_key);
        entry.tokens.insert(refresh_key);
        let ended = entry.ended.child_token();
        self.access_tokens.insert(
            access_key,
            AccessToken {
                grant_id: grant_key.clone(),
                expires_at: access_expires_at,
                scope: scope.clone(),
                ended,
            },
            deadline(access_expires_at, EXPIRED_TOKEN_MEMORY),
        );
        self.refresh_tokens.insert(
            refresh_key,
            RefreshToken {
                grant_id: grant_key,
                expires_at: refresh_expires_at,
            },
            refresh_expires_at,
        );
        Some(IssuedTokens {
            access_token,
            refresh_token,
            scope,
            expires_in: access_expires_at.saturating_duration_since(now).as_secs(),
        })
    }

    fn revoke_grant(&mut self, grant_id: &str) {
        if let Some((_, entry)) = self.grants.remove(&grant_id.to_owned()) {
            self.forget_grant(grant_id, entry);
        }
    }

    /// Drops everything a removed grant owned and ends its streams.
    fn forget_grant(&mut self, grant_id: &str, entry: GrantEntry) {
        entry.ended.cancel();
        let github_key = digest(&entry.grant.github_token);
        if self.github_tokens.get(&github_key).map(String::as_str) == Some(grant_id) {
            self.github_tokens.remove(&github_key);
        }
        for key in &entry.tokens {
            self.access_tokens.remove(key);
            self.refresh_tokens.remove(key);
            self.rotated_refresh_tokens.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_clients: 3,
            unused_client_ttl: Duration::from_secs(100),
            max_pending: 3,
            access_ttl: Duration::from_secs(60),
            refresh_ttl: Duration::from_secs(600),
            grant_ttl: Duration::from_secs(1_000),
        }
    }

    fn client(id: &str) -> Client {
        Client {
            client_id: id.into(),
            secret_digest: None,
            client_name: None,
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            grant_types: vec!["authorization_code".into()],
        }
    }

    fn pending(ttl: Duration) -> PendingAuthorization {
        PendingAuthorization {
            client_id: "c".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            client_state: None,
            code_challenge: None,
            scope: "user offline_access".into(),
            resource: "http://127.0.0.1".into(),
            csrf_token: random_secret(),
            browser_binding: random_secret(),
            expires_at: deadline(now(), ttl),
        }
    }

    /// Registers `client_id` and issues a first set of tokens for a code of it.
    fn login(store: &Store, client_id: &str, github_token: &str) -> IssuedTokens {
        let _ = store.register_client(client(client_id));
        let code = random_secret();
        store.insert_code(
            &code,
            AuthorizationCode {
                redirect_uri: "http://127.0.0.1/cb".into(),
                code_challenge: None,
                grant: Grant {
                    user: GitHubUser {
                        login: "octocat".into(),
                        id: 1,
                    },
                    client_id: client_id.into(),
                    scope: "user offline_access".into(),
                    resource: "http://127.0.0.1".into(),
                    github_token: github_token.into(),
                },
                expires_at: deadline(now(), Duration::from_secs(60)),
            },
        );
        store.redeem_code(&code, client_id, false).unwrap().1
    }

    #[tokio::test(start_paused = true)]
    async fn unused_clients_expire_and_the_oldest_unused_client_makes_room() {
        let store = Store::new(limits());
        let _ = login(&store, "used", "gho_a");
        store.register_client(client("a")).unwrap();
        store.register_client(client("b")).unwrap();
        // Full: the oldest never-used client goes, the used one stays.
        store.register_client(client("c")).unwrap();
        assert!(store.client("a").is_none());
        assert!(store.client("used").is_some());
        assert!(store.client("b").is_some() && store.client("c").is_some());

        tokio::time::advance(Duration::from_secs(101)).await;
        assert!(store.client("b").is_none() && store.client("c").is_none());
        assert!(store.client("used").is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn registration_is_refused_when_every_client_is_in_use() {
        let store = Store::new(Limits {
            max_clients: 1,
            ..limits()
        });
        let _ = login(&store, "used", "gho_a");
        assert_eq!(store.register_client(client("new")), Err(ClientsFull));
    }

    #[tokio::test(start_paused = true)]
    async fn pending_authorizations_are_capped_and_expire() {
        let store = Store::new(limits());
        for id in ["p1", "p2", "p3", "p4"] {
            store.insert_pending(id.into(), pending(Duration::from_secs(10)));
            store.insert_upstream_state(id.into(), pending(Duration::from_secs(10)));
        }
        assert_eq!(store.sizes()[1..3], [3, 3]);
        assert!(store.take_pending("p1").is_none(), "the oldest went first");
        assert!(store.take_upstream_state("p1", true).is_none());
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(store.take_pending("p4").is_none());
        assert!(store.take_upstream_state("p4", true).is_none());
        assert_eq!(store.sizes()[1..3], [0, 0]);
    }

    #[tokio::test(start_paused = true)]
    async fn reusing_a_rotated_refresh_token_revokes_the_grant() {
        let store = Store::new(limits());
        let first = login(&store, "c1", "gho_a");
        let (_, second) = store
            .refresh(&first.refresh_token, "c1", true, None)
            .unwrap();
        assert!(store.access_token(&second.access_token).is_some());
        // Another client presenting the old token learns nothing and revokes nothing.
        assert_eq!(
            store
                .refresh_token_grant(&first.refresh_token, "c2")
                .unwrap_err(),
            RefreshError::Unknown
        );
        assert!(store.access_token(&second.access_token).is_some());
        let (access, _) = store.access_token(&second.access_token).unwrap();
        assert_eq!(
            store
                .refresh(&first.refresh_token, "c1", true, None)
                .unwrap_err(),
            RefreshError::Reused
        );
        assert!(access.ended.is_cancelled(), "open streams end");
        assert!(store.access_token(&second.access_token).is_none());
        assert!(
            store
                .refresh_token_grant(&second.refresh_token, "c1")
                .is_err()
        );
        assert!(!store.is_github_token("gho_a"));
    }

    #[tokio::test(start_paused = true)]
    async fn grants_have_an_absolute_lifetime_and_are_evicted() {
        let store = Store::new(limits());
        let mut tokens = login(&store, "c1", "gho_a");
        // Refresh every 500 s: the grant still ends 1000 s after the login.
        tokio::time::advance(Duration::from_secs(500)).await;
        tokens = store
            .refresh(&tokens.refresh_token, "c1", true, None)
            .unwrap()
            .1;
        tokio::time::advance(Duration::from_secs(450)).await;
        let (_, refreshed) = store
            .refresh(&tokens.refresh_token, "c1", true, None)
            .unwrap();
        assert_eq!(refreshed.expires_in, 50, "no token outlives its grant");
        tokio::time::advance(Duration::from_secs(51)).await;
        assert!(
            store
                .refresh_token_grant(&refreshed.refresh_token, "c1")
                .is_err()
        );
        assert!(store.access_token(&refreshed.access_token).is_none());
        assert_eq!(store.sizes()[4..], [0, 0, 0, 0], "nothing of it is left");
    }

    #[tokio::test(start_paused = true)]
    async fn a_narrower_refresh_scope_applies_to_the_new_access_token_only() {
        let store = Store::new(limits());
        let first = login(&store, "c1", "gho_a");
        let (grant, narrowed) = store
            .refresh(&first.refresh_token, "c1", true, Some("user".into()))
            .unwrap();
        assert_eq!(narrowed.scope, "user");
        assert_eq!(grant.scope, "user offline_access");
        let (token, _) = store.access_token(&narrowed.access_token).unwrap();
        assert_eq!(token.scope, "user");
    }

    #[tokio::test(start_paused = true)]
    async fn replaying_a_code_revokes_only_for_the_client_it_was_issued_to() {
        let store = Store::new(limits());
        let _ = store.register_client(client("c1"));
        let code = random_secret();
        let grant = Grant {
            user: GitHubUser {
                login: "octocat".into(),
                id: 1,
            },
            client_id: "c1".into(),
            scope: "user".into(),
            resource: "r".into(),
            github_token: "gho_a".into(),
        };
        store.insert_code(
            &code,
            AuthorizationCode {
                redirect_uri: "http://127.0.0.1/cb".into(),
                code_challenge: None,
                grant,
                expires_at: deadline(now(), Duration::from_secs(60)),
            },
        );
        let (_, tokens) = store.redeem_code(&code, "c1", false).unwrap();
        assert_eq!(
            store.redeem_code(&code, "attacker", false).unwrap_err(),
            RedeemError::Unknown
        );
        assert!(store.access_token(&tokens.access_token).is_some());
        assert_eq!(
            store.redeem_code(&code, "c1", false).unwrap_err(),
            RedeemError::Reused
        );
        assert!(store.access_token(&tokens.access_token).is_none());
    }

    #[test]
    fn deadlines_never_overflow() {
        let start = now();
        let far = deadline(start, Duration::MAX);
        assert!(far > start);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
