//! What a run targets and which checks it runs.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use url::Url;

use crate::report::CheckResult;
use crate::version::Version;

/// An MCP HTTP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Transport {
    /// The legacy HTTP+SSE transport (`GET /sse` + POST endpoint), 2024-11-05.
    #[serde(rename = "sse")]
    Sse,
    /// Streamable HTTP (`/mcp`), 2025-03-26 and later.
    #[serde(rename = "streamable-http")]
    StreamableHttp,
}

impl Transport {
    pub const ALL: [Transport; 2] = [Transport::StreamableHttp, Transport::Sse];

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Sse => "sse",
            Transport::StreamableHttp => "streamable-http",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sse" => Ok(Transport::Sse),
            "streamable-http" => Ok(Transport::StreamableHttp),
            other => Err(format!(
                "unknown transport {other:?} (sse, streamable-http)"
            )),
        }
    }
}

/// A client registered with the server beforehand, for servers that do not offer dynamic
/// client registration (optional: SHOULD in 2025-03-26 and 2025-06-18, MAY from
/// 2025-11-25).
#[derive(Debug, Clone)]
pub struct PreRegisteredClient {
    pub client_id: String,
    /// Present for a confidential client (sent with `client_secret_post`).
    pub client_secret: Option<String>,
    /// The redirect URI registered for it; it must be a loopback URL the suite's
    /// scripted browser can recognise.
    pub redirect_uri: String,
}

/// Which tool contract the suite holds the server to, besides the spec's own rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ToolProfile {
    /// This project's GitHub-login servers: a `get_user_profile` tool that returns the
    /// logged-in user's GitHub profile. The checks that need it run.
    #[default]
    GitHub,
    /// Any MCP server: only the spec's rules for tools, with whatever tools it has.
    None,
}

impl FromStr for ToolProfile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "github" => Ok(ToolProfile::GitHub),
            "none" => Ok(ToolProfile::None),
            other => Err(format!("unknown tool profile {other:?} (github, none)")),
        }
    }
}

/// Called once per finished check, in completion order (the binary prints a line).
pub type Progress = Arc<dyn Fn(&CheckResult) + Send + Sync>;

/// Everything a run needs.
#[derive(Clone)]
pub struct SuiteConfig {
    /// The server's base URL (`http://127.0.0.1:8000`).
    pub url: Url,
    /// The mock GitHub's base URL, whose admin endpoints the suite reads.
    pub mock_github: Url,
    /// Path of the Streamable HTTP endpoint.
    pub mcp_path: String,
    /// Path of the legacy SSE endpoint.
    pub sse_path: String,
    /// Transports to test.
    pub transports: Vec<Transport>,
    /// Only checks with this ID or case key (ignoring case; an ID selects all its cases);
    /// empty means all.
    pub ids: Vec<String>,
    /// Only these areas (`AUTH-FLOW`, `SHTTP`, ...); empty means all.
    pub areas: Vec<String>,
    /// Only checks that apply to one of these versions; empty means all.
    pub versions: Vec<Version>,
    /// The protocol version negotiated on Streamable HTTP sessions.
    pub streamable_version: Version,
    /// Expired-token checks wait out `expires_in` only when it is at most this long.
    pub max_expiry_wait: Duration,
    /// Bound on every single HTTP request and every wait for a message.
    pub request_timeout: Duration,
    /// Bound on one whole check.
    pub check_timeout: Duration,
    /// How many checks run at once.
    pub jobs: usize,
    /// Run checks that wait for the server's upstream timeout (GitHub not answering).
    pub slow: bool,
    /// Run the robustness phase (generated malformed requests) with these settings.
    pub robustness: Option<crate::robustness::Settings>,
    /// Run the stateful model-based phase with these settings.
    pub model: Option<crate::model::Settings>,
    /// Live mode: the server where it runs, without the mock GitHub (see [`Live`]).
    pub live: Option<Live>,
    /// The client to log in with when the server offers no registration endpoint.
    pub client: Option<PreRegisteredClient>,
    /// The tool contract checked besides the spec's rules.
    pub tool_profile: ToolProfile,
    pub progress: Option<Progress>,
}

/// Live mode: the suite checks a server where it runs, logging in (if at all) as the user with
/// the real GitHub. Checks that need the mock GitHub (a scripted login as a given user, an
/// upstream fault, the upstream journal) are skipped with that reason, and so, unless
/// `allow_destructive`, are checks that would revoke or rotate the user's tokens or load the
/// server.
#[derive(Clone, Default)]
pub struct Live {
    /// The user's login, used by every authenticated check; without it those checks are
    /// skipped.
    pub login: Option<LiveLogin>,
    /// Run the checks that revoke or rotate the user's tokens and the robustness phase.
    pub allow_destructive: bool,
}

/// Tokens the user obtained beforehand (`--login browser`, the environment, or the `connect`
/// cache).
#[derive(Clone, Default)]
pub struct LiveLogin {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// The client the tokens were issued to, when known (the `connect` cache knows it).
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Where the tokens came from, for the report header (`the environment`, ...).
    pub source: String,
}

impl fmt::Debug for LiveLogin {
    // Tokens and secrets never reach a log, not even a debug print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveLogin")
            .field("access_token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("client_id", &self.client_id)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live")
            .field("login", &self.login)
            .field("allow_destructive", &self.allow_destructive)
            .finish()
    }
}

/// The mock GitHub URL of a live run: a name that never resolves (RFC 6761 `.invalid`), so
/// nothing is ever sent there and no URL of a real server equals it.
pub const NO_MOCK_GITHUB: &str = "http://mock-github.invalid/";

impl SuiteConfig {
    pub fn new(url: Url, mock_github: Url) -> SuiteConfig {
        SuiteConfig {
            url,
            mock_github,
            mcp_path: "/mcp".into(),
            sse_path: "/sse".into(),
            transports: Transport::ALL.to_vec(),
            ids: Vec::new(),
            areas: Vec::new(),
            versions: Vec::new(),
            streamable_version: Version::LATEST_SESSION_ERA,
            max_expiry_wait: Duration::from_secs(3),
            request_timeout: Duration::from_secs(5),
            check_timeout: Duration::from_secs(30),
            jobs: 16,
            slow: false,
            robustness: None,
            model: None,
            live: None,
            client: None,
            tool_profile: ToolProfile::GitHub,
            progress: None,
        }
    }

    /// A live run against the server at `url`, without the mock GitHub.
    pub fn live(url: Url, live: Live) -> SuiteConfig {
        let mut config = SuiteConfig::new(
            url,
            Url::parse(NO_MOCK_GITHUB).expect("the placeholder is a URL"),
        );
        config.live = Some(live);
        config
    }

    /// The URL of a transport's endpoint.
    pub fn endpoint(&self, transport: Transport) -> Url {
        let path = match transport {
            Transport::Sse => &self.sse_path,
            Transport::StreamableHttp => &self.mcp_path,
        };
        let mut url = self.url.clone();
        url.set_path(path);
        url
    }
}
