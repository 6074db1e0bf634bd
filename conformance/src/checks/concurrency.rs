//! Concurrency: the single-use and revocation rules of the token endpoint, and request
//! handling in one MCP session, under requests that race each other. A server that checks
//! a code or refresh token and consumes it in two steps passes every sequential check and
//! still hands out two grants for one code when the requests arrive together.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use futures::future::join_all;
use serde_json::{Value, json};

use super::{BOTH, Check, Ctx, Findings, LoginOptions, Scope, Verdict, json_error};
use crate::body;
use crate::client::McpConn;
use crate::http::Exchange;
use crate::oauth::flow;

/// How many requests race for one code or one refresh token.
const RACERS: usize = 16;

/// How many uses of a token are sent after its revocation was answered.
const USES_AFTER_REVOCATION: usize = 4;

/// A bound on the uses sent while the revocation is in flight.
const MAX_RACING_USES: usize = 64;

/// How many pairs of requests with one id are sent in one session. A pair shows the
/// defect only when both of its requests are in flight at once, which a loaded machine
/// does not always arrange; a correct server answers each pair in a few milliseconds.
const DUPLICATE_PAIRS: usize = 8;

pub fn checks() -> Vec<Check> {
    vec![
        Check::new(
            "AUTH-FLOW-04",
            Scope::AuthServer,
            body!(code_redemption_race),
        )
        .case(
            "concurrent",
            "parallel redemptions of one authorization code: exactly one succeeds",
        ),
        Check::new("AUTH-FLOW-15", Scope::AuthServer, body!(refresh_race)).case(
            "concurrent",
            "parallel refreshes of one refresh token: at most one succeeds",
        ),
        Check::new("AUTH-FLOW-19", BOTH, body!(revocation_races_use)).case(
            "concurrent",
            "no use of a token after its revocation was answered works, even mid-race",
        ),
        Check::new("RPC-02", BOTH, body!(duplicate_ids_are_answered)).case(
            "duplicate-id",
            "two in-flight requests with one id are both answered, never left hanging",
        ),
    ]
}

/// Whether a token response issued tokens (and registers them with the redactor).
fn issued(cx: &Ctx, ex: &Exchange) -> bool {
    ex.status == 200 && flow::parse_tokens(cx.http(), ex.clone()).is_ok()
}

/// "The client MUST NOT use the authorization code more than once." (OAuth 2.1 §4.1.3;
/// RFC 6749 §4.1.2 "The client MUST NOT use the authorization code more than once.")
/// The server's side is that a code yields one grant: under a race exactly one of the
/// redemptions gets tokens.
async fn code_redemption_race(cx: Ctx) -> anyhow::Result<Verdict> {
    let authorized = cx.authorize(LoginOptions::default()).await?;
    let code = authorized.code(cx.http())?;
    let endpoint = cx.endpoints()?.token;
    let attempts = (0..RACERS).map(|_| {
        flow::exchange_code(
            cx.http(),
            &endpoint,
            &authorized.client,
            &code,
            Some(&authorized.pkce.verifier),
            authorized.resource.as_deref(),
        )
    });
    let answers: Vec<Exchange> = join_all(attempts)
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let winners: Vec<&Exchange> = answers.iter().filter(|ex| issued(&cx, ex)).collect();
    // No redemption at all issued tokens: the server refuses this code however it is sent,
    // which is the token endpoint's finding (AUTH-GEN-08), not the race's.
    if winners.is_empty() {
        let first = answers
            .first()
            .map_or_else(|| "no answer".to_owned(), |ex| cx.evidence(ex));
        return Err(super::needs(
            super::prerequisite::TOKEN,
            anyhow::anyhow!("no redemption of the code issued tokens: {first}"),
        ));
    }
    let mut f = Findings::new(&cx);
    f.require(
        winners.len() == 1,
        format!(
            "{RACERS} parallel redemptions of one code: {} issued tokens (exactly one must)",
            winners.len()
        ),
        winners.get(1).or(winners.first()).copied(),
    );
    if winners.is_empty()
        && let Some(first) = answers.first()
    {
        f.note(format!("the first answer was {}", cx.evidence(first)));
    }
    Ok(f.verdict())
}

/// "Authorization servers MUST rotate refresh tokens for public clients" and "the
/// previous refresh token is invalidated" (OAuth 2.1 §4.3.1, MCP Authorization § Token
/// Handling): a refresh token is used once, so parallel refreshes of it give at most one
/// new set of tokens.
async fn refresh_race(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let Some(refresh) = login.tokens.refresh_token.clone() else {
        return Ok(Verdict::Skip("no refresh token was issued".into()));
    };
    let endpoint = cx.endpoints()?.token;
    let attempts =
        (0..RACERS).map(|_| flow::refresh(cx.http(), &endpoint, login.client(), &refresh, None));
    let answers: Vec<Exchange> = join_all(attempts)
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let winners: Vec<&Exchange> = answers.iter().filter(|ex| issued(&cx, ex)).collect();
    let mut f = Findings::new(&cx);
    f.require(
        winners.len() <= 1,
        format!(
            "{RACERS} parallel refreshes of one refresh token: {} issued tokens (at most one may)",
            winners.len()
        ),
        winners.get(1).copied(),
    );
    let refused = answers
        .iter()
        .filter(|ex| ex.status != 200)
        .find(|ex| json_error(ex).as_deref() != Some("invalid_grant"));
    f.prefer(
        refused.is_none(),
        "a losing refresh was not answered invalid_grant",
        refused,
    );
    Ok(f.verdict())
}

