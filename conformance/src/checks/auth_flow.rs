//! AUTH-FLOW: the authorization and token endpoints: PKCE, redirect URIs, single-use codes,
//! `state`, `resource`, token responses, refresh rotation, revocation.

use serde_json::Value;
use url::Url;

use super::{
    Authorized, BOTH, Check, Ctx, Evidence, Findings, Level, LoginOptions, Resource, Scope,
    Verdict, json_error,
};
use crate::body;
use crate::http::Req;
use crate::oauth::REDIRECT_URI;
use crate::oauth::browser::{Arrival, Consent, Script};
use crate::oauth::flow::{self, AuthParams, Pkce};
use crate::oauth::registration::{self, ClientKind};

const AS: Scope = Scope::AuthServer;

pub fn checks() -> Vec<Check> {
    vec![
        Check::new("AUTH-FLOW-01", AS, body!(pkce_is_required)),
        Check::new("AUTH-FLOW-02", AS, body!(only_s256)),
        Check::new("AUTH-FLOW-03", AS, body!(verifier_is_checked)),
        // RFC 7636 puts the verifier's length on the client: a server redeeming a short one
        // that matches its challenge breaks no MUST of its own, so this case warns.
        Check::new("AUTH-FLOW-03", AS, body!(short_verifier_is_refused))
            .case("verifier-length", "a code_verifier shorter than 43 characters is refused")
            .level(Level::Should),
        Check::new("AUTH-FLOW-04", AS, body!(codes_are_single_use)),
        Check::new("AUTH-FLOW-05", AS, body!(codes_are_bound)),
        Check::new("AUTH-FLOW-06", AS, body!(redirect_uri_exact_match)).also(&["AUTH-3P-06"]),
        // Whether the loopback port exception reaches https URIs is read two ways (RFC 8252
        // §7.3 defines loopback redirect URIs as http; OAuth 2.1 §2.3.1 says "loopback
        // redirects"), so this case warns.
        Check::new("AUTH-FLOW-06", AS, body!(https_loopback_is_matched_exactly))
            .case("https-loopback", "an https loopback redirect URI keeps its port")
            .level(Level::Should),
        // RFC 8252 §7.3 asks for any port on an http loopback redirect URI, while the MCP
        // text asks for exact matching without naming the exception: a warning.
        Check::new("AUTH-FLOW-06", AS, body!(loopback_port_may_vary))
            .case("loopback-port", "an http loopback redirect URI may use another port")
            .level(Level::Should),
        // The counterpart of refusing an omitted redirect_uri with several registered.
        Check::new("AUTH-FLOW-06", AS, body!(single_redirect_uri_may_be_omitted))
            .case("omitted", "with one redirect URI registered, redirect_uri may be left out")
            .level(Level::Should),
        Check::new("AUTH-FLOW-07", AS, body!(unknown_client_no_redirect)),
        Check::new("AUTH-FLOW-08", AS, body!(state_is_echoed)),
        Check::new("AUTH-FLOW-09", AS, body!(resource_is_accepted)),
        Check::new("AUTH-FLOW-11", AS, body!(resource_case_insensitive)),
        Check::new("AUTH-FLOW-12", AS, body!(token_response_shape)).also(&["AUTH-FLOW-14"]),
        Check::new("AUTH-FLOW-13", AS, body!(token_errors)),
        Check::new("AUTH-FLOW-15", AS, body!(refresh_rotates)),
        Check::new("AUTH-FLOW-18", AS, body!(iss_in_responses)).also(&["AUTH-ASM-11", "AUTH-FLOW-20"]),
        // The MUST half of this promise is AUTH-ASM-11's (2026-07-28); this case judges
        // it from the authorization responses' side, at AUTH-FLOW-18's level.
        Check::new("AUTH-FLOW-18", AS, body!(iss_matches_metadata)).case("advertised", "iss is sent exactly when the metadata says authorization_response_iss_parameter_supported").also(&["AUTH-ASM-11"]),
        // Revocation is optional (RFC 7009, not mentioned by the MCP specification),
        // so no MCP client depends on it: what the RFC asks of a server that offers
        // it is reported, never fails the run.
        Check::new("AUTH-FLOW-19", BOTH, body!(refresh_token_revocation_works)),
        Check::new("AUTH-FLOW-19", BOTH, body!(access_token_revocation_works))
            .case("access-token", "a revoked access token is refused at once")
            .level(Level::Should),
        Check::new("AUTH-FLOW-20", AS, body!(iss_is_byte_identical)),
        Check::new("AUTH-FLOW-25", AS, body!(refresh_cannot_widen_scope)),
        Check::new("AUTH-FLOW-14", AS, body!(access_tokens_are_short_lived)),
    ]
}

/// Runs an authorization walk with custom parameters for a fresh client.
async fn walk(cx: &Ctx, params: &AuthParams, redirect_uri: &str) -> anyhow::Result<Arrival> {
    let mut browser = cx.browser();
    let script = Script {
        redirect_uri: Url::parse(redirect_uri)?,
        ..cx.script("octocat", None, Consent::Approve)
    };
    browser
        .walk(params.url(&cx.endpoints()?.authorization), &script)
        .await
}

fn got_code(arrival: &Arrival) -> bool {
    matches!(arrival, Arrival::Callback(u) if u.query_pairs().any(|(k, _)| k == "code"))
}

fn describe(cx: &Ctx, arrival: &Arrival) -> String {
    match arrival {
        Arrival::Callback(u) => format!("redirected to the client: {}", cx.redact(u.as_str())),
        Arrival::Page(ex) => format!("stopped at {} {}", ex.status, ex.request.url.path()),
        Arrival::Offsite(u) => format!("redirected off this machine to {u}"),
    }
}

