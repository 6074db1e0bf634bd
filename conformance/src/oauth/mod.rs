//! The scripted OAuth client: discovery ([`discovery`]), dynamic registration
//! ([`registration`]), a browser that walks the authorization redirects by hand ([`browser`]), and
//! the authorization-code + PKCE flow with token exchange and refresh ([`flow`]).

pub mod browser;
pub mod cimd_host;
pub mod discovery;
pub mod flow;
pub mod registration;

/// The redirect URI the suite registers: a loopback URL on which nothing listens. The scripted
/// browser stops when a redirect points here and reads the parameters from the URL.
pub const REDIRECT_URI: &str = "http://127.0.0.1:33418/callback";
