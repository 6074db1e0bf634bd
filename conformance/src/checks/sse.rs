//! SSE: the legacy HTTP+SSE transport (2024-11-05): the `endpoint` event, responses as
//! `message` events, Origin validation, and the SDKs' de-facto status codes.

use std::time::Duration;

use serde_json::json;

use super::{Check, Ctx, Findings, LoginOptions, SSE, Verdict};
use crate::body;
use crate::http::Req;
use crate::http::legacy::{self, Connect};
use crate::version::Version;

pub fn checks() -> Vec<Check> {
    vec![
        Check::new("SSE-02", SSE, body!(endpoint_event_first)).also(&["SSE-01"]),
        Check::new("SSE-04", SSE, body!(responses_on_the_stream)).also(&["SSE-03", "SSE-10"]),
        Check::new("SSE-05", SSE, body!(posts_get_202)),
        Check::new("SSE-06", SSE, body!(bad_posts_get_4xx)),
        Check::new("SSE-07", SSE, body!(origin_is_checked)),
        Check::new("SSE-09", SSE, body!(endpoint_belongs_to_its_user)),
        Check::new("SEC-01", SSE, body!(session_ids_are_good)),
        Check::new("SSE-01", SSE, body!(both_endpoints_are_served)),
        Check::new("SSE-10", SSE, body!(lifecycle_over_sse)),
        Check::new("SSE-08", SSE, body!(every_sse_connection_is_authenticated)),
    ]
}

async fn endpoint_event_first(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let url = cx.mcp_url();
    let mut f = Findings::new(&cx);
    match legacy::connect(cx.http(), &url, Some(login.access_token()), &[]).await? {
        Connect::Open(s) => {
            cx.record(
                "endpoint event",
                json!(
                    cx.redact(
                        &s.endpoint_raw
                            .replace(cx.config().url.as_str().trim_end_matches('/'), "[server]")
                    )
                ),
            );
            f.require(
                s.endpoint.origin() == url.origin(),
                format!("the endpoint {} is on another origin", s.endpoint),
                None,
            );
        }
        Connect::Refused(ex) => {
            f.require(
                false,
                format!(
                    "GET {url} answered {} {}",
                    ex.status,
                    super::shown(ex.header("content-type"))
                ),
                Some(&ex),
            );
        }
        Connect::NoEndpoint {
            exchange,
            first,
            error,
        } => {
            let what = match (first, error) {
                (Some(e), _) => format!("the first event was {:?}", e.kind()),
                (None, Some(e)) => e,
                (None, None) => "no event".into(),
            };
            f.require(
                false,
                format!("no endpoint event first: {what}"),
                Some(&exchange),
            );
        }
    }
    Ok(f.verdict())
}

async fn responses_on_the_stream(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let mut s = cx.open_sse(Some(login.access_token())).await?;
    let mut f = Findings::new(&cx);
    // "Server messages are sent as SSE message events, with the message content encoded as
    // JSON in the event data." The POST is sent by hand so that a response that only comes
    // back in the POST body fails here instead of leaving the check without a session.
    let id = s.next_id();
    let post = s
        .post(&json!({
            "jsonrpc": "2.0", "id": id, "method": "initialize",
            "params": crate::http::streamable::initialize_params(Version::V2024_11_05.as_str())
        }))
        .await?;
    f.require(
        (200..300).contains(&post.status),
        format!("POST initialize answered {}", post.status),
        Some(&post),
    );
    let in_body = post.json().is_some_and(|v| v.get("result").is_some());
    f.require(!in_body, "the POST body carried the response", Some(&post));
    // When the body already had the response, the stream gets a short grace period only.
    let wait = if in_body {
        Duration::from_secs(2).min(cx.http().timeout)
    } else {
        cx.http().timeout
    };
    let Some(response) = s.wait_response(&id, wait).await else {
        if in_body {
            f.require(
                false,
                format!("no response with id {id} came on the SSE stream within {wait:?}"),
                None,
            );
            return Ok(f.verdict());
        }
        anyhow::bail!(
            "no response with id {id} on the SSE stream or in the POST body within {wait:?}"
        );
    };
    f.require(
        response.pointer("/result/protocolVersion").is_some(),
        "the response on the stream is no InitializeResult",
        None,
    );
    let ack = s.notify("notifications/initialized", None).await?;
    if !(200..300).contains(&ack.status) {
        anyhow::bail!(
            "notifications/initialized was refused:\n{}",
            cx.evidence(&ack)
        );
    }
    let (_, ping) = s.call("ping", json!({})).await?;
    f.require(
        ping.get("result").is_some(),
        format!("ping answered {ping}"),
        None,
    );
    Ok(f.verdict())
}

