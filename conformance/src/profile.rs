//! What the server claims, found out before any check runs: the protocol versions each
//! transport negotiates (an `initialize` with every session-era version, and on Streamable
//! HTTP a stateless 2026-07-28 request), and the authorization profile it is judged by.
//!
//! A server is judged by the newest version it claims. It claims a version by negotiating it,
//! and by what it serves: protected resource metadata (RFC 9728) is the 2025-06-18 way to
//! find the authorization server, client ID metadata documents and OpenID Connect discovery
//! came in 2025-11-25, and a server without either asks for tokens the 2025-03-26 way (root
//! metadata or the default endpoints). A server whose MCP endpoints answer without a token
//! asks for no authorization at all: its authorization checks are skipped with that reason.
//!
//! The plan ([`crate::plan_run`]) reads the assessment: a check whose outcome can depend on the
//! negotiated version runs once per version the transport negotiates, any other check once,
//! at the newest version it applies to among those the server claims, and not at all (a skip
//! with the reason) where it applies to none of them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use crate::checks::{Ctx, LoginOptions};
use crate::config::Transport;
use crate::http::Req;
use crate::http::streamable::{ACCEPT_BOTH, Shttp};
use crate::oauth::discovery::Discovery;
use crate::version::{Version, Versions};

/// The versions of one transport.
#[derive(Debug, Clone, Serialize)]
pub struct TransportVersions {
    pub transport: Transport,
    /// The versions the server negotiated, oldest first; empty when none could be.
    pub negotiated: Vec<Version>,
    /// The versions its checks run at: the negotiated ones, or when none could be negotiated
    /// the one the suite assumes.
    pub tested: Vec<Version>,
    /// How they were found, or why not.
    pub how: String,
}

/// The authorization profile a server is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Profile {
    /// The server asks for no authorization (a 2024-11-05 server, or one that chose none).
    None,
    /// The authorization rules of this version apply (2025-03-26 and later).
    Of(Version),
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::None => "none",
            Profile::Of(v) => v.as_str(),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Profile {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// What the suite found out about the server before the checks.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    /// The authorization profile the server is judged by.
    pub profile: Profile,
    /// The newest version the server claims; the requirements of the versions up to it apply.
    pub judged_by: Version,
    /// Why, in one sentence.
    pub reason: String,
    /// Every version the server claims, oldest first.
    pub claimed: Vec<Version>,
    /// Per transport, the versions found and tested.
    pub transports: Vec<TransportVersions>,
}

impl Assessment {
    /// One line for the console: `judged by the 2025-03-26 profile: ...`.
    pub fn line(&self) -> String {
        match self.profile {
            Profile::None => format!(
                "judged by the none profile (no authorization): {}",
                self.reason
            ),
            Profile::Of(v) => format!("judged by the {v} profile: {}", self.reason),
        }
    }

    pub fn transport(&self, t: Transport) -> Option<&TransportVersions> {
        self.transports.iter().find(|v| v.transport == t)
    }

    /// The versions a check that depends on the negotiated version runs at on `t`.
    pub fn tested(&self, t: Transport) -> &[Version] {
        self.transport(t).map_or(&[], |v| v.tested.as_slice())
    }

    /// The session-era version a check negotiates on `t` when it runs at no version of its own
    /// there: 2024-11-05 on SSE (the transport's own), the configured version on Streamable
    /// HTTP, each when the server negotiates it, else the newest session-era version tested.
    pub fn home(&self, t: Transport, configured: Version) -> Version {
        let tested = self.tested(t);
        let own = match t {
            Transport::Sse => Version::V2024_11_05,
            Transport::StreamableHttp => configured,
        };
        if tested.contains(&own) {
            return own;
        }
        tested
            .iter()
            .rev()
            .find(|v| Version::SESSION_ERA.contains(v))
            .copied()
            .unwrap_or(own)
    }

