//! AUTH-TOK: token validation at the MCP endpoints: audience, no passthrough of GitHub tokens,
//! sessions bound to their user, and the shape of the invalid-token challenge.

use serde_json::{Value, json};

use super::{BOTH, Check, Ctx, Findings, Login, LoginOptions, Resource, Verdict, challenge};
use crate::body;
use crate::client::McpConn;
use crate::config::ToolProfile;
use crate::http::Req;
use crate::oauth::flow;
use crate::version::{Version, Versions};

pub fn checks() -> Vec<Check> {
    vec![
        Check::new(
            "AUTH-TOK-02",
            BOTH,
            body!(foreign_resource_tokens_are_refused),
        )
        .also(&["AUTH-FLOW-10"]),
        Check::new("AUTH-TOK-02", BOTH, body!(github_issued_tokens_are_refused))
            .case(
                "foreign-issuer",
                "an access token GitHub issued is refused at every MCP endpoint",
            )
            .also(&["AUTH-GEN-05"]),
        Check::new("AUTH-TOK-03", BOTH, body!(no_token_passthrough)).also(&["AUTH-3P-08"]),
        Check::new(
            "AUTH-TOK-04",
            BOTH,
            body!(upstream_revocation_ends_the_grant),
        )
        .versions(Versions::since(Version::V2025_03_26)),
        Check::new("AUTH-TOK-04", BOTH, body!(two_users_through_one_client))
            .case(
                "one-client",
                "two users logged in through one client each act as themselves at GitHub",
            )
            .versions(Versions::since(Version::V2025_03_26)),
        Check::new("AUTH-TOK-05", BOTH, body!(sessions_are_bound_to_users))
            .also(&["SEC-02", "SSE-09"]),
        Check::new("AUTH-TOK-06", BOTH, body!(invalid_token_challenge)).also(&["AUTH-GEN-05"]),
        // "MCP servers MUST validate that access tokens were issued specifically for
        // them as the intended audience" (2025-06-18, Token Handling). A token whose
        // audience is another resource working here is exactly what this forbids, so
        // AUTH-TOK-02's observation judges this sentence too.
        Check::new(
            "AUTH-FLOW-10",
            BOTH,
            body!(foreign_resource_tokens_are_refused),
        ),
        // "The MCP server MUST NOT pass through the token it received from the MCP
        // client" (2025-06-18, Access Token Privilege Restriction). AUTH-TOK-03 watches
        // the tokens GitHub receives and the ones the MCP endpoints take.
        Check::new("AUTH-3P-08", BOTH, body!(no_token_passthrough)),
        // "MCP servers ... MUST validate access tokens as described in OAuth 2.1
        // Section 5.2", whose rule is that an invalid token gets 401. Every request is
        // validated, so one that names a session is probed as well.
        Check::new(
            "AUTH-TOK-01",
            BOTH,
            body!(super::auth_gen::invalid_tokens_get_401),
        ),
    ]
}

async fn foreign_resource_tokens_are_refused(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    sibling_resource_token(&cx, &mut f).await?;
    let foreign = "https://other.example/mcp".to_owned();
    token_request_for_another_resource(&cx, &mut f, &foreign).await?;
    let authorized = cx
        .authorize(LoginOptions {
            resource: Resource::Value(foreign.clone()),
            ..LoginOptions::default()
        })
        .await?;
    let Some(cb) = &authorized.callback else {
        anyhow::bail!(
            "the authorization did not return to the client: {}",
            authorized.outcome.describe(cx.http())
        );
    };
    if cb.error.as_deref() == Some("invalid_target") {
        f.note("the authorization server refused the foreign resource with invalid_target");
        return Ok(f.verdict());
    }
    let code = authorized.code(cx.http())?;
    let ex = flow::exchange_code(
        cx.http(),
        &cx.endpoints()?.token,
        &authorized.client,
        &code,
        Some(&authorized.pkce.verifier),
        Some(&foreign),
    )
    .await?;
    let login = format!("a login for {foreign}");
    not_a_token_here(&cx, &mut f, ex, &login).await?;
    Ok(f.verdict())
}

