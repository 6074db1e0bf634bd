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
        Check::new("AUTH-3P-01", AS, body!(delegated_flow)),
        Check::new("AUTH-3P-02", AS, body!(upstream_failures))
            .versions(Versions::since(Version::V2025_03_26)),
        Check::new("AUTH-3P-02", AS, body!(upstream_profile_failures))
            .case(
                "user",
                "GitHub profile failures at login become error redirects with the client's state",
            )
            .versions(Versions::since(Version::V2025_03_26)),
        Check::new("AUTH-3P-02", AS, body!(upstream_timeout))
            .case(
                "timeout",
                "a GitHub that never answers (token or profile) becomes an error redirect",
            )
            .versions(Versions::since(Version::V2025_03_26)),
        Check::new("AUTH-3P-03", AS, body!(consent_per_client)),
        Check::new("AUTH-3P-04", AS, body!(consent_page_protections)),
        // No specification names bidirectional overrides in a client name; showing them
        // keeps the name but lets it read as another, so this case warns.
        Check::new("AUTH-3P-04", AS, body!(bidi_name_is_neutralised))
            .case(
                "bidi-name",
                "a client name with a right-to-left override is not shown as it would read",
            )
            .level(Level::Should),
        // No specification says a refused forgery must leave the pending request alone; a
        // server that drops it lets anyone cancel a user's approval, so this case warns.
        Check::new("AUTH-3P-04", AS, body!(forged_approval_leaves_the_request))
            .case(
                "forged-cancel",
                "a refused forged approval leaves the user's own approval standing",
            )
            .level(Level::Should),
        Check::new("AUTH-3P-05", AS, body!(consent_cookies)),
        Check::new("AUTH-3P-07", AS, body!(upstream_state)),
        // "Validate that the `redirect_uri` in authorization requests exactly matches
        // the registered URI" (2025-11-25, Security Best Practices, required
        // protections for proxies). AUTH-FLOW-06's probes (an unregistered URI, one
        // with an extra path segment or query) are that validation seen from outside.
        Check::new(
            "AUTH-3P-06",
            AS,
            body!(super::auth_flow::redirect_uri_exact_match),
        ),
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
                    "fault {fault}: error={}, expected {}",
                    super::shown(cb.error.as_deref()),
                    expected.join(" or ")
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
    // With the cookies but a wrong CSRF field: each kind of near miss on a consent page of
    // its own, so that the refusal of one cannot hide the acceptance of another (a server
    // may drop a pending approval after a wrong token). A comparison that stops early, or
    // one that XORs the differences so that two of them cancel, takes one of these.
    let is_csrf_field = |name: &str| {
        let lower = name.to_ascii_lowercase();
        lower.contains("csrf") || lower.contains("xsrf") || lower.contains("token")
    };
    if form.fields.iter().any(|(name, _)| is_csrf_field(name)) {
        for (kind, describe) in super::NEAR_MISS_KINDS.iter().enumerate() {
            let mut browser = cx.browser();
            let (page, _) = consent_page(&cx, &mut browser, &name).await?;
            let Some(mut forged) = consent_form(&page.request.url, &page.text(), Consent::Approve)
            else {
                anyhow::bail!("the second consent page has no approve form");
            };
            for (name, value) in &mut forged.fields {
                if is_csrf_field(name) {
                    *value = super::near_miss(value, kind);
                }
            }
            let ex = browser.submit(&forged, &page.request.url).await?;
            let to_github = ex
                .location()
                .is_some_and(|u| u.origin() == cx.config().mock_github.origin());
            f.require(
                !to_github,
                format!(
                    "the approval with a wrong CSRF token ({describe}) answered {} and went to GitHub",
                    ex.status
                ),
                Some(&ex),
            );
        }
    }
    Ok(f.verdict())
}

