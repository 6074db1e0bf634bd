//! SHTTP: the Streamable HTTP transport with sessions (2025-03-26 to 2025-11-25).

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::{Check, Ctx, Findings, LoginOptions, SHTTP, Verdict};
use crate::body;
use crate::http::streamable::{ACCEPT_BOTH, Shttp, initialize_params};
use crate::http::{Req, SseReader, Streaming, messages_from_events};
use crate::version::{Version, Versions};

pub fn checks() -> Vec<Check> {
    vec![
        Check::new("SHTTP-01", SHTTP, body!(one_path_for_post_and_get)),
        Check::new("SHTTP-02", SHTTP, body!(origin_is_checked)).also(&["SHTTP5-02"]),
        Check::new("SHTTP-04", SHTTP, body!(json_only_accept)),
        Check::new("SHTTP-05", SHTTP, body!(notifications_get_202)).also(&["RPC-04", "LIFE-04"]),
        Check::new("SHTTP-06", SHTTP, body!(bad_input_gets_4xx)),
        Check::new("SHTTP-07", SHTTP, body!(requests_get_a_response)).also(&["SHTTP-08"]),
        Check::new("SHTTP-08", SHTTP, body!(streams_end_after_the_response)),
        Check::new(
            "SHTTP-09",
            SHTTP,
            body!(messages_before_the_response_relate),
        ),
        Check::new("SHTTP-10", SHTTP, body!(streams_are_primed)),
        Check::new("SHTTP-12", SHTTP, body!(get_is_a_stream_or_405)).also(&["SHTTP-01"]),
        Check::new("SHTTP-13", SHTTP, body!(no_responses_on_the_get_stream)),
        Check::new("SHTTP-14", SHTTP, body!(one_stream_per_message)),
        Check::new("SHTTP-15", SHTTP, body!(event_ids_are_unique)),
        Check::new("SHTTP-16", SHTTP, body!(session_ids_are_good)).also(&["SEC-01"]),
        Check::new("SHTTP-17", SHTTP, body!(missing_session_gets_400)),
        Check::new("SHTTP-18", SHTTP, body!(dead_sessions_get_404)).also(&["SHTTP-19"]),
        Check::new("SHTTP-19", SHTTP, body!(refused_delete_keeps_the_session)),
        Check::new("SHTTP-20", SHTTP, body!(bad_protocol_version_gets_400)),
        Check::new("SHTTP-21", SHTTP, body!(missing_protocol_version_is_fine)),
        Check::new("SHTTP-22", SHTTP, body!(batches_are_received)),
        Check::new("SHTTP-23", SHTTP, body!(batches_are_refused)),
        Check::new("LIFE-08", SHTTP, body!(initialize_in_a_batch_is_refused)),
        Check::new("SHTTP-25", SHTTP, body!(every_request_needs_authorization))
            .versions(Versions::range(Version::V2025_03_26, Version::V2025_11_25)),
        Check::new("SHTTP-24", SHTTP, body!(messages_are_utf8))
            .versions(Versions::range(Version::V2025_03_26, Version::V2025_11_25)),
    ]
}

/// A session at `version`, which the server may have answered with another version.
async fn session_at(cx: &Ctx, version: Version) -> anyhow::Result<Shttp> {
    let login = cx.login(LoginOptions::default()).await?;
    let mut c = Shttp::new(
        cx.http().clone(),
        cx.mcp_url(),
        Some(login.access_token().to_owned()),
    );
    c.initialize(version.as_str()).await?;
    Ok(c)
}

/// Why a check about `version` does not apply, when the server negotiated another one.
fn other_version(c: &Shttp, version: Version) -> Option<Verdict> {
    (c.version.as_deref() != Some(version.as_str())).then(|| {
        Verdict::Skip(format!(
            "asked for {version}, the server negotiated {}",
            c.version.as_deref().unwrap_or("nothing"),
            version = version.as_str()
        ))
    })
}

/// How long the suite waits for the first event of a GET stream, and for more events of a
/// resumed one: a server that primes its streams sends at once.
const QUIET_STREAM: Duration = Duration::from_secs(1);

async fn session(cx: &Ctx) -> anyhow::Result<Shttp> {
    let login = cx.login(LoginOptions::default()).await?;
    let mut c = Shttp::new(
        cx.http().clone(),
        cx.mcp_url(),
        Some(login.access_token().to_owned()),
    );
    c.initialize(cx.protocol_version().as_str()).await?;
    Ok(c)
}

fn tools_list(id: i64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"})
}

async fn origin_is_checked(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let login = cx.login(LoginOptions::default()).await?;
    let c = Shttp::new(
        cx.http().clone(),
        cx.mcp_url(),
        Some(login.access_token().to_owned()),
    );
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params": crate::http::streamable::initialize_params(cx.protocol_version().as_str())});
    let evil = c
        .send(
            c.req(Method::POST)
                .header("Origin", "https://evil.example")
                .json(&init),
        )
        .await?
        .exchange;
    cx.record_exchange("403 foreign origin", &evil);
    // The initialize names the version it asks for; the server has negotiated nothing yet.
    judge_origin_refusal(
        &mut f,
        "POST initialize",
        cx.protocol_version().as_str(),
        &evil,
    );
    let own = c
        .send(
            c.req(Method::POST)
                .header("Origin", cx.config().url.origin().ascii_serialization())
                .json(&init),
        )
        .await?
        .exchange;
    f.require(
        own.status == 200,
        format!("POST with the server's own Origin answered {}", own.status),
        Some(&own),
    );
    let mut s = c.clone();
    s.initialize(cx.protocol_version().as_str()).await?;
    let negotiated = s
        .version
        .clone()
        .unwrap_or_else(|| cx.protocol_version().as_str().to_owned());
    let get = cx
        .http()
        .send_head(s.req(Method::GET).header("Origin", "https://evil.example"))
        .await?;
    judge_origin_refusal(&mut f, "GET", &negotiated, &get);
    let delete = cx
        .http()
        .send(
            s.req(Method::DELETE)
                .header("Origin", "https://evil.example"),
        )
        .await?;
    judge_origin_refusal(&mut f, "DELETE", &negotiated, &delete);
    Ok(f.verdict())
}

