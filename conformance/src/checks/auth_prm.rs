//! AUTH-PRM: protected resource metadata (RFC 9728) and the 401 challenge that points to it.

use serde_json::Value;

use super::{BOTH, Check, Ctx, Findings, LoginOptions, Verdict, challenge};
use crate::body;
use crate::config::Transport;
use crate::http::challenge::parse_challenges;
use crate::http::{Exchange, Req};
use crate::oauth::discovery::prm_urls;
use crate::version::Version;

pub fn checks() -> Vec<Check> {
    vec![
        Check::new("AUTH-PRM-01", BOTH, body!(prm_is_served)),
        Check::new("AUTH-PRM-02", BOTH, body!(authorization_servers_listed)),
        Check::new("AUTH-PRM-03", BOTH, body!(resource_is_the_endpoint)),
        Check::new("AUTH-PRM-04", BOTH, body!(challenge_points_to_metadata)).also(&["AUTH-PRM-09"]),
        Check::new("AUTH-PRM-05", BOTH, body!(well_known_locations_agree)),
        Check::new("AUTH-PRM-06", BOTH, body!(challenge_names_scope)),
        Check::new("AUTH-PRM-07", BOTH, body!(scopes_are_minimal)).also(&["AUTH-PRM-08"]),
        Check::new("AUTH-PRM-08", BOTH, body!(offline_access_is_not_asked)),
    ]
}

fn prm(cx: &Ctx) -> anyhow::Result<(url::Url, Value)> {
    let d = cx.discovery()?;
    match (&d.prm_url, &d.prm) {
        (Some(u), Some(p)) => Ok((u.clone(), p.clone())),
        // AUTH-PRM-01 judges whether the document is served; without it this check is blocked.
        _ => Err(super::needs(
            "AUTH-PRM-01",
            anyhow::anyhow!("no protected resource metadata was found (see AUTH-PRM-01)"),
        )),
    }
}

async fn prm_is_served(cx: Ctx) -> anyhow::Result<Verdict> {
    let d = cx.discovery()?;
    let mut f = Findings::new(&cx);
    match (&d.prm_url, &d.prm) {
        (Some(url), Some(doc)) => {
            cx.record(
                "protected resource metadata",
                crate::snapshot::normalize_json(cx.config(), doc),
            );
            f.note(format!("found at {url}"));
        }
        _ => {
            let tried: Vec<String> = prm_urls(&d.mcp_url).iter().map(|u| u.to_string()).collect();
            f.require(
                false,
                format!("no document via the challenge or at {}", tried.join(", ")),
                Some(&d.probe),
            );
        }
    }
    Ok(f.verdict())
}

async fn authorization_servers_listed(cx: Ctx) -> anyhow::Result<Verdict> {
    let (_, doc) = prm(&cx)?;
    let mut f = Findings::new(&cx);
    let list = doc.get("authorization_servers").and_then(Value::as_array);
    match list {
        Some(items) if !items.is_empty() => {
            for item in items {
                let parsed = item.as_str().and_then(|s| url::Url::parse(s).ok());
                match parsed {
                    Some(u) if u.fragment().is_none() => {
                        if u.scheme() != "https" && crate::http::is_loopback(&u) {
                            f.prefer(
                                false,
                                format!("{u} uses http on loopback; fine for local tests only"),
                                None,
                            );
                        } else if u.scheme() != "https" {
                            f.require(false, format!("{u} is not https"), None);
                        }
                    }
                    _ => {
                        f.require(
                            false,
                            format!("{item} is not an absolute URL without a fragment"),
                            None,
                        );
                    }
                }
            }
        }
        _ => {
            f.require(
                false,
                format!(
                    "authorization_servers is {}",
                    super::shown_json(doc.get("authorization_servers"))
                ),
                None,
            );
        }
    }
    Ok(f.verdict())
}

