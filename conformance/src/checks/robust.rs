//! ROBUST: the robustness phase (`--robustness`). One campaign of generated malformed
//! requests (see [`crate::robustness`]) runs once per run; each check judges one class of
//! misbehaviour in it. A client's garbage is the client's error (RFC 9110 §15.5: 4xx), so
//! a 5xx, a request never answered, or a connection dropped before the answer is the
//! server failing its clients.

use std::sync::Arc;

use url::Url;

use super::{Check, Ctx, Findings, LoginOptions, Scope, Verdict};
use crate::body;
use crate::config::Transport;
use crate::robustness::{self, Campaign, Class, Credentials, Endpoint, Kind};

pub fn checks() -> Vec<Check> {
    vec![
        Check::new("ROBUST-01", Scope::AuthServer, body!(no_server_errors)),
        Check::new("ROBUST-02", Scope::AuthServer, body!(no_hangs)),
        Check::new("ROBUST-03", Scope::AuthServer, body!(no_resets)),
        Check::new("ROBUST-04", Scope::AuthServer, body!(memory_stays_bounded)),
    ]
}

/// How many examples of a class the evidence shows.
const EXAMPLES: usize = 5;

/// The run's campaign, started by whichever check asks first.
async fn campaign(cx: &Ctx) -> anyhow::Result<Option<Arc<Campaign>>> {
    let Some(settings) = cx.config().robustness.clone() else {
        return Ok(None);
    };
    let result = cx
        .shared
        .robustness
        .get_or_init(|| async {
            run_campaign(cx, &settings)
                .await
                .map(Arc::new)
                .map_err(|e| format!("{e:#}"))
        })
        .await;
    match result {
        Ok(c) => Ok(Some(c.clone())),
        Err(e) => anyhow::bail!("the robustness phase could not run: {e}"),
    }
}

async fn run_campaign(cx: &Ctx, settings: &robustness::Settings) -> anyhow::Result<Campaign> {
    // A real login gives garbage a way past the bearer check, and shows which pages the
    // server's own login uses (consent, the GitHub callback).
    let login = cx.login(LoginOptions::default()).await?;
    let mut endpoints: Vec<Endpoint> = Vec::new();
    let mut add = |url: Url, kind: Kind| {
        let mut url = url;
        if kind != Kind::LegacyPost {
            url.set_query(None);
        }
        url.set_fragment(None);
        if !endpoints.iter().any(|e| e.url == url) {
            endpoints.push(Endpoint { url, kind });
        }
    };
    for t in &cx.config().transports {
        let kind = match t {
            Transport::StreamableHttp => Kind::Mcp,
            Transport::Sse => Kind::Sse,
        };
        add(cx.config().endpoint(*t), kind);
    }
    if let Ok(d) = cx.discovery() {
        add(d.endpoints.authorization.clone(), Kind::Query);
        add(d.endpoints.token.clone(), Kind::Form);
        if let Some(u) = &d.endpoints.registration {
            add(u.clone(), Kind::Json);
        }
        if let Some(u) = &d.endpoints.revocation {
            add(u.clone(), Kind::Form);
        }
        if let Some(u) = &d.metadata_url {
            add(u.clone(), Kind::Document);
        }
        if let Some(u) = &d.prm_url {
            add(u.clone(), Kind::Document);
        }
    }
    let origin = cx.config().url.origin();
    for ex in &login.authorized.outcome.trail {
        let url = &ex.request.url;
        if url.origin() == origin {
            let kind = if ex.request.method == reqwest::Method::POST {
                Kind::Form
            } else {
                Kind::Query
            };
            add(url.clone(), kind);
        }
    }
    // The session stays open while the phase runs, so that its endpoint stays live.
    let mut _open_session = None;
    if cx.config().transports.contains(&Transport::Sse) {
        let sse = Ctx {
            transport: Some(Transport::Sse),
            ..cx.clone()
        };
        let session = sse.open_sse(Some(login.access_token())).await?;
        // The live session's endpoint, and the same path with a session nobody opened.
        let mut unknown = session.endpoint.clone();
        let pairs: Vec<(String, String)> = unknown
            .query_pairs()
            .map(|(k, v)| {
                let v = if k.to_ascii_lowercase().contains("session") {
                    "00000000000000000000000000000000".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        unknown.query_pairs_mut().clear().extend_pairs(pairs);
        add(session.endpoint.clone(), Kind::LegacyPost);
        add(unknown, Kind::LegacyPost);
        _open_session = Some(session);
    }
    let credentials = Credentials {
        access_token: Some(login.access_token().to_owned()),
        client_id: Some(login.client().client_id.clone()),
    };
    robustness::run(
        endpoints,
        credentials,
        settings,
        cx.http().timeout,
        cx.http().redactor.clone(),
    )
    .await
}

fn not_asked() -> Verdict {
    Verdict::Skip(super::opt_in::ROBUSTNESS.into())
}

/// A verdict for one class: pass with the campaign's summary, or the first examples.
fn judge(cx: &Ctx, c: &Campaign, class: Class, what: &str) -> Verdict {
    let found = c.of(class);
    let mut f = Findings::new(cx);
    if found.is_empty() {
        f.note(c.summary());
        return f.verdict();
    }
    let mut message = format!(
        "{} of {} generated requests {what}; {}",
        found.len(),
        c.sent,
        c.summary()
    );
    for finding in found.iter().take(EXAMPLES) {
        message.push_str(&format!(
            "\ncase {}: {}\n{}",
            finding.case, finding.observed, finding.request
        ));
    }
    if found.len() > EXAMPLES {
        message.push_str(&format!("\n... and {} more", found.len() - EXAMPLES));
    }
    f.require(false, message, None);
    f.verdict()
}

async fn no_server_errors(cx: Ctx) -> anyhow::Result<Verdict> {
    Ok(match campaign(&cx).await? {
        None => not_asked(),
        Some(c) => judge(&cx, &c, Class::ServerError, "got a 5xx"),
    })
}

async fn no_hangs(cx: Ctx) -> anyhow::Result<Verdict> {
    Ok(match campaign(&cx).await? {
        None => not_asked(),
        Some(c) => judge(&cx, &c, Class::Hang, "got no answer in time"),
    })
}

async fn no_resets(cx: Ctx) -> anyhow::Result<Verdict> {
    Ok(match campaign(&cx).await? {
        None => not_asked(),
        Some(c) => judge(
            &cx,
            &c,
            Class::Reset,
            "lost their connection without an answer",
        ),
    })
}

async fn memory_stays_bounded(cx: Ctx) -> anyhow::Result<Verdict> {
    let Some(c) = campaign(&cx).await? else {
        return Ok(not_asked());
    };
    let Some((before, after)) = c.rss_kib else {
        return Ok(Verdict::Skip(
            "the target's process is not known: give --target-pid (cargo xtask conformance does when it launches the target)".into(),
        ));
    };
    let grown_mib = after.saturating_sub(before) / 1024;
    let mut f = Findings::new(&cx);
    let line = format!(
        "resident memory {} MiB before and {} MiB after {} requests (bound: {} MiB of growth)",
        before / 1024,
        after / 1024,
        c.sent,
        c.memory_limit_mib
    );
    if f.require(grown_mib <= c.memory_limit_mib, line.clone(), None) {
        f.note(line);
    }
    Ok(f.verdict())
}