/// RFC 7009 §2.2: "The authorization server responds with HTTP status code 200 if the token
/// has been revoked successfully"; once that answer arrived the token is revoked, so any use
/// sent afterwards, while other uses are still racing the revocation, is refused.
async fn revocation_races_use(cx: Ctx) -> anyhow::Result<Verdict> {
    let Some(endpoint) = cx.endpoints()?.revocation else {
        return Ok(Verdict::Skip("no revocation_endpoint is advertised".into()));
    };
    let login = cx.login(LoginOptions::default()).await?;
    let token = login.access_token().to_owned();
    let revoked_at: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let fields = flow::with_client_auth(
        login.client(),
        vec![
            ("token".into(), token.clone()),
            ("token_type_hint".into(), "access_token".into()),
        ],
    );
    let revoke = async {
        let ex = flow::token_request(cx.http(), &endpoint, &fields).await;
        let _ = revoked_at.set(Instant::now());
        ex
    };
    // Uses go out back to back while the revocation is in flight and continue until a few
    // were sent after its answer; each use notes whether it started after that answer.
    let uses = async {
        let mut after = Vec::new();
        let mut during = 0usize;
        for _ in 0..MAX_RACING_USES + USES_AFTER_REVOCATION {
            let started_after = revoked_at.get().is_some();
            let probe = cx.probe_bearer(&token).await?;
            if started_after {
                after.push(probe);
                if after.len() == USES_AFTER_REVOCATION {
                    break;
                }
            } else {
                during += 1;
            }
        }
        anyhow::Ok((during, after))
    };
    let (revocation, used) = tokio::join!(revoke, uses);
    let revocation = revocation?;
    let (during, after) = used?;
    // RFC 7009 §2.2.1 lets a server that revokes only refresh tokens answer
    // `unsupported_token_type`; there is then no revoked access token to race.
    if revocation.status == 400
        && json_error(&revocation).as_deref() == Some("unsupported_token_type")
    {
        return Ok(Verdict::Skip(
            "access tokens cannot be revoked here (unsupported_token_type)".into(),
        ));
    }
    // A refused revocation leaves no revoked token to race; AUTH-FLOW-19 reports the refusal
    // itself, so it is not counted a second time here.
    if revocation.status != 200 {
        return Ok(Verdict::Skip(format!(
            "the revocation was refused ({} {}); AUTH-FLOW-19 judges revocation",
            revocation.status,
            super::shown(json_error(&revocation))
        )));
    }
    let mut f = Findings::new(&cx);
    anyhow::ensure!(
        !after.is_empty(),
        "no use of the token started after the revocation was answered \
         ({during} were sent while it was in flight)"
    );
    let accepted: Vec<&Exchange> = after
        .iter()
        .filter(|ex| (200..300).contains(&ex.status))
        .collect();
    f.require(
        accepted.is_empty(),
        format!(
            "{} of {} uses sent after the revocation was answered were accepted",
            accepted.len(),
            after.len()
        ),
        accepted.first().copied(),
    );
    f.note(format!(
        "{during} uses raced the revocation; {} followed its answer",
        after.len()
    ));
    Ok(f.verdict())
}

/// JSON-RPC 2.0 §4: "When a rpc call is made, the Server MUST reply with a Response";
/// MCP Base Protocol § Responses: "Responses MUST include the same ID as the request they
/// correspond to." A client that reuses an id in flight breaks the MCP rule that ids are
/// unique in a session, but the server still owes each request an answer (an error is
/// fine); leaving one unanswered hangs the client forever.
async fn duplicate_ids_are_answered(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let mut f = Findings::new(&cx);
    for pair in 0..DUPLICATE_PAIRS {
        let id = json!(format!("duplicate-{pair}"));
        let message = json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "get_user_profile", "arguments": {}}
        });
        let answered = match &mut conn {
            McpConn::Shttp(c) => {
                let c = &*c;
                let (a, b) = tokio::join!(c.post(&message), c.post(&message));
                let replies = [a?, b?];
                if let Some(refused) = replies
                    .iter()
                    .find(|r| !(200..300).contains(&r.exchange.status))
                {
                    // A refusal in the POST's own answer is an answer too, as on SSE.
                    f.note(format!(
                        "a request with a duplicate id was refused with {}",
                        refused.exchange.status
                    ));
                    continue;
                }
                let missing = replies.iter().find(|r| r.response(&id).is_none());
                if let Some(reply) = missing {
                    f.require(
                        false,
                        format!(
                            "of two in-flight requests with id {id}, one got no response within {:?}",
                            cx.http().timeout
                        ),
                        Some(&reply.exchange),
                    );
                }
                missing.is_none()
            }
            McpConn::Sse(s) => {
                let shared = &**s;
                let (a, b) = tokio::join!(shared.post(&message), shared.post(&message));
                let posts = [a?, b?];
                if let Some(refused) = posts.iter().find(|ex| !(200..300).contains(&ex.status)) {
                    // A refusal in the POST's own answer is an answer too.
                    f.note(format!(
                        "a request with a duplicate id was refused with {}",
                        refused.status
                    ));
                    continue;
                }
                let wait = s.http.timeout;
                let first = s.wait_response(&id, wait).await;
                let second = match first {
                    Some(_) => s.wait_response(&id, wait).await,
                    None => None,
                };
                let both: Vec<Value> = first.into_iter().chain(second).collect();
                f.require(
                    both.len() == 2,
                    format!(
                        "of two in-flight requests with id {id}, {} got a response on the \
                         stream within {wait:?}",
                        both.len()
                    ),
                    posts.first(),
                )
            }
        };
        if !answered {
            break;
        }
    }
    Ok(f.verdict())
}