async fn posts_get_202(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let mut s = cx.open_sse(Some(login.access_token())).await?;
    let (post, _) = s.initialize(Version::V2024_11_05.as_str()).await?;
    let note = s
        .notify("notifications/cancelled", Some(json!({"requestId": 99})))
        .await?;
    let mut f = Findings::new(&cx);
    f.require(
        post.status == 202,
        format!("a request POST answered {}", post.status),
        Some(&post),
    );
    f.require(
        note.status == 202,
        format!("a notification POST answered {}", note.status),
        Some(&note),
    );
    let replies = s.drain(Duration::from_millis(200)).await;
    f.require(
        replies.is_empty(),
        format!(
            "the notification got a reply on the stream: {}",
            serde_json::Value::Array(replies.clone())
        ),
        None,
    );
    Ok(f.verdict())
}

/// A fixture user few other checks log in as (AUTH-TOK-04 revokes `hubot`'s GitHub tokens
/// at any moment, so not that one).
const QUIET_USER: &str = "mona";

async fn bad_posts_get_4xx(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let s = cx.open_sse(Some(login.access_token())).await?;
    let mut f = Findings::new(&cx);
    let bad = cx
        .http()
        .send(s.req().raw(b"{\"jsonrpc\":".to_vec(), "application/json"))
        .await?;
    cx.record_exchange("400 invalid JSON", &bad);
    f.require(
        bad.status == 400,
        format!("invalid JSON answered {}", bad.status),
        Some(&bad),
    );
    let mut unknown = s.endpoint.clone();
    let pairs: Vec<(String, String)> = unknown
        .query_pairs()
        .map(|(k, v)| {
            let v = if k.eq_ignore_ascii_case("session_id") || k.eq_ignore_ascii_case("sessionid") {
                "00000000000000000000000000000000".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    unknown.query_pairs_mut().clear().extend_pairs(pairs);
    let ex = cx
        .http()
        .send(
            Req::post(unknown)
                .bearer(Some(login.access_token()))
                .json(&json!({"jsonrpc":"2.0","id":1,"method":"ping"})),
        )
        .await?;
    f.require(
        ex.status == 404,
        format!("an unknown session answered {}", ex.status),
        Some(&ex),
    );
    // A session ends with its stream: a message posted after the stream closed has nowhere
    // to be answered, so accepting it (202) loses it without a word. The server learns of
    // the close only when its connection reports it, so the probe repeats until the
    // request timeout. The session belongs to a user the other checks seldom use: a server
    // that keeps closed sessions may still evict them at a per-user cap, which the other
    // checks' sessions would otherwise reach first.
    let quiet = cx.login(LoginOptions::user(QUIET_USER)).await?;
    let closed = cx.open_sse(Some(quiet.access_token())).await?;
    let endpoint = closed.endpoint.clone();
    drop(closed);
    let wait = cx.http().timeout;
    let deadline = tokio::time::Instant::now() + wait;
    // Each probe has an id of its own: a server that took an earlier one in keeps its id
    // in flight, and would refuse a repeat for that reason alone.
    let mut id = 100;
    let after = loop {
        id += 1;
        let ex = cx
            .http()
            .send(
                Req::post(endpoint.clone())
                    .bearer(Some(quiet.access_token()))
                    .json(&json!({"jsonrpc":"2.0","id":id,"method":"ping"})),
            )
            .await?;
        if (400..500).contains(&ex.status) || tokio::time::Instant::now() >= deadline {
            break ex;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    f.require(
        (400..500).contains(&after.status),
        format!(
            "{wait:?} after the client closed its SSE stream, a message posted to the \
             session's endpoint still answered {}",
            after.status
        ),
        Some(&after),
    );
    Ok(f.verdict())
}

async fn origin_is_checked(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let url = cx.mcp_url();
    let mut f = Findings::new(&cx);
    match legacy::connect(
        cx.http(),
        &url,
        Some(login.access_token()),
        &[("Origin", "https://evil.example")],
    )
    .await?
    {
        Connect::Refused(ex) => {
            f.require(
                (400..500).contains(&ex.status),
                format!("GET with a foreign Origin answered {}", ex.status),
                Some(&ex),
            );
            f.prefer(
                ex.status == 403,
                format!(
                    "GET with a foreign Origin answered {}, 403 is recommended",
                    ex.status
                ),
                Some(&ex),
            );
        }
        _ => {
            f.require(
                false,
                "GET with Origin: https://evil.example opened a stream",
                None,
            );
        }
    }
    let s = cx.open_sse(Some(login.access_token())).await?;
    let ex = cx
        .http()
        .send(
            s.req()
                .header("Origin", "https://evil.example")
                .json(&json!({"jsonrpc":"2.0","id":1,"method":"ping"})),
        )
        .await?;
    f.require(
        (400..500).contains(&ex.status),
        format!("POST with a foreign Origin answered {}", ex.status),
        Some(&ex),
    );
    Ok(f.verdict())
}

async fn session_ids_are_good(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut login = cx.login(LoginOptions::default()).await?;
    let mut ids = Vec::new();
    for _ in 0..super::shttp::SESSION_ID_SAMPLES {
        // Twenty connections can outlast a slow server's short-lived token.
        if login.tokens.past_half_life() {
            login = cx.login(LoginOptions::default()).await?;
        }
        let s = cx.open_sse(Some(login.access_token())).await?;
        match s.session_id() {
            Some(id) => ids.push(id),
            None => {
                return Ok(Verdict::Skip(format!(
                    "the endpoint {} carries no session id",
                    cx.redact(&s.endpoint_raw)
                )));
            }
        }
    }
    let mut f = Findings::new(&cx);
    for id in &ids {
        f.prefer(
            id.len() >= 16,
            format!("a session id has only {} characters", id.len()),
            None,
        );
    }
    super::shttp::judge_session_ids(&mut f, &ids, "SSE connections");
    Ok(f.verdict())
}

/// A session's POST endpoint belongs to the user who opened the stream: "MCP servers
/// SHOULD bind session IDs to user-specific information" (2025-06-18 security best
/// practices), which for the legacy transport means another user's token is refused
/// there (4xx) and nothing it sent is answered on the owner's stream.
async fn endpoint_belongs_to_its_user(cx: Ctx) -> anyhow::Result<Verdict> {
    let (owner, intruder) = futures::try_join!(
        cx.login(LoginOptions::user("octocat")),
        cx.login(LoginOptions::user("mona"))
    )?;
    let mut s = cx.open_sse(Some(owner.access_token())).await?;
    s.initialize(Version::V2024_11_05.as_str()).await?;
    let ping = json!({"jsonrpc": "2.0", "id": 91, "method": "ping"});
    let ex = cx
        .http()
        .send(
            Req::post(s.endpoint.clone())
                .bearer(Some(intruder.access_token()))
                .json(&ping),
        )
        .await?;
    let answered = s.drain(Duration::from_millis(400)).await;
    let mut f = Findings::new(&cx);
    f.require(
        (400..500).contains(&ex.status),
        format!("mona's POST to octocat's endpoint answered {}", ex.status),
        Some(&ex),
    );
    f.require(
        !answered.iter().any(|m| m.get("id") == Some(&json!(91))),
        "mona's request was answered on octocat's stream",
        Some(&ex),
    );
    Ok(f.verdict())
}

/// "The server MUST provide two endpoints: … An SSE endpoint, for clients to establish a
/// connection and receive messages from the server … A regular HTTP POST endpoint for
/// clients to send messages to the server" (2024-11-05, HTTP with SSE). The stream must
/// announce the POST endpoint, and an `initialize` POSTed there must be taken and
/// answered on the stream.
async fn both_endpoints_are_served(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let url = cx.mcp_url();
    let mut f = Findings::new(&cx);
    let mut s = match legacy::connect(cx.http(), &url, Some(login.access_token()), &[]).await? {
        Connect::Open(s) => s,
        Connect::Refused(ex) => {
            f.require(
                false,
                format!("GET {url} opened no SSE stream: {}", ex.status),
                Some(&ex),
            );
            return Ok(f.verdict());
        }
        Connect::NoEndpoint { exchange, .. } => {
            f.require(
                false,
                "the SSE stream announced no POST endpoint",
                Some(&exchange),
            );
            return Ok(f.verdict());
        }
    };
    let id = s.next_id();
    let post = s
        .post(&json!({
            "jsonrpc": "2.0", "id": id, "method": "initialize",
            "params": crate::http::streamable::initialize_params(Version::V2024_11_05.as_str())
        }))
        .await?;
    f.require(
        (200..300).contains(&post.status),
        format!("POST initialize to the endpoint answered {}", post.status),
        Some(&post),
    );
    let answered = s.wait_response(&id, cx.http().timeout).await;
    f.require(
        answered.is_some() || post.json().is_some_and(|v| v.get("result").is_some()),
        "the message POSTed to the endpoint was never answered",
        Some(&post),
    );
    Ok(f.verdict())
}

/// "The initialization phase MUST be the first interaction between client and server"
/// (2024-11-05, Lifecycle), observed on the legacy transport: a request POSTed before
/// `initialize` is answered (refused with a 4xx or a JSON-RPC error; served, with a
/// warning), never left hanging, and the full handshake (`initialize`,
/// `notifications/initialized`, `ping`) then works.
async fn lifecycle_over_sse(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let mut s = cx.open_sse(Some(login.access_token())).await?;
    let mut f = Findings::new(&cx);
    let early = json!({"jsonrpc": "2.0", "id": "early", "method": "tools/list"});
    let ex = s.post(&early).await?;
    if !(400..500).contains(&ex.status) {
        match s.wait_response(&json!("early"), cx.http().timeout).await {
            // The sentence binds both sides, and here the client broke it first: a server
            // that serves the early request anyway is lenient, not wrong, so only a warning.
            // Leaving the request unanswered is wrong whatever came first.
            Some(r) => {
                f.prefer(
                    r.get("error").is_some(),
                    format!("tools/list before initialize got a result: {r}"),
                    Some(&ex),
                );
            }
            None => {
                f.require(
                    false,
                    format!(
                        "tools/list before initialize answered {} and no error came on the stream",
                        ex.status
                    ),
                    Some(&ex),
                );
                // The session may be stuck on the unanswered request; a new one runs
                // the handshake.
                s = cx.open_sse(Some(login.access_token())).await?;
            }
        }
    }
    let (_, init) = s
        .call(
            "initialize",
            crate::http::streamable::initialize_params(Version::V2024_11_05.as_str()),
        )
        .await?;
    f.require(
        init.pointer("/result/protocolVersion").is_some(),
        format!("initialize after the refused request answered {init}"),
        None,
    );
    let ack = s.notify("notifications/initialized", None).await?;
    f.require(
        (200..300).contains(&ack.status),
        format!("notifications/initialized answered {}", ack.status),
        Some(&ack),
    );
    let (_, ping) = s.call("ping", json!({})).await?;
    f.require(
        ping.get("result").is_some(),
        format!("ping after the handshake answered {ping}"),
        None,
    );
    Ok(f.verdict())
}

/// "Servers SHOULD implement proper authentication for all connections" (2024-11-05,
/// HTTP with SSE): both the stream and a live session's POST endpoint answer a request
/// without credentials with 401, whatever the session id in the endpoint URI.
async fn every_sse_connection_is_authenticated(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let url = cx.mcp_url();
    let mut f = Findings::new(&cx);
    match legacy::connect(cx.http(), &url, None, &[]).await? {
        Connect::Refused(ex) => {
            f.require(
                ex.status == 401,
                format!("GET {url} without a token answered {}", ex.status),
                Some(&ex),
            );
        }
        _ => {
            f.require(
                false,
                format!("GET {url} without a token opened a stream"),
                None,
            );
        }
    }
    let mut s = cx.open_sse(Some(login.access_token())).await?;
    s.initialize(Version::V2024_11_05.as_str()).await?;
    let ex = cx
        .http()
        .send(
            Req::post(s.endpoint.clone())
                .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "ping"})),
        )
        .await?;
    f.require(
        ex.status == 401,
        format!(
            "a POST without a token to a live session's endpoint answered {}",
            ex.status
        ),
        Some(&ex),
    );
    Ok(f.verdict())
}