/// A code authorized for this resource, redeemed (and then refreshed) with `resource` naming
/// another: a client that asks for a token for `foreign` hands what it gets to `foreign`,
/// which must not be able to replay it here. The authorization server refuses the request
/// (`invalid_target`), or what it issues is no token for this resource.
async fn token_request_for_another_resource(
    cx: &Ctx,
    f: &mut Findings,
    foreign: &str,
) -> anyhow::Result<()> {
    let authorized = cx.authorize(LoginOptions::default()).await?;
    let code = authorized.code(cx.http())?;
    let token_endpoint = cx.endpoints()?.token;
    let redeemed = flow::exchange_code(
        cx.http(),
        &token_endpoint,
        &authorized.client,
        &code,
        Some(&authorized.pkce.verifier),
        Some(foreign),
    )
    .await?;
    let redemption = format!(
        "a code authorized for {} and redeemed with resource={foreign}",
        cx.mcp_url()
    );
    not_a_token_here(cx, f, redeemed, &redemption).await?;
    let login = cx.login(LoginOptions::default()).await?;
    let Some(refresh_token) = login.tokens.refresh_token.as_deref() else {
        f.note("no refresh token was issued, so a refresh for another resource was not tried");
        return Ok(());
    };
    let refreshed = flow::refresh(
        cx.http(),
        &token_endpoint,
        login.client(),
        refresh_token,
        Some(foreign),
    )
    .await?;
    let refresh = format!("a refresh with resource={foreign}");
    not_a_token_here(cx, f, refreshed, &refresh).await?;
    Ok(())
}

/// The answer to `request`, a token request for another resource: a refusal, or a token
/// this resource refuses.
async fn not_a_token_here(
    cx: &Ctx,
    f: &mut Findings,
    answer: crate::http::Exchange,
    request: &str,
) -> anyhow::Result<()> {
    if answer.status != 200 {
        f.note(format!("{request} was refused ({})", answer.status));
        return Ok(());
    }
    let tokens = flow::parse_tokens(cx.http(), answer)?;
    let probe = cx.probe_bearer(&tokens.access_token).await?;
    f.require(
        probe.status == 401,
        format!(
            "{request} gave a token that answered {} at {}",
            probe.status,
            cx.mcp_url()
        ),
        Some(&probe),
    );
    Ok(())
}

/// A token for another resource of the same server (the other transport's endpoint, when
/// the resource metadata names different resources for them) is no token for this one:
/// the authorization server accepts that `resource`, so only the resource server can
/// refuse it.
async fn sibling_resource_token(cx: &Ctx, f: &mut Findings) -> anyhow::Result<()> {
    let other = match cx.transport() {
        crate::config::Transport::StreamableHttp => crate::config::Transport::Sse,
        crate::config::Transport::Sse => crate::config::Transport::StreamableHttp,
    };
    let Some(Ok(sibling)) = cx.shared.discovery.get(&other) else {
        f.note(format!(
            "{other} was not discovered, so its resource's token was not tried here"
        ));
        return Ok(());
    };
    let sibling = sibling.resource();
    let own = cx.discovery()?.resource();
    if sibling == own {
        f.note(format!("both transports are the one resource {own}"));
        return Ok(());
    }
    let login = cx
        .login(LoginOptions {
            resource: Resource::Value(sibling.clone()),
            ..LoginOptions::default()
        })
        .await?;
    let probe = cx.probe_bearer(login.access_token()).await?;
    f.require(
        probe.status == 401,
        format!(
            "a token for {sibling} answered {} at {}",
            probe.status,
            cx.mcp_url()
        ),
        Some(&probe),
    );
    Ok(())
}

/// An access token GitHub issued to another application, for `login`, minted at the mock
/// without this server taking part: what a client that holds a GitHub token, or a server
/// that forwards one, could present. The mock knows one OAuth app, whose credentials are
/// public constants of the mock; the token is redacted like every GitHub token.
pub(super) async fn github_issued_token(cx: &Ctx, login: &str) -> anyhow::Result<String> {
    let base = cx
        .mock()
        .base
        .clone()
        .ok_or_else(|| super::refuse(super::live_reason::NEEDS_MOCK))?;
    // Nothing listens there: the mock only puts the code into the redirect's Location.
    let redirect_uri = "http://127.0.0.1:9/conformance-foreign-app";
    let mut authorize = base.join(mock_github::AUTHORIZE_PATH)?;
    authorize
        .query_pairs_mut()
        .append_pair("client_id", mock_github::CLIENT_ID)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "read:user")
        .append_pair("state", &flow::random_state())
        .append_pair("login", login);
    let ex = cx.http().send(Req::get(authorize)).await?;
    let code = ex
        .location()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
        })
        .ok_or_else(|| anyhow::anyhow!("the mock GitHub issued no code: {}", ex.status))?;
    cx.http().redactor.add(&code, "github-code");
    let ex = cx
        .http()
        .send(
            Req::post(base.join(mock_github::TOKEN_PATH)?)
                .header("Accept", "application/json")
                .form([
                    ("client_id", mock_github::CLIENT_ID),
                    ("client_secret", mock_github::CLIENT_SECRET),
                    ("code", code.as_str()),
                    ("redirect_uri", redirect_uri),
                ]),
        )
        .await?;
    let token = ex
        .json()
        .and_then(|doc| doc.get("access_token")?.as_str().map(str::to_owned))
        .ok_or_else(|| anyhow::anyhow!("the mock GitHub issued no token: {}", ex.status))?;
    cx.http().redactor.add(&token, "github-token");
    Ok(token)
}