/// "Servers MUST validate the Origin header on all incoming connections" (2025-03-26 on);
/// 2025-11-25 adds "If the Origin header is present and invalid, servers MUST respond with
/// HTTP 403 Forbidden". So a request at an earlier version may be refused with any 4xx
/// (403 preferred), and one at 2025-11-25 or later must get 403.
fn judge_origin_refusal(f: &mut Findings, what: &str, version: &str, ex: &crate::http::Exchange) {
    let needs_403 = version >= Version::V2025_11_25.as_str();
    if needs_403 {
        f.require(
            ex.status == 403,
            format!(
                "{what} with a foreign Origin answered {} at version {version}, which requires 403",
                ex.status
            ),
            Some(ex),
        );
    } else if f.require(
        (400..500).contains(&ex.status),
        format!(
            "{what} with a foreign Origin answered {} at version {version}",
            ex.status
        ),
        Some(ex),
    ) {
        f.prefer(
            ex.status == 403,
            format!(
                "{what} with a foreign Origin answered {}; 403 is what 2025-11-25 requires",
                ex.status
            ),
            Some(ex),
        );
    }
}

async fn notifications_get_202(cx: Ctx) -> anyhow::Result<Verdict> {
    // The handshake's own notification is the first one judged, so a server that refuses
    // it fails here instead of leaving the check without a session.
    let login = cx.login(LoginOptions::default()).await?;
    let mut c = Shttp::new(
        cx.http().clone(),
        cx.mcp_url(),
        Some(login.access_token().to_owned()),
    );
    c.initialize_request(cx.protocol_version().as_str()).await?;
    let mut f = Findings::new(&cx);
    for message in [
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 999}}),
    ] {
        let reply = c.post(&message).await?;
        let ex = &reply.exchange;
        f.require(
            ex.status == 202 && ex.body.is_empty(),
            format!(
                "{} answered {} with {} body bytes",
                message["method"].as_str().unwrap_or_default(),
                ex.status,
                ex.body.len()
            ),
            Some(ex),
        );
    }
    Ok(f.verdict())
}

async fn bad_input_gets_4xx(cx: Ctx) -> anyhow::Result<Verdict> {
    let c = session(&cx).await?;
    let reply = c.post(&json!({"jsonrpc": "2.0", "method": 42})).await?;
    let ex = &reply.exchange;
    cx.record_exchange("error: method is a number", ex);
    let mut f = Findings::new(&cx);
    f.require(
        (400..500).contains(&ex.status),
        format!("a message whose method is a number answered {}", ex.status),
        Some(ex),
    );
    if let Some(v) = ex.json() {
        f.prefer(
            v.get("error").is_some() && v.get("id").is_none_or(Value::is_null),
            "the body is not a JSON-RPC error without an id",
            Some(ex),
        );
    }
    Ok(f.verdict())
}

async fn requests_get_a_response(cx: Ctx) -> anyhow::Result<Verdict> {
    let c = session(&cx).await?;
    let reply = c.post(&tools_list(41)).await?;
    let ex = &reply.exchange;
    let mut f = Findings::new(&cx);
    f.require(
        ex.status == 200,
        format!("tools/list answered {}", ex.status),
        Some(ex),
    );
    let ct = ex.content_type();
    f.require(
        matches!(
            ct.as_deref(),
            Some("application/json" | "text/event-stream")
        ),
        format!(
            "Content-Type is {}",
            super::shown(ex.header("content-type"))
        ),
        Some(ex),
    );
    f.require(
        reply.response(&json!(41)).is_some(),
        "no JSON-RPC response with id 41",
        Some(ex),
    );
    f.require(
        reply.bad_events.is_empty(),
        // Each entry already says what is wrong ("event data is not JSON (...): DATA").
        reply.bad_events.join("; "),
        Some(ex),
    );
    if reply.is_sse() {
        f.prefer(
            reply.stream_closed,
            "the SSE response stayed open after the response (SHTTP-08)",
            None,
        );
    }
    Ok(f.verdict())
}

async fn get_is_a_stream_or_405(cx: Ctx) -> anyhow::Result<Verdict> {
    let c = session(&cx).await?;
    let ex = cx.http().send_head(c.req(Method::GET)).await?;
    let mut f = Findings::new(&cx);
    let stream = ex.status == 200 && ex.content_type().as_deref() == Some("text/event-stream");
    f.require(
        stream || ex.status == 405,
        format!(
            "GET answered {} {}",
            ex.status,
            super::shown(ex.header("content-type"))
        ),
        Some(&ex),
    );
    Ok(f.verdict())
}

/// How many session ids the uniqueness and entropy checks collect (the catalogue's SHTTP-16).
pub(super) const SESSION_ID_SAMPLES: usize = 20;