/// The refused forgery of an approval must leave the user's own approval standing: otherwise
/// anyone who learns a pending request's form (its id is in the page) can cancel it by
/// submitting it without the user's cookies. No requirement names this, hence a warning.
async fn forged_approval_leaves_the_request(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let name = format!("Conformance Client {}", rand::random::<u32>());
    let mut browser = cx.browser();
    let (page, _) = consent_page(&cx, &mut browser, &name).await?;
    let Some(form) = consent_form(&page.request.url, &page.text(), Consent::Approve) else {
        anyhow::bail!("the consent page has no approve form");
    };
    // An approval goes on by leaving the server for the login (GitHub, or wherever the
    // server sends it; in live mode the suite does not know where), not by an error
    // redirect.
    let server = cx.config().url.origin();
    let went_on = |ex: &Exchange| {
        ex.is_redirect()
            && ex.location().is_some_and(|u| {
                u.origin() != server && !u.query_pairs().any(|(name, _)| name == "error")
            })
    };
    // Without the browser's cookies, as a cross-site form post would arrive.
    let forged = cx.browser().submit(&form, &page.request.url).await?;
    if went_on(&forged) || issues_code(&forged) {
        return Err(super::needs(
            "AUTH-3P-04",
            anyhow::anyhow!(
                "the approval without the consent cookie was not refused (see AUTH-3P-04):\n{}",
                cx.evidence(&forged)
            ),
        ));
    }
    let own = browser.submit(&form, &page.request.url).await?;
    f.prefer(
        went_on(&own),
        format!(
            "after an approval without the consent cookie was refused, the user's own \
             approval answered {} and did not go on to the login: a forged submission \
             cancelled the pending request",
            own.status
        ),
        Some(&own),
    );
    Ok(f.verdict())
}

/// "Clearly identify the requesting MCP client by name": a name carrying a bidirectional
/// override (U+202E) reads as another name where it is shown (Trojan Source, CVE-2021-42574),
/// so `Pay\u{202E}gnp.exe` can pass for `Payexe.png`. Anyone can register a client name, so
/// a consent page SHOULD show it without such characters (dropped or escaped visibly); the
/// spec names no rule for them, hence a warning.
async fn bidi_name_is_neutralised(cx: Ctx) -> anyhow::Result<Verdict> {
    if cx.registration_offered()?.is_none() {
        return Ok(Verdict::Skip(
            "the server offers no registration, so the suite cannot choose a client name".into(),
        ));
    }
    let mut f = Findings::new(&cx);
    let name = "Conformance\u{202E}gnp.exe";
    let mut browser = cx.browser();
    let (page, _) = consent_page(&cx, &mut browser, name).await?;
    let html = page.text().to_ascii_lowercase();
    let override_shown = ["\u{202E}", "&#x202e;", "&#8238;", "&rlo;"]
        .iter()
        .any(|form| html.contains(form));
    f.prefer(
        !override_shown,
        "the consent page shows a client name with a right-to-left override (U+202E), which \
         makes it read as another name",
        Some(&page),
    );
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

/// A second authorization that stops where GitHub redirects back to the server, so the
/// upstream callback is the check's to send: the browser (with the server's cookies) and the
/// callback URL, with GitHub's code and the upstream `state`.
async fn authorize_until_upstream_callback(
    cx: &Ctx,
    callback: &Url,
    name: &str,
) -> anyhow::Result<(crate::oauth::browser::Browser, Url)> {
    let mut stop = callback.clone();
    stop.set_query(None);
    let mut browser = cx.browser();
    let client = cx.register(ClientKind::Public, name).await?;
    let pkce = Pkce::s256();
    let params = AuthParams::for_client(
        &client,
        &pkce,
        "client-state",
        Some(&cx.discovery()?.resource()),
        None,
    );
    let script = Script {
        redirect_uri: stop,
        ..cx.script("octocat", None, Consent::Approve)
    };
    let arrival = browser
        .walk(params.url(&cx.endpoints()?.authorization), &script)
        .await?;
    let Arrival::Callback(back) = arrival else {
        anyhow::bail!("the authorization did not come back from GitHub");
    };
    Ok((browser, back))
}

/// The callback GitHub gives when its authorize link of a login (the request in the
/// browser's trail that came back as `back`) is followed again: the same state with a new
/// code. `None` when the trail holds no such request or GitHub gave no new code.
async fn fresh_upstream_callback(
    browser: &mut crate::oauth::browser::Browser,
    back: &Url,
) -> anyhow::Result<Option<Url>> {
    let state = state_of(back);
    let code_of = |u: &Url| {
        u.query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
    };
    let Some(authorize) = browser
        .trail
        .iter()
        .rev()
        .find(|ex| {
            ex.request.url.path() == mock_github::AUTHORIZE_PATH
                && ex
                    .location()
                    .is_some_and(|to| state_of(&to) == state && to.path() == back.path())
        })
        .map(|ex| ex.request.url.clone())
    else {
        return Ok(None);
    };
    let again = browser.request(Req::get(authorize)).await?;
    Ok(again.location().filter(|to| {
        to.path() == back.path() && state_of(to) == state && code_of(to) != code_of(back)
    }))
}

fn state_of(u: &Url) -> Option<String> {
    u.query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
}

/// Whether a cookie value carries `secret`: as it is, percent-decoded, or base64-decoded
/// (whole, or any dot-separated part, as signed cookies are built). An encrypted cookie
/// hides it, and cannot be judged from outside.
fn cookie_carries(value: &str, secret: &str) -> bool {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let decoded = percent_decoded(value);
    let parts = std::iter::once(decoded.as_str()).chain(decoded.split('.'));
    value.contains(secret)
        || decoded.contains(secret)
        || parts.into_iter().any(|part| {
            let part = part.trim_end_matches('=');
            [URL_SAFE_NO_PAD.decode(part), STANDARD_NO_PAD.decode(part)]
                .into_iter()
                .flatten()
                .any(|bytes| String::from_utf8_lossy(&bytes).contains(secret))
        })
}

/// `%XX` escapes decoded; anything else kept as it is.
fn percent_decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `Max-Age` of a `Set-Cookie` line, in seconds.
fn max_age(set_cookie: &str) -> Option<u64> {
    set_cookie.split(';').skip(1).find_map(|attr| {
        let (key, value) = attr.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| value.trim().parse().ok())?
    })
}

