//! AUTH-SCOPE: a token without the scope the server needs is refused with 403 and an
//! `insufficient_scope` challenge that names the scope.

use serde_json::{Value, json};

use super::{BOTH, Check, Ctx, Findings, LoginOptions, Verdict, challenge};
use crate::body;
use crate::http::Exchange;

const TOOL: &str = "get_user_profile";

pub fn checks() -> Vec<Check> {
    vec![
        Check::new("AUTH-SCOPE-01", BOTH, body!(insufficient_scope_gets_403))
            .also(&["AUTH-GEN-06"]),
        Check::new("AUTH-SCOPE-02", BOTH, body!(insufficient_scope_challenge)),
        Check::new(
            "AUTH-SCOPE-03",
            BOTH,
            body!(step_up_with_the_challenged_scope),
        ),
    ]
}

/// What a token without the required scope got: the scopes the server asks for, and the
/// first answer that was not a success (the first request on the transport, or the tool
/// call).
struct Refused {
    required: Vec<String>,
    exchange: Exchange,
    response: Option<Value>,
    /// The scopes the refused token was granted.
    granted: Vec<String>,
    /// Whether the refusal came on the transport's first request rather than the tool call.
    at_first_request: bool,
}

/// `Err` says why the check does not apply: the server has no scope to leave out, or
/// offers none to ask for instead.
type Attempt = Result<Refused, String>;

