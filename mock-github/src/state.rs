//! The mock's memory: issued codes, issued tokens and the journal.
//!
//! Everything that changes behaviour is stored per code or per token, never as "what the next
//! request should get", so concurrent flows cannot disturb one another.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};

use crate::fault::Fault;
use crate::journal::RecordedRequest;

/// Tunables fixed when the mock starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    /// How long the `*_timeout` faults hold a response back.
    pub slow_delay: Duration,
    /// How long an authorization code stays redeemable.
    pub code_ttl: Duration,
}

/// A PKCE challenge sent with the authorization request, checked at the code exchange.
#[derive(Debug, Clone)]
pub(crate) struct Pkce {
    pub challenge: String,
    /// `true` for `S256`, `false` for `plain`.
    pub s256: bool,
}

/// What an authorization code stands for.
#[derive(Debug, Clone)]
pub(crate) struct CodeGrant {
    pub login: String,
    pub fault: Option<Fault>,
    pub redirect_uri: String,
    pub scope: String,
    pub pkce: Option<Pkce>,
    pub issued_at: Instant,
}

/// A token the mock issued, as reported by [`crate::MockGitHub::issued_tokens`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    /// The `gho_...` access token.
    pub access_token: String,
    /// The fixture user it belongs to.
    pub login: String,
    /// The fault carried from the authorization code, if any.
    pub fault: Option<Fault>,
    /// The granted scopes, comma-separated like GitHub reports them.
    pub scope: String,
    /// Whether it was revoked (then `GET /user` answers 401 for it).
    pub revoked: bool,
    /// How many times `GET /user` was called with it.
    #[serde(default)]
    pub profile_reads: u32,
    /// How many of those counted against the rate limit: every answer but a 304.
    #[serde(default)]
    pub counted_reads: u32,
}

/// The mutable part of the state, behind one lock.
///
/// wiremock already serialises calls to a responder, so this lock is effectively uncontended; it
/// exists because the test side (`journal`, `revoke_token`) reads and writes from other threads.
#[derive(Default)]
struct Inner {
    codes: HashMap<String, CodeGrant>,
    tokens: HashMap<String, IssuedToken>,
    /// Insertion order of `tokens`, so `issued_tokens` reports them in the order they were issued.
    token_order: Vec<String>,
    journal: Vec<RecordedRequest>,
}

/// Shared state of one mock instance.
pub(crate) struct State {
    pub config: Config,
    counter: AtomicU64,
    inner: Mutex<Inner>,
}

/// The placeholder used inside codes and tokens when a flow has no fault.
const NO_FAULT: &str = "none";

/// GitHub's OAuth tokens are `gho_` plus 36 characters; the mock's tokens are at least that long
/// so that servers validating the shape accept them.
const TOKEN_BODY_MIN_LEN: usize = 36;

/// At least this many random characters end each token, so tokens from two mock instances (for
/// example two test processes against one long-lived server) never collide.
const TOKEN_MIN_RANDOM: usize = 8;