async fn session_ids_are_good(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut login = cx.login(LoginOptions::default()).await?;
    let mut ids = Vec::new();
    for _ in 0..SESSION_ID_SAMPLES {
        // Twenty initializations can outlast a slow server's short-lived token.
        if login.tokens.past_half_life() {
            login = cx.login(LoginOptions::default()).await?;
        }
        let mut c = Shttp::new(
            cx.http().clone(),
            cx.mcp_url(),
            Some(login.access_token().to_owned()),
        );
        c.initialize(cx.protocol_version().as_str()).await?;
        match c.session.clone() {
            Some(s) => ids.push(s),
            None => return Ok(Verdict::Skip("the server issues no session ids".into())),
        }
        // Sessions are not left open for the server to keep.
        let _ = c.delete().await;
    }
    let mut f = Findings::new(&cx);
    for id in &ids {
        f.require(
            id.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "a session id has characters outside 0x21-0x7E",
            None,
        );
        f.prefer(
            id.len() >= 16,
            format!("a session id has only {} characters", id.len()),
            None,
        );
    }
    judge_session_ids(&mut f, &ids, "initializations");
    Ok(f.verdict())
}

/// Uniqueness and unpredictability of a sample of session ids, in the order they were issued:
/// "The session ID SHOULD be globally unique and cryptographically secure" (transports), and
/// "MCP servers MUST use secure, non-deterministic session IDs" (security best practices,
/// SEC-01). A counter, or ids that vary in too few characters to hold 64 random bits, fail.
pub(super) fn judge_session_ids(f: &mut Findings, ids: &[String], what: &str) {
    let mut unique = ids.to_vec();
    unique.sort();
    unique.dedup();
    f.require(
        unique.len() == ids.len(),
        format!("two {what} got the same session id"),
        None,
    );
    if let Some(weakness) = session_id_weakness(ids) {
        f.require(false, weakness, None);
    }
}

/// Why a sample of session ids is predictable, if it is: the part that varies is a number
/// that only grows by small steps, or the varying characters hold fewer than 64 bits (counted
/// as the number of positions that vary times log2 of the characters seen there, which
/// overestimates a counter and underestimates nothing random).
pub(super) fn session_id_weakness(ids: &[String]) -> Option<String> {
    if ids.len() < 2 {
        return None;
    }
    let first = ids[0].as_bytes();
    let prefix = ids.iter().fold(first.len(), |n, id| {
        n.min(
            id.bytes()
                .zip(first.iter())
                .take_while(|(a, b)| a == *b)
                .count(),
        )
    });
    let suffix = ids.iter().fold(first.len() - prefix, |n, id| {
        n.min(
            id.bytes()
                .rev()
                .zip(first.iter().rev())
                .take_while(|(a, b)| a == *b)
                .count(),
        )
        .min(id.len() - prefix)
    });
    let middles: Vec<&str> = ids
        .iter()
        .map(|id| &id[prefix.min(id.len())..id.len() - suffix.min(id.len() - prefix)])
        .collect();
    let numbers: Option<Vec<u128>> = middles
        .iter()
        .map(|m| {
            if m.is_empty() || m.len() > 30 {
                None
            } else if m.bytes().all(|b| b.is_ascii_digit()) {
                m.parse().ok()
            } else {
                u128::from_str_radix(m, 16).ok()
            }
        })
        .collect();
    if let Some(numbers) = numbers
        && numbers
            .windows(2)
            .all(|w| w[1] > w[0] && w[1] - w[0] <= 1 << 16)
    {
        return Some(format!(
            "session ids are sequential: {:?} then {:?} (they differ only in a growing number)",
            ids[0], ids[1]
        ));
    }
    let longest = ids.iter().map(String::len).max().unwrap_or(0);
    let mut varying = 0usize;
    let mut alphabet = std::collections::BTreeSet::new();
    for i in 0..longest {
        let column: std::collections::BTreeSet<Option<u8>> =
            ids.iter().map(|id| id.as_bytes().get(i).copied()).collect();
        if column.len() > 1 {
            varying += 1;
            alphabet.extend(column.into_iter().flatten());
        }
    }
    let bits = varying as f64 * (alphabet.len().max(1) as f64).log2();
    (bits < 64.0).then(|| {
        format!(
            "session ids are low in entropy: {} ids vary in {varying} positions over {} characters, about {bits:.0} bits (at least 64 expected)",
            ids.len(),
            alphabet.len()
        )
    })
}

async fn missing_session_gets_400(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut c = session(&cx).await?;
    if c.session.is_none() {
        return Ok(Verdict::Skip("the server issues no session ids".into()));
    }
    c.session = None;
    let ex = c.post(&tools_list(5)).await?.exchange;
    let mut f = Findings::new(&cx);
    f.require(
        ex.status == 400,
        format!("tools/list without Mcp-Session-Id answered {}", ex.status),
        Some(&ex),
    );
    Ok(f.verdict())
}

