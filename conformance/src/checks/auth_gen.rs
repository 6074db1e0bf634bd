//! AUTH-GEN: what every OAuth-protected resource server does: 401 without a token, a token on
//! every request, no query-string tokens, invalid and expired tokens refused.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::{BOTH, Check, Ctx, Findings, LoginOptions, Scope, Verdict, challenge, json_error};
use crate::body;
use crate::config::Transport;
use crate::http::Req;
use crate::http::streamable::Shttp;
use crate::oauth::REDIRECT_URI;
use crate::oauth::flow::{self, AuthParams, Pkce};
use crate::oauth::registration::{self, Client, ClientKind};

pub fn checks() -> Vec<Check> {
    vec![
        Check::new("AUTH-GEN-01", BOTH, body!(unauthenticated_requests_get_401)).also(&["SSE-08"]),
        Check::new(
            "AUTH-GEN-02",
            BOTH,
            body!(a_session_without_a_token_gets_401),
        )
        .also(&["SEC-03"]),
        Check::new("AUTH-GEN-03", BOTH, body!(query_string_tokens_are_refused)),
        Check::new("AUTH-GEN-04", Scope::AuthServer, body!(endpoints_use_https)),
        Check::new("AUTH-GEN-05", BOTH, body!(invalid_tokens_get_401)).also(&["AUTH-TOK-01"]),
        Check::new("AUTH-GEN-05", BOTH, body!(expired_tokens_get_401))
            .case(
                "expired",
                "an expired token gets 401, also inside the session it opened",
            )
            .also(&["AUTH-FLOW-14"]),
        Check::new(
            "AUTH-GEN-06",
            Scope::AuthServer,
            body!(malformed_requests_get_errors),
        ),
        Check::new(
            "AUTH-GEN-07",
            BOTH,
            body!(unauthenticated_challenge_has_no_error),
        ),
        Check::new(
            "AUTH-GEN-08",
            Scope::AuthServer,
            body!(public_and_confidential_clients),
        ),
    ]
}

async fn unauthenticated_requests_get_401(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    match cx.transport() {
        Transport::StreamableHttp => {
            let c = Shttp::new(cx.http().clone(), cx.mcp_url(), None);
            let post = cx.probe(None).await?;
            cx.record_exchange("401 unauthenticated POST", &post);
            f.require(
                post.status == 401,
                format!("POST initialize without a token answered {}", post.status),
                Some(&post),
            );
            f.require(
                post.header("mcp-session-id").is_none(),
                "the 401 response minted an Mcp-Session-Id",
                Some(&post),
            );
            let get = cx.http().send_head(c.req(Method::GET)).await?;
            f.require(
                get.status == 401,
                format!("GET without a token answered {}", get.status),
                Some(&get),
            );
            let delete = cx.http().send(c.req(Method::DELETE)).await?;
            f.require(
                delete.status == 401,
                format!("DELETE without a token answered {}", delete.status),
                Some(&delete),
            );
        }
        Transport::Sse => {
            let get = cx.probe(None).await?;
            cx.record_exchange("401 unauthenticated GET", &get);
            f.require(
                get.status == 401,
                format!(
                    "GET {} without a token answered {}",
                    cx.mcp_url().path(),
                    get.status
                ),
                Some(&get),
            );
            let login = cx.login(LoginOptions::default()).await?;
            let session = cx.open_sse(Some(login.access_token())).await?;
            let post = cx
                .http()
                .send(
                    Req::post(session.endpoint.clone())
                        .json(&json!({"jsonrpc":"2.0","id":1,"method":"ping"})),
                )
                .await?;
            f.require(
                post.status == 401,
                format!(
                    "POST to the message endpoint without a token answered {}",
                    post.status
                ),
                Some(&post),
            );
            // The same endpoint without naming a session: the challenge comes before any
            // session check.
            let mut sessionless = session.endpoint.clone();
            sessionless.set_query(None);
            let post = cx
                .http()
                .send(Req::post(sessionless).json(&json!({"jsonrpc":"2.0","id":2,"method":"ping"})))
                .await?;
            f.require(
                post.status == 401,
                format!(
                    "POST to the message endpoint without a token or a session answered {}",
                    post.status
                ),
                Some(&post),
            );
        }
    }
    Ok(f.verdict())
}

