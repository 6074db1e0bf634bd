//! COMPAT: what lets clients of either transport find the one they speak: a Streamable
//! HTTP client that POSTs to an HTTP+SSE server's URL must see a failure it falls back on.

use serde_json::json;

use super::{Check, Ctx, Findings, LoginOptions, Resource, SSE, Verdict};
use crate::body;
use crate::config::Transport;
use crate::http::Req;
use crate::http::legacy::{self, Connect};
use crate::http::streamable::{ACCEPT_BOTH, Shttp, initialize_params};
use crate::version::Version;

pub fn checks() -> Vec<Check> {
    vec![
        Check::new("COMPAT-02", SSE, body!(clients_can_fall_back)),
        Check::new("COMPAT-01", SSE, body!(both_transports_are_served)),
    ]
}

/// A client that supports both transports POSTs `initialize` to the server URL, and "If
/// it fails with the following HTTP status codes "400 Bad Request", "404 Not Found" or
/// "405 Method Not Allowed"" issues a GET there and expects the old transport's `endpoint`
/// event (2025-11-25 transports, Backwards Compatibility). So the SSE URL must fail such a
/// POST with one of those. The POST carries a token for that URL, so that a 401 cannot
/// stand in for the transport's answer.
async fn clients_can_fall_back(cx: Ctx) -> anyhow::Result<Verdict> {
    let login = cx.login(LoginOptions::default()).await?;
    let init = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": initialize_params(Version::LATEST_SESSION_ERA.as_str())
    });
    let sse_url = cx.mcp_url();
    let post = cx
        .http()
        .send_head(
            Req::post(sse_url.clone())
                .bearer(Some(login.access_token()))
                .header("Accept", ACCEPT_BOTH)
                .json(&init),
        )
        .await?;
    let mut f = Findings::new(&cx);
    f.require(
        matches!(post.status, 400 | 404 | 405),
        format!(
            "POST initialize to the SSE URL {sse_url} answered {}: a Streamable HTTP client falls back only on 400, 404 or 405",
            post.status
        ),
        Some(&post),
    );
    Ok(f.verdict())
}

/// "Servers wanting to support older clients should: … Continue to host both the SSE and
/// POST endpoints of the old transport, alongside the new "MCP endpoint" defined for the
/// Streamable HTTP transport." (2025-03-26 on, Backwards Compatibility). Informational: a
/// server may serve one transport only. Judged when the run covers both transports: the
/// SSE URL opens a stream that announces its POST endpoint, and the MCP endpoint takes an
/// `initialize`.
async fn both_transports_are_served(cx: Ctx) -> anyhow::Result<Verdict> {
    if !cx.config().transports.contains(&Transport::StreamableHttp) {
        return Ok(Verdict::Skip(
            "the run does not cover Streamable HTTP, so the server is taken for SSE only".into(),
        ));
    }
    let login = cx.login(LoginOptions::default()).await?;
    let sse_url = cx.config().endpoint(Transport::Sse);
    let mut f = Findings::new(&cx);
    match legacy::connect(cx.http(), &sse_url, Some(login.access_token()), &[]).await? {
        Connect::Open(_) => {}
        Connect::Refused(ex) => {
            f.require(
                false,
                format!("GET {sse_url} answered {}", ex.status),
                Some(&ex),
            );
        }
        Connect::NoEndpoint { exchange, .. } => {
            f.require(
                false,
                format!("GET {sse_url} announced no POST endpoint"),
                Some(&exchange),
            );
        }
    }
    // The MCP endpoint may be a resource of its own, whose token the SSE one is not.
    let mcp_login = match cx.shared.discovery.get(&Transport::StreamableHttp) {
        Some(Ok(discovery)) if discovery.resource() != cx.discovery()?.resource() => {
            cx.login(LoginOptions {
                resource: Resource::Value(discovery.resource()),
                ..LoginOptions::default()
            })
            .await?
        }
        _ => login,
    };
    let mcp_url = cx.config().endpoint(Transport::StreamableHttp);
    let mut c = Shttp::new(
        cx.http().clone(),
        mcp_url.clone(),
        Some(mcp_login.access_token().to_owned()),
    );
    if let Err(error) = c
        .initialize_request(Version::LATEST_SESSION_ERA.as_str())
        .await
    {
        f.require(
            false,
            format!("initialize at the MCP endpoint {mcp_url} failed: {error}"),
            None,
        );
    }
    Ok(f.verdict())
}