async fn dead_sessions_get_404(cx: Ctx) -> anyhow::Result<Verdict> {
    let c = session(&cx).await?;
    if c.session.is_none() {
        return Ok(Verdict::Skip("the server issues no session ids".into()));
    }
    let mut f = Findings::new(&cx);
    let delete = c.delete().await?;
    if delete.status == 405 {
        f.note("DELETE answered 405: the server does not let clients end sessions");
    } else {
        f.require(
            (200..300).contains(&delete.status),
            format!("DELETE answered {}", delete.status),
            Some(&delete),
        );
        let after = c.post(&tools_list(6)).await?.exchange;
        f.require(
            after.status == 404,
            format!(
                "tools/list on the deleted session answered {}",
                after.status
            ),
            Some(&after),
        );
        // A second DELETE is a request containing that session ID too: "after which it
        // MUST respond to requests containing that session ID with HTTP 404 Not Found".
        if (200..300).contains(&delete.status) {
            let again = c.delete().await?;
            f.require(
                again.status == 404,
                format!(
                    "a second DELETE of the deleted session answered {}",
                    again.status
                ),
                Some(&again),
            );
        }
    }
    let mut unknown = c.clone();
    unknown.session = Some("conformance-never-issued-0123456789abcdef".into());
    let ex = unknown.post(&tools_list(7)).await?.exchange;
    cx.record_exchange("404 unknown session", &ex);
    if ex.status == 400 {
        f.prefer(
            false,
            "an unknown session id answered 400, not 404",
            Some(&ex),
        );
    } else {
        f.require(
            ex.status == 404,
            format!("an unknown session id answered {}", ex.status),
            Some(&ex),
        );
    }
    let mut fresh = c.clone();
    fresh.session = None;
    fresh.version = None;
    match fresh.initialize(cx.protocol_version().as_str()).await {
        Ok(_) => f.require(
            fresh.session.is_some() && fresh.session != c.session,
            "re-initializing did not give a new session",
            None,
        ),
        Err(e) => f.require(false, format!("re-initializing failed: {e:#}"), None),
    };
    Ok(f.verdict())
}