fn split(scopes: &str) -> Vec<String> {
    scopes
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Logs in with the scopes the authorization server offers besides the required ones
/// (for the reference server, `offline_access` without `user`), then uses the token: the
/// transport's first request, and if that succeeds, the tool.
async fn attempt_without_required_scope(cx: &Ctx) -> anyhow::Result<Attempt> {
    if cx.config().tool_profile == crate::config::ToolProfile::None {
        return Ok(Err(format!(
            "--tool-profile none: the check needs {TOOL} as the operation that requires the scope"
        )));
    }
    let probe = cx.probe(None).await?;
    let d = cx.discovery()?;
    let list = |doc: Option<&Value>| -> Vec<String> {
        doc.and_then(|d| d.get("scopes_supported"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    // The challenge names what this resource needs; the resource metadata is the fallback.
    let required = match challenge(&probe).and_then(|c| c.param("scope").map(split)) {
        Some(scopes) if !scopes.is_empty() => scopes,
        _ => list(d.prm.as_ref()),
    };
    if required.is_empty() {
        return Ok(Err(
            "neither the challenge nor the resource metadata names a required scope".into(),
        ));
    }
    let others: Vec<String> = list(d.metadata.as_ref())
        .into_iter()
        .filter(|s| !required.contains(s))
        .collect();
    if others.is_empty() {
        return Ok(Err(format!(
            "the authorization server offers no scope besides {}",
            required.join(" ")
        )));
    }
    let login = cx
        .login(LoginOptions {
            scope: Some(others.join(" ")),
            ..LoginOptions::default()
        })
        .await?;
    // What counts is the scope granted, not the one asked for: RFC 6749 section 3.3 lets
    // the authorization server "fully or partially ignore the scope requested by the
    // client", and section 5.1 makes the token response's `scope` REQUIRED when it
    // differs from the request.
    let granted = login
        .tokens
        .scope
        .as_deref()
        .map(split)
        .unwrap_or_else(|| others.clone());
    if required.iter().all(|s| granted.contains(s)) {
        return Ok(Err(format!(
            "the authorization server granted {} when asked for {} only, so no token \
             without the required scope could be obtained",
            granted.join(" "),
            others.join(" ")
        )));
    }
    let first = cx.probe_bearer(login.access_token()).await?;
    if !(200..300).contains(&first.status) {
        return Ok(Ok(Refused {
            required,
            exchange: first,
            response: None,
            granted,
            at_first_request: true,
        }));
    }
    let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
    let (exchange, response) = conn
        .send_raw(&json!({"jsonrpc": "2.0", "id": 31, "method": "tools/call",
            "params": {"name": TOOL, "arguments": {}}}))
        .await?;
    let response = response.or_else(|| exchange.json());
    Ok(Ok(Refused {
        required,
        exchange,
        response,
        granted,
        at_first_request: false,
    }))
}

async fn insufficient_scope_gets_403(cx: Ctx) -> anyhow::Result<Verdict> {
    let Refused {
        required,
        exchange,
        response,
        ..
    } = match attempt_without_required_scope(&cx).await? {
        Ok(refused) => refused,
        Err(reason) => return Ok(Verdict::Skip(reason)),
    };
    cx.record_exchange("403 insufficient scope", &exchange);
    let mut f = Findings::new(&cx);
    let needed = required.join(" ");
    if exchange.status == 403 {
        return Ok(f.verdict());
    }
    let result = response.as_ref().and_then(|r| r.get("result"));
    if result.is_some_and(|r| r.get("isError") == Some(&json!(true))) {
        // A tool-level refusal is allowed when a server documents tool-level authorization.
        f.prefer(
            false,
            format!("a token without {needed} got an isError tool result, not HTTP 403"),
            Some(&exchange),
        );
    } else if result.is_some() {
        f.require(
            false,
            format!("a token without {needed} ran {TOOL}"),
            Some(&exchange),
        );
    } else {
        f.require(
            false,
            format!(
                "a token without {needed} answered {}, not 403",
                exchange.status
            ),
            Some(&exchange),
        );
    }
    Ok(f.verdict())
}

async fn insufficient_scope_challenge(cx: Ctx) -> anyhow::Result<Verdict> {
    let (required, exchange) = match attempt_without_required_scope(&cx).await? {
        Err(reason) => return Ok(Verdict::Skip(reason)),
        Ok(Refused {
            required, exchange, ..
        }) if exchange.status == 403 => (required, exchange),
        Ok(Refused { exchange, .. }) => {
            return Ok(Verdict::Skip(format!(
                "no 403 to inspect: the token without the scope got {} (see AUTH-SCOPE-01)",
                exchange.status
            )));
        }
    };
    let mut f = Findings::new(&cx);
    let Some(c) = challenge(&exchange) else {
        f.require(false, "the 403 has no Bearer challenge", Some(&exchange));
        return Ok(f.verdict());
    };
    f.require(
        c.param("error") == Some("insufficient_scope"),
        format!(
            "error is {}, not insufficient_scope",
            super::shown(c.param("error"))
        ),
        Some(&exchange),
    );
    let named = c.param("scope").map(split).unwrap_or_default();
    f.require(
        required.iter().all(|s| named.contains(s)),
        format!(
            "the challenge's scope is {}; it does not name {}",
            super::shown(c.param("scope")),
            required.join(" ")
        ),
        Some(&exchange),
    );
    f.require(
        c.param("resource_metadata").is_some(),
        "the challenge has no resource_metadata",
        Some(&exchange),
    );
    Ok(f.verdict())
}

/// AUTH-SCOPE-03, the step-up flow: "servers SHOULD include all scopes required for the
/// current operation in a single challenge", and they "are not required to include the
/// client's previously granted scopes" (2026-07-28; 2025-11-25: "servers SHOULD include
/// the scopes needed to satisfy the current request in the `scope` parameter"). So a
/// client that asks for the challenge's scopes together with those it was granted gets a
/// token that the same request accepts, without a second 403 naming another scope.
async fn step_up_with_the_challenged_scope(cx: Ctx) -> anyhow::Result<Verdict> {
    let refused = match attempt_without_required_scope(&cx).await? {
        Err(reason) => return Ok(Verdict::Skip(reason)),
        Ok(refused) if refused.exchange.status == 403 => refused,
        Ok(Refused { exchange, .. }) => {
            return Ok(Verdict::Skip(format!(
                "no 403 to step up from: the token without the scope got {} (see AUTH-SCOPE-01)",
                exchange.status
            )));
        }
    };
    let Some(challenged) = challenge(&refused.exchange)
        .and_then(|c| c.param("scope").map(split))
        .filter(|scopes| !scopes.is_empty())
    else {
        return Ok(Verdict::Skip(
            "the 403 challenge names no scope to step up to (see AUTH-SCOPE-02)".into(),
        ));
    };
    let mut wanted = refused.granted.clone();
    for scope in &challenged {
        if !wanted.contains(scope) {
            wanted.push(scope.clone());
        }
    }
    let login = cx
        .login(LoginOptions {
            scope: Some(wanted.join(" ")),
            ..LoginOptions::default()
        })
        .await?;
    let mut f = Findings::new(&cx);
    let retried = if refused.at_first_request {
        cx.probe_bearer(login.access_token()).await?
    } else {
        let (mut conn, _) = cx.connect(Some(login.access_token())).await?;
        let (exchange, response) = conn
            .send_raw(&json!({"jsonrpc": "2.0", "id": 32, "method": "tools/call",
                "params": {"name": TOOL, "arguments": {}}}))
            .await?;
        f.require(
            response.as_ref().is_some_and(|r| r.get("result").is_some()),
            format!(
                "after stepping up to {}, {TOOL} still got no result",
                wanted.join(" ")
            ),
            Some(&exchange),
        );
        exchange
    };
    let again = challenge(&retried).and_then(|c| c.param("scope").map(str::to_owned));
    f.require(
        (200..300).contains(&retried.status),
        format!(
            "the 403 named {:?}; a token granted {:?} got {} for the same request{}",
            challenged.join(" "),
            wanted.join(" "),
            retried.status,
            again.map_or(String::new(), |s| format!(", now challenged for {s:?}"))
        ),
        Some(&retried),
    );
    Ok(f.verdict())
}
