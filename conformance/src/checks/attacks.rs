//! What an attacker tries against the authorization server and the protected resource, each
//! judged by the requirement it breaks: a victim's browser following an approved GitHub link,
//! a stolen refresh token used after its rotation, errors redirected to a URI anyone can
//! register, oversized input that an anonymous client makes the server keep, streams that
//! outlive their token, confidential clients on every advertised authentication method,
//! schemes other than `Bearer`, and the scope in every invalid-token challenge.

use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::{Value, json};
use url::Url;

use super::auth_flow::revoke;
use super::{BOTH, Check, Ctx, Findings, LoginOptions, Scope, Verdict, issues_code, json_error};
use crate::body;
use crate::client::McpConn;
use crate::config::Transport;
use crate::http::{Exchange, Req, SseReader, challenge};
use crate::oauth::browser::{Arrival, Consent, Script};
use crate::oauth::flow::{self, AuthParams, Pkce};
use crate::oauth::registration::{self, Client, ClientKind};
use crate::version::Version;

const AS: Scope = Scope::AuthServer;

/// A redirect URI on a public host that anyone may register (RFC 7591 lets them); the suite
/// never sends a request there, it only reads where the server points the browser.
const FOREIGN_REDIRECT_URI: &str = "https://conformance-attacker.example/callback";

/// Far beyond any real client's `state` (22 to 64 characters), and a URL well under the
/// 64 KiB that HTTP stacks take (the `http` crate's own limit is just under it).
const OVERSIZED_STATE_BYTES: usize = 16 * 1024;

/// Sizes of the oversized registrations: a name, one redirect URI, and a count of them.
const OVERSIZED_NAME_BYTES: usize = 256 * 1024;
const OVERSIZED_URI_BYTES: usize = 64 * 1024;
const REDIRECT_URI_COUNT: usize = 2_000;

pub fn checks() -> Vec<Check> {
    vec![
        Check::new("AUTH-3P-07", AS, body!(callback_bound_to_browser)).case("other-browser", "a browser other than the one that approved consent gets no code at the callback"),
        Check::new("AUTH-3P-05", AS, body!(planted_consent_cookie_is_replaced)).case("planted-cookie", "a consent cookie the browser already holds is replaced, never adopted"),
        Check::new("AUTH-FLOW-21", AS, body!(refresh_reuse_revokes_grant)),
        Check::new("AUTH-FLOW-22", AS, body!(no_redirect_to_self_registered_uri)),
        Check::new("AUTH-FLOW-23", AS, body!(state_length_is_bounded)),
        Check::new("AUTH-FLOW-24", BOTH, body!(streams_end_on_revocation)),
        Check::new("AUTH-FLOW-24", BOTH, body!(streams_end_at_expiry)).case("expiry", "streams opened with a token end when it expires"),
        Check::new("AUTH-REG-08", AS, body!(registration_input_is_bounded)),
        Check::new("AUTH-GEN-08", AS, body!(confidential_auth_methods)).case("auth-methods", "confidential clients redeem codes by every advertised method; Basic and body ids must agree"),
        Check::new("AUTH-GEN-05", BOTH, body!(other_schemes_are_refused)).case("other-schemes", "a valid access token under a scheme other than Bearer gets 401"),
        Check::new("AUTH-PRM-06", BOTH, body!(invalid_token_challenges_name_scope)).case("invalid-token", "the 401 challenge to an invalid token names the required scope too"),
    ]
}

/// The first request back from the mock GitHub to the server: the upstream callback.
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