/// "MCP servers MUST only accept tokens specifically intended for themselves and MUST reject
/// tokens that do not include them in the audience claim or otherwise verify that they are
/// the intended recipient of the token." A token GitHub issued (to another application, for
/// a user who also logs in here) names GitHub's API as its audience, not this server; a
/// server that takes whatever GitHub's `/user` accepts as its own bearer lets any GitHub
/// token in. Every MCP endpoint of the transport must refuse it: the request that opens a
/// session, and on Streamable HTTP GET and DELETE, on SSE the message endpoint of a live
/// session.
async fn github_issued_tokens_are_refused(cx: Ctx) -> anyhow::Result<Verdict> {
    let github = github_issued_token(&cx, "octocat").await?;
    let header = format!("Bearer {github}");
    let mut f = Findings::new(&cx);
    let mut judge = |what: &str, ex: &crate::http::Exchange| {
        f.require(
            ex.status == 401,
            format!(
                "{what} with an access token GitHub issued answered {}",
                ex.status
            ),
            Some(ex),
        );
    };
    let first = cx.probe(Some(&header)).await?;
    judge(
        match cx.transport() {
            crate::config::Transport::StreamableHttp => "POST initialize",
            crate::config::Transport::Sse => "GET of the SSE endpoint",
        },
        &first,
    );
    match cx.transport() {
        crate::config::Transport::StreamableHttp => {
            let c = crate::http::streamable::Shttp::new(
                cx.http().clone(),
                cx.mcp_url(),
                Some(github.clone()),
            );
            let get = cx.http().send_head(c.req(reqwest::Method::GET)).await?;
            judge("GET", &get);
            let delete = cx.http().send(c.req(reqwest::Method::DELETE)).await?;
            judge("DELETE", &delete);
        }
        crate::config::Transport::Sse => {
            let login = cx.login(LoginOptions::default()).await?;
            let session = cx.open_sse(Some(login.access_token())).await?;
            let post = cx
                .http()
                .send(
                    Req::post(session.endpoint.clone())
                        .bearer(Some(&github))
                        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})),
                )
                .await?;
            judge("POST to the message endpoint of a live session", &post);
        }
    }
    Ok(f.verdict())
}