/// The security best practices' upstream `state` rules (2025-11-25, "Required
/// Protections"): "Generate a cryptographically secure random state value for each
/// authorization request", "Store the state value server-side ... only after consent has
/// been explicitly approved", "Reject any callback requests where the state parameter is
/// missing or does not match", "Ensure state values are single-use ... and have a short
/// expiration time (e.g., 10 minutes)", and "The consent cookie or session containing the
/// state value MUST NOT be set until after the user has approved the consent screen".
async fn upstream_state(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    // Learn the callback URL from a complete login.
    let first = cx.authorize(LoginOptions::default()).await?;
    let callback = upstream_callback(&cx, &first.outcome.trail)
        .ok_or_else(|| anyhow::anyhow!("no upstream callback in the login"))?;

    let (mut browser, back) =
        authorize_until_upstream_callback(&cx, &callback, "conformance upstream state").await?;
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
        state_committed_after_approval(&cx, &mut f, &browser.trail, s);
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
    let lifetime = pending_lifetime(&browser.trail);
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
        // GitHub refuses its own code a second time, so the replay above passes even where
        // the state was not used up. GitHub hands out a new code for the same state to
        // whoever follows the authorize link again; the state must be spent by then.
        match fresh_upstream_callback(&mut browser, &back).await? {
            Some(fresh) => {
                let again = browser.request(Req::get(fresh)).await?;
                f.require(
                    passes(&again),
                    format!(
                        "the upstream state of a completed login was taken again with a new \
                         GitHub code: answered {}",
                        again.status
                    ),
                    Some(&again),
                );
            }
            None => f.note(
                "GitHub's authorize link of the login gave no second code, so the upstream \
                 state was not replayed with one",
            ),
        }
    } else {
        f.note(format!(
            "the genuine callback answered {} without a code",
            good.status
        ));
    }
    pending_state_expires(&cx, &mut f, &callback, lifetime).await?;
    Ok(f.verdict())
}

/// "The consent cookie or session containing the state value MUST NOT be set until after the
/// user has approved the consent screen", and the state is stored "only after consent has
/// been explicitly approved". Seen from outside: nothing the server sent before the approval
/// (the consent page, its cookies) carries the upstream `state` that the approval then sends
/// to GitHub. A state minted before approval would let a login reach GitHub without consent.
fn state_committed_after_approval(cx: &Ctx, f: &mut Findings, trail: &[Exchange], state: &str) {
    let server = cx.config().url.origin();
    let github = cx.config().mock_github.origin();
    let to_github = |ex: &Exchange| {
        ex.location()
            .is_some_and(|u| u.origin() == github || u.host_str() == Some(mock_github::GITHUB_HOST))
    };
    let Some(approval) = trail
        .iter()
        .position(|ex| ex.request.url.origin() == server && to_github(ex))
    else {
        f.note("no response of the server sent the browser to GitHub");
        return;
    };
    for ex in trail[..approval]
        .iter()
        .filter(|ex| ex.request.url.origin() == server)
    {
        for cookie in ex.header_all("set-cookie") {
            let (name, value) = cookie
                .split(';')
                .next()
                .and_then(|pair| pair.split_once('='))
                .unwrap_or_default();
            f.require(
                !cookie_carries(value, state),
                format!(
                    "the cookie {} set by {} {} before the approval carries the upstream state",
                    name.trim(),
                    ex.request.method,
                    ex.request.url.path()
                ),
                Some(ex),
            );
        }
        f.require(
            !ex.text().contains(state),
            format!(
                "the page of {} {} before the approval already holds the upstream state",
                ex.request.method,
                ex.request.url.path()
            ),
            Some(ex),
        );
    }
}

