//! AUTH-3P: the MCP server as its own authorization server that sends the user to GitHub: the
//! delegated flow, upstream failures, per-client consent (the confused-deputy defence), the
//! consent page's CSRF and framing protection, cookies, and the upstream `state`.

use url::Url;

use super::{Check, Ctx, Findings, Level, LoginOptions, Scope, Verdict, issues_code, json_error};
use crate::body;
use crate::http::{Exchange, Req};
use crate::oauth::browser::{Arrival, Consent, Script, consent_form};
use crate::oauth::flow::{self, AuthParams, Pkce};
use crate::oauth::registration::ClientKind;
use crate::version::{Version, Versions};

const AS: Scope = Scope::AuthServer;

pub fn checks() -> Vec<Check> {
    vec![
        Check {
            id: "AUTH-3P-01",
            case: None,
            also: &[],
            level: Level::Must,
            versions: Versions::since(Version::V2025_03_26),
            scope: AS,
            title: "the GitHub round trip ends in the server's own code; GitHub's code is not an MCP code",
            run: body!(delegated_flow),
        },
        Check {
            id: "AUTH-3P-02",
            case: None,
            also: &[],
            level: Level::Must,
            versions: Versions::since(Version::V2025_03_26),
            scope: AS,
            title: "GitHub denial and token failures become error redirects with the client's state",
            run: body!(upstream_failures),
        },
        Check {
            id: "AUTH-3P-02",
            case: Some("user"),
            also: &[],
            level: Level::Must,
            versions: Versions::since(Version::V2025_03_26),
            scope: AS,
            title: "GitHub profile failures at login become error redirects with the client's state",
            run: body!(upstream_profile_failures),
        },
        Check {
            id: "AUTH-3P-02",
            case: Some("timeout"),
            also: &[],
            level: Level::Must,
            versions: Versions::since(Version::V2025_03_26),
            scope: AS,
            title: "a GitHub that never answers (token or profile) becomes an error redirect",
            run: body!(upstream_timeout),
        },
        Check {
            id: "AUTH-3P-03",
            case: None,
            also: &[],
            level: Level::Must,
            versions: Versions::since(Version::V2025_06_18),
            scope: AS,
            title: "each new client gets the server's consent page before GitHub",
            run: body!(consent_per_client),
        },
        Check {
            id: "AUTH-3P-04",
            case: None,
            also: &[],
            level: Level::Must,
            versions: Versions::since(Version::V2025_11_25),
            scope: AS,
            title: "the consent page names the client, resists CSRF and framing",
            run: body!(consent_page_protections),
        },
        Check {
            id: "AUTH-3P-05",
            case: None,
            also: &[],
            level: Level::Must,
            versions: Versions::since(Version::V2025_11_25),
            scope: AS,
            title: "consent cookies are __Host-, Secure, HttpOnly, SameSite",
            run: body!(consent_cookies),
        },
        Check {
            id: "AUTH-3P-07",
            case: None,
            also: &[],
            level: Level::Must,
            versions: Versions::since(Version::V2025_11_25),
            scope: AS,
            title: "the upstream state is random, single-use and checked at the callback",
            run: body!(upstream_state),
        },
    ]
}

/// Whether a request in the trail went to the mock GitHub's authorize page.
fn visited_github(cx: &Ctx, trail: &[Exchange]) -> bool {
    let mock = cx.config().mock_github.origin();
    trail.iter().any(|ex| ex.request.url.origin() == mock)
}

/// The first request back from GitHub to the server: the upstream callback.
fn upstream_callback(cx: &Ctx, trail: &[Exchange]) -> Option<Url> {
    let mock = cx.config().mock_github.origin();
    let mut after_github = false;
    for ex in trail {
        if ex.request.url.origin() == mock {
            after_github = true;
        } else if after_github {
            return Some(ex.request.url.clone());
        }
    }
    None
}