impl State {
    pub fn new(config: Config) -> State {
        State {
            config,
            counter: AtomicU64::new(0),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Takes the lock, recovering from poisoning.
    ///
    /// A panic while holding this lock could only come from a bug in the mock itself; carrying
    /// on with the data as it is keeps one broken test from failing every other test that shares
    /// the mock.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn next_serial(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn record(&self, request: RecordedRequest) {
        self.lock().journal.push(request);
    }

    pub fn journal(&self) -> Vec<RecordedRequest> {
        self.lock().journal.clone()
    }

    /// Issues a single-use code of the form `ghc_<login>_<fault|none>_<n>`.
    pub fn issue_code(&self, grant: CodeGrant) -> String {
        let code = format!(
            "ghc_{}_{}_{}",
            grant.login,
            fault_label(grant.fault),
            self.next_serial()
        );
        let ttl = self.config.code_ttl;
        let mut inner = self.lock();
        // Expired codes are dropped here so that a long-running standalone mock does not keep
        // every code it ever issued.
        inner
            .codes
            .retain(|_, existing| existing.issued_at.elapsed() < ttl);
        inner.codes.insert(code.clone(), grant);
        code
    }

    /// Removes and returns the grant for `code` if it exists and has not expired.
    ///
    /// Removing it even when it has expired makes every code redeemable at most once, whatever
    /// the outcome, as GitHub's are.
    pub fn take_code(&self, code: &str) -> Option<CodeGrant> {
        let grant = self.lock().codes.remove(code)?;
        (grant.issued_at.elapsed() < self.config.code_ttl).then_some(grant)
    }

    /// Issues an access token carrying the grant's login and fault.
    pub fn issue_token(&self, grant: &CodeGrant) -> String {
        let mut token = format!(
            "gho_{}_{}_{}_",
            grant.login,
            fault_label(grant.fault),
            self.next_serial()
        );
        let body_len = token.len() - "gho_".len();
        let random_len = TOKEN_BODY_MIN_LEN
            .saturating_sub(body_len)
            .max(TOKEN_MIN_RANDOM);
        token.extend(
            rand::rng()
                .sample_iter(&Alphanumeric)
                .take(random_len)
                .map(char::from),
        );
        let issued = IssuedToken {
            access_token: token.clone(),
            login: grant.login.clone(),
            fault: grant.fault,
            scope: grant.scope.clone(),
            revoked: false,
            profile_reads: 0,
            counted_reads: 0,
        };
        let mut inner = self.lock();
        inner.tokens.insert(token.clone(), issued);
        inner.token_order.push(token.clone());
        token
    }

    /// The token's record, or `None` if the mock never issued it.
    #[cfg(test)]
    pub fn token(&self, token: &str) -> Option<IssuedToken> {
        self.lock().tokens.get(token).cloned()
    }

    /// Counts a `GET /user` with the token and returns its record as it was before this call.
    pub fn read_profile(&self, token: &str) -> Option<IssuedToken> {
        let mut inner = self.lock();
        let issued = inner.tokens.get_mut(token)?;
        let before = issued.clone();
        issued.profile_reads += 1;
        Some(before)
    }

    /// Counts a `GET /user` against the token's rate limit and returns how many have counted.
    pub fn count_against_rate_limit(&self, token: &str) -> u32 {
        let mut inner = self.lock();
        match inner.tokens.get_mut(token) {
            Some(issued) => {
                issued.counted_reads += 1;
                issued.counted_reads
            }
            None => 0,
        }
    }

    /// Marks a token revoked; returns whether the mock knew it.
    pub fn revoke(&self, token: &str) -> bool {
        match self.lock().tokens.get_mut(token) {
            Some(issued) => {
                issued.revoked = true;
                true
            }
            None => false,
        }
    }

    pub fn issued_tokens(&self) -> Vec<IssuedToken> {
        let inner = self.lock();
        inner
            .token_order
            .iter()
            .filter_map(|token| inner.tokens.get(token).cloned())
            .collect()
    }
}

fn fault_label(fault: Option<Fault>) -> &'static str {
    fault.map_or(NO_FAULT, Fault::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(code_ttl: Duration) -> State {
        State::new(Config {
            slow_delay: Duration::from_secs(1),
            code_ttl,
        })
    }

    fn grant(login: &str, fault: Option<Fault>) -> CodeGrant {
        CodeGrant {
            login: login.into(),
            fault,
            redirect_uri: "http://127.0.0.1/cb".into(),
            scope: "read:user".into(),
            pkce: None,
            issued_at: Instant::now(),
        }
    }

    #[test]
    fn codes_are_self_describing_and_single_use() {
        let state = state(Duration::from_secs(600));
        let code = state.issue_code(grant("mona", Some(Fault::User5xx)));
        assert_eq!(code, "ghc_mona_user_5xx_1");
        assert!(state.take_code(&code).is_some());
        assert!(state.take_code(&code).is_none());
    }

    #[test]
    fn expired_codes_are_refused() {
        let state = state(Duration::ZERO);
        let code = state.issue_code(grant("octocat", None));
        assert!(state.take_code(&code).is_none());
    }

    #[test]
    fn tokens_look_like_github_tokens_and_are_unique() {
        let state = state(Duration::from_secs(600));
        let first = state.issue_token(&grant("octocat", None));
        let second = state.issue_token(&grant("octocat", None));
        assert_ne!(first, second);
        assert!(first.starts_with("gho_octocat_none_1_"), "{first}");
        assert!(first.len() >= "gho_".len() + TOKEN_BODY_MIN_LEN);
        assert!(first.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        assert!(state.revoke(&first));
        assert!(state.token(&first).unwrap().revoked);
        assert!(!state.token(&second).unwrap().revoked);
        assert!(!state.revoke("gho_unknown"));
        let issued: Vec<String> = state
            .issued_tokens()
            .into_iter()
            .map(|t| t.access_token)
            .collect();
        assert_eq!(issued, vec![first, second]);
    }
}