    /// An assessment that assumes what the suite negotiated before it discovered versions:
    /// 2024-11-05 on SSE, `configured` on Streamable HTTP, judged by the newest of them.
    pub fn assumed(transports: &[Transport], configured: Version) -> Assessment {
        let transports: Vec<TransportVersions> = transports
            .iter()
            .map(|t| TransportVersions {
                transport: *t,
                negotiated: Vec::new(),
                tested: vec![match t {
                    Transport::Sse => Version::V2024_11_05,
                    Transport::StreamableHttp => configured,
                }],
                how: "assumed".into(),
            })
            .collect();
        Assessment {
            profile: Profile::Of(configured),
            judged_by: configured,
            reason: "assumed, not detected".into(),
            claimed: Version::ALL
                .into_iter()
                .filter(|v| *v <= configured)
                .collect(),
            transports,
        }
    }
}

/// What the metadata a server serves says about the versions it implements.
#[derive(Debug, Clone, Default)]
struct Served {
    /// Some MCP endpoint asked for a token (401).
    asks_for_tokens: bool,
    /// Some MCP endpoint answered an unauthenticated request with a success.
    answers_without_token: bool,
    prm: bool,
    /// The authorization server metadata came from a document (else the default endpoints).
    metadata: bool,
    cimd: bool,
    oidc: bool,
    registration: bool,
}

impl Served {
    fn of(discoveries: &BTreeMap<Transport, Result<Arc<Discovery>, String>>) -> Served {
        let mut s = Served::default();
        for d in discoveries.values().filter_map(|d| d.as_ref().ok()) {
            s.asks_for_tokens |= d.probe.status == 401;
            s.answers_without_token |= (200..300).contains(&d.probe.status);
            s.prm |= d.prm.is_some();
            s.metadata |= d.metadata.is_some();
            s.registration |= d.endpoints.registration.is_some() && d.metadata.is_some();
            s.cimd |= d
                .metadata
                .as_ref()
                .and_then(|m| m.get("client_id_metadata_document_supported"))
                .and_then(Value::as_bool)
                == Some(true);
            s.oidc |= d
                .metadata_url
                .as_ref()
                .is_some_and(|u| u.path().contains("openid-configuration"));
        }
        s
    }

    /// The server asks for no authorization: an endpoint answered without a token, none asked
    /// for one, and there is no metadata.
    fn no_authorization(&self) -> bool {
        self.answers_without_token && !self.asks_for_tokens && !self.prm && !self.metadata
    }

    /// The newest authorization version what it serves implies, and the words for it.
    fn version(&self) -> (Version, String) {
        if self.prm && (self.cimd || self.oidc) {
            let what = match (self.cimd, self.oidc) {
                (true, true) => "client ID metadata documents and OpenID Connect discovery",
                (true, false) => "client ID metadata documents",
                _ => "OpenID Connect discovery",
            };
            (
                Version::V2025_11_25,
                format!("it serves protected resource metadata and {what} (2025-11-25)"),
            )
        } else if self.prm {
            (
                Version::V2025_06_18,
                "it serves protected resource metadata (2025-06-18)".into(),
            )
        } else if self.metadata {
            (
                Version::V2025_03_26,
                "it serves root authorization server metadata and no protected resource \
                 metadata (2025-03-26)"
                    .into(),
            )
        } else {
            (
                Version::V2025_03_26,
                "it serves no authorization metadata, so the 2025-03-26 default endpoints apply"
                    .into(),
            )
        }
    }
}