async fn resource_is_the_endpoint(cx: Ctx) -> anyhow::Result<Verdict> {
    let (url, doc) = prm(&cx)?;
    let mut f = Findings::new(&cx);
    let mcp = cx.mcp_url();
    let resource = doc.get("resource").and_then(Value::as_str);
    match resource.and_then(|r| url::Url::parse(r).ok()) {
        None => {
            f.require(
                false,
                format!(
                    "resource is {}, not an absolute URI",
                    super::shown_json(doc.get("resource"))
                ),
                None,
            );
        }
        Some(r) => {
            f.require(r.fragment().is_none(), "resource has a fragment", None);
            let resource = resource.unwrap_or_default();
            // RFC 9728 §3.3: "The resource value returned MUST be identical to the protected
            // resource's resource identifier value into which the well-known URI path suffix
            // was inserted to create the URL used to retrieve the metadata", and a document
            // found through WWW-Authenticate must name the URL the client requested. Identity
            // is byte for byte: a same-origin prefix (what the TypeScript SDK tolerates) or a
            // stray trailing slash is another identifier.
            let (expected, how) = match fetched_for(&url) {
                Some(identifier) => (identifier, format!("the identifier {url} was built from")),
                None => (
                    mcp.to_string(),
                    format!("the endpoint whose challenge named {url}"),
                ),
            };
            // An origin's identifier is written with or without the empty path's slash.
            let same = resource == expected
                || (fetched_for(&url).is_some_and(|_| url.path().ends_with("-resource"))
                    && resource.trim_end_matches('/') == expected);
            f.require(
                same,
                format!("resource {resource:?} is not identical to {expected:?}, {how}"),
                None,
            );
            // A root document names the origin, which is only a prefix of the MCP endpoint:
            // allowed by RFC 9728, but clients following MCP compare with the endpoint.
            f.prefer(
                resource == mcp.as_str() || resource == mcp.as_str().trim_end_matches('/'),
                format!("resource {resource:?} is not the MCP endpoint {mcp}"),
                None,
            );
        }
    }
    Ok(f.verdict())
}

/// The resource identifier a well-known metadata URL was built from: the URL without the
/// `/.well-known/oauth-protected-resource` segment (RFC 9728 §3.1). `None` for a URL that is
/// not well-known, such as one a `resource_metadata` challenge named.
fn fetched_for(metadata_url: &url::Url) -> Option<String> {
    const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";
    let rest = metadata_url.path().strip_prefix(WELL_KNOWN)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let origin = metadata_url.origin().ascii_serialization();
    let mut identifier = format!("{origin}{rest}");
    if let Some(query) = metadata_url.query() {
        identifier.push('?');
        identifier.push_str(query);
    }
    Some(identifier)
}

async fn challenge_points_to_metadata(cx: Ctx) -> anyhow::Result<Verdict> {
    let probe = cx.probe(None).await?;
    let mut f = Findings::new(&cx);
    let Some(rm) = judge_challenge(&cx, &mut f, "an unauthenticated request", &probe) else {
        return Ok(f.verdict());
    };
    match url::Url::parse(&rm) {
        Ok(u) => {
            f.prefer(
                u.origin() == cx.mcp_url().origin(),
                format!("resource_metadata {u} is on another origin"),
                Some(&probe),
            );
            let doc = cx.http().send(Req::get(u.clone())).await?;
            f.require(
                doc.status == 200 && doc.json().is_some_and(|v| v.is_object()),
                format!("GET {u} answered {}", doc.status),
                Some(&doc),
            );
        }
        Err(_) => {
            f.require(
                false,
                format!("resource_metadata {rm:?} is not an absolute URL"),
                Some(&probe),
            );
        }
    }
    // "MCP servers MUST use the HTTP header WWW-Authenticate when returning a 401
    // Unauthorized": every 401, so also the requests that do not open a session (the
    // catalogue: "the same challenge on GET $MCP, GET $SSE and the legacy POST endpoint").
    for (what, ex) in other_unauthenticated_requests(&cx).await? {
        // Only a 401 must carry the challenge; whether these requests get one at all is
        // AUTH-GEN-01's finding.
        if ex.status != 401 {
            f.note(format!("{what} answered {}, not 401", ex.status));
            continue;
        }
        if let Some(other) = judge_challenge(&cx, &mut f, &what, &ex) {
            f.require(
                other == rm,
                format!("{what} names resource_metadata {other:?}, the first request {rm:?}"),
                Some(&ex),
            );
        }
    }
    Ok(f.verdict())
}