async fn bad_protocol_version_gets_400(cx: Ctx) -> anyhow::Result<Verdict> {
    let c = session(&cx).await?;
    let mut f = Findings::new(&cx);
    for bad in ["1999-01-01", "banana"] {
        let mut b = c.clone();
        b.version = None;
        let ex = b
            .send(
                b.req(Method::POST)
                    .header("MCP-Protocol-Version", bad)
                    .json(&tools_list(8)),
            )
            .await?
            .exchange;
        if bad == "banana" {
            cx.record_exchange("400 bad protocol version", &ex);
        }
        f.require(
            ex.status == 400,
            format!("MCP-Protocol-Version: {bad} answered {}", ex.status),
            Some(&ex),
        );
    }
    let good = c.post(&tools_list(9)).await?.exchange;
    f.require(
        good.status == 200,
        format!("the negotiated version answered {}", good.status),
        Some(&good),
    );
    // "If the server receives a request with an invalid or unsupported
    // MCP-Protocol-Version, it MUST respond with 400 Bad Request": every request, so the
    // GET stream and DELETE too. The DELETE comes last: a server that ignored the header
    // would end the session with it.
    for method in [Method::GET, Method::DELETE] {
        let mut b = c.clone();
        b.version = None;
        let req = b
            .req(method.clone())
            .header("MCP-Protocol-Version", "1999-01-01");
        let ex = if method == Method::GET {
            cx.http().send_head(req).await?
        } else {
            cx.http().send(req).await?
        };
        if ex.status == 405 {
            // A server may offer no GET stream (SHTTP-12) and no DELETE (SHTTP-19).
            f.note(format!(
                "{method} answered 405: the server does not offer it"
            ));
            continue;
        }
        f.require(
            ex.status == 400,
            format!(
                "{method} with MCP-Protocol-Version: 1999-01-01 answered {}",
                ex.status
            ),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

async fn missing_protocol_version_is_fine(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut c = session(&cx).await?;
    c.version = None;
    let ex = c.post(&tools_list(10)).await?.exchange;
    let mut f = Findings::new(&cx);
    f.require(
        ex.status == 200,
        format!(
            "tools/list without MCP-Protocol-Version answered {}",
            ex.status
        ),
        Some(&ex),
    );
    Ok(f.verdict())
}

/// "The server SHOULD immediately send an SSE event consisting of an event ID and an empty
/// data field in order to prime the client to reconnect (using that event ID as
/// Last-Event-ID)." (2025-11-25 transports). Only SSE responses are judged.
async fn streams_are_primed(cx: Ctx) -> anyhow::Result<Verdict> {
    let c = session_at(&cx, Version::V2025_11_25).await?;
    if let Some(skip) = other_version(&c, Version::V2025_11_25) {
        return Ok(skip);
    }
    let reply = c.post(&tools_list(42)).await?;
    if !reply.is_sse() {
        return Ok(Verdict::Skip(format!(
            "tools/list was answered with Content-Type {}, not an SSE stream",
            super::shown(reply.exchange.header("content-type"))
        )));
    }
    let mut f = Findings::new(&cx);
    let first = reply.events.first();
    let primed = first.is_some_and(|event| {
        event.id.as_deref().is_some_and(|id| !id.is_empty()) && event.data.trim().is_empty()
    });
    f.require(
        primed,
        match first {
            Some(event) => format!(
                "the stream's first event has {} and {}, not an event id with empty data",
                event
                    .id
                    .as_deref()
                    .map_or("no id".to_owned(), |id| format!("the id {id:?}")),
                if event.data.is_empty() {
                    "empty data".to_owned()
                } else {
                    format!("the data {}", opening(&event.data))
                }
            ),
            None => "the stream has no event, not even one with an event id and empty data".into(),
        },
        Some(&reply.exchange),
    );
    Ok(f.verdict())
}

/// The first characters of an event's data on one line, for a message: enough to recognise
/// a response or a keep-alive without printing a whole tool list. JSON data stays readable
/// as it is (quoting would escape every quote in it).
fn opening(data: &str) -> String {
    const SHOWN: usize = 60;
    let opening: String = data
        .chars()
        .take(SHOWN)
        .collect::<String>()
        .replace('\n', "\\n");
    if data.chars().count() > SHOWN {
        format!("{opening} [...]")
    } else {
        opening
    }
}

/// "If present, the ID MUST be globally unique across all streams within that session [...]
/// The server MUST NOT replay messages that would have been delivered on a different
/// stream." (2025-11-25 transports, Resumability and Redelivery). Resumption itself is a
/// MAY, so a server that answers the resuming GET with 405, or replays nothing, passes.
async fn event_ids_are_unique(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let mut c = Shttp::new(
        cx.http().clone(),
        cx.mcp_url(),
        Some(login.access_token().to_owned()),
    );
    let (init, _) = c.initialize(cx.protocol_version().as_str()).await?;
    let mut f = Findings::new(&cx);
    let mut seen: HashMap<String, String> = HashMap::new();
    // An event without an `id:` field keeps the id in force (the event stream rules), so a
    // stream's ids are the points where the id changes.
    let mut collect = |f: &mut Findings, events: &[crate::http::sse::SseEvent], stream: String| {
        let mut in_force = None;
        for event in events {
            if event.id == in_force {
                continue;
            }
            in_force = event.id.clone();
            let Some(id) = event.id.clone().filter(|id| !id.is_empty()) else {
                continue;
            };
            if let Some(first) = seen.get(&id) {
                f.require(
                    false,
                    format!("the event id {id:?} is used on {first} and again on {stream}"),
                    None,
                );
            } else {
                seen.insert(id, stream.clone());
            }
        }
    };
    collect(&mut f, &init.events, "the initialize stream".into());
    let mut posts = Vec::new();
    for id in 31..34 {
        let reply = c.post(&tools_list(id)).await?;
        collect(
            &mut f,
            &reply.events,
            format!("the stream of tools/list {id}"),
        );
        posts.push((id, reply));
    }
    // Two GET streams at once, when the server offers them; both stay open while the
    // second is read, so they are two streams of the session.
    let mut open = Vec::new();
    for n in 1..=2 {
        let Streaming { exchange, response } = c.get_stream().await?;
        if exchange.status != 200 || exchange.content_type().as_deref() != Some("text/event-stream")
        {
            f.note(format!(
                "GET answered {}: no GET stream to judge",
                exchange.status
            ));
            break;
        }
        let mut reader = SseReader::new(response);
        if let Ok(Some(event)) = reader.next(QUIET_STREAM).await {
            collect(
                &mut f,
                std::slice::from_ref(&event),
                format!("GET stream {n}"),
            );
        }
        open.push(reader);
    }
    drop(open);
    let (last_id, last) = posts.last().expect("three requests were sent");
    let Some(resume_from) = last
        .events
        .iter()
        .find_map(|event| event.id.clone().filter(|id| !id.is_empty()))
    else {
        f.note("the POST streams carry no event ids: nothing to resume");
        return Ok(f.verdict());
    };
    let Streaming { exchange, response } = cx
        .http()
        .open(
            c.req(Method::GET)
                .header("Last-Event-ID", resume_from.clone()),
        )
        .await?;
    if exchange.status != 200 || exchange.content_type().as_deref() != Some("text/event-stream") {
        f.note(format!(
            "GET with Last-Event-ID answered {}: no resumption",
            exchange.status
        ));
        return Ok(f.verdict());
    }
    let mut reader = SseReader::new(response);
    let mut replayed = Vec::new();
    while let Ok(Some(event)) = reader.next(QUIET_STREAM).await {
        replayed.push(event);
        if replayed.len() >= 64 {
            break;
        }
    }
    let (messages, _) = messages_from_events(&replayed);
    for message in &messages {
        let is_response = message.get("result").is_some() || message.get("error").is_some();
        f.require(
            !is_response || message.get("id") == Some(&json!(last_id)),
            format!(
                "resuming the stream of tools/list {last_id} from {resume_from:?} replayed {message}, which belongs to another stream"
            ),
            Some(&exchange),
        );
    }
    f.note(format!(
        "resuming from {resume_from:?} replayed {} messages",
        messages.len()
    ));
    Ok(f.verdict())
}

fn cancelled(request_id: i64) -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": request_id}})
}

/// "MCP implementations MAY support sending JSON-RPC batches, but MUST support receiving
/// JSON-RPC batches." (2025-03-26, Base Protocol, Batching). An empty array is no batch
/// (JSON-RPC 2.0: "an Array with at least one value"), and "The initialize request MUST
/// NOT be part of a JSON-RPC batch", which binds the client, so the server refusing it
/// is only preferred.
async fn batches_are_received(cx: Ctx) -> anyhow::Result<Verdict> {
    let c = session_at(&cx, Version::V2025_03_26).await?;
    if let Some(skip) = other_version(&c, Version::V2025_03_26) {
        return Ok(skip);
    }
    let mut f = Findings::new(&cx);
    let both = c
        .post(&json!([tools_list(21), {"jsonrpc": "2.0", "id": 22, "method": "ping"}]))
        .await?;
    let ex = &both.exchange;
    f.require(
        ex.status == 200,
        format!("a batch of two requests answered {}", ex.status),
        Some(ex),
    );
    for id in [21, 22] {
        f.require(
            both.response(&json!(id)).is_some(),
            format!("the batch got no response with id {id}"),
            Some(ex),
        );
    }
    let notes = c.post(&json!([cancelled(998), cancelled(999)])).await?;
    let ex = &notes.exchange;
    f.require(
        ex.status == 202 && ex.body.is_empty(),
        format!(
            "a batch of two notifications answered {} with {} body bytes",
            ex.status,
            ex.body.len()
        ),
        Some(ex),
    );
    let empty = c.post(&json!([])).await?;
    let ex = &empty.exchange;
    f.require(
        ex.status == 400,
        format!("an empty batch answered {}", ex.status),
        Some(ex),
    );
    if let Some(body) = ex.json() {
        f.prefer(
            body.pointer("/error/code") == Some(&json!(-32600)),
            "the empty batch's error is not Invalid Request (-32600)",
            Some(ex),
        );
    }
    let init = c
        .post(&json!([
            {"jsonrpc": "2.0", "id": 23, "method": "initialize", "params": initialize_params(Version::V2025_03_26.as_str())},
            {"jsonrpc": "2.0", "id": 24, "method": "ping"}
        ]))
        .await?;
    let ex = &init.exchange;
    f.prefer(
        (400..500).contains(&ex.status),
        format!("a batch holding initialize answered {}", ex.status),
        Some(ex),
    );
    Ok(f.verdict())
}

/// "The body of the POST request MUST be a single JSON-RPC request, notification, or
/// response." (2025-06-18 and 2025-11-25 transports). The sentence binds the client and
/// names no status, so a refusal (a 4xx, ideally 400 with -32600) is what is expected,
/// at the level of a SHOULD.
async fn batches_are_refused(cx: Ctx) -> anyhow::Result<Verdict> {
    let version = if Versions::range(Version::V2025_06_18, Version::V2025_11_25)
        .contains(cx.protocol_version())
    {
        cx.protocol_version()
    } else {
        Version::V2025_11_25
    };
    let c = session_at(&cx, version).await?;
    if let Some(skip) = other_version(&c, version) {
        return Ok(skip);
    }
    let mut f = Findings::new(&cx);
    let reply = c.post(&json!([tools_list(25)])).await?;
    let ex = &reply.exchange;
    if f.require(
        (400..500).contains(&ex.status),
        format!(
            "a batch in a {} session answered {}",
            version.as_str(),
            ex.status
        ),
        Some(ex),
    ) && let Some(body) = ex.json()
    {
        f.prefer(
            body.pointer("/error/code") == Some(&json!(-32600)),
            "the refusal is not Invalid Request (-32600)",
            Some(ex),
        );
    }
    Ok(f.verdict())
}

/// "The server MUST provide a single HTTP endpoint path (hereafter referred to as the MCP
/// endpoint) that supports both POST and GET methods." (2025-11-25 transports). GET may
/// still be answered 405 (SHTTP-12 judges its answer); a 404 or a redirect says the path
/// does not serve GET at all.
async fn one_path_for_post_and_get(cx: Ctx) -> anyhow::Result<Verdict> {
    let c = session(&cx).await?;
    let get = cx.http().send_head(c.req(Method::GET)).await?;
    let mut f = Findings::new(&cx);
    f.require(
        get.status != 404 && !(300..400).contains(&get.status),
        format!(
            "POST works at the MCP endpoint, but GET there answered {}",
            get.status
        ),
        Some(&get),
    );
    Ok(f.verdict())
}

/// "The client MUST include an Accept header, listing both application/json and
/// text/event-stream as supported content types." The spec says nothing of a server's
/// answer to a client that does not; the SDKs answer 406. What HTTP does not allow is an
/// event stream to a client that accepts only JSON.
async fn json_only_accept(cx: Ctx) -> anyhow::Result<Verdict> {
    let c = session(&cx).await?;
    let mut req = Req::post(c.url.clone())
        .bearer(c.token.as_deref())
        .header("Accept", "application/json");
    if let Some(session) = &c.session {
        req = req.header("Mcp-Session-Id", session);
    }
    if let Some(version) = c.version.as_deref().filter(|v| *v >= "2025-06-18") {
        req = req.header("MCP-Protocol-Version", version);
    }
    let ex = cx.http().send_head(req.json(&tools_list(12))).await?;
    let mut f = Findings::new(&cx);
    let stream = ex.content_type().as_deref() == Some("text/event-stream");
    f.require(
        !stream,
        format!(
            "a POST with Accept: application/json (not {ACCEPT_BOTH}) got {} text/event-stream",
            ex.status
        ),
        Some(&ex),
    );
    if ex.status != 406 {
        f.note(format!(
            "a POST that accepts only JSON answered {} (the SDKs answer 406)",
            ex.status
        ));
    }
    Ok(f.verdict())
}

/// How long the suite waits for an SSE response to end after its JSON-RPC response.
const STREAM_END_WAIT: Duration = Duration::from_secs(3);

/// "After the JSON-RPC response has been sent, the server SHOULD terminate the SSE
/// stream." (2025-11-25 transports). Only SSE responses are judged.
async fn streams_end_after_the_response(cx: Ctx) -> anyhow::Result<Verdict> {
    let c = session(&cx).await?;
    let Streaming { exchange, response } = cx
        .http()
        .open(c.req(Method::POST).json(&tools_list(43)))
        .await?;
    if exchange.content_type().as_deref() != Some("text/event-stream") {
        return Ok(Verdict::Skip(format!(
            "tools/list was answered {} with Content-Type {}, not an SSE stream",
            exchange.status,
            super::shown(exchange.header("content-type"))
        )));
    }
    let mut reader = SseReader::new(response);
    let mut events = Vec::new();
    let answered = loop {
        match reader.next(cx.http().timeout).await {
            Ok(Some(event)) => {
                events.push(event);
                let (messages, _) = messages_from_events(&events);
                if messages.iter().any(|m| {
                    m.get("id") == Some(&json!(43))
                        && (m.get("result").is_some() || m.get("error").is_some())
                }) {
                    break true;
                }
            }
            Ok(None) | Err(_) => break false,
        }
    };
    let mut f = Findings::new(&cx);
    if !f.require(
        answered,
        "the SSE stream carried no response to tools/list",
        Some(&exchange),
    ) {
        return Ok(f.verdict());
    }
    let ended = loop {
        match reader.next(STREAM_END_WAIT).await {
            Ok(Some(_)) => continue,
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    f.require(
        ended,
        format!("the SSE stream stayed open {STREAM_END_WAIT:?} after its response"),
        Some(&exchange),
    );
    Ok(f.verdict())
}

/// "The server MAY respond to this request with HTTP 405 Method Not Allowed, indicating
/// that the server does not allow clients to terminate sessions." (2025-11-25
/// transports). After a 405 the session is still the client's; after a 2xx SHTTP-18
/// judges what follows.
async fn refused_delete_keeps_the_session(cx: Ctx) -> anyhow::Result<Verdict> {
    let c = session(&cx).await?;
    if c.session.is_none() {
        return Ok(Verdict::Skip("the server issues no session ids".into()));
    }
    let delete = c.delete().await?;
    let mut f = Findings::new(&cx);
    if delete.status == 405 {
        let after = c.post(&tools_list(11)).await?.exchange;
        f.require(
            after.status == 200,
            format!(
                "DELETE answered 405, yet tools/list in the session then answered {}",
                after.status
            ),
            Some(&after),
        );
    } else {
        f.note(format!(
            "DELETE answered {}: the server lets clients end sessions",
            delete.status
        ));
    }
    Ok(f.verdict())
}

/// The session's GET streams, up to `wanted`, each open and read from, or why there are
/// none: a server may answer GET with 405 (SHTTP-12), and then the rules of the GET stream
/// do not apply.
async fn get_streams(c: &Shttp, wanted: usize) -> anyhow::Result<Result<Vec<SseReader>, String>> {
    let mut readers = Vec::new();
    for _ in 0..wanted {
        let Streaming { exchange, response } = c.get_stream().await?;
        if exchange.status != 200 || exchange.content_type().as_deref() != Some("text/event-stream")
        {
            if readers.is_empty() {
                return Ok(Err(format!(
                    "GET answered {}: the server offers no GET stream",
                    exchange.status
                )));
            }
            break;
        }
        readers.push(SseReader::new(response));
    }
    Ok(Ok(readers))
}

/// The JSON-RPC messages a GET stream sent until it was quiet for a moment.
async fn drain(reader: &mut SseReader) -> Vec<Value> {
    let mut events = Vec::new();
    while let Ok(Some(event)) = reader.next(QUIET_STREAM).await {
        events.push(event);
        if events.len() >= 64 {
            break;
        }
    }
    messages_from_events(&events).0
}

fn is_response(message: &Value) -> bool {
    message.get("result").is_some() || message.get("error").is_some()
}

/// "The server MUST NOT send a JSON-RPC response on the stream unless resuming a stream
/// associated with a previous client request." (2025-11-25 transports, Listening for
/// Messages from the Server). The stream is opened fresh, so it resumes nothing.
async fn no_responses_on_the_get_stream(cx: Ctx) -> anyhow::Result<Verdict> {
    let c = session(&cx).await?;
    let mut readers = match get_streams(&c, 1).await? {
        Ok(readers) => readers,
        Err(reason) => return Ok(Verdict::Skip(reason)),
    };
    for id in 51..54 {
        c.post(&tools_list(id)).await?;
    }
    let mut f = Findings::new(&cx);
    for reader in &mut readers {
        for message in drain(reader).await {
            f.require(
                !is_response(&message),
                format!("the GET stream carried the response {message}"),
                None,
            );
        }
    }
    Ok(f.verdict())
}

/// "The server MUST send each of its JSON-RPC messages on only one of the connected
/// streams; that is, it MUST NOT broadcast the same message across multiple streams."
/// (2025-11-25 transports, Multiple Connections). Two GET streams are open (when the server
/// allows two) while requests are answered; every response must be seen once.
async fn one_stream_per_message(cx: Ctx) -> anyhow::Result<Verdict> {
    let c = session(&cx).await?;
    let mut readers = match get_streams(&c, 2).await? {
        Ok(readers) => readers,
        Err(reason) => return Ok(Verdict::Skip(reason)),
    };
    let mut seen: Vec<Value> = Vec::new();
    for id in 61..64 {
        seen.extend(c.post(&tools_list(id)).await?.messages);
    }
    for reader in &mut readers {
        seen.extend(drain(reader).await);
    }
    let mut f = Findings::new(&cx);
    for id in 61..64 {
        let copies = seen
            .iter()
            .filter(|message| is_response(message) && message.get("id") == Some(&json!(id)))
            .count();
        f.require(
            copies <= 1,
            format!(
                "the response to tools/list {id} was sent {copies} times over {} GET streams and its POST",
                readers.len()
            ),
            None,
        );
    }
    Ok(f.verdict())
}

/// "The server MAY send JSON-RPC requests and notifications before sending a JSON-RPC
/// response. These messages SHOULD relate to the originating client request." (2025-03-26
/// transports). The request names a progress token; a progress notification for another
/// token, or a response to another request, relates to something else.
async fn messages_before_the_response_relate(cx: Ctx) -> anyhow::Result<Verdict> {
    let c = session(&cx).await?;
    let token = "conformance-progress-71";
    let reply = c
        .post(&json!({
            "jsonrpc": "2.0", "id": 71, "method": "tools/list",
            "params": {"_meta": {"progressToken": token}}
        }))
        .await?;
    let mut f = Findings::new(&cx);
    let before: Vec<&Value> = reply
        .messages
        .iter()
        .take_while(|message| !(is_response(message) && message.get("id") == Some(&json!(71))))
        .collect();
    for message in before {
        let foreign_progress = message.get("method") == Some(&json!("notifications/progress"))
            && message.pointer("/params/progressToken") != Some(&json!(token));
        f.require(
            !foreign_progress && !is_response(message),
            format!("before the response to tools/list 71, its stream carried {message}"),
            Some(&reply.exchange),
        );
    }
    Ok(f.verdict())
}

/// "The initialize request MUST NOT be part of a JSON-RPC batch, as other requests and
/// notifications are not possible until initialization has completed." (2025-03-26,
/// Lifecycle). The sentence binds the client, so a server that runs such an `initialize`
/// misses a SHOULD only: it is expected to refuse the batch (4xx) or answer the
/// `initialize` with a JSON-RPC error, never with an InitializeResult.
async fn initialize_in_a_batch_is_refused(cx: Ctx) -> anyhow::Result<Verdict> {
    let c = session_at(&cx, Version::V2025_03_26).await?;
    if let Some(skip) = other_version(&c, Version::V2025_03_26) {
        return Ok(skip);
    }
    let mut f = Findings::new(&cx);
    let reply = c
        .post(&json!([
            {"jsonrpc": "2.0", "id": 31, "method": "initialize", "params": initialize_params(Version::V2025_03_26.as_str())},
            {"jsonrpc": "2.0", "id": 32, "method": "ping"}
        ]))
        .await?;
    let ex = &reply.exchange;
    if (400..500).contains(&ex.status) {
        return Ok(f.verdict());
    }
    f.require(
        reply
            .response(&json!(31))
            .is_some_and(|r| r.get("error").is_some()),
        format!(
            "a batch holding initialize answered {} without an error for the initialize",
            ex.status
        ),
        Some(ex),
    );
    Ok(f.verdict())
}

/// "Note that authorization MUST be included in every HTTP request from client to
/// server, even if they are part of the same logical session." (2025-06-18,
/// Authorization § Token Requirements). The sentence binds the client; the server keeps
/// it meaningful by refusing, with 401, a POST, GET or DELETE that names a live session
/// but carries no token.
async fn every_request_needs_authorization(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let mut c = Shttp::new(
        cx.http().clone(),
        cx.mcp_url(),
        Some(login.access_token().to_owned()),
    );
    c.initialize(cx.protocol_version().as_str()).await?;
    if c.session.is_none() {
        return Ok(Verdict::Skip(
            "the server issued no session id, so every request stands alone".into(),
        ));
    }
    let mut bare = c.clone();
    bare.token = None;
    let mut f = Findings::new(&cx);
    let post = bare.post(&tools_list(41)).await?.exchange;
    let get = cx.http().send_head(bare.req(Method::GET)).await?;
    let delete = cx.http().send(bare.req(Method::DELETE)).await?;
    for (what, ex) in [("POST", &post), ("GET", &get), ("DELETE", &delete)] {
        f.require(
            ex.status == 401,
            format!(
                "{what} with the session and no token answered {}",
                ex.status
            ),
            Some(ex),
        );
    }
    Ok(f.verdict())
}

/// "JSON-RPC messages MUST be UTF-8 encoded." (Transports § Messages, 2025-03-26 on).
/// The raw bytes of a session's answers, JSON or SSE, must decode as UTF-8 without a
/// single replacement; the suite's own readers are lenient, so this is judged on the
/// bytes as they came.
async fn messages_are_utf8(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let mut c = Shttp::new(
        cx.http().clone(),
        cx.mcp_url(),
        Some(login.access_token().to_owned()),
    );
    let (init, _) = c.initialize(cx.protocol_version().as_str()).await?;
    let list = c.post(&tools_list(51)).await?;
    let ping = c
        .post(&json!({"jsonrpc": "2.0", "id": 52, "method": "ping"}))
        .await?;
    let mut f = Findings::new(&cx);
    for (what, ex) in [
        ("initialize", &init.exchange),
        ("tools/list", &list.exchange),
        ("ping", &ping.exchange),
    ] {
        if let Err(error) = std::str::from_utf8(&ex.body) {
            f.require(
                false,
                format!(
                    "the answer to {what} is no UTF-8: {error} (byte {:#04x})",
                    ex.body[error.valid_up_to()]
                ),
                Some(ex),
            );
        }
    }
    Ok(f.verdict())
}