async fn no_token_passthrough(cx: Ctx) -> anyhow::Result<Verdict> {
    if cx.config().tool_profile == ToolProfile::None {
        return Ok(Verdict::Skip(
            "--tool-profile none: the check needs get_user_profile to make the server call GitHub"
                .into(),
        ));
    }
    let mut f = Findings::new(&cx);
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let (call, response) = conn
        .call(
            "tools/call",
            json!({"name": "get_user_profile", "arguments": {}}),
        )
        .await?;
    if response.get("result").is_none() {
        anyhow::bail!("get_user_profile failed: {response}");
    }
    // (b) GitHub never saw the MCP token.
    let journal = cx.mock().journal().await?;
    let mcp_secrets: Vec<&str> = std::iter::once(login.access_token())
        .chain(login.tokens.refresh_token.as_deref())
        .collect();
    for entry in &journal {
        for secret in &mcp_secrets {
            f.require(
                !entry.mentions(secret),
                format!(
                    "the mock GitHub received an MCP token in {} {}",
                    entry.method, entry.path
                ),
                Some(&call),
            );
        }
    }
    // (c) The client never saw a GitHub token, and the MCP token is not one.
    let issued = cx.mock().tokens().await?;
    let token_body = login.tokens.exchange.text();
    for t in &issued {
        f.require(
            !token_body.contains(&t.access_token),
            "the /token response contains a GitHub access token",
            Some(&login.tokens.exchange),
        );
        f.require(
            login.access_token() != t.access_token,
            "the MCP access token is a GitHub token",
            None,
        );
    }
    // (a) A GitHub token is not an MCP token. Which GitHub token the server holds for this
    // login is not visible from outside, so every live one the mock issued for octocat is tried
    // (bounded); ours is among them.
    let candidates: Vec<String> = issued
        .iter()
        .rev()
        .filter(|t| t.login == "octocat" && t.fault.is_none() && !t.revoked)
        .take(200)
        .map(|t| t.access_token.clone())
        .collect();
    if candidates.is_empty() {
        f.note("no GitHub token was found at the mock to replay");
    }
    // Eight at a time, stopping at the first chunk with an acceptance: a server that takes
    // GitHub tokens opens a session for each, and two hundred sessions of octocat would
    // push other checks' sessions out of the server's per-user cap.
    for chunk in candidates.chunks(8) {
        let probes = futures::future::join_all(chunk.iter().map(|gh| cx.probe_bearer(gh))).await;
        let mut accepted = None;
        for probe in probes {
            let probe = probe?;
            if probe.status != 401 && accepted.is_none() {
                accepted = Some(probe);
            }
        }
        if let Some(probe) = accepted {
            f.require(
                false,
                format!(
                    "a GitHub access token answered {} at the MCP endpoint",
                    probe.status
                ),
                Some(&probe),
            );
            break;
        }
    }
    Ok(f.verdict())
}

/// The user AUTH-TOK-04 logs in as. No other check uses it, because the check revokes
/// every GitHub token the mock issued for it.
const REVOKED_USER: &str = "hubot";

async fn upstream_revocation_ends_the_grant(cx: Ctx) -> anyhow::Result<Verdict> {
    if cx.config().tool_profile == ToolProfile::None {
        return Ok(Verdict::Skip(
            "--tool-profile none: the check needs get_user_profile to make the server call GitHub"
                .into(),
        ));
    }
    // Which GitHub token the server holds for this login is not visible from outside, so
    // every live one of the user is revoked; the check's runs on the two transports take
    // turns, so neither revokes the other's token mid-login.
    let _turn = cx.shared.upstream_revocation.lock().await;
    let login = cx.login(LoginOptions::user(REVOKED_USER)).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let call = |id: u64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "get_user_profile", "arguments": {}}})
    };
    let (_, before) = conn.send_raw(&call(41)).await?;
    let worked = before
        .as_ref()
        .and_then(|r| r.get("result"))
        .is_some_and(|r| r.get("isError") != Some(&json!(true)));
    // TOOLS-06 judges whether the tool returns the profile; when it does not, this check
    // cannot see what revocation changes and is blocked by it.
    if !worked {
        return Err(super::needs(
            "TOOLS-06",
            anyhow::anyhow!(
                "the tool failed before GitHub revoked anything: {}",
                super::shown_json(before.as_ref())
            ),
        ));
    }
    for token in cx.mock().tokens().await? {
        if token.login == REVOKED_USER && !token.revoked {
            cx.mock().revoke(&token.access_token).await?;
        }
    }
    let mut f = Findings::new(&cx);
    let (ex, after) = conn.send_raw(&call(42)).await?;
    cx.record(
        "tools/call after GitHub revoked the token",
        crate::snapshot::normalize_json(cx.config(), &after.clone().unwrap_or(Value::Null)),
    );
    // A server that checks the upstream token on every request may refuse the call itself.
    if ex.status == 401 {
        f.note("the tool call itself was refused with 401");
        return Ok(f.verdict());
    }
    let profile = after
        .as_ref()
        .and_then(|r| r.get("result"))
        .is_some_and(|r| r.get("isError") != Some(&json!(true)));
    f.require(
        !profile,
        "after GitHub revoked its token the tool still returned a profile",
        Some(&ex),
    );
    let (next, _) = conn
        .send_raw(&json!({"jsonrpc": "2.0", "id": 43, "method": "tools/list"}))
        .await?;
    f.require(
        next.status == 401,
        format!(
            "the request after GitHub refused the upstream token answered {}, not 401",
            next.status
        ),
        Some(&next),
    );
    Ok(f.verdict())
}