/// How long the server says a pending login lives: the longest `Max-Age` of the cookies it
/// set during the authorization (the consent binding). `None` when none says.
fn pending_lifetime(trail: &[Exchange]) -> Option<u64> {
    trail
        .iter()
        .flat_map(|ex| ex.header_all("set-cookie"))
        .filter_map(max_age)
        .max()
}

/// "Ensure state values are single-use ... and have a short expiration time (e.g., 10
/// minutes)". Expiry is only seen by waiting it out, and a 10-minute lifetime is no test-sized
/// wait: so the check waits only when the lifetime the server advertises on its consent
/// cookie is at most `--max-expiry-wait` (a server started with a short lifetime), and
/// otherwise judges what is advertised. When it waits, both kinds of pending state must be
/// gone: the consent request (its approval no longer goes to GitHub) and the upstream
/// `state` (its callback issues no code). The browser keeps the cookies past their `Max-Age`,
/// as a stale or hostile one would, so the server's own expiry is what is judged.
async fn pending_state_expires(
    cx: &Ctx,
    f: &mut Findings,
    callback: &Url,
    lifetime: Option<u64>,
) -> anyhow::Result<()> {
    let Some(lifetime) = lifetime else {
        f.note(
            "the server advertised no lifetime for a pending login (no Max-Age on its cookies), \
             so its expiry was not waited out",
        );
        return Ok(());
    };
    f.prefer(
        lifetime <= 600,
        format!(
            "a pending login lives {lifetime} s by its cookie; the upstream state should have a \
             short expiration time (e.g., 10 minutes)"
        ),
        None,
    );
    let max = cx.config().max_expiry_wait;
    if std::time::Duration::from_secs(lifetime) > max {
        f.note(format!(
            "a pending login lives {lifetime} s, longer than --max-expiry-wait ({} s); its expiry \
             was not waited out",
            max.as_secs_f64()
        ));
        return Ok(());
    }
    let mut consent_browser = cx.browser();
    let (consent, _) = consent_page(cx, &mut consent_browser, "conformance stale consent").await?;
    let (mut browser, back) =
        authorize_until_upstream_callback(cx, callback, "conformance stale state").await?;
    // Expiry is the subject, so the check lets the lifetime pass, and one second more for a
    // server that counts whole seconds.
    tokio::time::sleep(std::time::Duration::from_secs(lifetime + 1)).await;
    let Some(form) = consent_form(&consent.request.url, &consent.text(), Consent::Approve) else {
        anyhow::bail!("the consent page has no approve form");
    };
    let approved = consent_browser.submit(&form, &consent.request.url).await?;
    let to_github = approved
        .location()
        .is_some_and(|u| u.origin() == cx.config().mock_github.origin());
    f.require(
        !to_github,
        format!(
            "approving a consent page {} s after it was shown (its lifetime {lifetime} s) still went to GitHub",
            lifetime + 1
        ),
        Some(&approved),
    );
    let stale = browser.request(Req::get(back)).await?;
    f.require(
        !issues_code(&stale),
        format!(
            "the upstream callback {} s after the state was issued (its lifetime {lifetime} s) still issued a code",
            lifetime + 1
        ),
        Some(&stale),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{cookie_carries, max_age, pending_lifetime, percent_decoded};

    #[test]
    fn a_state_is_found_in_a_cookie_plain_encoded_or_signed() {
        use base64::Engine as _;
        let state = "Zq3_upstream-state";
        assert!(cookie_carries(state, state));
        assert!(cookie_carries("Zq3%5Fupstream-state", state));
        let json = format!("{{\"state\":\"{state}\"}}");
        let signed = format!(
            "{}.c2lnbmF0dXJl",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&json)
        );
        assert!(cookie_carries(&signed, state));
        assert!(cookie_carries(
            &base64::engine::general_purpose::STANDARD.encode(&json),
            state
        ));
        // A binding of its own says nothing about the state.
        assert!(!cookie_carries("k2VbQ0Yf1s8xvM3n", state));
    }

    #[test]
    fn percent_escapes_decode_and_stray_percent_signs_stay() {
        assert_eq!(percent_decoded("a%20b%2Fc"), "a b/c");
        assert_eq!(percent_decoded("100%"), "100%");
        assert_eq!(percent_decoded("%zz"), "%zz");
    }

    #[test]
    fn the_pending_lifetime_is_the_longest_max_age() {
        assert_eq!(
            max_age("__Host-mcp-consent=x; Path=/; Secure; max-age=600"),
            Some(600)
        );
        assert_eq!(max_age("a=b; Path=/"), None);
        assert_eq!(pending_lifetime(&[]), None);
    }
}