/// The unauthenticated requests of the transport besides its first one: GET and DELETE on the
/// Streamable HTTP endpoint; a POST to the legacy message endpoint (which a stream opened with
/// a token names).
async fn other_unauthenticated_requests(cx: &Ctx) -> anyhow::Result<Vec<(String, Exchange)>> {
    let url = cx.mcp_url();
    let mut out = Vec::new();
    match cx.transport() {
        Transport::StreamableHttp => {
            let get = cx
                .http()
                .send_head(Req::get(url.clone()).header("Accept", "text/event-stream"))
                .await?;
            out.push((format!("GET {url} without credentials"), get));
            let delete = cx
                .http()
                .send(Req::new(reqwest::Method::DELETE, url.clone()).header(
                    "Mcp-Session-Id",
                    "conformance-never-issued-0123456789abcdef",
                ))
                .await?;
            out.push((format!("DELETE {url} without credentials"), delete));
        }
        Transport::Sse => {
            let login = cx.login(LoginOptions::default()).await?;
            let s = cx.open_sse(Some(login.access_token())).await?;
            let post = cx
                .http()
                .send(
                    Req::post(s.endpoint.clone())
                        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})),
                )
                .await?;
            out.push((
                "a POST to the message endpoint without credentials".into(),
                post,
            ));
        }
    }
    Ok(out)
}

/// Requires a 401 whose Bearer challenge names `resource_metadata` (2025-06-18; from
/// 2025-11-25 a well-known document may stand in for it), and returns that URL.
fn judge_challenge(cx: &Ctx, f: &mut Findings, what: &str, ex: &Exchange) -> Option<String> {
    f.require(
        ex.status == 401,
        format!("{what} answered {}", ex.status),
        Some(ex),
    );
    let values = ex.header_all("www-authenticate");
    if values.is_empty() {
        f.require(
            false,
            format!("the 401 to {what} has no WWW-Authenticate header"),
            Some(ex),
        );
        return None;
    }
    let parsed = match parse_challenges(values.iter().copied()) {
        Ok(p) => p,
        Err(e) => {
            f.require(
                false,
                format!("WWW-Authenticate of {what} does not parse: {e}"),
                Some(ex),
            );
            return None;
        }
    };
    let Some(bearer) = parsed.iter().find(|c| c.is_bearer()) else {
        f.require(false, format!("no Bearer challenge to {what}"), Some(ex));
        return None;
    };
    let Some(rm) = bearer.param("resource_metadata") else {
        // 2025-11-25 accepts well-known discovery instead; 2025-06-18 does not.
        let well_known = cx.discovery().ok().and_then(|d| d.prm.clone()).is_some();
        let only_later = !cx.version_selected(Version::V2025_06_18);
        f.require(
            only_later && well_known,
            format!(
                "the Bearer challenge to {what} has no resource_metadata (required by 2025-06-18)"
            ),
            Some(ex),
        );
        return None;
    };
    Some(rm.to_owned())
}

async fn well_known_locations_agree(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let mcp = cx.mcp_url();
    let mut docs = Vec::new();
    // Every location that answers 200 is judged, not only the one discovery settled on: a
    // client that falls back to the root document reads whatever is there. RFC 9728 §3.2:
    // "A successful response MUST use the 200 OK HTTP status code and return a JSON object
    // using the application/json content type"; §3.3: "The resource value returned MUST be
    // identical to the protected resource's resource identifier value into which the
    // well-known URI path suffix was inserted to create the URL used to retrieve the
    // metadata."
    for url in prm_urls(&mcp) {
        let ex = cx.http().send(Req::get(url.clone())).await?;
        if ex.status != 200 {
            continue;
        }
        let Some(doc) = ex.json().filter(Value::is_object) else {
            f.require(
                false,
                format!("{url} answered 200 without a JSON object"),
                Some(&ex),
            );
            continue;
        };
        f.require(
            ex.content_type().as_deref() == Some("application/json"),
            format!(
                "{url} answered with content type {}, not application/json",
                super::shown(ex.content_type())
            ),
            Some(&ex),
        );
        if let Some(expected) = fetched_for(&url) {
            let resource = doc.get("resource").and_then(Value::as_str);
            // An origin's identifier is written with or without the empty path's slash.
            let same = resource.is_some_and(|resource| {
                resource == expected
                    || (url.path().ends_with("-resource")
                        && resource.trim_end_matches('/') == expected)
            });
            f.require(
                same,
                format!(
                    "{url} has resource {}, not {expected:?}, the identifier the URL was built from",
                    super::shown_json(doc.get("resource"))
                ),
                Some(&ex),
            );
        }
        docs.push((url, doc));
    }
    let header = challenge(&cx.probe(None).await?)
        .and_then(|c| c.param("resource_metadata").map(str::to_owned));
    f.require(
        !docs.is_empty() || header.is_some(),
        "neither well-known location serves metadata and the challenge names none",
        None,
    );
    if let [(_, a), (_, b), ..] = docs.as_slice() {
        f.require(
            a.get("authorization_servers") == b.get("authorization_servers"),
            "the path-suffixed and root documents list different authorization_servers",
            None,
        );
    }
    Ok(f.verdict())
}