/// "MCP servers that implement authorization MUST verify all inbound requests. MCP Servers
/// MUST NOT use sessions for authentication." / "MCP servers SHOULD bind session IDs to
/// user-specific information." Another user's request on a session must never run as the
/// session's owner (the MUST); running it as its own token's user only misses the binding
/// (the SHOULD, SEC-02). On SSE the answer to a POST goes to the session's stream, so an
/// answer there is the owner's stream serving someone else: a MUST failure.
pub(super) async fn sessions_are_bound_to_users(cx: Ctx) -> anyhow::Result<Verdict> {
    if cx.config().tool_profile == ToolProfile::None {
        return Ok(Verdict::Skip(
            "--tool-profile none: without get_user_profile the suite cannot see as whom a \
             request ran"
                .into(),
        ));
    }
    let mut f = Findings::new(&cx);
    let (a, b) = futures::try_join!(
        cx.login(LoginOptions::user("octocat")),
        cx.login(LoginOptions::user("mona"))
    )?;
    let (conn, _) = cx.connect(Some(a.access_token())).await?;
    let call = json!({"jsonrpc": "2.0", "id": 77, "method": "tools/call", "params": {"name": "get_user_profile", "arguments": {}}});
    match conn {
        McpConn::Shttp(c) => {
            if c.session.is_none() {
                return Ok(Verdict::Skip("the server issues no sessions".into()));
            }
            let mut intruder = c.clone();
            intruder.token = Some(b.access_token().to_owned());
            let reply = intruder.post(&call).await?;
            let result = reply
                .response(&json!(77))
                .and_then(|r| r.get("result"))
                .cloned();
            let as_a = result
                .as_ref()
                .is_some_and(|r| mentions_login(r, "octocat"));
            f.require(
                !as_a,
                "mona's request on octocat's session ran as octocat",
                Some(&reply.exchange),
            );
            if !as_a {
                f.prefer(
                    !(200..300).contains(&reply.exchange.status) || result.is_none(),
                    format!(
                        "mona's token on octocat's session answered {} with a result (as mona): \
                         the session is not bound to its user (SEC-02, SHOULD)",
                        reply.exchange.status
                    ),
                    Some(&reply.exchange),
                );
            }
        }
        McpConn::Sse(mut s) => {
            let ex = cx
                .http()
                .send(
                    Req::post(s.endpoint.clone())
                        .bearer(Some(b.access_token()))
                        .json(&call),
                )
                .await?;
            let answered = s.drain(std::time::Duration::from_millis(400)).await;
            let leaked = answered
                .iter()
                .any(|m| m.get("id") == Some(&json!(77)) && m.get("result").is_some());
            f.require(
                !leaked,
                "mona's request was answered on octocat's stream",
                Some(&ex),
            );
            if !leaked {
                f.prefer(
                    (400..500).contains(&ex.status),
                    format!(
                        "mona's POST to octocat's endpoint answered {}: the session is not \
                         bound to its user (SEC-02, SHOULD)",
                        ex.status
                    ),
                    Some(&ex),
                );
            }
        }
    }
    Ok(f.verdict())
}

