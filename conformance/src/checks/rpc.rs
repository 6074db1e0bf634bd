//! RPC: JSON-RPC error handling: parse errors, invalid requests, unknown methods, invalid params.

use serde_json::{Value, json};

use super::{BOTH, Check, Ctx, Findings, Level, LoginOptions, Verdict};
use crate::body;
use crate::http::Exchange;
use crate::version::Versions;

pub fn checks() -> Vec<Check> {
    vec![
        Check {
            id: "RPC-02",
            case: None,
            also: &["RPC-01"],
            level: Level::Must,
            versions: Versions::ALL,
            scope: BOTH,
            title: "responses carry the request's id with its type (\"abc\" and 7), and result or error",
            run: body!(ids_keep_their_type),
        },
        Check {
            id: "RPC-05",
            case: None,
            also: &[],
            // The rule binds whoever sends the request; what a server does with a null id
            // is derived from it, so a violation warns.
            level: Level::Should,
            versions: Versions::ALL,
            scope: BOTH,
            title: "a request with id null gets an error, not a silent 202",
            run: body!(null_id_is_an_error),
        },
        Check {
            id: "RPC-06",
            case: None,
            also: &[],
            level: Level::Must,
            versions: Versions::ALL,
            scope: BOTH,
            title: "invalid JSON gets a 4xx or a -32700 parse error",
            run: body!(parse_error),
        },
        Check {
            id: "RPC-07",
            case: None,
            also: &[],
            level: Level::Must,
            versions: Versions::ALL,
            scope: BOTH,
            title: "malformed requests get -32600 or 400",
            run: body!(invalid_request),
        },
        Check {
            id: "RPC-08",
            case: None,
            also: &[],
            level: Level::Must,
            versions: Versions::ALL,
            scope: BOTH,
            title: "an unknown method gets -32601",
            run: body!(method_not_found),
        },
        Check {
            id: "RPC-09",
            case: None,
            also: &["TOOLS-10"],
            level: Level::Must,
            versions: Versions::ALL,
            scope: BOTH,
            title: "an unknown tool or a call without a name gets -32602",
            run: body!(invalid_params),
        },
    ]
}

fn error_code(response: &Option<Value>) -> Option<i64> {
    response.as_ref()?.pointer("/error/code")?.as_i64()
}

/// Refused at the HTTP level, or answered with a JSON-RPC error (optionally with a given code).
fn refused(ex: &Exchange, response: &Option<Value>) -> bool {
    (400..500).contains(&ex.status) || error_code(response).is_some()
}

async fn parse_error(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let (ex, response) = conn.send_bytes(b"{\"jsonrpc\":").await?;
    let response = response.or_else(|| ex.json());
    let mut f = Findings::new(&cx);
    f.require(
        refused(&ex, &response),
        format!("invalid JSON answered {} without an error", ex.status),
        Some(&ex),
    );
    f.prefer(
        error_code(&response) == Some(-32700),
        format!("the error code is {:?}, not -32700", error_code(&response)),
        Some(&ex),
    );
    Ok(f.verdict())
}

async fn invalid_request(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let mut f = Findings::new(&cx);
    for message in [
        json!({"jsonrpc": "1.0", "id": 1, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": 2}),
        json!({"jsonrpc": "2.0", "id": 3, "method": 5}),
    ] {
        let (ex, response) = conn.send_raw(&message).await?;
        let response = response.or_else(|| ex.json());
        f.require(
            refused(&ex, &response),
            format!("{message} answered {} without an error", ex.status),
            Some(&ex),
        );
        f.prefer(
            error_code(&response).is_none_or(|c| c == -32600),
            format!("{message} got code {:?}, not -32600", error_code(&response)),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

async fn ids_keep_their_type(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let mut f = Findings::new(&cx);
    for id in [json!("abc"), json!(7)] {
        let (ex, response) = conn
            .send_raw(&json!({"jsonrpc": "2.0", "id": id, "method": "ping"}))
            .await?;
        let Some(r) = response else {
            f.require(
                false,
                format!("no response carries the id {id} exactly (same value and type)"),
                Some(&ex),
            );
            continue;
        };
        f.require(
            r.get("jsonrpc") == Some(&json!("2.0")),
            format!("the response to id {id} lacks jsonrpc: 2.0 (RPC-01)"),
            Some(&ex),
        );
        f.require(
            r.get("result").is_some() != r.get("error").is_some(),
            format!("the response to id {id} does not have exactly one of result and error"),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

async fn null_id_is_an_error(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let (ex, response) = conn
        .send_raw(&json!({"jsonrpc": "2.0", "id": null, "method": "ping"}))
        .await?;
    let response = response.or_else(|| ex.json());
    let mut f = Findings::new(&cx);
    f.require(
        refused(&ex, &response) && response.as_ref().is_none_or(|r| r.get("result").is_none()),
        format!(
            "a request with id null answered {} without an error, as if it were a notification",
            ex.status
        ),
        Some(&ex),
    );
    f.prefer(
        error_code(&response).is_none_or(|c| c == -32600),
        format!("id null got code {:?}, not -32600", error_code(&response)),
        Some(&ex),
    );
    Ok(f.verdict())
}

async fn method_not_found(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let (ex, response) = conn
        .send_raw(&json!({"jsonrpc": "2.0", "id": 11, "method": "foo/bar"}))
        .await?;
    cx.record_exchange("error: unknown method", &ex);
    let mut f = Findings::new(&cx);
    f.require(
        error_code(&response) == Some(-32601),
        format!("foo/bar got {response:?}"),
        Some(&ex),
    );
    Ok(f.verdict())
}

async fn invalid_params(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let mut f = Findings::new(&cx);
    for (what, params) in [
        (
            "an unknown tool",
            json!({"name": "__nope__", "arguments": {}}),
        ),
        ("a call without a name", json!({"arguments": {}})),
    ] {
        let (ex, response) = conn
            .send_raw(
                &json!({"jsonrpc": "2.0", "id": 12, "method": "tools/call", "params": params}),
            )
            .await?;
        f.require(
            error_code(&response).is_some(),
            format!("{what} did not get a JSON-RPC error: {response:?}"),
            Some(&ex),
        );
        f.prefer(
            error_code(&response) == Some(-32602),
            format!("{what} got code {:?}, not -32602", error_code(&response)),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}