/// MCP Security Best Practices § Required Protections (AUTH-3P-07): "Validate at the callback
/// endpoint that the `state` query parameter exactly matches the stored value in the callback
/// request's cookies or in the request's cookie-based session". GitHub redirects a browser
/// that authorized the app before without asking, so a server that checks only the upstream
/// `state` lets an attacker approve their own consent page, hand the GitHub link to a victim,
/// and receive a code for the victim's account.
async fn callback_bound_to_browser(cx: Ctx) -> anyhow::Result<Verdict> {
    // A complete login shows where the server's callback is.
    let first = cx.authorize(LoginOptions::default()).await?;
    let callback = upstream_callback(&cx, &first.outcome.trail)
        .context("no upstream callback in the login")?;
    let mut stop = callback;
    stop.set_query(None);

    // The attacker's browser approves consent and stops where GitHub sends it back.
    let (mut approving, back) = approve_and_stop(&cx, &stop).await?;

    // The victim's browser, with cookies of its own, arrives at the same callback.
    let mut other = cx.browser();
    let ex = other.request(Req::get(back.clone())).await?;
    let mut f = Findings::new(&cx);
    f.require(
        !issues_code(&ex),
        "a browser that never saw the consent page got an authorization code at the upstream \
         callback",
        Some(&ex),
    );
    let genuine = approving.request(Req::get(back)).await?;
    if !issues_code(&genuine) {
        f.note(format!(
            "after the other browser's attempt the approving browser's callback answered {} \
             without a code",
            genuine.status
        ));
    }
    // Browsers whose cookies at the server are near misses of the approving browser's, each
    // after an approval of its own: a binding compared by a broken comparison (one that
    // XORs the differences, or stops at the shorter value) takes one of them.
    let server_host = stop.host_str().unwrap_or_default().to_owned();
    for (kind, describe) in super::NEAR_MISS_KINDS.iter().enumerate() {
        let (approving, back) = approve_and_stop(&cx, &stop).await?;
        let mut near = cx.browser();
        near.jar = approving.jar.clone();
        for cookie in &mut near.jar.cookies {
            if cookie.host == server_host {
                cookie.value = super::near_miss(&cookie.value, kind);
            }
        }
        let ex = near.request(Req::get(back)).await?;
        f.require(
            !issues_code(&ex),
            format!(
                "a browser whose cookies are the approving browser's with {describe} got an \
                 authorization code at the upstream callback"
            ),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

/// A browser that approves consent for a client of its own and stops where GitHub sends it
/// back to `stop`, the server's callback: the browser, and the callback URL it was sent to.
async fn approve_and_stop(
    cx: &Ctx,
    stop: &Url,
) -> anyhow::Result<(crate::oauth::browser::Browser, Url)> {
    let mut approving = cx.browser();
    let client = cx
        .register(ClientKind::Public, "conformance other browser")
        .await?;
    let pkce = Pkce::s256();
    let params = AuthParams::for_client(
        &client,
        &pkce,
        &flow::random_state(),
        Some(&cx.discovery()?.resource()),
        None,
    );
    let script = Script {
        redirect_uri: stop.clone(),
        ..cx.script("octocat", None, Consent::Approve)
    };
    let arrival = approving
        .walk(params.url(&cx.endpoints()?.authorization), &script)
        .await?;
    let Arrival::Callback(back) = arrival else {
        anyhow::bail!("the approved authorization did not come back from GitHub");
    };
    Ok((approving, back))
}

/// The cookies the server set during a walk, as `(name, value)`, in order.
fn server_cookies(cx: &Ctx, trail: &[Exchange]) -> Vec<(String, String)> {
    let server = cx.config().url.origin();
    trail
        .iter()
        .filter(|ex| ex.request.url.origin() == server)
        .flat_map(|ex| ex.header_all("set-cookie"))
        .filter_map(|raw| {
            let (name, value) = raw.split(';').next()?.split_once('=')?;
            Some((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect()
}

/// MCP Security Best Practices § Required Protections (AUTH-3P-05): consent cookies must "Be
/// cryptographically signed or use server-side sessions". A value the browser brought along
/// is neither: a server that adopts it lets whoever planted the cookie (a sibling subdomain,
/// a shared machine) hold the same binding as the victim who approves.
async fn planted_consent_cookie_is_replaced(cx: Ctx) -> anyhow::Result<Verdict> {
    let client = cx
        .register(ClientKind::Public, "conformance planted cookie")
        .await?;
    let opts = LoginOptions {
        client: Some(client),
        ..LoginOptions::default()
    };
    let mut first = cx.browser();
    let genuine = cx.authorize_in(&mut first, &opts, Consent::Approve).await?;
    let set = server_cookies(&cx, &genuine.outcome.trail);
    if set.is_empty() {
        return Ok(Verdict::Skip(
            "the server sets no cookie during the authorization".into(),
        ));
    }
    // The attacker plants a value of the same shape under every name the server uses.
    let mut victim = cx.browser();
    let mut planted = Vec::new();
    for (name, value) in &set {
        if planted.iter().any(|(n, _): &(String, String)| n == name) {
            continue;
        }
        let mut fake = String::new();
        while fake.len() < value.len().max(16) {
            fake.push_str(&flow::Pkce::s256().verifier);
        }
        fake.truncate(value.len().max(16));
        victim.jar.store(
            &cx.config().url,
            &format!("{name}={fake}; Path=/; Secure; HttpOnly; SameSite=Lax"),
        );
        cx.http().redactor.add(&fake, "planted-cookie");
        planted.push((name.clone(), fake));
    }
    let walked = cx
        .authorize_in(&mut victim, &opts, Consent::Approve)
        .await?;
    let after = server_cookies(&cx, &walked.outcome.trail);
    let mut f = Findings::new(&cx);
    for (name, fake) in &planted {
        let adopted = after.iter().any(|(n, v)| n == name && v == fake);
        let replaced = after.iter().any(|(n, v)| n == name && v != fake);
        let evidence = walked.outcome.trail.iter().find(|ex| {
            ex.header_all("set-cookie")
                .iter()
                .any(|c| c.starts_with(&format!("{name}=")))
        });
        f.require(
            replaced && !adopted,
            format!(
                "the cookie {name} the browser already held was {} instead of replaced by a \
                 value of the server's",
                if adopted { "set again" } else { "kept" }
            ),
            evidence,
        );
    }
    // Two browsers that each approved a consent of their own must hold different values:
    // when every cookie the server set is the same for both, nothing it set tells one
    // browser from the other, and a value an attacker can predict binds nothing.
    let told_apart = after
        .iter()
        .any(|(name, value)| set.iter().any(|(n, v)| n == name && v != value))
        || after
            .iter()
            .any(|(name, _)| !set.iter().any(|(n, _)| n == name));
    f.require(
        told_apart,
        "two browsers approving their own consent got the same cookie values: the server's \
         cookies cannot bind the approval to the browser that gave it",
        walked.outcome.trail.last(),
    );
    Ok(f.verdict())
}

/// RFC 9700 §4.14.2: "If a refresh token is compromised and subsequently used by both the
/// attacker and the legitimate client, one of them will present an invalidated refresh token,
/// which will inform the authorization server of the breach. The authorization server cannot
/// determine which party submitted the invalid refresh token, but it will revoke the active
/// refresh token." Rotation alone (AUTH-FLOW-15) leaves the thief who refreshed first with a
/// token that works for good.
async fn refresh_reuse_revokes_grant(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let Some(stolen) = login.tokens.refresh_token.clone() else {
        return Ok(Verdict::Skip("no refresh token was issued".into()));
    };
    let endpoint = cx.endpoints()?.token;
    let rotated = flow::refresh(cx.http(), &endpoint, login.client(), &stolen, None).await?;
    let tokens = flow::parse_tokens(cx.http(), rotated)
        .context("the first refresh was refused (AUTH-FLOW-15 judges refreshing)")?;
    let Some(live) = tokens.refresh_token.clone().filter(|new| *new != stolen) else {
        return Ok(Verdict::Skip(
            "the refresh returned no new refresh token, so there is no rotation whose reuse \
             could be detected (AUTH-FLOW-15 judges rotation)"
                .into(),
        ));
    };
    let reuse = flow::refresh(cx.http(), &endpoint, login.client(), &stolen, None).await?;
    let mut f = Findings::new(&cx);
    if reuse.status == 200 {
        f.note("the rotated-out refresh token was accepted again (AUTH-FLOW-15 judges that)");
        return Ok(f.verdict());
    }
    let after = flow::refresh(cx.http(), &endpoint, login.client(), &live, None).await?;
    let still_refreshes = after.status == 200;
    if still_refreshes {
        let _ = flow::parse_tokens(cx.http(), after.clone());
    }
    f.require(
        !still_refreshes,
        "after the rotated-out refresh token came back, the grant's live refresh token still \
         refreshed: the breach went unnoticed",
        Some(&after),
    );
    let access = cx.probe_bearer(&tokens.access_token).await?;
    if (200..300).contains(&access.status) {
        f.note("the access token issued with the live refresh token still works");
    }
    Ok(f.verdict())
}

/// MCP Authorization § Open Redirection (2025-06-18 on): "Authorization servers SHOULD only
/// automatically redirect the user agent if it trusts the redirection URI. If the URI is not
/// trusted, the authorization server MAY inform the user and rely on the user to make the
/// correct decision." (RFC 9700 §4.11.2 names the attack: a client registered through RFC 7591
/// sends a deliberately broken authorization request to have the server forward the user to
/// its phishing site.) A loopback redirect URI leads back to the user's own machine; a web one
/// that anyone registered is not trusted before the user approved the client.
async fn no_redirect_to_self_registered_uri(cx: Ctx) -> anyhow::Result<Verdict> {
    let Some(endpoint) = cx.registration_offered()? else {
        return Ok(Verdict::Skip(
            "the server offers no dynamic client registration".into(),
        ));
    };
    let body = registration::metadata(
        ClientKind::Public,
        "conformance self-registered",
        &[FOREIGN_REDIRECT_URI],
    );
    let registered = registration::post(cx.http(), &endpoint, &body).await?;
    let client_id = registered
        .json()
        .filter(|_| (200..300).contains(&registered.status))
        .and_then(|doc| doc.get("client_id")?.as_str().map(str::to_owned));
    let Some(client_id) = client_id else {
        return Ok(Verdict::Skip(format!(
            "registration refused an https redirect URI on a public host ({})",
            registered.status
        )));
    };
    let pkce = Pkce::s256();
    let valid = AuthParams {
        response_type: Some("code".into()),
        client_id: Some(client_id),
        redirect_uri: Some(FOREIGN_REDIRECT_URI.into()),
        scope: None,
        state: Some(flow::random_state()),
        resource: Some(cx.discovery()?.resource()),
        code_challenge: Some(pkce.challenge.clone()),
        code_challenge_method: Some(pkce.method.clone()),
    };
    let broken = [
        (
            "an unsupported response_type",
            AuthParams {
                response_type: Some("token".into()),
                ..valid.clone()
            },
        ),
        (
            "no code_challenge",
            AuthParams {
                code_challenge: None,
                code_challenge_method: None,
                ..valid.clone()
            },
        ),
    ];
    let foreign = Url::parse(FOREIGN_REDIRECT_URI)?;
    let mut f = Findings::new(&cx);
    for (what, params) in broken {
        let ex = cx
            .http()
            .send(Req::get(params.url(&cx.endpoints()?.authorization)))
            .await?;
        let redirected = ex
            .location()
            .is_some_and(|to| to.host_str() == foreign.host_str());
        f.require(
            !redirected,
            format!(
                "an authorization request with {what} from a client that registered itself was \
                 redirected to its web redirect URI without any user interaction"
            ),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

/// The `state` a client sends is kept until the login ends and echoed back, so an anonymous
/// request with a huge one makes the server hold it: RFC 6749 §10.12 asks that `state` be a
/// value bound to the user agent, and nothing obliges a server to keep any size it is sent.
/// "These requests MAY be rate-limited or otherwise limited to prevent a denial-of-service
/// attack" (RFC 7591 §3) is the same consideration at the registration endpoint.
async fn state_length_is_bounded(cx: Ctx) -> anyhow::Result<Verdict> {
    let client = cx
        .register(ClientKind::Public, "conformance long state")
        .await?;
    let pkce = Pkce::s256();
    let state = "s".repeat(OVERSIZED_STATE_BYTES);
    let params = AuthParams::for_client(
        &client,
        &pkce,
        &state,
        Some(&cx.discovery()?.resource()),
        None,
    );
    let ex = cx
        .http()
        .send(Req::get(params.url(&cx.endpoints()?.authorization)))
        .await?;
    let redirect_uri = Url::parse(&client.redirect_uri)?;
    // An error sent back to the client keeps nothing; a consent page or a step towards the
    // login means the request, state and all, is stored.
    let error_to_client = ex.location().is_some_and(|to| {
        crate::oauth::browser::at_redirect_uri(&to, &redirect_uri)
            && to.query_pairs().any(|(k, _)| k == "error")
    });
    let refused = (400..500).contains(&ex.status) || error_to_client;
    let mut f = Findings::new(&cx);
    f.require(
        refused,
        format!(
            "an authorization request with a {} KiB state was taken on ({})",
            OVERSIZED_STATE_BYTES / 1024,
            ex.status
        ),
        Some(&ex),
    );
    Ok(f.verdict())
}

/// The streams a token opens and the server must end with the token's authority: the SSE
/// stream, or the Streamable HTTP GET stream where the endpoint offers one, and from
/// 2026-07-28 a `subscriptions/listen` stream where the server offers subscriptions.
struct TokenStreams {
    /// What each stream is, the exchange that opened it, and its reader.
    open: Vec<(&'static str, Exchange, SseReader)>,
    /// The Streamable HTTP session stays open while its GET stream is watched.
    _session: Option<crate::http::streamable::Shttp>,
}

/// Opens every stream `token` can open, or says why none is offered: an endpoint that
/// answers its GET with 405 and offers no subscriptions has no stream to end.
async fn open_token_streams(cx: &Ctx, token: &str) -> anyhow::Result<Result<TokenStreams, String>> {
    let mut open = Vec::new();
    let mut session = None;
    let mut without = None;
    match cx.transport() {
        Transport::Sse => {
            let req = Req::get(cx.mcp_url())
                .header("Accept", "text/event-stream")
                .bearer(Some(token));
            let streaming = cx.http().open(req).await?;
            open.push((
                "the SSE stream",
                streaming.exchange,
                SseReader::new(streaming.response),
            ));
        }
        Transport::StreamableHttp => {
            let (conn, _) = cx.connect(Some(token)).await?;
            let McpConn::Shttp(shttp) = conn else {
                anyhow::bail!("a Streamable HTTP connection was expected");
            };
            let streaming = shttp.get_stream().await?;
            if streaming.exchange.status == 405 {
                without = Some("the endpoint offers no GET stream (405)");
            } else {
                open.push((
                    "the GET stream",
                    streaming.exchange,
                    SseReader::new(streaming.response),
                ));
            }
            session = Some(shttp);
        }
    }
    if let Some((_, opened, _)) = open.first()
        && opened.status != 200
    {
        // Opening the stream is what SHTTP-12 (a GET stream or 405) and SSE-02 judge; when
        // they failed, the check is blocked by them rather than a second finding.
        let judge = match cx.transport() {
            Transport::Sse => super::prerequisite::SSE_STREAM,
            Transport::StreamableHttp => "SHTTP-12",
        };
        return Err(super::needs(
            judge,
            anyhow::anyhow!("the stream did not open: {}", cx.evidence(opened)),
        ));
    }
    // From 2026-07-28 a client listens for notifications on a subscriptions/listen stream,
    // which the same token opens and must not outlive.
    if cx.transport() == Transport::StreamableHttp
        && cx.version() == Some(Version::V2026_07_28)
        && let Some((subscribed, reader)) = super::shttp5::open_subscription(cx, token).await?
    {
        open.push(("the subscriptions/listen stream", subscribed, reader));
    }
    if open.is_empty() {
        return Ok(Err(format!(
            "{}, and no subscriptions/listen stream opened",
            without.unwrap_or("no stream opened")
        )));
    }
    Ok(Ok(TokenStreams {
        open,
        _session: session,
    }))
}

/// RFC 7009 §2: revocation invalidates the token, and MCP servers "MUST verify all inbound
/// requests" (Security Best Practices § Mitigation); a stream opened with the token before
/// goes on delivering what only the token allowed unless the server ends it. Nothing states
/// this for open streams in so many words, so a stream that outlives its token warns.
async fn streams_end_on_revocation(cx: Ctx) -> anyhow::Result<Verdict> {
    let Some(revocation) = cx.endpoints()?.revocation else {
        return Ok(Verdict::Skip("no revocation_endpoint is advertised".into()));
    };
    let login = cx.login(LoginOptions::default()).await?;
    let token = login.access_token().to_owned();
    let mut streams = match open_token_streams(&cx, &token).await? {
        Ok(streams) => streams,
        Err(none) => return Ok(Verdict::Skip(none)),
    };
    let mut answer = revoke(&cx, &login, &revocation, &token, "access_token").await?;
    // RFC 7009 §2.2.1: a server that revokes only refresh tokens says so; revoking the grant
    // through its refresh token then ends the access token's authority instead.
    let mut revoked_access_token = true;
    if answer.status == 400
        && json_error(&answer).as_deref() == Some("unsupported_token_type")
        && let Some(refresh) = login.tokens.refresh_token.clone()
    {
        answer = revoke(&cx, &login, &revocation, &refresh, "refresh_token").await?;
        revoked_access_token = false;
    }
    // A refused revocation leaves nothing to end; AUTH-FLOW-19 reports the refusal itself.
    if answer.status != 200 {
        return Ok(Verdict::Skip(format!(
            "the revocation was refused ({} {}); AUTH-FLOW-19 judges revocation",
            answer.status,
            super::shown(json_error(&answer))
        )));
    }
    let mut f = Findings::new(&cx);
    watch_streams_end(
        &mut f,
        &mut streams.open,
        revocation_deadline(&cx, &login.tokens),
        "opened with the access token",
        "the token's revocation was answered",
    )
    .await;
    if revoked_access_token {
        streams_end_on_grant_revocation(&cx, &mut f, &revocation).await?;
    }
    Ok(f.verdict())
}

/// RFC 7009 §2.1: when a refresh token is revoked and the server "supports the revocation
/// of access tokens" (it just revoked one), it "SHOULD also invalidate all access tokens
/// based on the same authorization grant". A stream opened with such an access token then
/// ends too, however the server files its grants. Not judged for a login that gets no
/// refresh token, or a server that refuses the revocation (AUTH-FLOW-19 judges that).
async fn streams_end_on_grant_revocation(
    cx: &Ctx,
    f: &mut Findings,
    revocation: &Url,
) -> anyhow::Result<()> {
    let login = cx.login(LoginOptions::default()).await?;
    let Some(refresh) = login.tokens.refresh_token.clone() else {
        f.note("the login got no refresh token, so no grant was revoked through one");
        return Ok(());
    };
    let mut streams = match open_token_streams(cx, login.access_token()).await? {
        Ok(streams) => streams,
        Err(none) => {
            f.note(format!("no stream was opened for the second login: {none}"));
            return Ok(());
        }
    };
    let answer = revoke(cx, &login, revocation, &refresh, "refresh_token").await?;
    if answer.status != 200 {
        f.note(format!(
            "revoking the refresh token was refused ({}), so its grant's streams were not \
             watched",
            answer.status
        ));
        return Ok(());
    }
    watch_streams_end(
        f,
        &mut streams.open,
        revocation_deadline(cx, &login.tokens),
        "opened with an access token",
        "the revocation of its grant's refresh token was answered",
    )
    .await;
    Ok(())
}

/// When streams must have ended to count as ended by a revocation just answered: within the
/// request timeout, and shortly before their token would expire anyway, or a server that
/// ends streams only at expiry (AUTH-FLOW-24#expiry) would pass for ending them at
/// revocation. The token was issued before its response arrived, and `expires_in` is
/// whole seconds of at most the lifetime, so it lives at least until then.
fn revocation_deadline(cx: &Ctx, tokens: &flow::Tokens) -> tokio::time::Instant {
    let by_timeout = tokio::time::Instant::now() + cx.http().timeout;
    match tokens.expires_in {
        Some(seconds) => by_timeout.min(
            tokio::time::Instant::from_std(tokens.received)
                + Duration::from_secs(seconds).saturating_sub(EXPIRY_MARGIN),
        ),
        None => by_timeout,
    }
}

/// Time left for the server's timers and the suite's scheduling before a token's expiry.
const EXPIRY_MARGIN: Duration = Duration::from_millis(250);

/// Judges that every stream ends by `deadline`; `opened` and `after` name the token and the
/// event in the finding. A deadline already past (a token about to expire) judges nothing
/// and says so.
async fn watch_streams_end(
    f: &mut Findings,
    open: &mut [(&str, Exchange, SseReader)],
    deadline: tokio::time::Instant,
    opened: &str,
    after: &str,
) {
    let Some(window) = deadline.checked_duration_since(tokio::time::Instant::now()) else {
        f.note(format!(
            "the streams {opened} were not judged: the token expires too soon after {after} \
             to tell a revocation from the expiry"
        ));
        return;
    };
    for (what, exchange, reader) in open.iter_mut() {
        f.require(
            ends_by(reader, deadline).await,
            format!(
                "{what} {opened} was still open {window:.1?} after {after}, before the token \
                 would expire"
            ),
            Some(exchange),
        );
    }
}

/// The expiry counterpart of [`streams_end_on_revocation`]: an expired token "MUST receive
/// a HTTP 401 response" (AUTH-GEN-05), and a stream it opened while valid goes on
/// delivering what only the token allowed unless the server ends it when the token expires.
async fn streams_end_at_expiry(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let expires_in = match super::auth_gen::lifetime_to_wait_out(&cx, &login.tokens) {
        Ok(seconds) => seconds,
        Err(skip) => return Ok(skip),
    };
    let issued = tokio::time::Instant::now();
    let mut streams = match open_token_streams(&cx, login.access_token()).await? {
        Ok(streams) => streams,
        Err(none) => return Ok(Verdict::Skip(none)),
    };
    // Whole seconds may be counted on either side, hence one more second beyond the
    // lifetime, and then the request timeout for the server to notice.
    let grace = cx.http().timeout;
    let deadline = issued + Duration::from_secs(expires_in + 1) + grace;
    let mut f = Findings::new(&cx);
    for (what, opened, reader) in &mut streams.open {
        f.require(
            ends_by(reader, deadline).await,
            format!(
                "{what} opened with the access token was still open {grace:?} after the \
                 token expired ({expires_in} s after it was issued)"
            ),
            Some(opened),
        );
    }
    Ok(f.verdict())
}

/// Reads `reader` until its stream ends (true) or `deadline` passes or the connection
/// fails (false).
async fn ends_by(reader: &mut SseReader, deadline: tokio::time::Instant) -> bool {
    while let Some(left) = deadline.checked_duration_since(tokio::time::Instant::now()) {
        match reader.next(left.max(Duration::from_millis(1))).await {
            Ok(Some(_)) => {}
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
    false
}

/// RFC 7591 §3: "These requests MAY be rate-limited or otherwise limited to prevent a
/// denial-of-service attack on the client registration endpoint." Registration is open to
/// anyone, so metadata of any size that it accepts is memory an anonymous client can fill;
/// RFC 7591 §3.2.2 gives the refusal: "HTTP 400 status code (unless otherwise specified)".
async fn registration_input_is_bounded(cx: Ctx) -> anyhow::Result<Verdict> {
    let Some(endpoint) = cx.registration_offered()? else {
        return Ok(Verdict::Skip(
            "the server offers no dynamic client registration".into(),
        ));
    };
    let redirect = crate::oauth::REDIRECT_URI;
    let long_uri = format!("{redirect}?pad={}", "p".repeat(OVERSIZED_URI_BYTES));
    let many: Vec<String> = (0..REDIRECT_URI_COUNT)
        .map(|i| format!("{redirect}/{i}"))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let cases = [
        (
            format!("a client_name of {} KiB", OVERSIZED_NAME_BYTES / 1024),
            registration::metadata(
                ClientKind::Public,
                &"n".repeat(OVERSIZED_NAME_BYTES),
                &[redirect],
            ),
        ),
        (
            format!("a redirect URI of {} KiB", OVERSIZED_URI_BYTES / 1024),
            registration::metadata(ClientKind::Public, "conformance long uri", &[&long_uri]),
        ),
        (
            format!("{REDIRECT_URI_COUNT} redirect URIs"),
            registration::metadata(ClientKind::Public, "conformance many uris", &many),
        ),
    ];
    let mut f = Findings::new(&cx);
    let mut cut_off = false;
    for (what, body) in cases {
        let ex = match registration::post(cx.http(), &endpoint, &body).await {
            Ok(ex) => ex,
            Err(error) => {
                // A server may answer 413 as soon as the length is known and close the
                // connection while the body is still being sent; the client then sees
                // the close, not the answer. That bounds the input as well, provided
                // the server still serves (checked below).
                f.note(format!(
                    "the connection closed while a registration with {what} was sent \
                     ({error:#}), which refuses it"
                ));
                cut_off = true;
                continue;
            }
        };
        f.require(
            (400..500).contains(&ex.status),
            format!(
                "a registration with {what} answered {} (a 400 or 413 refusal was expected)",
                ex.status
            ),
            Some(&ex),
        );
    }
    if cut_off {
        let after = cx
            .register(ClientKind::Public, "conformance after oversize")
            .await;
        f.require(
            after.is_ok(),
            "after closing the connection on an oversized registration, the server refused \
             an ordinary one",
            None,
        );
    }
    Ok(f.verdict())
}

/// Registers a confidential client that asks for `method` at the token endpoint.
async fn register_confidential(cx: &Ctx, endpoint: &Url, method: &str) -> anyhow::Result<Client> {
    let mut body = registration::metadata(
        ClientKind::Confidential,
        "conformance confidential",
        &[crate::oauth::REDIRECT_URI],
    );
    body["token_endpoint_auth_method"] = json!(method);
    let ex = registration::post(cx.http(), endpoint, &body).await?;
    let doc = ex
        .json()
        .filter(|_| (200..300).contains(&ex.status))
        .with_context(|| {
            format!(
                "registering a {method} client was refused: {}",
                cx.evidence(&ex)
            )
        })?;
    let field = |name: &str| doc.get(name).and_then(Value::as_str).map(str::to_owned);
    let client_id = field("client_id").context("the registration has no client_id")?;
    let client_secret = field("client_secret").context("the registration has no secret")?;
    cx.http().redactor.add(&client_secret, "client_secret");
    Ok(Client {
        client_id,
        client_secret: Some(client_secret),
        redirect_uri: crate::oauth::REDIRECT_URI.into(),
        auth_method: method.into(),
        name: "conformance confidential".into(),
    })
}

/// `Authorization: Basic` for a client, form-encoded before base64 (RFC 6749 §2.3.1).
fn basic_credentials(client_id: &str, secret: &str) -> String {
    let encode = |value: &str| -> String {
        url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
    };
    let pair = format!("{}:{}", encode(client_id), encode(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The code grant's fields, without client authentication.
fn code_fields(code: &str, redirect_uri: &str, verifier: &str) -> Vec<(String, String)> {
    vec![
        ("grant_type".into(), "authorization_code".into()),
        ("code".into(), code.into()),
        ("redirect_uri".into(), redirect_uri.into()),
        ("code_verifier".into(), verifier.into()),
    ]
}

async fn post_form(
    cx: &Ctx,
    fields: &[(String, String)],
    authorization: Option<&str>,
) -> anyhow::Result<Exchange> {
    let mut req = Req::post(cx.endpoints()?.token)
        .header("Accept", "application/json")
        .form(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if let Some(value) = authorization {
        req = req.header("Authorization", value);
    }
    cx.http().send(req).await
}

/// MCP Authorization § Overview (AUTH-GEN-08): "Authorization servers MUST implement OAuth 2.1
/// with appropriate security measures for both confidential and public clients." Every method
/// the metadata advertises in `token_endpoint_auth_methods_supported` must then work (RFC 8414
/// §2 lists "client authentication methods supported by this token endpoint"), and RFC 6749
/// §4.1.3 requires the server to "ensure that the authorization code was issued to the
/// authenticated confidential client": Basic credentials of one client with another client's
/// `client_id` and code in the body must not redeem that code.
async fn confidential_auth_methods(cx: Ctx) -> anyhow::Result<Verdict> {
    let Some(endpoint) = cx.registration_offered()? else {
        return Ok(Verdict::Skip(
            "the server offers no dynamic client registration".into(),
        ));
    };
    let methods = super::advertised_auth_methods(&cx)?;
    let advertised: Vec<&str> = ["client_secret_basic", "client_secret_post"]
        .into_iter()
        .filter(|m| methods.iter().any(|a| a == m))
        .collect();
    if advertised.is_empty() {
        return Ok(Verdict::Skip(
            "the server advertises neither client_secret_basic nor client_secret_post".into(),
        ));
    }
    let mut f = Findings::new(&cx);
    let mut basic_client = None;
    for method in advertised {
        let client = register_confidential(&cx, &endpoint, method).await?;
        let authorized = cx
            .authorize(LoginOptions {
                client: Some(client.clone()),
                ..LoginOptions::default()
            })
            .await?;
        let code = authorized.code(cx.http())?;
        let secret = client.client_secret.clone().unwrap_or_default();
        let mut fields = code_fields(&code, &client.redirect_uri, &authorized.pkce.verifier);
        if let Some(resource) = &authorized.resource {
            fields.push(("resource".into(), resource.clone()));
        }
        let ex = if method == "client_secret_basic" {
            let header = basic_credentials(&client.client_id, &secret);
            post_form(&cx, &fields, Some(&header)).await?
        } else {
            fields.push(("client_id".into(), client.client_id.clone()));
            fields.push(("client_secret".into(), secret));
            post_form(&cx, &fields, None).await?
        };
        let issued = ex.status == 200 && flow::parse_tokens(cx.http(), ex.clone()).is_ok();
        f.require(
            issued,
            format!(
                "a confidential client redeeming its code by the advertised {method} answered \
                 {} {}",
                ex.status,
                super::shown(json_error(&ex))
            ),
            Some(&ex),
        );
        if method == "client_secret_basic" {
            basic_with_body_client_id(&cx, &mut f, &client).await?;
        }
        if method == "client_secret_basic" || basic_client.is_none() {
            basic_client = Some(client);
        }
    }
    // Basic credentials of a confidential client, with another client's id and code in the
    // body: whichever identity the server takes, the code was not issued to the client that
    // authenticated.
    if let Some(client) = basic_client {
        let victim = cx.authorize(LoginOptions::default()).await?;
        let code = victim.code(cx.http())?;
        let mut fields = code_fields(&code, &victim.client.redirect_uri, &victim.pkce.verifier);
        fields.push(("client_id".into(), victim.client.client_id.clone()));
        if let Some(resource) = &victim.resource {
            fields.push(("resource".into(), resource.clone()));
        }
        let header = basic_credentials(
            &client.client_id,
            client.client_secret.as_deref().unwrap_or_default(),
        );
        let ex = post_form(&cx, &fields, Some(&header)).await?;
        let issued = ex.status == 200 && flow::parse_tokens(cx.http(), ex.clone()).is_ok();
        f.require(
            !issued,
            "Basic credentials of one client with another client's client_id in the body \
             redeemed the other client's code",
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

/// RFC 6749 §3.2.1: "A client MAY use the "client_id" request parameter to identify itself
/// when sending requests to the token endpoint." With HTTP Basic credentials, the same
/// `client_id` in the body names the same client, and the code must be redeemed; many client
/// libraries send both.
async fn basic_with_body_client_id(
    cx: &Ctx,
    f: &mut Findings,
    client: &Client,
) -> anyhow::Result<()> {
    let authorized = cx
        .authorize(LoginOptions {
            client: Some(client.clone()),
            ..LoginOptions::default()
        })
        .await?;
    let code = authorized.code(cx.http())?;
    let mut fields = code_fields(&code, &client.redirect_uri, &authorized.pkce.verifier);
    fields.push(("client_id".into(), client.client_id.clone()));
    if let Some(resource) = &authorized.resource {
        fields.push(("resource".into(), resource.clone()));
    }
    let header = basic_credentials(
        &client.client_id,
        client.client_secret.as_deref().unwrap_or_default(),
    );
    let ex = post_form(cx, &fields, Some(&header)).await?;
    let issued = ex.status == 200 && flow::parse_tokens(cx.http(), ex.clone()).is_ok();
    f.require(
        issued,
        format!(
            "HTTP Basic credentials with the same client_id in the body answered {} {}",
            ex.status,
            super::shown(json_error(&ex))
        ),
        Some(&ex),
    );
    Ok(())
}

/// RFC 6750 §2.1 defines the `Bearer` scheme, and MCP Authorization § Token Handling: "Invalid
/// or expired tokens MUST receive a HTTP 401 response" (AUTH-GEN-05). A server that strips
/// whatever scheme precedes the token accepts credentials sent for another purpose (a proxy's
/// Basic login, a DPoP-bound token without its proof).
async fn other_schemes_are_refused(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let token = login.access_token();
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{token}:"));
    let cases = [
        ("Token", format!("Token {token}")),
        ("DPoP", format!("DPoP {token}")),
        ("MAC", format!("MAC {token}")),
        ("Basic with the token as user", format!("Basic {encoded}")),
        ("Basic", format!("Basic {token}")),
    ];
    let mut f = Findings::new(&cx);
    for (scheme, header) in &cases {
        let ex = cx.probe(Some(header)).await?;
        f.require(
            ex.status == 401,
            format!(
                "the valid access token under the {scheme} scheme answered {}",
                ex.status
            ),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

/// MCP Authorization § Scope Selection Strategy (2025-11-25): servers SHOULD include the
/// `scope` parameter in the `WWW-Authenticate` header of a 401 (AUTH-PRM-06). A client whose
/// token expired or was revoked is the one that needs it most: it is about to authorize again.
/// Judged where the resource advertises `scopes_supported`, so that there is a scope to name.
async fn invalid_token_challenges_name_scope(cx: Ctx) -> anyhow::Result<Verdict> {
    let advertised = cx
        .discovery()?
        .prm
        .as_ref()
        .and_then(|p| p.get("scopes_supported"))
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if !advertised {
        return Ok(Verdict::Skip(
            "the resource advertises no scopes_supported".into(),
        ));
    }
    let login = cx.login(LoginOptions::default()).await?;
    let cases = [
        (
            "a random token",
            "Bearer 3f9a8c2e1b7d4a6f9e0c5b8a7d6e5f4a".to_owned(),
        ),
        (
            "the valid token with one character altered",
            format!("Bearer {}", super::tampered(login.access_token())),
        ),
    ];
    let mut f = Findings::new(&cx);
    for (what, header) in &cases {
        let ex = cx.probe(Some(header)).await?;
        if ex.status != 401 {
            f.note(format!(
                "{what} answered {} (AUTH-GEN-05 judges that)",
                ex.status
            ));
            continue;
        }
        let scope = challenge::bearer(ex.header_all("www-authenticate"))
            .and_then(|c| c.param("scope").map(str::to_owned))
            .filter(|s| !s.trim().is_empty());
        f.require(
            scope.is_some(),
            format!("the 401 challenge to {what} names no scope"),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_encoded_before_base64() {
        let header = basic_credentials("id:1", "s e/cret");
        let encoded = header.strip_prefix("Basic ").expect("the Basic scheme");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64");
        assert_eq!(String::from_utf8(decoded).unwrap(), "id%3A1:s+e%2Fcret");
    }

    #[test]
    fn every_case_has_a_distinct_key() {
        let keys: Vec<String> = checks().iter().map(Check::key).collect();
        let unique: std::collections::BTreeSet<&String> = keys.iter().collect();
        assert_eq!(keys.len(), unique.len(), "{keys:?}");
    }
}