pub(super) async fn a_session_without_a_token_gets_401(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let login = cx.login(LoginOptions::default()).await?;
    match cx.transport() {
        Transport::StreamableHttp => {
            let mut c = Shttp::new(
                cx.http().clone(),
                cx.mcp_url(),
                Some(login.access_token().to_owned()),
            );
            c.initialize(cx.protocol_version().as_str()).await?;
            if c.session.is_none() {
                f.note("the server issued no session id; checked requests without a token only");
            }
            let mut bare = c.clone();
            bare.token = None;
            let list = bare
                .post(&json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}))
                .await?
                .exchange;
            f.require(
                list.status == 401,
                format!(
                    "tools/list with the session and no token answered {}",
                    list.status
                ),
                Some(&list),
            );
            let note = bare
                .notify("notifications/initialized", None)
                .await?
                .exchange;
            f.require(
                note.status == 401,
                format!(
                    "a notification with the session and no token answered {}",
                    note.status
                ),
                Some(&note),
            );
            let get = cx.http().send_head(bare.req(Method::GET)).await?;
            f.require(
                get.status == 401,
                format!("GET with the session and no token answered {}", get.status),
                Some(&get),
            );
            let delete = cx.http().send(bare.req(Method::DELETE)).await?;
            f.require(
                delete.status == 401,
                format!(
                    "DELETE with the session and no token answered {}",
                    delete.status
                ),
                Some(&delete),
            );
        }
        Transport::Sse => {
            let mut session = cx.open_sse(Some(login.access_token())).await?;
            session.initialize(cx.protocol_version().as_str()).await?;
            let post = cx
                .http()
                .send(
                    Req::post(session.endpoint.clone())
                        .json(&json!({"jsonrpc":"2.0","id":9,"method":"tools/list"})),
                )
                .await?;
            f.require(
                post.status == 401,
                format!(
                    "POST to the session's endpoint without a token answered {}",
                    post.status
                ),
                Some(&post),
            );
        }
    }
    Ok(f.verdict())
}

async fn query_string_tokens_are_refused(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let login = cx.login(LoginOptions::default()).await?;
    let mut url = cx.mcp_url();
    url.query_pairs_mut()
        .append_pair("access_token", login.access_token());
    let ex = cx.probe_at(url, None).await?;
    f.require(
        ex.status == 401,
        format!(
            "a request with ?access_token= and no header answered {}",
            ex.status
        ),
        Some(&ex),
    );
    Ok(f.verdict())
}

async fn endpoints_use_https(cx: Ctx) -> anyhow::Result<Verdict> {
    let d = cx.discovery()?;
    let mut f = Findings::new(&cx);
    let mut urls = vec![("issuer".to_owned(), d.issuer.clone())];
    if let Some(doc) = d.metadata.as_ref().and_then(|m| m.as_object()) {
        for (k, v) in doc {
            if k.ends_with("_endpoint")
                && let Some(s) = v.as_str()
            {
                urls.push((k.clone(), s.to_owned()));
            }
        }
    }
    for (name, value) in urls {
        match url::Url::parse(&value) {
            Ok(u) if u.scheme() == "https" => {}
            Ok(u) if u.scheme() == "http" && crate::http::is_loopback(&u) => {
                f.prefer(
                    false,
                    format!("{name} uses http on loopback ({value}); fine for local tests only"),
                    None,
                );
            }
            _ => {
                f.require(false, format!("{name} is not an https URL: {value}"), None);
            }
        }
    }
    Ok(f.verdict())
}