async fn pkce_is_required(cx: Ctx) -> anyhow::Result<Verdict> {
    let client = cx.register(ClientKind::Public, "conformance pkce").await?;
    let mut params = AuthParams::for_client(
        &client,
        &Pkce::s256(),
        "s1",
        Some(&cx.discovery()?.resource()),
        None,
    );
    params.code_challenge = None;
    params.code_challenge_method = None;
    let arrival = walk(&cx, &params, &client.redirect_uri).await?;
    let mut f = Findings::new(&cx);
    f.require(
        !got_code(&arrival),
        format!(
            "a code was issued without code_challenge ({})",
            describe(&cx, &arrival)
        ),
        None,
    );
    Ok(f.verdict())
}

async fn only_s256(cx: Ctx) -> anyhow::Result<Verdict> {
    let client = cx.register(ClientKind::Public, "conformance pkce").await?;
    let mut f = Findings::new(&cx);
    for method in ["plain", "S512"] {
        let mut params = AuthParams::for_client(
            &client,
            &Pkce::s256(),
            "s1",
            Some(&cx.discovery()?.resource()),
            None,
        );
        params.code_challenge_method = Some(method.into());
        let arrival = walk(&cx, &params, &client.redirect_uri).await?;
        f.require(
            !got_code(&arrival),
            format!("code_challenge_method={method} got a code"),
            None,
        );
    }
    Ok(f.verdict())
}

async fn verifier_is_checked(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let token = cx.endpoints()?.token;
    let cases: [(&str, Option<String>); 3] = [
        ("a wrong code_verifier", Some(Pkce::s256().verifier)),
        ("no code_verifier", None),
        ("a 10-character code_verifier", Some("abcdefghij".into())),
    ];
    let authorized =
        futures::future::try_join_all((0..3).map(|_| cx.authorize(LoginOptions::default())))
            .await?;
    for ((what, verifier), a) in cases.into_iter().zip(authorized) {
        let code = a.code(cx.http())?;
        let ex = flow::exchange_code(
            cx.http(),
            &token,
            &a.client,
            &code,
            verifier.as_deref(),
            a.resource.as_deref(),
        )
        .await?;
        let error = json_error(&ex);
        f.require(
            ex.status == 400
                && matches!(error.as_deref(), Some("invalid_grant" | "invalid_request")),
            format!(
                "{what} answered {} {}",
                ex.status,
                super::shown(error.as_deref())
            ),
            Some(&ex),
        );
        if what == "a wrong code_verifier" {
            cx.record_exchange("token error: wrong code_verifier", &ex);
            f.prefer(
                error.as_deref() == Some("invalid_grant"),
                format!(
                    "{what} got {}, not invalid_grant",
                    super::shown(error.as_deref())
                ),
                Some(&ex),
            );
        }
    }
    Ok(f.verdict())
}

/// RFC 7636 §4.1: the code verifier is "a high-entropy cryptographic random STRING ... with a
/// minimum length of 43 characters and a maximum length of 128 characters". The length is put
/// on the client, so a server that redeems a shorter verifier matching its own challenge only
/// warns: it accepts verifiers with less entropy than PKCE is built on.
async fn short_verifier_is_refused(cx: Ctx) -> anyhow::Result<Verdict> {
    use base64::Engine as _;
    use sha2::Digest as _;
    let mut f = Findings::new(&cx);
    let client = cx.register(ClientKind::Public, "conformance pkce").await?;
    let mut verifier = Pkce::s256().verifier;
    verifier.truncate(42);
    let pkce = Pkce {
        challenge: base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes())),
        verifier,
        method: "S256".into(),
    };
    let resource = cx.discovery()?.resource();
    let params = AuthParams::for_client(&client, &pkce, "s1", Some(&resource), None);
    let arrival = walk(&cx, &params, &client.redirect_uri).await?;
    let code = match &arrival {
        Arrival::Callback(callback) => callback
            .query_pairs()
            .find(|(key, _)| key == "code")
            .map(|(_, code)| code.into_owned()),
        _ => None,
    };
    let Some(code) = code else {
        // The challenge of a short verifier was refused at the authorization endpoint.
        return Ok(f.verdict());
    };
    let ex = flow::exchange_code(
        cx.http(),
        &cx.endpoints()?.token,
        &client,
        &code,
        Some(&pkce.verifier),
        Some(&resource),
    )
    .await?;
    f.prefer(
        ex.status != 200,
        format!(
            "a 42-character code_verifier (RFC 7636 asks 43 to 128) redeemed its code: {}",
            ex.status
        ),
        Some(&ex),
    );
    Ok(f.verdict())
}

async fn codes_are_single_use(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let a = &login.authorized;
    let again = flow::exchange_code(
        cx.http(),
        &cx.endpoints()?.token,
        &a.client,
        &login.code,
        Some(&a.pkce.verifier),
        a.resource.as_deref(),
    )
    .await?;
    let mut f = Findings::new(&cx);
    f.require(
        again.status == 400 && json_error(&again).as_deref() == Some("invalid_grant"),
        format!(
            "redeeming the code a second time answered {} {}",
            again.status,
            super::shown(json_error(&again))
        ),
        Some(&again),
    );
    // OAuth 2.1 §4.1.2: the server SHOULD also revoke what the code already produced.
    let first = cx.probe_bearer(login.access_token()).await?;
    f.prefer(
        first.status == 401,
        "the token from the reused code still works (SHOULD be revoked)",
        None,
    );
    Ok(f.verdict())
}

async fn codes_are_bound(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let token = cx.endpoints()?.token;
    let (a, b, other) = futures::try_join!(
        cx.authorize(LoginOptions::default()),
        cx.authorize(LoginOptions::default()),
        cx.register(ClientKind::Public, "conformance other client")
    )?;
    if other.client_id == a.client.client_id {
        // Without registration the suite has only the --client-id client.
        f.note("only one client is available, so redeeming by another client was not tried");
    } else {
        let code = a.code(cx.http())?;
        let ex = flow::exchange_code(
            cx.http(),
            &token,
            &other,
            &code,
            Some(&a.pkce.verifier),
            a.resource.as_deref(),
        )
        .await?;
        f.require(
            ex.status == 400 && json_error(&ex).as_deref() == Some("invalid_grant"),
            format!(
                "another client redeeming the code answered {} {}",
                ex.status,
                super::shown(json_error(&ex))
            ),
            Some(&ex),
        );
    }
    let code = b.code(cx.http())?;
    let mut moved = b.client.clone();
    moved.redirect_uri = "http://127.0.0.1:33418/other".into();
    let ex = flow::exchange_code(
        cx.http(),
        &token,
        &moved,
        &code,
        Some(&b.pkce.verifier),
        b.resource.as_deref(),
    )
    .await?;
    f.require(
        ex.status == 400 && json_error(&ex).as_deref() == Some("invalid_grant"),
        format!(
            "redeeming with a different redirect_uri answered {} {}",
            ex.status,
            super::shown(json_error(&ex))
        ),
        Some(&ex),
    );
    Ok(f.verdict())
}