/// AUTH-TOK-04: "Maintain secure mapping between third-party tokens and issued MCP tokens".
/// Two users logging in through the same client, one after the other and interleaved, must
/// each reach GitHub with their own upstream token: a server that keeps the GitHub token per
/// client (or per anything but the grant) shows one user the other's profile.
async fn two_users_through_one_client(cx: Ctx) -> anyhow::Result<Verdict> {
    if cx.config().tool_profile == ToolProfile::None {
        return Ok(Verdict::Skip(
            "--tool-profile none: without get_user_profile the suite cannot see whose GitHub \
             token a request used"
                .into(),
        ));
    }
    let client = cx
        .register(
            crate::oauth::registration::ClientKind::Public,
            "conformance shared client",
        )
        .await?;
    let as_user = |user: &str| LoginOptions {
        client: Some(client.clone()),
        ..LoginOptions::user(user)
    };
    let mut f = Findings::new(&cx);
    let users = cx.mock().users().await?;
    let id_of = |login: &str| -> anyhow::Result<Value> {
        users
            .iter()
            .find(|u| u.get("login").and_then(Value::as_str) == Some(login))
            .and_then(|u| u.get("id").cloned())
            .ok_or_else(|| anyhow::anyhow!("the mock has no user {login:?}"))
    };
    let (octocat_id, mona_id) = (id_of("octocat")?, id_of("mona")?);

    // One after the other: octocat logs in and uses the tool, then mona logs in through the
    // same client, and octocat's session is used again.
    let octocat = cx.login(as_user("octocat")).await?;
    let (mut octocat_conn, _) = cx.connect(Some(octocat.access_token())).await?;
    expect_user(
        &mut f,
        &mut octocat_conn,
        &octocat_id,
        "octocat's first call",
    )
    .await?;
    let mona = cx.login(as_user("mona")).await?;
    let (mut mona_conn, _) = cx.connect(Some(mona.access_token())).await?;
    expect_user(&mut f, &mut mona_conn, &mona_id, "mona's call").await?;
    expect_user(
        &mut f,
        &mut octocat_conn,
        &octocat_id,
        "octocat's call after mona logged in",
    )
    .await?;

    // Interleaved: both authorizations at once, then the codes redeemed in the other order.
    let (first, second) = futures::try_join!(
        cx.authorize(as_user("octocat")),
        cx.authorize(as_user("mona"))
    )?;
    let mona_again = redeem(&cx, second).await?;
    let octocat_again = redeem(&cx, first).await?;
    for (login, id, user) in [
        (&octocat_again, &octocat_id, "octocat"),
        (&mona_again, &mona_id, "mona"),
    ] {
        let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
        expect_user(
            &mut f,
            &mut conn,
            id,
            &format!("{user}'s call after the interleaved logins"),
        )
        .await?;
    }

    // Neither user's client sees a GitHub token, their own or the other's.
    let issued = cx.mock().tokens().await?;
    for login in [&octocat, &mona, &octocat_again, &mona_again] {
        let body = login.tokens.exchange.text();
        f.require(
            !issued.iter().any(|t| body.contains(&t.access_token)),
            "a token response of the shared client contains a GitHub access token",
            Some(&login.tokens.exchange),
        );
    }
    Ok(f.verdict())
}

/// The code of an authorization exchanged for tokens.
async fn redeem(cx: &Ctx, authorized: super::Authorized) -> anyhow::Result<Login> {
    let code = authorized.code(cx.http())?;
    let ex = flow::exchange_code(
        cx.http(),
        &cx.endpoints()?.token,
        &authorized.client,
        &code,
        Some(&authorized.pkce.verifier),
        authorized.resource.as_deref(),
    )
    .await?;
    let tokens = flow::parse_tokens(cx.http(), ex)?;
    Ok(Login {
        authorized,
        code,
        tokens,
    })
}

/// Calls `get_user_profile` and requires the profile of the GitHub user with `id`. The id
/// says whose profile it is; the profile's shape is TOOLS-06's and TOOLS-08's business, so
/// a number sent as a string still counts.
async fn expect_user(
    f: &mut Findings,
    conn: &mut McpConn,
    id: &Value,
    what: &str,
) -> anyhow::Result<()> {
    let (ex, result) = conn.call_tool("get_user_profile", json!({})).await?;
    let got = super::tools::profile_in(&result);
    let got_id = got.as_ref().and_then(|p| p.get("id"));
    let as_text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    f.require(
        got_id.map(as_text) == Some(as_text(id)),
        format!(
            "{what} returned the profile of {} (id {}), not of the user with id {id}",
            super::shown_json(got.as_ref().and_then(|p| p.get("login"))),
            super::shown_json(got_id)
        ),
        Some(&ex),
    );
    Ok(())
}

fn mentions_login(v: &Value, login: &str) -> bool {
    v.to_string()
        .contains(&format!("\\\"login\\\":\\\"{login}\\\""))
        || v.to_string().contains(&format!("\"login\":\"{login}\""))
}

async fn invalid_token_challenge(cx: Ctx) -> anyhow::Result<Verdict> {
    let ex = cx
        .probe(Some("Bearer conformance-invalid-token-0123456789"))
        .await?;
    cx.record_exchange("401 invalid token", &ex);
    let mut f = Findings::new(&cx);
    match challenge(&ex) {
        Some(c) => {
            f.require(
                c.param("error") == Some("invalid_token"),
                format!("error is {}", super::shown(c.param("error"))),
                Some(&ex),
            );
            f.require(
                c.param("resource_metadata").is_some(),
                "no resource_metadata",
                Some(&ex),
            );
        }
        None => {
            f.require(false, "no Bearer challenge on the 401", Some(&ex));
        }
    }
    Ok(f.verdict())
}
