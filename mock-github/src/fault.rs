//! Fault modes that a scripted browser can ask for when it "picks an account".
//!
//! A fault is chosen once, at the authorization step (`fault=<name>` on the authorize URL), and then
//! travels inside the authorization code and the access token. That is what lets many flows with
//! different faults run against one mock at the same time: the mock never needs to know which test
//! a request belongs to, only which code or token it carries.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A failure the mock injects into one login flow.
///
/// The wire name (see [`Fault::as_str`]) is what goes into the `fault` query parameter of the
/// authorize URL and what appears inside the codes and tokens the mock issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Fault {
    /// The user clicks "Cancel" on GitHub's consent page: the browser is redirected back with
    /// `error=access_denied` and no code.
    #[serde(rename = "access_denied")]
    AccessDenied,
    /// The token endpoint answers HTTP 502 with an HTML body, like GitHub's edge does in an outage.
    #[serde(rename = "token_5xx")]
    Token5xx,
    /// The token endpoint answers only after the mock's slow delay (30 s unless configured), so a
    /// server's bounded upstream timeout has to fire first.
    #[serde(rename = "token_timeout")]
    TokenTimeout,
    /// The token endpoint answers HTTP 200 with a body that is not JSON (nor a usable form body).
    #[serde(rename = "token_malformed")]
    TokenMalformed,
    /// The token endpoint answers HTTP 200 with GitHub's error body (`bad_verification_code`),
    /// which is how GitHub reports token failures.
    #[serde(rename = "token_error")]
    TokenError,
    /// The token is issued normally, but `GET /user` answers 401 "Bad credentials" for it.
    #[serde(rename = "user_401")]
    User401,
    /// The token is issued normally, but `GET /user` answers HTTP 502 with an HTML body.
    #[serde(rename = "user_5xx")]
    User5xx,
    /// The login goes through (the first `GET /user` for the token succeeds), then every later
    /// `GET /user` answers HTTP 502: GitHub failing while a logged-in user calls a tool.
    #[serde(rename = "user_5xx_after_login")]
    User5xxAfterLogin,
    /// The login goes through, then every later `GET /user` answers 403 with
    /// `x-ratelimit-remaining: 0`: the user's primary rate limit is used up.
    #[serde(rename = "user_403_rate_limit_after_login")]
    User403RateLimitAfterLogin,
    /// The login goes through, then every later `GET /user` answers 429 with `retry-after`:
    /// a secondary rate limit.
    #[serde(rename = "user_429_after_login")]
    User429AfterLogin,
    /// The token is issued normally, but `GET /user` answers only after the slow delay.
    #[serde(rename = "user_timeout")]
    UserTimeout,
    /// The token is issued normally, but `GET /user` answers HTTP 200 with a body that is not JSON.
    #[serde(rename = "user_malformed")]
    UserMalformed,
}

/// The step of a login flow at which a fault shows itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultStage {
    /// `GET /login/oauth/authorize` (the browser leg).
    Authorize,
    /// `POST /login/oauth/access_token` (the server's code exchange).
    Token,
    /// `GET /api/user` (the server's profile lookup).
    User,
}

impl Fault {
    /// Every fault, in a stable order, so suites can iterate over all of them.
    pub const ALL: &'static [Fault] = &[
        Fault::AccessDenied,
        Fault::Token5xx,
        Fault::TokenTimeout,
        Fault::TokenMalformed,
        Fault::TokenError,
        Fault::User401,
        Fault::User5xx,
        Fault::User5xxAfterLogin,
        Fault::User403RateLimitAfterLogin,
        Fault::User429AfterLogin,
        Fault::UserTimeout,
        Fault::UserMalformed,
    ];

    /// The wire name used in the `fault` query parameter and inside codes and tokens.
    pub const fn as_str(self) -> &'static str {
        match self {
            Fault::AccessDenied => "access_denied",
            Fault::Token5xx => "token_5xx",
            Fault::TokenTimeout => "token_timeout",
            Fault::TokenMalformed => "token_malformed",
            Fault::TokenError => "token_error",
            Fault::User401 => "user_401",
            Fault::User5xx => "user_5xx",
            Fault::User5xxAfterLogin => "user_5xx_after_login",
            Fault::User403RateLimitAfterLogin => "user_403_rate_limit_after_login",
            Fault::User429AfterLogin => "user_429_after_login",
            Fault::UserTimeout => "user_timeout",
            Fault::UserMalformed => "user_malformed",
        }
    }

    /// The step of the flow where this fault becomes visible.
    pub const fn stage(self) -> FaultStage {
        match self {
            Fault::AccessDenied => FaultStage::Authorize,
            Fault::Token5xx | Fault::TokenTimeout | Fault::TokenMalformed | Fault::TokenError => {
                FaultStage::Token
            }
            Fault::User401
            | Fault::User5xx
            | Fault::User5xxAfterLogin
            | Fault::User403RateLimitAfterLogin
            | Fault::User429AfterLogin
            | Fault::UserTimeout
            | Fault::UserMalformed => FaultStage::User,
        }
    }

    /// A one-line human description, for reports and the binary's help.
    pub const fn description(self) -> &'static str {
        match self {
            Fault::AccessDenied => "the user denies access; the callback gets error=access_denied",
            Fault::Token5xx => "the token endpoint answers 502 with an HTML body",
            Fault::TokenTimeout => "the token endpoint answers only after the slow delay",
            Fault::TokenMalformed => "the token endpoint answers 200 with a non-JSON body",
            Fault::TokenError => "the token endpoint answers 200 with bad_verification_code",
            Fault::User401 => "GET /user answers 401 Bad credentials",
            Fault::User5xx => "GET /user answers 502 with an HTML body",
            Fault::User5xxAfterLogin => "GET /user works once (the login), then answers 502",
            Fault::User403RateLimitAfterLogin => {
                "GET /user works once (the login), then answers 403 with x-ratelimit-remaining: 0"
            }
            Fault::User429AfterLogin => {
                "GET /user works once (the login), then answers 429 with retry-after"
            }
            Fault::UserTimeout => "GET /user answers only after the slow delay",
            Fault::UserMalformed => "GET /user answers 200 with a non-JSON body",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a `fault` name the mock does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFault(pub String);

impl fmt::Display for UnknownFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown fault {:?}; known faults are: ", self.0)?;
        for (i, fault) in Fault::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(fault.as_str())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownFault {}

impl FromStr for Fault {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .iter()
            .copied()
            .find(|fault| fault.as_str() == s)
            .ok_or_else(|| UnknownFault(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_through_display_fromstr_and_serde() {
        for &fault in Fault::ALL {
            assert_eq!(fault.to_string().parse::<Fault>(), Ok(fault));
            let json = serde_json::to_string(&fault).unwrap();
            assert_eq!(json, format!("\"{}\"", fault.as_str()));
            assert_eq!(serde_json::from_str::<Fault>(&json).unwrap(), fault);
        }
    }

    #[test]
    fn unknown_names_are_rejected_with_the_list_of_known_ones() {
        let err = "token_slow".parse::<Fault>().unwrap_err();
        assert!(err.to_string().contains("token_timeout"));
        assert!("none".parse::<Fault>().is_err());
    }
}