pub(super) async fn redirect_uri_exact_match(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let client = cx
        .register(ClientKind::Public, "conformance redirect")
        .await?;
    let resource = cx.discovery()?.resource();
    let registered = client.redirect_uri.clone();
    let mut variants = vec![
        format!("{registered}/x"),
        format!("{registered}?x=1"),
        registered.to_uppercase().replace("HTTP://", "http://"),
        "https://evil.example/callback".to_owned(),
    ];
    // Spellings that a URL parser reads as the registered URI: a server that compares
    // parsed or normalised URIs instead of the strings accepts them.
    variants.extend(equivalent_spellings(&registered));
    for bad in variants {
        let mut params =
            AuthParams::for_client(&client, &Pkce::s256(), "s1", Some(&resource), None);
        params.redirect_uri = Some(bad.clone());
        let arrival = walk(&cx, &params, &bad).await?;
        let redirected = matches!(arrival, Arrival::Callback(_))
            || matches!(&arrival, Arrival::Offsite(u) if u.as_str().starts_with(&bad));
        f.require(
            !redirected,
            format!("redirect_uri {bad} was used: {}", describe(&cx, &arrival)),
            None,
        );
    }
    // With several registered URIs, leaving redirect_uri out is ambiguous and must not
    // redirect. That needs a client of our own making, so registration must be offered.
    let Some(endpoint) = cx.registration_offered()? else {
        f.note("registration is not offered, so a client with two redirect URIs was not tried");
        return Ok(f.verdict());
    };
    let two = registration::post(
        cx.http(),
        &endpoint,
        &registration::metadata(
            ClientKind::Public,
            "conformance two uris",
            &[REDIRECT_URI, "http://127.0.0.1:33418/second"],
        ),
    )
    .await?;
    if let Some(id) = two.json().and_then(|d| {
        d.get("client_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }) {
        let mut params =
            AuthParams::for_client(&client, &Pkce::s256(), "s1", Some(&resource), None);
        params.client_id = Some(id);
        params.redirect_uri = None;
        let arrival = walk(&cx, &params, REDIRECT_URI).await?;
        f.require(
            !got_code(&arrival),
            format!(
                "no redirect_uri with two registered: {}",
                describe(&cx, &arrival)
            ),
            None,
        );
    }
    Ok(f.verdict())
}

/// Other spellings of `uri` that RFC 3986 normalisation turns back into it: a dot
/// segment in the path, and the path's first character percent-encoded. None for a URI
/// without a path to spell differently.
fn equivalent_spellings(uri: &str) -> Vec<String> {
    let authority_start = uri.find("://").map_or(0, |at| at + 3);
    let Some(path_start) = uri[authority_start..]
        .find('/')
        .map(|at| at + authority_start)
    else {
        return Vec::new();
    };
    let (origin, path) = uri.split_at(path_start);
    let Some(first) = path[1..].chars().next() else {
        return Vec::new();
    };
    let mut spellings = vec![format!("{origin}/x/..{path}")];
    if first.is_ascii_alphanumeric() {
        spellings.push(format!(
            "{origin}/%{:02X}{}",
            u32::from(first),
            &path[1 + first.len_utf8()..]
        ));
    }
    spellings
}

/// The exception to exact matching is the port of a loopback redirect URI, and RFC 8252 §7.3
/// (OAuth 2.1 §8.4.2 the same) defines those: "Loopback redirect URIs use the "http" scheme".
/// An https URI on a loopback host is then matched exactly like any web URI. OAuth 2.1 §2.3.1
/// names the exception only "for loopback redirects", and a port that varies on the user's own
/// machine exposes no more over https than over http, so a server that extends the exception
/// to https gets a warning, not a failure.
async fn https_loopback_is_matched_exactly(cx: Ctx) -> anyhow::Result<Verdict> {
    let Some(endpoint) = cx.registration_offered()? else {
        return Ok(Verdict::Skip(
            "the server offers no registration, so an https loopback redirect URI cannot be \
             registered"
                .into(),
        ));
    };
    let mut f = Findings::new(&cx);
    let client = cx
        .register(ClientKind::Public, "conformance redirect")
        .await?;
    let resource = cx.discovery()?.resource();
    let registered = "https://127.0.0.1:33418/cb";
    let https_loopback = registration::post(
        cx.http(),
        &endpoint,
        &registration::metadata(
            ClientKind::Public,
            "conformance https loopback",
            &[registered],
        ),
    )
    .await?;
    match https_loopback.json().and_then(|d| {
        d.get("client_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }) {
        Some(id) if (200..300).contains(&https_loopback.status) => {
            let other_port = "https://127.0.0.1:33419/cb";
            let mut params =
                AuthParams::for_client(&client, &Pkce::s256(), "s1", Some(&resource), None);
            params.client_id = Some(id);
            params.redirect_uri = Some(other_port.to_owned());
            let arrival = walk(&cx, &params, other_port).await?;
            let redirected = matches!(arrival, Arrival::Callback(_))
                || matches!(&arrival, Arrival::Offsite(u) if u.as_str().starts_with(other_port));
            f.prefer(
                !redirected,
                format!(
                    "redirect_uri {other_port} was used with {registered} registered (only http \
                     loopback URIs may change their port): {}",
                    describe(&cx, &arrival)
                ),
                None,
            );
        }
        _ => f.note(format!(
            "registering {registered} answered {}, so an https loopback URI on another port was \
             not tried",
            https_loopback.status
        )),
    }
    Ok(f.verdict())
}

/// AUTH-FLOW-06#loopback-port: "The authorization server MUST allow any port to be specified
/// at the time of the request for loopback IP redirect URIs, to accommodate clients that obtain
/// an available port from the operating system at the time of the request" (RFC 8252 §7.3;
/// OAuth 2.1 §8.4.2 the same). The MCP specification asks for "exact string matching" and does
/// not repeat the exception, so a server that holds a loopback URI to its registered port only
/// gets a warning: a native client that takes a free port cannot log in there.
async fn loopback_port_may_vary(cx: Ctx) -> anyhow::Result<Verdict> {
    let client = cx
        .register(ClientKind::Public, "conformance loopback port")
        .await?;
    let registered = Url::parse(&client.redirect_uri)?;
    if registered.scheme() != "http" || !crate::http::is_loopback(&registered) {
        return Ok(Verdict::Skip(format!(
            "the client's redirect URI {registered} is not an http loopback URI"
        )));
    }
    let mut other = registered.clone();
    let port = registered.port_or_known_default().unwrap_or(80);
    other
        .set_port(Some(if port == 65535 { 1024 } else { port + 1 }))
        .map_err(|()| anyhow::anyhow!("{registered} cannot take another port"))?;
    let mut f = Findings::new(&cx);
    let mut params = AuthParams::for_client(
        &client,
        &Pkce::s256(),
        "s1",
        Some(&cx.discovery()?.resource()),
        None,
    );
    params.redirect_uri = Some(other.to_string());
    let arrival = walk(&cx, &params, other.as_str()).await?;
    f.prefer(
        got_code(&arrival),
        format!(
            "redirect_uri {other} got no code with {registered} registered (a loopback \
             redirect URI may use any port): {}",
            describe(&cx, &arrival)
        ),
        None,
    );
    Ok(f.verdict())
}

/// AUTH-FLOW-06#omitted: OAuth 2.1 §4.1.1 makes `redirect_uri` "OPTIONAL if only one
/// redirect URI is registered for this client" (RFC 6749 §3.1.2.3 the same in other words), so
/// such a request is valid and the code goes to the one registered URI. MCP clients send the
/// parameter, so a server that insists on it only gets a warning.
async fn single_redirect_uri_may_be_omitted(cx: Ctx) -> anyhow::Result<Verdict> {
    if cx.registration_offered()?.is_none() {
        return Ok(Verdict::Skip(
            "the server offers no registration, so how many redirect URIs the --client-id \
             client has is not known"
                .into(),
        ));
    }
    let client = cx
        .register(ClientKind::Public, "conformance one redirect")
        .await?;
    let mut params = AuthParams::for_client(
        &client,
        &Pkce::s256(),
        "s1",
        Some(&cx.discovery()?.resource()),
        None,
    );
    params.redirect_uri = None;
    let arrival = walk(&cx, &params, &client.redirect_uri).await?;
    let mut f = Findings::new(&cx);
    f.prefer(
        got_code(&arrival),
        format!(
            "an authorization request without redirect_uri, from a client with the one redirect \
             URI {}, got no code there: {}",
            client.redirect_uri,
            describe(&cx, &arrival)
        ),
        None,
    );
    Ok(f.verdict())
}

async fn unknown_client_no_redirect(cx: Ctx) -> anyhow::Result<Verdict> {
    let pkce = Pkce::s256();
    let params = AuthParams {
        response_type: Some("code".into()),
        client_id: Some("conformance-unknown-client".into()),
        redirect_uri: Some(REDIRECT_URI.into()),
        state: Some("s".into()),
        code_challenge: Some(pkce.challenge),
        code_challenge_method: Some(pkce.method),
        ..AuthParams::default()
    };
    let ex = cx
        .http()
        .send(Req::get(params.url(&cx.endpoints()?.authorization)))
        .await?;
    let mut f = Findings::new(&cx);
    f.require(
        !ex.is_redirect() && (400..500).contains(&ex.status),
        format!("an unknown client_id answered {}", ex.status),
        Some(&ex),
    );
    Ok(f.verdict())
}

async fn state_is_echoed(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    // Only this check sends a state with characters that need encoding; every other login
    // sends a URL-safe one, so a server that mangles them fails here alone.
    let (ok, denied) = futures::try_join!(
        cx.authorize(LoginOptions {
            state: Some(flow::special_state()),
            ..LoginOptions::default()
        }),
        cx.authorize(LoginOptions {
            fault: Some("access_denied".into()),
            state: Some(flow::special_state()),
            ..LoginOptions::default()
        })
    )?;
    check_state(&cx, &mut f, &ok, "the successful redirect");
    check_state(&cx, &mut f, &denied, "the access_denied error redirect");
    consent_denial(&cx, &mut f).await?;
    Ok(f.verdict())
}

/// Denial at the server's own consent page, a path of its own: RFC 6749 §4.1.2.1, "If the
/// resource owner denies the access request [...] the authorization server informs the
/// client by adding the following parameters to the query component of the redirection
/// URI", `error=access_denied` and the `state` among them. The state must come back there
/// as on every redirect (a failure). That a denial reaches the client at all, and as
/// `access_denied`, the RFC says without a keyword: a warning. A login that asks no
/// consent, or a consent page without a control that reads as denial, is not judged.
async fn consent_denial(cx: &Ctx, f: &mut Findings) -> anyhow::Result<()> {
    if cx.live() {
        f.note("consent was not denied: in live mode the user's browser answers the consent page");
        return Ok(());
    }
    let mut browser = cx.browser();
    let opts = LoginOptions {
        state: Some(flow::special_state()),
        ..LoginOptions::default()
    };
    let denied = cx.authorize_in(&mut browser, &opts, Consent::Deny).await?;
    match (&denied.callback, &denied.outcome.arrival) {
        (Some(cb), _) if cb.code.is_some() => {
            f.note("the login asked no consent that could be denied: the client got a code");
        }
        (Some(cb), _) => {
            check_state(cx, f, &denied, "the redirect after consent was denied");
            f.prefer(
                cb.error.as_deref() == Some("access_denied"),
                format!(
                    "the redirect after consent was denied has error={}, not access_denied",
                    super::shown(cb.error.as_deref())
                ),
                None,
            );
        }
        (None, Arrival::Page(page))
            if crate::oauth::browser::consent_form(
                &page.request.url,
                &page.text(),
                Consent::Approve,
            )
            .is_some() =>
        {
            f.note("the consent page offers no control that reads as denial, so none was tried");
        }
        (None, _) => {
            f.prefer(
                false,
                format!(
                    "denying consent never reached the client: {}",
                    denied.outcome.describe(cx.http())
                ),
                None,
            );
        }
    }
    Ok(())
}

fn check_state(cx: &Ctx, f: &mut Findings, a: &Authorized, what: &str) {
    match &a.callback {
        Some(cb) => {
            f.require(
                cb.state.as_deref() == Some(a.state.as_str()),
                format!(
                    "{what} did not carry the state back: {}",
                    crate::redact::state_diff(&a.state, cb.state.as_deref())
                ),
                None,
            );
        }
        None => {
            f.require(
                false,
                format!(
                    "{what} never reached the client: {}",
                    a.outcome.describe(cx.http())
                ),
                None,
            );
        }
    }
}

async fn resource_is_accepted(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let login = cx.login(LoginOptions::default()).await?;
    let probe = cx.probe_bearer(login.access_token()).await?;
    f.require(
        (200..300).contains(&probe.status),
        format!("the token minted with resource answered {}", probe.status),
        Some(&probe),
    );
    if let Some(refresh) = &login.tokens.refresh_token {
        let ex = flow::refresh(
            cx.http(),
            &cx.endpoints()?.token,
            login.client(),
            refresh,
            login.authorized.resource.as_deref(),
        )
        .await?;
        f.require(
            ex.status == 200,
            format!("a refresh with resource answered {}", ex.status),
            Some(&ex),
        );
    } else {
        f.note("no refresh token was issued, so the refresh request with resource was not tried");
    }
    Ok(f.verdict())
}

async fn resource_case_insensitive(cx: Ctx) -> anyhow::Result<Verdict> {
    let resource = cx.discovery()?.resource();
    let Some((scheme, rest)) = resource.split_once("://") else {
        return Ok(Verdict::Skip("the resource is not a URL".into()));
    };
    let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
    let upper = format!("{}://{}/{path}", scheme.to_uppercase(), host.to_uppercase());
    let mut f = Findings::new(&cx);
    match cx
        .login(LoginOptions {
            resource: Resource::Value(upper.clone()),
            ..LoginOptions::default()
        })
        .await
    {
        Ok(login) => {
            let probe = cx.probe_bearer(login.access_token()).await?;
            f.require(
                (200..300).contains(&probe.status),
                format!("a token for {upper} answered {}", probe.status),
                Some(&probe),
            );
        }
        Err(e) => {
            f.require(false, format!("resource={upper} was refused: {e:#}"), None);
        }
    }
    Ok(f.verdict())
}

async fn token_response_shape(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let ex = &login.tokens.exchange;
    cx.record_exchange("token response (authorization_code)", ex);
    let mut f = Findings::new(&cx);
    f.require(
        ex.content_type().as_deref() == Some("application/json"),
        "the token response is not application/json",
        Some(ex),
    );
    f.require(
        login
            .tokens
            .token_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        format!(
            "token_type is {}, not Bearer",
            super::shown(login.tokens.token_type.as_deref())
        ),
        Some(ex),
    );
    f.require(
        ex.header("cache-control")
            .is_some_and(|v| v.to_ascii_lowercase().contains("no-store")),
        format!(
            "Cache-Control is {}, not no-store",
            super::shown(ex.header("cache-control"))
        ),
        Some(ex),
    );
    match login.tokens.expires_in {
        Some(s) => f.prefer(
            s <= 3600,
            format!("expires_in is {s} s, more than an hour (AUTH-FLOW-14)"),
            None,
        ),
        None => f.prefer(false, "no expires_in (RECOMMENDED; AUTH-FLOW-14)", None),
    };
    Ok(f.verdict())
}

async fn token_errors(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let token = cx.endpoints()?.token;
    let client = cx
        .register(ClientKind::Public, "conformance token errors")
        .await?;
    let fields = flow::with_client_auth(
        &client,
        vec![
            ("grant_type".into(), "password".into()),
            ("username".into(), "u".into()),
            ("password".into(), "p".into()),
        ],
    );
    let ex = flow::token_request(cx.http(), &token, &fields).await?;
    cx.record_exchange("token error: unsupported grant", &ex);
    f.require(
        ex.status == 400 && json_error(&ex).as_deref() == Some("unsupported_grant_type"),
        format!(
            "grant_type=password answered {} {}",
            ex.status,
            super::shown(json_error(&ex))
        ),
        Some(&ex),
    );
    f.require(
        ex.content_type().as_deref() == Some("application/json"),
        "the error is not application/json",
        Some(&ex),
    );
    let bad_code = flow::exchange_code(
        cx.http(),
        &token,
        &client,
        "not-a-code",
        Some(&Pkce::s256().verifier),
        None,
    )
    .await?;
    f.require(
        bad_code.status == 400 && json_error(&bad_code).as_deref() == Some("invalid_grant"),
        format!(
            "an unknown code answered {} {}",
            bad_code.status,
            super::shown(json_error(&bad_code))
        ),
        Some(&bad_code),
    );
    Ok(f.verdict())
}

async fn refresh_rotates(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let Some(old) = login.tokens.refresh_token.clone() else {
        // Issuing refresh tokens is optional ("clients MUST NOT assume refresh tokens will
        // be issued"), but a reader must see that the rotation rule went unchecked.
        return Ok(Verdict::Warn(Evidence {
            message: "no refresh token was issued, so the rotation of refresh tokens for \
                      public clients (OAuth 2.1 section 4.3.1, a MUST from 2025-06-18) could not \
                      be checked"
                .into(),
            exchanges: vec![cx.evidence(&login.tokens.exchange)],
        }));
    };
    let token = cx.endpoints()?.token;
    // Rotation has nothing to do with the audience, so these refreshes leave `resource`
    // out; AUTH-FLOW-09 is the check that sends it when refreshing.
    let resource = None;
    let ex = flow::refresh(cx.http(), &token, login.client(), &old, resource).await?;
    cx.record_exchange("token response (refresh_token)", &ex);
    let mut f = Findings::new(&cx);
    let new = flow::parse_tokens(cx.http(), ex.clone())?;
    f.require(
        new.access_token != login.tokens.access_token,
        "the refresh returned the same access token",
        Some(&ex),
    );
    match &new.refresh_token {
        Some(r) => f.require(
            r != &old,
            "the refresh returned the same refresh token",
            Some(&ex),
        ),
        None => f.require(
            false,
            "the refresh returned no new refresh token",
            Some(&ex),
        ),
    };
    // Probed before the replay: RFC 9700 section 4.14.2 lets a server that detects
    // the reuse of a rotated-out refresh token revoke the whole grant, this new access
    // token included.
    let probe = cx.probe_bearer(&new.access_token).await?;
    f.require(
        (200..300).contains(&probe.status),
        format!("the refreshed access token answered {}", probe.status),
        Some(&probe),
    );
    let replay = flow::refresh(cx.http(), &token, login.client(), &old, resource).await?;
    f.require(
        replay.status == 400 && json_error(&replay).as_deref() == Some("invalid_grant"),
        format!(
            "replaying the old refresh token answered {} {}",
            replay.status,
            super::shown(json_error(&replay))
        ),
        Some(&replay),
    );
    Ok(f.verdict())
}

/// RFC 6749 section 6: "The requested scope MUST NOT include any scope not originally
/// granted by the resource owner, and if omitted is treated as equal to the scope originally
/// granted"; section 5.2 names the server's answer to one that does, `invalid_scope`
/// ("exceeds the scope granted by the resource owner"). A refresh that repeats the granted
/// scope asks for nothing more and is honoured.
async fn refresh_cannot_widen_scope(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let Some(refresh_token) = login.tokens.refresh_token.clone() else {
        return Ok(Verdict::Skip(
            "no refresh token was issued, so there is no refresh to judge (AUTH-FLOW-15 \
             warns about it)"
                .into(),
        ));
    };
    let endpoint = cx.endpoints()?.token;
    let mut f = Findings::new(&cx);
    let never_granted = "conformance:never-granted";
    let widened = refresh_with_scope(
        &cx,
        login.client(),
        &endpoint,
        &refresh_token,
        never_granted,
    )
    .await?;
    // The refusal is the rule; its code is §5.2's choice, which a server that refuses with
    // another error still got wrong in a way no client is misled by, hence a warning.
    if f.require(
        widened.status == 400 && json_error(&widened).is_some(),
        format!(
            "a refresh asking for the scope {never_granted}, never granted, answered {} {}, \
             not a 400 OAuth error",
            widened.status,
            super::shown(json_error(&widened))
        ),
        Some(&widened),
    ) {
        f.prefer(
            json_error(&widened).as_deref() == Some("invalid_scope"),
            format!(
                "a refresh asking for the scope {never_granted}, never granted, was refused \
                 with {}, not invalid_scope (RFC 6749 section 5.2: \"exceeds the scope granted \
                 by the resource owner\")",
                super::shown(json_error(&widened))
            ),
            Some(&widened),
        );
    }
    // The refresh token to go on with: a server that wrongly honoured the widening may have
    // rotated the first one out.
    let current = if widened.status == 200 {
        flow::parse_tokens(cx.http(), widened)?
            .refresh_token
            .unwrap_or(refresh_token)
    } else {
        refresh_token
    };
    if let Some(granted) = login.tokens.scope.clone().filter(|s| !s.trim().is_empty()) {
        let repeated =
            refresh_with_scope(&cx, login.client(), &endpoint, &current, &granted).await?;
        f.require(
            repeated.status == 200,
            format!(
                "a refresh asking for the granted scope ({granted}) answered {} {}",
                repeated.status,
                super::shown(json_error(&repeated))
            ),
            Some(&repeated),
        );
    } else {
        f.note("the token response named no scope, so the refresh with the granted scope was not tried");
    }
    Ok(f.verdict())
}

/// A refresh of `refresh_token` that asks for `scope`.
async fn refresh_with_scope(
    cx: &Ctx,
    client: &crate::oauth::registration::Client,
    endpoint: &url::Url,
    refresh_token: &str,
    scope: &str,
) -> anyhow::Result<crate::http::Exchange> {
    let fields = vec![
        ("grant_type".to_owned(), "refresh_token".to_owned()),
        ("refresh_token".to_owned(), refresh_token.to_owned()),
        ("scope".to_owned(), scope.to_owned()),
    ];
    flow::token_request(cx.http(), endpoint, &flow::with_client_auth(client, fields)).await
}

async fn iss_in_responses(cx: Ctx) -> anyhow::Result<Verdict> {
    let d = cx.discovery()?;
    let issuer = d.metadata_str("issuer").unwrap_or(&d.issuer).to_owned();
    // Only this check sends a state with characters that need encoding; every other login
    // sends a URL-safe one, so a server that mangles them fails here alone.
    let (ok, denied) = futures::try_join!(
        cx.authorize(LoginOptions {
            state: Some(flow::special_state()),
            ..LoginOptions::default()
        }),
        cx.authorize(LoginOptions {
            fault: Some("access_denied".into()),
            state: Some(flow::special_state()),
            ..LoginOptions::default()
        })
    )?;
    let mut f = Findings::new(&cx);
    for (what, a) in [
        ("the success redirect", &ok),
        ("the error redirect", &denied),
    ] {
        let iss = a.callback.as_ref().and_then(|c| c.iss.clone());
        match iss {
            Some(iss) => {
                f.require(
                    iss == issuer,
                    format!("{what} has iss={iss:?}, the issuer is {issuer:?}"),
                    None,
                );
            }
            None => {
                f.prefer(false, format!("{what} has no iss"), None);
            }
        }
    }
    Ok(f.verdict())
}

/// RFC 9207 section 3 defines `authorization_response_iss_parameter_supported` as a
/// "Boolean parameter indicating whether the authorization server provides the iss
/// parameter in the authorization response". Clients decide from it whether to demand
/// `iss` (section 2.4), so the metadata is a promise both ways: a server that advertises
/// it and leaves `iss` out gets its responses refused, and one that sends `iss` without
/// advertising it leaves clients that trust the metadata open to mix-up. So `iss` is sent
/// if and only if the metadata says so, with the issuer's exact value.
async fn iss_matches_metadata(cx: Ctx) -> anyhow::Result<Verdict> {
    let d = cx.discovery()?;
    let issuer = d.metadata_str("issuer").unwrap_or(&d.issuer).to_owned();
    let advertised = d.iss_advertised();
    let (ok, denied) = futures::try_join!(
        cx.authorize(LoginOptions::default()),
        cx.authorize(LoginOptions {
            fault: Some("access_denied".into()),
            ..LoginOptions::default()
        })
    )?;
    let mut f = Findings::new(&cx);
    for (what, a) in [
        ("the success redirect", &ok),
        ("the error redirect", &denied),
    ] {
        let Some(callback) = &a.callback else {
            anyhow::bail!(
                "{what} never reached the client: {}",
                a.outcome.describe(cx.http())
            );
        };
        match (&callback.iss, advertised) {
            (Some(iss), true) => {
                f.require(
                    *iss == issuer,
                    format!("{what} has iss={iss:?}, the issuer is {issuer:?}"),
                    None,
                );
            }
            (Some(_), false) => {
                f.require(
                    false,
                    format!(
                        "{what} carries iss, but the metadata does not say \
                         authorization_response_iss_parameter_supported: true"
                    ),
                    None,
                );
            }
            (None, true) => {
                f.require(
                    false,
                    format!(
                        "{what} has no iss, though the metadata says \
                         authorization_response_iss_parameter_supported: true"
                    ),
                    None,
                );
            }
            (None, false) => {}
        }
    }
    if !advertised && !f.failed() {
        f.note("the server neither advertises nor sends iss");
    }
    Ok(f.verdict())
}

/// A revocation request (RFC 7009 section 2.1) for one of the login's tokens, with the
/// client's authentication.
pub(super) async fn revoke(
    cx: &Ctx,
    login: &super::Login,
    endpoint: &Url,
    token: &str,
    hint: &str,
) -> anyhow::Result<crate::http::Exchange> {
    let fields = flow::with_client_auth(
        login.client(),
        vec![
            ("token".into(), token.to_owned()),
            ("token_type_hint".into(), hint.to_owned()),
        ],
    );
    flow::token_request(cx.http(), endpoint, &fields).await
}

/// AUTH-FLOW-19, the MUST half (RFC 7009 section 2): "Implementations MUST support the
/// revocation of refresh tokens". The MCP specification does not ask for a revocation endpoint
/// at all, so a server without one only gets a warning that nothing could be checked; a server
/// that offers one must end a refresh token revoked there.
async fn refresh_token_revocation_works(cx: Ctx) -> anyhow::Result<Verdict> {
    let Some(endpoint) = cx.endpoints()?.revocation else {
        // A missing endpoint is allowed, but a reader must see that nothing was checked.
        return Ok(Verdict::Warn(Evidence {
            message: "no revocation_endpoint is advertised: token revocation (RFC 7009) is \
                      optional and not required by the MCP specification, so revoked tokens \
                      could not be checked"
                .into(),
            exchanges: Vec::new(),
        }));
    };
    let mut f = Findings::new(&cx);
    let login = cx.login(LoginOptions::default()).await?;
    let Some(refresh) = &login.tokens.refresh_token else {
        f.prefer(
            false,
            "no refresh token was issued, so the revocation of refresh tokens (RFC 7009 \
             section 2, a MUST for servers that offer revocation) could not be checked",
            None,
        );
        return Ok(f.verdict());
    };
    let ex = revoke(&cx, &login, &endpoint, refresh, "refresh_token").await?;
    f.require(
        ex.status == 200,
        format!(
            "revoking the refresh token answered {} {}",
            ex.status,
            super::shown(json_error(&ex))
        ),
        Some(&ex),
    );
    let used = flow::refresh(
        cx.http(),
        &cx.endpoints()?.token,
        login.client(),
        refresh,
        login.authorized.resource.as_deref(),
    )
    .await?;
    f.require(
        used.status == 400 && json_error(&used).as_deref() == Some("invalid_grant"),
        match json_error(&used) {
            Some(error) => format!(
                "a refresh with the token after its revocation answered {} {error}, not 400 invalid_grant",
                used.status
            ),
            None => format!(
                "a refresh with the token after its revocation answered {}, not 400 invalid_grant",
                used.status
            ),
        },
        Some(&used),
    );
    Ok(f.verdict())
}

/// AUTH-FLOW-19#access-token, the SHOULD half (RFC 7009 section 2): implementations "SHOULD
/// support the revocation of access tokens"; section 2.2.1 gives a server that does not the
/// error `unsupported_token_type`. A server that accepts the revocation must refuse the token
/// from then on: an answer of 200 for a token that still works tells the client a lie.
async fn access_token_revocation_works(cx: Ctx) -> anyhow::Result<Verdict> {
    let Some(endpoint) = cx.endpoints()?.revocation else {
        return Ok(Verdict::Skip(
            "no revocation_endpoint is advertised (AUTH-FLOW-19 reports it)".into(),
        ));
    };
    let mut f = Findings::new(&cx);
    let login = cx.login(LoginOptions::default()).await?;
    let before = cx.probe_bearer(login.access_token()).await?;
    anyhow::ensure!(
        (200..300).contains(&before.status),
        "the fresh token was not accepted:\n{}",
        cx.evidence(&before)
    );
    let ex = revoke(&cx, &login, &endpoint, login.access_token(), "access_token").await?;
    if ex.status == 400 && json_error(&ex).as_deref() == Some("unsupported_token_type") {
        f.prefer(
            false,
            "access tokens cannot be revoked (unsupported_token_type; RFC 7009 section 2 \
             SHOULD support their revocation)",
            Some(&ex),
        );
        return Ok(f.verdict());
    }
    f.require(
        ex.status == 200,
        format!(
            "revoking the access token answered {} {}",
            ex.status,
            super::shown(json_error(&ex))
        ),
        Some(&ex),
    );
    let after = cx.probe_bearer(login.access_token()).await?;
    f.require(
        after.status == 401,
        format!("the revoked access token answered {}", after.status),
        Some(&after),
    );
    Ok(f.verdict())
}

/// AUTH-FLOW-20 (2026-07-28, Authorization Response Validation): clients "MUST NOT apply
/// scheme or host case folding, default-port elision, trailing-slash, or percent-encoding
/// normalization (RFC 3986 Sections 6.2.2-6.2.3) before comparison". A server whose `iss`
/// differs from its metadata issuer only by such a normalization is refused by every
/// conforming client, so the `iss` it sends must be the issuer byte for byte. Whether `iss`
/// is sent at all is AUTH-FLOW-18's question.
async fn iss_is_byte_identical(cx: Ctx) -> anyhow::Result<Verdict> {
    let d = cx.discovery()?;
    let issuer = d.metadata_str("issuer").unwrap_or(&d.issuer).to_owned();
    let ok = cx.authorize(LoginOptions::default()).await?;
    let Some(iss) = ok.callback.as_ref().and_then(|c| c.iss.clone()) else {
        return Ok(Verdict::Skip(
            "the authorization response has no iss (see AUTH-FLOW-18)".into(),
        ));
    };
    let mut f = Findings::new(&cx);
    let equivalent = url::Url::parse(&iss)
        .ok()
        .zip(url::Url::parse(&issuer).ok())
        .is_some_and(|(a, b)| a == b);
    f.prefer(
        iss == issuer,
        if equivalent {
            format!(
                "iss={iss:?} equals the issuer {issuer:?} only after URL normalization, \
                 which clients must not apply"
            )
        } else {
            format!("iss={iss:?} differs from the issuer {issuer:?}")
        },
        None,
    );
    Ok(f.verdict())
}

/// AUTH-FLOW-14: "Authorization servers SHOULD issue short-lived access tokens to reduce the
/// impact of leaked tokens" (2025-03-26 onwards, Token Theft). The specification names no
/// bound; an hour is the lifetime OAuth deployments commonly call short, and the one the
/// token response shape check (AUTH-FLOW-12) already holds servers to. A token response
/// without `expires_in` says nothing of the lifetime, so the client must assume it is long.
async fn access_tokens_are_short_lived(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let mut f = Findings::new(&cx);
    match login.tokens.expires_in {
        Some(s) => f.prefer(
            s <= 3600,
            format!("expires_in is {s} s: the access token lives longer than an hour"),
            None,
        ),
        None => f.prefer(
            false,
            "the token response has no expires_in, so the access token's lifetime is unknown",
            None,
        ),
    };
    Ok(f.verdict())
}

/// AUTH-REG-04: "Servers MUST validate redirect URIs to prevent open redirect
/// vulnerabilities" (2025-03-26 onwards, Security Considerations). An open redirect is an
/// authorization endpoint that sends the browser wherever a request's `redirect_uri`
/// says: a registered client's request naming a host it never registered must end at the
/// server's own error page, not at that host. Exact matching (AUTH-FLOW-06, from
/// 2025-06-18) is stricter; this is the part every version requires.
pub(super) async fn no_open_redirect(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let client = cx
        .register(ClientKind::Public, "conformance open redirect")
        .await?;
    let resource = cx.discovery()?.resource();
    let foreign = "https://evil.example/callback".to_owned();
    let mut params = AuthParams::for_client(&client, &Pkce::s256(), "s1", Some(&resource), None);
    params.redirect_uri = Some(foreign.clone());
    let arrival = walk(&cx, &params, &foreign).await?;
    let redirected = matches!(arrival, Arrival::Callback(_))
        || matches!(&arrival, Arrival::Offsite(u) if u.as_str().starts_with(&foreign));
    f.require(
        !redirected,
        format!(
            "an authorization request with the unregistered redirect_uri {foreign} was \
             redirected there: {}",
            describe(&cx, &arrival)
        ),
        None,
    );
    Ok(f.verdict())
}

#[cfg(test)]
mod equivalent_spellings_tests {
    use super::equivalent_spellings;
    use url::Url;

    #[test]
    fn every_spelling_parses_back_to_the_uri_but_differs_as_a_string() {
        let uri = "http://127.0.0.1:33418/callback";
        let spellings = equivalent_spellings(uri);
        assert_eq!(
            spellings,
            [
                "http://127.0.0.1:33418/x/../callback",
                "http://127.0.0.1:33418/%63allback",
            ]
        );
        for spelling in spellings {
            assert_ne!(spelling, uri);
            let parsed = Url::parse(&spelling).unwrap();
            // The dot segment is removed by parsing; the escape by decoding the path.
            let decoded = percent_decoded(parsed.as_str());
            assert_eq!(decoded, uri, "{spelling}");
        }
    }

    #[test]
    fn a_uri_without_a_path_has_no_other_spelling() {
        assert!(equivalent_spellings("http://127.0.0.1:33418").is_empty());
        assert!(equivalent_spellings("http://127.0.0.1:33418/").is_empty());
    }

    fn percent_decoded(text: &str) -> String {
        url::form_urlencoded::parse(format!("u={text}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    }
}