/// Finds out what the server claims. `cx` is an authorization-server context of the run; the
/// login it makes (or the user's, in live mode) opens the sessions that negotiate.
pub async fn assess(cx: &Ctx) -> Assessment {
    let config = cx.config();
    let served = Served::of(&cx.shared.discovery);
    let no_authorization = served.no_authorization();
    // Each transport negotiates with a login of its own (a server may issue tokens per
    // endpoint), or without a token when the server asks for none.
    let found = futures::future::join_all(
        config
            .transports
            .iter()
            .map(|t| negotiate_within(cx, *t, no_authorization)),
    )
    .await;
    let mut transports = Vec::new();
    let mut login_failures = Vec::new();
    for (versions, login_failure) in found {
        if let Some(e) = login_failure {
            login_failures.push(e);
        }
        transports.push(versions);
    }
    // No login worked anywhere: the versions are unknown, not absent.
    let token: Result<(), String> =
        if !login_failures.is_empty() && login_failures.len() == transports.len() {
            Err(login_failures.swap_remove(0))
        } else {
            Ok(())
        };

    let negotiated: BTreeSet<Version> = transports
        .iter()
        .flat_map(|t| t.negotiated.iter().copied())
        .collect();
    let (served_version, served_why) = served.version();
    let (profile, judged_by, mut reason) = if no_authorization {
        let judged = negotiated.last().copied().unwrap_or(Version::V2024_11_05);
        (
            Profile::None,
            judged,
            "its MCP endpoints answer without a token and it serves no authorization metadata"
                .to_owned(),
        )
    } else if let Some(newest) = negotiated.last().copied() {
        let judged = newest.max(served_version);
        let why = if judged == newest && newest > served_version {
            format!("the newest version it negotiates is {newest}; {served_why}")
        } else if judged == newest {
            format!("it negotiates {newest}, and {served_why}")
        } else {
            format!("{served_why}, newer than the {newest} it negotiates")
        };
        (
            Profile::Of(judged.max(Version::FIRST_WITH_AUTHORIZATION)),
            judged,
            why,
        )
    } else {
        // Nothing negotiated: what it serves is all there is. Protected resource metadata
        // does not say which later version the server speaks, so every version is assumed
        // (the checks of a version it does not speak then fail or are blocked, never spared);
        // a server without it is a 2025-03-26 server, whatever it would negotiate.
        let newest = Version::ALL[Version::ALL.len() - 1];
        let judged = if served_version >= Version::V2025_06_18 {
            newest
        } else {
            served_version
        };
        let why = match &token {
            Err(e) => format!(
                "{served_why}; the versions it negotiates are unknown (the login failed: {e})"
            ),
            Ok(_) => format!("{served_why}; no version could be negotiated"),
        };
        let why = if judged > served_version {
            format!("{why}; assumed {judged}")
        } else {
            why
        };
        (Profile::Of(judged), judged, why)
    };

    // A transport where no session-era version was negotiated runs its session checks at the
    // version the suite assumes there, never newer than the one the server is judged by: a
    // server whose `initialize` is broken is judged by the checks of `initialize`, not spared
    // them. (A server that speaks only 2026-07-28 fails them too; the suite has no way yet to
    // tell it from a broken one.)
    for t in &mut transports {
        if !t
            .negotiated
            .iter()
            .any(|v| Version::SESSION_ERA.contains(v))
        {
            let own = match t.transport {
                Transport::Sse => Version::V2024_11_05,
                Transport::StreamableHttp => config.streamable_version,
            };
            let assumed = if own <= judged_by {
                own
            } else {
                Version::on(t.transport)
                    .iter()
                    .rev()
                    .find(|v| **v <= judged_by)
                    .copied()
                    .unwrap_or(own)
            };
            t.tested = std::iter::once(assumed)
                .chain(t.negotiated.iter().copied())
                .collect();
            t.how = format!("{}; assumed {assumed}", t.how);
        } else {
            t.tested = t.negotiated.clone();
        }
    }
    if !transports.iter().any(|t| !t.negotiated.is_empty()) && token.is_ok() && !no_authorization {
        reason.push_str("; no transport negotiated a version");
    }

    // What the server claims: what it negotiates and what it serves; with nothing negotiated,
    // every version up to the one it is judged by.
    let mut claimed: BTreeSet<Version> = negotiated.clone();
    if negotiated.is_empty() {
        claimed.extend(Version::ALL.into_iter().filter(|v| *v <= judged_by));
    } else if !no_authorization {
        claimed.insert(served_version);
    }
    Assessment {
        profile,
        judged_by,
        reason,
        claimed: claimed.into_iter().collect(),
        transports,
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

/// Offers each session-era version the transport knows in an `initialize`, and on Streamable
/// HTTP sends one stateless 2026-07-28 request; the versions the server answers with are the
/// ones it negotiates.
/// `negotiate`, bounded by the check timeout: a server that never finishes a login or never
/// sends the SSE `endpoint` event must not hold up the run before its first check. The
/// transport then has no negotiated version, and its checks find the defect themselves.
async fn negotiate_within(
    cx: &Ctx,
    t: Transport,
    no_authorization: bool,
) -> (TransportVersions, Option<String>) {
    let limit = cx.config().check_timeout;
    match tokio::time::timeout(limit, negotiate(cx, t, no_authorization)).await {
        Ok(found) => found,
        Err(_) => {
            let why = format!("no answer within {} s", limit.as_secs());
            let versions = TransportVersions {
                transport: t,
                negotiated: Vec::new(),
                tested: Vec::new(),
                how: format!("no version negotiated ({why})"),
            };
            (versions, Some(why))
        }
    }
}

async fn negotiate(
    cx: &Ctx,
    t: Transport,
    no_authorization: bool,
) -> (TransportVersions, Option<String>) {
    let on = Ctx {
        shared: cx.shared.clone(),
        transport: Some(t),
        run: Default::default(),
    };
    let token = if no_authorization {
        None
    } else {
        match on.login(LoginOptions::default()).await {
            Ok(login) => Some(login.access_token().to_owned()),
            Err(e) => {
                let step = crate::checks::prerequisite_of(&e).map_or(String::new(), |p| {
                    format!(" at the step {} judges", p.check)
                });
                let e = format!(
                    "{}{step}",
                    first_line(&on.redact(&format!("{e:#}"))).trim_end_matches(':')
                );
                let versions = TransportVersions {
                    transport: t,
                    negotiated: Vec::new(),
                    tested: Vec::new(),
                    how: format!("no version negotiated (the login failed: {e})"),
                };
                return (versions, Some(e));
            }
        }
    };
    let token = token.as_deref();
    let offers = Version::on(t)
        .iter()
        .copied()
        .filter(|v| Version::SESSION_ERA.contains(v));
    let answers = futures::future::join_all(offers.map(|offered| {
        let on = on.clone();
        async move {
            let answer = match on.connect_with(token, offered.as_str()).await {
                Ok((conn, result)) => {
                    // The session is closed so that it does not count against the user's.
                    if let crate::client::McpConn::Shttp(c) = &conn
                        && c.session.is_some()
                    {
                        let _ = c.delete().await;
                    }
                    Ok(result
                        .get("protocolVersion")
                        .and_then(Value::as_str)
                        .map(str::to_owned))
                }
                Err(e) => Err(first_line(&on.redact(&format!("{e:#}")))),
            };
            (offered, answer)
        }
    }))
    .await;
    let mut negotiated = BTreeSet::new();
    let mut errors = Vec::new();
    for (offered, answer) in answers {
        match answer {
            Ok(Some(v)) => match v.parse::<Version>() {
                Ok(v) if Version::on(t).contains(&v) => {
                    negotiated.insert(v);
                }
                _ => errors.push(format!("{offered}: answered {v:?}")),
            },
            Ok(None) => errors.push(format!("{offered}: no protocolVersion")),
            Err(e) => errors.push(format!("{offered}: {e}")),
        }
    }
    let mut how = Vec::new();
    if !negotiated.is_empty() {
        how.push("initialize".to_owned());
    }
    if t == Transport::StreamableHttp && stateless(&on, token).await {
        negotiated.insert(Version::V2026_07_28);
        how.push("a stateless 2026-07-28 request".to_owned());
    }
    let how = if negotiated.is_empty() {
        format!(
            "no version negotiated ({})",
            errors.first().map_or("no answer", String::as_str)
        )
    } else {
        format!("negotiated with {}", how.join(" and "))
    };
    let versions = TransportVersions {
        transport: t,
        negotiated: negotiated.into_iter().collect(),
        tested: Vec::new(),
        how,
    };
    (versions, None)
}

/// Whether the endpoint answers a 2026-07-28 request, which carries its version in
/// `MCP-Protocol-Version` and `_meta` and needs no session: `server/discover` first, and
/// `tools/list` when that fails (a server may get discovery wrong and still speak the version;
/// the checks of that version judge it).
async fn stateless(cx: &Ctx, token: Option<&str>) -> bool {
    const MODERN: &str = "2026-07-28";
    for (id, method) in [(1, "server/discover"), (2, "tools/list")] {
        let req = Req::post(cx.mcp_url())
            .bearer(token)
            .header("Accept", ACCEPT_BOTH)
            .header("MCP-Protocol-Version", MODERN)
            .header("Mcp-Method", method)
            .json(&json!({
                "jsonrpc": "2.0", "id": id, "method": method,
                "params": {"_meta": {
                    "io.modelcontextprotocol/protocolVersion": MODERN,
                    "io.modelcontextprotocol/clientCapabilities": {},
                    "io.modelcontextprotocol/clientInfo": {
                        "name": "mcp-auth-conformance",
                        "version": env!("CARGO_PKG_VERSION"),
                    },
                }},
            }));
        let client = Shttp::new(cx.http().clone(), cx.mcp_url(), token.map(str::to_owned));
        if let Ok(reply) = client.send(req).await
            && reply.exchange.status == 200
            && reply
                .response(&json!(id))
                .is_some_and(|r| r.get("result").is_some())
        {
            return true;
        }
    }
    false
}

/// Where a check stands against the assessment: the versions it runs at, or why it does not
/// run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Once per version (a check whose outcome can depend on the negotiated version).
    Each(Vec<Version>),
    /// Once, judged at this version.
    Once(Version),
    /// Not at all, for this reason.
    Skip(String),
}

/// The versions listed the way a reader reads them.
pub fn list(versions: &[Version]) -> String {
    if versions.is_empty() {
        return "none".into();
    }
    versions
        .iter()
        .map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a check with these versions runs. `per_version` says whether its outcome can depend on
/// the negotiated version; `authorization` whether it judges the authorization layer;
/// `selected` is the `--spec-version` pin (empty: all).
pub fn place(
    assessment: &Assessment,
    versions: Versions,
    transport: Option<Transport>,
    per_version: bool,
    authorization: bool,
    selected: &[Version],
) -> Placement {
    if authorization && assessment.profile == Profile::None {
        return Placement::Skip(format!(
            "the server asks for no authorization, so the authorization checks do not apply \
             ({})",
            assessment.reason
        ));
    }
    let pinned = |v: &Version| selected.is_empty() || selected.contains(v);
    if let (true, Some(t)) = (per_version, transport) {
        let tested = assessment.tested(t);
        // A check that also applies to session-era versions speaks the session protocol (it
        // opens its sessions with `initialize`), so it runs at those only; the checks of the
        // stateless protocol apply to 2026-07-28 alone.
        let stateless_only = !Version::SESSION_ERA.iter().any(|v| versions.contains(*v));
        let at: Vec<Version> = tested
            .iter()
            .copied()
            .filter(|v| versions.contains(*v) && pinned(v))
            .filter(|v| stateless_only || Version::SESSION_ERA.contains(v))
            .collect();
        let unknown = assessment
            .transport(t)
            .is_none_or(|v| v.negotiated.is_empty());
        if at.is_empty() && unknown {
            // The versions of this transport are unknown, not absent: the check runs once, as
            // a check that does not depend on the version would.
            return place(
                assessment,
                versions,
                transport,
                false,
                authorization,
                selected,
            );
        }
        if at.is_empty() {
            let how = assessment.transport(t).map_or("", |v| v.how.as_str());
            return Placement::Skip(format!(
                "applies to {}; on {t} the server is tested at {} ({how}){}",
                span(versions),
                list(tested),
                pin_note(selected)
            ));
        }
        return Placement::Each(at);
    }
    // Judged at the newest version it applies to among those the server claims, preferring
    // one the check's transport has (no 2026-07-28 on SSE).
    let applicable = || {
        assessment
            .claimed
            .iter()
            .rev()
            .copied()
            .filter(|v| versions.contains(*v) && pinned(v))
    };
    let newest = applicable()
        .find(|v| transport.is_none_or(|t| Version::on(t).contains(v)))
        .or_else(|| applicable().next());
    match newest {
        Some(v) => Placement::Once(v),
        None => Placement::Skip(format!(
            "applies to {}; the server is judged by the {} profile (it claims {}){}",
            span(versions),
            assessment.profile,
            list(&assessment.claimed),
            pin_note(selected)
        )),
    }
}

fn pin_note(selected: &[Version]) -> String {
    if selected.is_empty() {
        String::new()
    } else {
        format!("; --spec-version {}", list(selected))
    }
}

/// A range of versions in words (`2025-06-18 and later`).
pub fn span(v: Versions) -> String {
    if v.from == v.to {
        v.from.as_str().to_owned()
    } else if v.to == Version::V2026_07_28 {
        format!("{} and later", v.from)
    } else {
        format!("{} to {}", v.from, v.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assessment(profile: Profile, claimed: &[Version], shttp: &[Version]) -> Assessment {
        Assessment {
            profile,
            judged_by: claimed.last().copied().unwrap_or(Version::V2024_11_05),
            reason: "test".into(),
            claimed: claimed.to_vec(),
            transports: vec![TransportVersions {
                transport: Transport::StreamableHttp,
                negotiated: shttp.to_vec(),
                tested: shttp.to_vec(),
                how: "test".into(),
            }],
        }
    }

    const V03: Version = Version::V2025_03_26;
    const V06: Version = Version::V2025_06_18;
    const V11: Version = Version::V2025_11_25;
    const V07: Version = Version::V2026_07_28;

    #[test]
    fn a_version_dependent_check_runs_at_each_session_version_it_applies_to() {
        let a = assessment(
            Profile::Of(V07),
            &[V03, V06, V11, V07],
            &[V03, V06, V11, V07],
        );
        let t = Some(Transport::StreamableHttp);
        assert_eq!(
            place(&a, Versions::since(V06), t, true, false, &[]),
            Placement::Each(vec![V06, V11]),
            "2026-07-28 has no initialize, so a session check does not run there"
        );
        assert_eq!(
            place(&a, Versions::only(V07), t, true, false, &[]),
            Placement::Each(vec![V07])
        );
        assert_eq!(
            place(&a, Versions::since(V03), t, true, false, &[V06]),
            Placement::Each(vec![V06]),
            "--spec-version pins the version"
        );
    }

    #[test]
    fn a_2025_03_26_server_is_not_held_to_later_rules() {
        let a = assessment(Profile::Of(V03), &[Version::V2024_11_05, V03], &[V03]);
        assert_eq!(
            place(&a, Versions::since(V03), None, false, true, &[]),
            Placement::Once(V03)
        );
        assert!(matches!(
            place(&a, Versions::since(V06), None, false, true, &[]),
            Placement::Skip(reason) if reason.contains("2025-03-26 profile")
        ));
        assert!(matches!(
            place(
                &a,
                Versions::only(V07),
                Some(Transport::StreamableHttp),
                true,
                false,
                &[]
            ),
            Placement::Skip(_)
        ));
    }

    #[test]
    fn a_server_without_authorization_skips_only_the_authorization_checks() {
        let a = assessment(Profile::None, &[Version::V2024_11_05], &[]);
        assert!(matches!(
            place(&a, Versions::ALL, None, false, true, &[]),
            Placement::Skip(reason) if reason.contains("no authorization")
        ));
        assert_eq!(
            place(&a, Versions::ALL, None, false, false, &[]),
            Placement::Once(Version::V2024_11_05)
        );
    }

    #[test]
    fn once_run_checks_prefer_a_version_their_transport_has() {
        let a = assessment(Profile::Of(V07), &[V03, V11, V07], &[V11, V07]);
        assert_eq!(
            place(
                &a,
                Versions::since(V03),
                Some(Transport::Sse),
                false,
                true,
                &[]
            ),
            Placement::Once(V11)
        );
        assert_eq!(
            place(&a, Versions::since(V03), None, false, true, &[]),
            Placement::Once(V07)
        );
    }
}