async fn delegated_flow(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let login = match cx.login(LoginOptions::default()).await {
        Ok(l) => l,
        Err(e) => {
            f.require(false, format!("the login did not complete: {e:#}"), None);
            return Ok(f.verdict());
        }
    };
    let trail = &login.authorized.outcome.trail;
    f.require(
        visited_github(&cx, trail),
        "the authorization never went to GitHub",
        None,
    );
    let Some(callback) = upstream_callback(&cx, trail) else {
        f.require(
            false,
            "no request came back from GitHub to the server",
            None,
        );
        return Ok(f.verdict());
    };
    let github_code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned());
    if let Some(g) = github_code {
        cx.http().redactor.add(&g, "github-code");
        f.require(g != login.code, "the client received GitHub's code", None);
        let a = &login.authorized;
        let ex = flow::exchange_code(
            cx.http(),
            &cx.endpoints()?.token,
            &a.client,
            &g,
            Some(&a.pkce.verifier),
            a.resource.as_deref(),
        )
        .await?;
        f.require(
            ex.status == 400 && json_error(&ex).as_deref() == Some("invalid_grant"),
            format!(
                "GitHub's code at the MCP /token answered {} {}",
                ex.status,
                super::shown(json_error(&ex))
            ),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

/// Logs in once per mock GitHub fault, all at once, and expects each to end in an error
/// redirect to the client.
async fn expect_error_redirects(cx: &Ctx, faults: &[&str]) -> anyhow::Result<Verdict> {
    let attempts = futures::future::try_join_all(faults.iter().map(|fault| {
        cx.authorize(LoginOptions {
            fault: Some((*fault).into()),
            ..LoginOptions::default()
        })
    }))
    .await?;
    let mut f = Findings::new(cx);
    for (fault, a) in faults.iter().zip(&attempts) {
        judge_error_redirect(cx, &mut f, fault, a);
    }
    Ok(f.verdict())
}

fn judge_error_redirect(cx: &Ctx, f: &mut Findings, fault: &str, a: &super::Authorized) {
    match &a.callback {
        Some(cb) => {
            f.require(
                cb.code.is_none(),
                format!("fault {fault}: the client got a code"),
                None,
            );
            f.require(
                cb.error.is_some(),
                format!("fault {fault}: the redirect has no error"),
                None,
            );
            f.require(
                cb.state.as_deref() == Some(a.state.as_str()),
                format!(
                    "fault {fault}: state {}, sent {:?}",
                    super::shown(cb.state.as_deref()),
                    a.state
                ),
                None,
            );
            let expected: &[&str] = if fault == "access_denied" {
                &["access_denied"]
            } else {
                &["server_error", "temporarily_unavailable"]
            };
            f.prefer(
                cb.error.as_deref().is_some_and(|e| expected.contains(&e)),
                format!(
                    "fault {fault}: error={}, expected one of {expected:?}",
                    super::shown(cb.error.as_deref())
                ),
                None,
            );
        }
        None => {
            let ex = match &a.outcome.arrival {
                Arrival::Page(ex) => Some(ex),
                _ => None,
            };
            f.require(
                false,
                format!(
                    "fault {fault}: no error redirect to the client: {}",
                    a.outcome.describe(cx.http())
                ),
                ex,
            );
        }
    }
}

async fn upstream_failures(cx: Ctx) -> anyhow::Result<Verdict> {
    expect_error_redirects(
        &cx,
        &[
            "access_denied",
            "token_5xx",
            "token_malformed",
            "token_error",
        ],
    )
    .await
}

async fn upstream_profile_failures(cx: Ctx) -> anyhow::Result<Verdict> {
    expect_error_redirects(&cx, &["user_401", "user_5xx", "user_malformed"]).await
}

async fn upstream_timeout(cx: Ctx) -> anyhow::Result<Verdict> {
    if !cx.config().slow {
        return Ok(Verdict::Skip(
            "waits for the server's upstream timeout; run with --slow".into(),
        ));
    }
    expect_error_redirects(&cx, &["token_timeout", "user_timeout"]).await
}

pub(super) async fn consent_per_client(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let mut browser = cx.browser();
    let first = cx
        .authorize_in(&mut browser, &LoginOptions::default(), Consent::Approve)
        .await?;
    anyhow::ensure!(
        first.callback.as_ref().is_some_and(|c| c.code.is_some()),
        "the first login failed: {}",
        first.outcome.describe(cx.http())
    );
    let y = cx
        .register(ClientKind::Public, "conformance second client")
        .await?;
    let second = cx
        .authorize_in(
            &mut browser,
            &LoginOptions {
                client: Some(y),
                ..LoginOptions::default()
            },
            Consent::Stop,
        )
        .await?;
    let consent = matches!(&second.outcome.arrival, Arrival::Page(ex) if ex.status == 200 && ex.content_type().as_deref() == Some("text/html"));
    f.require(
        consent && !visited_github(&cx, &second.outcome.trail),
        format!(
            "a new client in the same browser was not shown a consent page: {}",
            second.outcome.describe(cx.http())
        ),
        None,
    );
    // "MUST obtain user consent for each dynamically registered client": a page that is
    // not about this client, or that approves by itself, obtains nothing.
    if let (true, Arrival::Page(page)) = (consent, &second.outcome.arrival) {
        let html = page.text();
        // A pre-registered client (no registration offered) has a name the suite did not
        // choose.
        let pre_registered = cx
            .pre_registered()
            .is_some_and(|c| c.client_id == second.client.client_id);
        if pre_registered {
            f.note("the client is the pre-registered one, whose name the suite does not know");
        } else {
            f.require(
                html.contains(&second.client.name),
                format!(
                    "the page for the new client does not name it ({:?})",
                    second.client.name
                ),
                Some(page),
            );
        }
        let redirect = Url::parse(&second.client.redirect_uri)?;
        f.require(
            redirect.host_str().is_some_and(|h| html.contains(h)),
            "the page for the new client does not show where it redirects",
            Some(page),
        );
        for scope in github_scopes(&cx, &first.outcome.trail) {
            f.require(
                html.contains(&scope),
                format!("the page for the new client does not show the GitHub scope {scope:?}"),
                Some(page),
            );
        }
        if let Some(why) = approves_by_itself(&html) {
            f.require(
                false,
                format!("the page for the new client is no consent page: {why}"),
                Some(page),
            );
        }
    }
    Ok(f.verdict())
}

/// The scopes the server asked GitHub for, from the authorize request a login's trail sent
/// there.
fn github_scopes(cx: &Ctx, trail: &[Exchange]) -> Vec<String> {
    let github = cx.config().mock_github.origin();
    trail
        .iter()
        .filter(|ex| ex.request.url.origin() == github)
        .find_map(|ex| {
            ex.request
                .url
                .query_pairs()
                .find(|(k, _)| k == "scope")
                .map(|(_, v)| v.into_owned())
        })
        .map(|scope| {
            scope
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Why a consent page would approve without the person, if it would: a meta refresh, or a
/// script or `onload` handler that submits or clicks. Consent "needs an explicit approval"
/// (security best practices: the MCP-level consent page).
fn approves_by_itself(html: &str) -> Option<&'static str> {
    let lower = html.to_ascii_lowercase();
    let compact: String = lower.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.contains("http-equiv=\"refresh\"") || compact.contains("http-equiv=refresh") {
        return Some("it moves on by itself with a meta refresh");
    }
    let submits = [".submit(", ".requestsubmit(", ".click("];
    let scripted = lower.contains("<script") || lower.contains("onload=");
    if scripted && submits.iter().any(|s| compact.contains(s)) {
        return Some("a script submits its form without the person");
    }
    None
}

/// Fetches the consent page for a fresh client, in `browser`.
async fn consent_page(
    cx: &Ctx,
    browser: &mut crate::oauth::browser::Browser,
    name: &str,
) -> anyhow::Result<(Exchange, crate::oauth::registration::Client)> {
    let client = cx.register(ClientKind::Public, name).await?;
    let a = cx
        .authorize_in(
            browser,
            &LoginOptions {
                client: Some(client.clone()),
                ..LoginOptions::default()
            },
            Consent::Stop,
        )
        .await?;
    match a.outcome.arrival {
        Arrival::Page(ex) if ex.status == 200 => Ok((ex, client)),
        // AUTH-3P-03 judges whether a consent page is shown; without one this check is blocked.
        _ => Err(super::needs(
            "AUTH-3P-03",
            anyhow::anyhow!(
                "no consent page was shown (see AUTH-3P-03): {}",
                a.outcome.describe(cx.http())
            ),
        )),
    }
}

async fn consent_page_protections(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let name = format!("Conformance Client {}", rand::random::<u32>());
    let mut browser = cx.browser();
    let (page, client) = consent_page(&cx, &mut browser, &name).await?;
    let html = page.text();
    // A pre-registered client (no registration offered) has a name the suite did not choose.
    if client.name == name {
        f.require(
            html.contains(&name),
            "the consent page does not show the client's name",
            None,
        );
    } else {
        f.note("the client is the pre-registered one, whose name the suite does not know");
    }
    let redirect = Url::parse(&client.redirect_uri)?;
    f.require(
        html.contains(&client.redirect_uri)
            || redirect.host_str().is_some_and(|h| html.contains(h)),
        "the consent page does not show the redirect URI",
        None,
    );
    let xfo = page.header("x-frame-options").map(str::to_ascii_lowercase);
    let csp = page
        .header("content-security-policy")
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    f.require(
        matches!(xfo.as_deref(), Some("deny" | "sameorigin"))
            || csp.contains("frame-ancestors 'none'")
            || csp.contains("frame-ancestors 'self'"),
        "the consent page can be framed (no X-Frame-Options: DENY or CSP frame-ancestors)",
        Some(&page),
    );
    if let Some(why) = approves_by_itself(&html) {
        f.require(
            false,
            format!("the consent page needs no explicit approval: {why}"),
            Some(&page),
        );
    }
    let Some(form) = consent_form(&page.request.url, &html, Consent::Approve) else {
        anyhow::bail!("the consent page has no approve form");
    };
    // Without the browser's cookies, as a cross-site form post would arrive.
    let mut stranger = cx.browser();
    let ex = stranger.submit(&form, &page.request.url).await?;
    let to_github = ex
        .location()
        .is_some_and(|u| u.origin() == cx.config().mock_github.origin());
    f.require(
        !to_github && !issues_code(&ex),
        format!(
            "the approval without the consent cookie answered {} and went on",
            ex.status
        ),
        Some(&ex),
    );
    // With the cookies but a wrong CSRF field.
    let mut forged = form.clone();
    let mut touched = false;
    for (k, v) in &mut forged.fields {
        let lower = k.to_ascii_lowercase();
        if lower.contains("csrf") || lower.contains("xsrf") || lower.contains("token") {
            v.push('x');
            touched = true;
        }
    }
    if touched {
        let ex = browser.submit(&forged, &page.request.url).await?;
        let to_github = ex
            .location()
            .is_some_and(|u| u.origin() == cx.config().mock_github.origin());
        f.require(
            !to_github,
            format!(
                "the approval with a wrong CSRF token answered {} and went to GitHub",
                ex.status
            ),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

async fn consent_cookies(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let mut browser = cx.browser();
    let a = cx
        .authorize_in(&mut browser, &LoginOptions::default(), Consent::Approve)
        .await?;
    let server = cx.config().url.origin();
    let mut seen = 0;
    for ex in a
        .outcome
        .trail
        .iter()
        .filter(|ex| ex.request.url.origin() == server)
    {
        for cookie in ex.header_all("set-cookie") {
            seen += 1;
            let name = cookie.split('=').next().unwrap_or_default().trim();
            let attrs: Vec<String> = cookie
                .split(';')
                .skip(1)
                .map(|a| a.trim().to_ascii_lowercase())
                .collect();
            let has = |a: &str| attrs.iter().any(|x| x == a);
            f.require(
                name.starts_with("__Host-"),
                format!("cookie {name} lacks the __Host- prefix"),
                Some(ex),
            );
            f.require(
                has("secure"),
                format!("cookie {name} is not Secure"),
                Some(ex),
            );
            f.require(
                has("httponly"),
                format!("cookie {name} is not HttpOnly"),
                Some(ex),
            );
            f.require(
                has("samesite=lax") || has("samesite=strict"),
                format!("cookie {name} is not SameSite=Lax"),
                Some(ex),
            );
            f.require(
                has("path=/"),
                format!("cookie {name} has no Path=/"),
                Some(ex),
            );
            f.require(
                !attrs.iter().any(|x| x.starts_with("domain=")),
                format!("cookie {name} sets Domain"),
                Some(ex),
            );
        }
    }
    if seen == 0 {
        f.note("the server set no cookies during the authorization");
    }
    Ok(f.verdict())
}

async fn upstream_state(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    // Learn the callback URL from a complete login.
    let first = cx.authorize(LoginOptions::default()).await?;
    let callback = upstream_callback(&cx, &first.outcome.trail)
        .ok_or_else(|| anyhow::anyhow!("no upstream callback in the login"))?;
    let mut stop = callback.clone();
    stop.set_query(None);

    // A second authorization that stops when GitHub redirects back, so the callback is ours to send.
    let mut browser = cx.browser();
    let client = cx
        .register(ClientKind::Public, "conformance upstream state")
        .await?;
    let pkce = Pkce::s256();
    let params = AuthParams::for_client(
        &client,
        &pkce,
        "client-state",
        Some(&cx.discovery()?.resource()),
        None,
    );
    let script = Script {
        redirect_uri: stop.clone(),
        ..cx.script("octocat", None, Consent::Approve)
    };
    let arrival = browser
        .walk(params.url(&cx.endpoints()?.authorization), &script)
        .await?;
    let Arrival::Callback(back) = arrival else {
        anyhow::bail!("the second authorization did not come back from GitHub");
    };
    let state_of = |u: &Url| {
        u.query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
    };
    let (s1, s2) = (state_of(&callback), state_of(&back));
    f.require(
        s1.is_some() && s1 != s2,
        "two authorizations used the same upstream state",
        None,
    );
    if let Some(s) = &s2 {
        f.prefer(
            s.len() >= 22,
            format!(
                "the upstream state has {} characters (under 128 bits?)",
                s.len()
            ),
            None,
        );
    }
    let with_state = |state: Option<&str>| {
        let mut u = back.clone();
        let pairs: Vec<(String, String)> = back
            .query_pairs()
            .filter(|(k, _)| k != "state")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        {
            let mut q = u.query_pairs_mut();
            q.clear();
            for (k, v) in &pairs {
                q.append_pair(k, v);
            }
            if let Some(s) = state {
                q.append_pair("state", s);
            }
        }
        u
    };
    let passes = |ex: &Exchange| !issues_code(ex) && !(200..300).contains(&ex.status);
    let missing = browser.request(Req::get(with_state(None))).await?;
    f.require(
        passes(&missing),
        format!("the callback without state answered {}", missing.status),
        Some(&missing),
    );
    let wrong = browser
        .request(Req::get(with_state(Some("conformance-wrong-state"))))
        .await?;
    f.require(
        passes(&wrong),
        format!("the callback with a wrong state answered {}", wrong.status),
        Some(&wrong),
    );
    let good = browser.request(Req::get(back.clone())).await?;
    if issues_code(&good) {
        let replay = browser.request(Req::get(back.clone())).await?;
        f.require(
            passes(&replay),
            format!("replaying a completed callback answered {}", replay.status),
            Some(&replay),
        );
    } else {
        f.note(format!(
            "the genuine callback answered {} without a code",
            good.status
        ));
    }
    Ok(f.verdict())
}