pub(super) async fn invalid_tokens_get_401(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let login = cx.login(LoginOptions::default()).await?;
    let cases = [
        (
            "a random string",
            "Bearer 3f9a8c2e1b7d4a6f9e0c5b8a7d6e5f4a".to_owned(),
        ),
        (
            "the valid token with one character altered",
            format!("Bearer {}", super::tampered(login.access_token())),
        ),
        ("an empty bearer token", "Bearer ".to_owned()),
        ("Basic credentials", "Basic dXNlcjpwYXNz".to_owned()),
    ];
    for (what, header) in &cases {
        let ex = cx.probe(Some(header)).await?;
        f.require(
            ex.status == 401,
            format!("{what} answered {}", ex.status),
            Some(&ex),
        );
    }
    // "Invalid or expired tokens MUST receive a HTTP 401 response": every request, not only
    // the one that opens a session. A server that trusts a live session id instead of the
    // token on each request fails here.
    let (conn, _) = cx.connect(Some(login.access_token())).await?;
    let foreign = foreign_issuer_token(&cx);
    let mut in_session = vec![
        (cases[0].0, cases[0].1.clone()),
        (cases[1].0, cases[1].1.clone()),
        (
            "a well-formed JWT from another issuer",
            format!("Bearer {foreign}"),
        ),
    ];
    // A token of the other issuer the server knows, GitHub, for the session's own user: a
    // session must not make it acceptable (AUTH-TOK-02#foreign-issuer tries it everywhere
    // else). Only the mock can mint one.
    if cx.mock().base.is_some() {
        let github = super::auth_tok::github_issued_token(&cx, "octocat").await?;
        in_session.push(("an access token GitHub issued", format!("Bearer {github}")));
    }
    for (what, header) in in_session {
        let ex = request_in_session(&cx, &conn, &header).await?;
        f.require(
            ex.status == 401,
            format!(
                "{what}, inside a session the valid token opened, answered {}",
                ex.status
            ),
            Some(&ex),
        );
    }
    let first = cx.probe(Some(&format!("Bearer {foreign}"))).await?;
    f.require(
        first.status == 401,
        format!(
            "a well-formed JWT from another issuer answered {}",
            first.status
        ),
        Some(&first),
    );
    // RFC 9110 §11.1: the scheme is case-insensitive, so `bearer` must work too.
    let lower = cx
        .probe(Some(&format!("bearer {}", login.access_token())))
        .await?;
    f.prefer(
        (200..300).contains(&lower.status),
        format!(
            "the valid token with the scheme spelled `bearer` answered {}",
            lower.status
        ),
        Some(&lower),
    );
    Ok(f.verdict())
}