async fn challenge_names_scope(cx: Ctx) -> anyhow::Result<Verdict> {
    let probe = cx.probe(None).await?;
    let mut f = Findings::new(&cx);
    let Some(c) = challenge(&probe) else {
        return Ok(Verdict::Skip(
            "no Bearer challenge (see AUTH-PRM-04)".into(),
        ));
    };
    match c.param("scope") {
        Some(scope) => {
            f.prefer(
                !scope.is_empty()
                    && scope.split(' ').all(|s| {
                        !s.is_empty()
                            && s.chars().all(|ch| {
                                ch as u32 >= 0x21 && ch != '"' && ch != '\\' && ch as u32 <= 0x7e
                            })
                    }),
                format!("scope {scope:?} is not a space-delimited list of scope tokens"),
                Some(&probe),
            );
        }
        None => {
            f.prefer(false, "the challenge has no scope parameter", Some(&probe));
        }
    }
    Ok(f.verdict())
}

async fn scopes_are_minimal(cx: Ctx) -> anyhow::Result<Verdict> {
    let (_, doc) = prm(&cx)?;
    let mut f = Findings::new(&cx);
    if let Some(scopes) = doc.get("scopes_supported") {
        let list: Option<Vec<&str>> = scopes
            .as_array()
            .and_then(|a| a.iter().map(Value::as_str).collect());
        match list {
            Some(list) => {
                for s in list {
                    f.prefer(
                        !matches!(s, "*" | "all" | "full-access"),
                        format!("scopes_supported has the omnibus scope {s:?}"),
                        None,
                    );
                    f.prefer(
                        s != "offline_access",
                        "scopes_supported lists offline_access (AUTH-PRM-08)",
                        None,
                    );
                }
            }
            None => {
                f.prefer(false, "scopes_supported is not an array of strings", None);
            }
        }
    }
    if let Some(scope) =
        challenge(&cx.probe(None).await?).and_then(|c| c.param("scope").map(str::to_owned))
    {
        f.prefer(
            !scope.split(' ').any(|s| s == "offline_access"),
            "the challenge scope lists offline_access (AUTH-PRM-08)",
            None,
        );
    }
    Ok(f.verdict())
}

/// AUTH-PRM-08 (2026-07-28, Refresh Tokens): "MCP Servers (Protected Resources) SHOULD NOT
/// include `offline_access` in `WWW-Authenticate` scope or Protected Resource Metadata
/// `scopes_supported`, as refresh tokens are not a resource requirement."
async fn offline_access_is_not_asked(cx: Ctx) -> anyhow::Result<Verdict> {
    let (prm_url, doc) = prm(&cx)?;
    let mut f = Findings::new(&cx);
    let listed = doc
        .get("scopes_supported")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|s| s.as_str() == Some("offline_access")));
    f.prefer(
        !listed,
        format!("the scopes_supported of {prm_url} lists offline_access"),
        None,
    );
    let probe = cx.probe(None).await?;
    if let Some(scope) = challenge(&probe).and_then(|c| c.param("scope").map(str::to_owned)) {
        f.prefer(
            !scope.split(' ').any(|s| s == "offline_access"),
            format!("the 401 challenge's scope {scope:?} lists offline_access"),
            Some(&probe),
        );
    }
    Ok(f.verdict())
}
