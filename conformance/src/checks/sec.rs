//! SEC: the security best practices that a server shows over HTTP beyond what the
//! authorization checks already judge: minimal scope challenges, and consent per client
//! where the server proxies a third-party login.

use serde_json::Value;

use super::{BOTH, Check, Ctx, Findings, Scope, Verdict, challenge};
use crate::body;

pub fn checks() -> Vec<Check> {
    vec![
        Check::new("SEC-04", BOTH, body!(challenge_is_minimal)),
        // The security best practices repeat the authorization spec's confused-deputy
        // rule word for word; the observation is AUTH-3P-03's.
        Check::new(
            "SEC-05",
            Scope::AuthServer,
            body!(super::auth_3p::consent_per_client),
        )
        .also(&["AUTH-3P-03"]),
        // "MCP Servers MUST NOT use sessions for authentication" (Security Best
        // Practices, Session Hijacking mitigation): a request that names a live session
        // but carries no token must still be challenged, which is AUTH-GEN-02's probe.
        Check::new(
            "SEC-03",
            BOTH,
            body!(super::auth_gen::a_session_without_a_token_gets_401),
        ),
        // "MCP servers SHOULD bind session IDs to user-specific information" (Security
        // Best Practices, Session Hijacking mitigation). AUTH-TOK-05 sends another
        // user's request on a session; a bound session refuses it, an unbound one
        // answers, which this SHOULD check reports as a warning.
        Check::new(
            "SEC-02",
            BOTH,
            body!(super::auth_tok::sessions_are_bound_to_users),
        ),
    ]
}

fn scopes_in(doc: Option<&Value>) -> Vec<String> {
    doc.and_then(|d| d.get("scopes_supported"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// SEC-04: "Minimal initial scope set (e.g., `mcp:tools-basic`) containing only low-risk
/// discovery/read operations" and "Emit precise scope challenges; avoid returning the
/// full catalog" (2025-11-25, Security Best Practices, Scope Minimization). The challenge
/// to a request without a token is where a client learns its initial scope.
async fn challenge_is_minimal(cx: Ctx) -> anyhow::Result<Verdict> {
    let d = cx.discovery()?;
    let mut catalogue = scopes_in(d.metadata.as_ref());
    for scope in scopes_in(d.prm.as_ref()) {
        if !catalogue.contains(&scope) {
            catalogue.push(scope);
        }
    }
    if catalogue.len() < 2 {
        return Ok(Verdict::Skip(format!(
            "the metadata lists {} scope(s): there is no narrower set to ask for",
            catalogue.len()
        )));
    }
    let probe = cx.probe(None).await?;
    let Some(asked) = challenge(&probe).and_then(|c| c.param("scope").map(str::to_owned)) else {
        return Ok(Verdict::Skip(
            "the 401 challenge names no scope (see AUTH-PRM-06)".into(),
        ));
    };
    let asked: Vec<&str> = asked.split(' ').filter(|s| !s.is_empty()).collect();
    let mut f = Findings::new(&cx);
    f.require(
        catalogue.iter().any(|s| !asked.contains(&s.as_str())),
        format!(
            "the 401 challenge asks for every scope the metadata lists ({})",
            catalogue.join(" ")
        ),
        Some(&probe),
    );
    f.note(format!(
        "challenge: {}; catalogue: {}",
        asked.join(" "),
        catalogue.join(" ")
    ));
    Ok(f.verdict())
}