async fn expired_tokens_get_401(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let expires_in = match lifetime_to_wait_out(&cx, &login.tokens) {
        Ok(seconds) => seconds,
        Err(skip) => return Ok(skip),
    };
    let mut f = Findings::new(&cx);
    let before = cx.probe_bearer(login.access_token()).await?;
    if !(200..300).contains(&before.status) {
        anyhow::bail!(
            "the fresh token was not accepted:\n{}",
            cx.evidence(&before)
        );
    }
    let (conn, _) = cx.connect(Some(login.access_token())).await?;
    // Expiry is the subject here, so the check has to let the lifetime pass. It then
    // looks again every 100 ms for up to 1.1 s more, which covers servers that count
    // whole seconds without making every run wait for them.
    tokio::time::sleep(Duration::from_secs(expires_in)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1100);
    let after = loop {
        let probe = cx.probe_bearer(login.access_token()).await?;
        if probe.status == 401 || tokio::time::Instant::now() >= deadline {
            break probe;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    f.require(
        after.status == 401,
        format!(
            "{expires_in} s after issue the token still answered {}",
            after.status
        ),
        Some(&after),
    );
    // The session the token opened while it was valid must not keep it alive.
    let header = format!("Bearer {}", login.access_token());
    let ex = request_in_session(&cx, &conn, &header).await?;
    f.require(
        ex.status == 401,
        format!(
            "inside the session it opened, the expired token answered {}",
            ex.status
        ),
        Some(&ex),
    );
    Ok(f.verdict())
}

/// The token's lifetime in seconds, when the checks that watch it expire may wait it out
/// (`--max-expiry-wait`), or why they skip.
pub(super) fn lifetime_to_wait_out(
    cx: &Ctx,
    tokens: &crate::oauth::flow::Tokens,
) -> Result<u64, Verdict> {
    let Some(expires_in) = tokens.expires_in else {
        return Err(Verdict::Skip(
            "the token response has no expires_in to wait out".into(),
        ));
    };
    let max = cx.config().max_expiry_wait;
    if Duration::from_secs(expires_in) > max {
        return Err(Verdict::Skip(format!(
            "expires_in is {expires_in} s, longer than --max-expiry-wait ({} s); start the server with a short token lifetime to run this",
            max.as_secs_f64()
        )));
    }
    Ok(expires_in)
}

/// `tools/list` inside an open session, with a chosen `Authorization` header value instead of
/// the token that opened it. Only the response head matters.
async fn request_in_session(
    cx: &Ctx,
    conn: &crate::client::McpConn,
    authorization: &str,
) -> anyhow::Result<crate::http::Exchange> {
    let message = json!({"jsonrpc": "2.0", "id": 77, "method": "tools/list"});
    let req = match conn {
        crate::client::McpConn::Shttp(c) => {
            let mut other = c.clone();
            other.token = None;
            other.req(Method::POST).json(&message)
        }
        crate::client::McpConn::Sse(s) => Req::post(s.endpoint.clone()).json(&message),
    };
    cx.http()
        .send_head(req.header("Authorization", authorization))
        .await
}

/// A token this server never issued, in the form other authorization servers use: a JWT
/// (RFC 9068 claims) from another issuer, for this resource, unexpired, signed with a key the
/// server cannot know.
fn foreign_issuer_token(cx: &Ctx) -> String {
    use base64::Engine as _;
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let header = b64(&json!({"alg": "HS256", "typ": "at+jwt"}));
    let claims = b64(&json!({
        "iss": "https://rogue-issuer.example",
        "aud": cx.mcp_url().as_str(),
        "sub": "octocat",
        "client_id": "conformance",
        "scope": cx.discovery().ok().and_then(|d| d.prm.clone())
            .and_then(|p| p.get("scopes_supported").cloned())
            .and_then(|s| s.as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(" ")))
            .unwrap_or_default(),
        "iat": now,
        "exp": now + 3600,
        "jti": flow::random_state(),
    }));
    let signature =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(flow::random_state().as_bytes());
    format!("{header}.{claims}.{signature}")
}

async fn malformed_requests_get_errors(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let endpoints = cx.endpoints()?;
    let client = cx
        .register(ClientKind::Public, "conformance malformed")
        .await?;
    let pkce = Pkce::s256();
    let mut params = AuthParams::for_client(
        &client,
        &pkce,
        "s1",
        Some(&cx.discovery()?.resource()),
        None,
    );
    params.response_type = None;
    let ex = cx
        .http()
        .send(Req::get(params.url(&endpoints.authorization)))
        .await?;
    let redirect_error = ex
        .location()
        .is_some_and(|u| u.query_pairs().any(|(k, _)| k == "error"));
    f.require(
        !super::issues_code(&ex) && (ex.status == 400 || redirect_error),
        format!(
            "/authorize without response_type answered {} without an error",
            ex.status
        ),
        Some(&ex),
    );
    let token = flow::token_request(cx.http(), &endpoints.token, &[]).await?;
    cx.record_exchange("token error: empty body", &token);
    f.require(
        token.status == 400 && json_error(&token).is_some(),
        format!(
            "an empty token request answered {} (expected 400 with a JSON error)",
            token.status
        ),
        Some(&token),
    );
    Ok(f.verdict())
}

async fn unauthenticated_challenge_has_no_error(cx: Ctx) -> anyhow::Result<Verdict> {
    let ex = cx.probe(None).await?;
    let mut f = Findings::new(&cx);
    if let Some(c) = challenge(&ex) {
        f.prefer(
            c.param("error").is_none(),
            "the challenge to a request without credentials carries error=",
            Some(&ex),
        );
    } else {
        return Ok(Verdict::Skip(
            "no Bearer challenge to inspect (see AUTH-PRM-04)".into(),
        ));
    }
    Ok(f.verdict())
}

async fn public_and_confidential_clients(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    match cx.login(LoginOptions::default()).await {
        Ok(_) => {}
        Err(e) => {
            f.require(
                false,
                format!("a public client with PKCE could not log in: {e:#}"),
                None,
            );
            return Ok(f.verdict());
        }
    }
    defaults_client_logs_in(&cx, &mut f).await?;
    let d = cx.discovery()?;
    let methods: Vec<String> = d
        .metadata
        .as_ref()
        .and_then(|m| m.get("token_endpoint_auth_methods_supported"))
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if !methods
        .iter()
        .any(|m| m == "client_secret_post" || m == "client_secret_basic")
    {
        f.note("the server advertises no confidential client authentication; only the public client was tested");
        return Ok(f.verdict());
    }
    if cx.registration_offered()?.is_none()
        && cx
            .pre_registered()
            .is_none_or(|c| c.client_secret.is_none())
    {
        f.note("registration is not offered and --client-id is no confidential client; only the public client was tested");
        return Ok(f.verdict());
    }
    let client = cx
        .register(ClientKind::Confidential, "conformance confidential")
        .await?;
    let opts = LoginOptions {
        client: Some(client.clone()),
        ..LoginOptions::default()
    };
    let authorized = cx.authorize(opts).await?;
    let code = authorized.code(cx.http())?;
    // A wrong secret sent with HTTP Basic must get 401 invalid_client (RFC 6749 §5.2).
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{}:wrong-secret", client.client_id),
    );
    let fields = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("code_verifier", authorized.pkce.verifier.as_str()),
    ];
    let wrong = cx
        .http()
        .send(
            Req::post(cx.endpoints()?.token)
                .header("Authorization", format!("Basic {basic}"))
                .form(fields),
        )
        .await?;
    f.require(
        wrong.status == 401 && json_error(&wrong).as_deref() == Some("invalid_client"),
        format!(
            "a wrong client secret over HTTP Basic answered {} {}",
            wrong.status,
            super::shown(json_error(&wrong))
        ),
        Some(&wrong),
    );
    // "If the client attempted to authenticate via the "Authorization" request header field,
    // the authorization server MUST respond with an HTTP 401 (Unauthorized) status code and
    // include the WWW-Authenticate response header field matching the authentication scheme
    // used by the client" (RFC 6749 §5.2).
    if wrong.status == 401 {
        let schemes: Vec<&str> = wrong
            .header_all("www-authenticate")
            .into_iter()
            .filter_map(|value| value.split_whitespace().next())
            .collect();
        f.require(
            schemes.iter().any(|s| s.eq_ignore_ascii_case("basic")),
            if schemes.is_empty() {
                "the 401 to wrong HTTP Basic credentials has no WWW-Authenticate header; \
                 RFC 6749 §5.2 requires one naming the Basic scheme"
                    .to_owned()
            } else {
                format!(
                    "the 401 to wrong HTTP Basic credentials challenges with {} instead of \
                     the Basic scheme the client used (RFC 6749 §5.2)",
                    schemes.join(", ")
                )
            },
            Some(&wrong),
        );
    }
    // The same by client_secret_post, and with no secret at all: "invalid_client: Client
    // authentication failed (e.g., unknown client, no client authentication included, or
    // unsupported authentication method)" (RFC 6749 §5.2). Without an Authorization header
    // the status may be 400 or 401.
    let wrong_secret = [
        ("client_id", client.client_id.as_str()),
        ("client_secret", "wrong-secret"),
    ];
    let no_secret = [("client_id", client.client_id.as_str())];
    for (what, credentials) in [
        ("a wrong client_secret in the body", &wrong_secret[..]),
        ("no client secret at all", &no_secret[..]),
    ] {
        let ex = cx
            .http()
            .send(
                Req::post(cx.endpoints()?.token)
                    .form(fields.iter().chain(credentials.iter()).copied()),
            )
            .await?;
        f.require(
            matches!(ex.status, 400 | 401) && json_error(&ex).as_deref() == Some("invalid_client"),
            format!(
                "{what} answered {} {}",
                ex.status,
                super::shown(json_error(&ex))
            ),
            Some(&ex),
        );
    }
    let ok = flow::exchange_code(
        cx.http(),
        &cx.endpoints()?.token,
        &client,
        &code,
        Some(&authorized.pkce.verifier),
        authorized.resource.as_deref(),
    )
    .await?;
    if ok.status != 200 {
        f.note(format!(
            "after the failed attempt the code no longer worked ({})",
            ok.status
        ));
    }
    Ok(f.verdict())
}

/// A public client registered with RFC 7591's defaults completes the flow too. RFC 7591 §2:
/// for `grant_types`, "If omitted, the default behavior is that the client will use only the
/// "authorization_code" Grant Type", and for `response_types` only `code`. A server that
/// registers such a client and then refuses it the authorization code grant does not give
/// public clients OAuth 2.1 (the suite's own clients also register `refresh_token`, which
/// would hide it).
async fn defaults_client_logs_in(cx: &Ctx, f: &mut Findings) -> anyhow::Result<()> {
    let Some(endpoint) = cx.registration_offered()? else {
        return Ok(());
    };
    let ex = registration::post(
        cx.http(),
        &endpoint,
        &json!({
            "client_name": "conformance defaults",
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await?;
    let doc = ex.json().filter(|_| (200..300).contains(&ex.status));
    let Some(client_id) = doc
        .as_ref()
        .and_then(|d| d.get("client_id"))
        .and_then(|id| id.as_str())
    else {
        f.note(format!(
            "registering a client without grant_types answered {}; RFC 7591's defaults were \
             not tried",
            ex.status
        ));
        return Ok(());
    };
    // The server may register other grant types than the defaults (RFC 7591 §3.2.1 lets it
    // replace requested values); only a client it says has the authorization_code grant
    // must be able to use it.
    let granted = doc
        .as_ref()
        .and_then(|d| d.get("grant_types"))
        .and_then(|g| g.as_array())
        .is_none_or(|grants| grants.iter().any(|g| g == "authorization_code"));
    if !granted {
        f.note("the server registered a client without grant_types with other grant types");
        return Ok(());
    }
    let client = Client {
        client_id: client_id.to_owned(),
        client_secret: None,
        redirect_uri: REDIRECT_URI.to_owned(),
        auth_method: "none".into(),
        name: "conformance defaults".into(),
    };
    let authorized = cx
        .authorize(LoginOptions {
            client: Some(client.clone()),
            ..LoginOptions::default()
        })
        .await?;
    let code = match authorized.code(cx.http()) {
        Ok(code) => code,
        Err(e) => {
            f.require(
                false,
                format!("a client registered without grant_types (so with authorization_code) got no code: {e:#}"),
                None,
            );
            return Ok(());
        }
    };
    let ex = flow::exchange_code(
        cx.http(),
        &cx.endpoints()?.token,
        &client,
        &code,
        Some(&authorized.pkce.verifier),
        authorized.resource.as_deref(),
    )
    .await?;
    f.require(
        ex.status == 200,
        format!(
            "a client registered without grant_types could not redeem its code: {} {}",
            ex.status,
            super::shown(json_error(&ex))
        ),
        Some(&ex),
    );
    Ok(())
}
