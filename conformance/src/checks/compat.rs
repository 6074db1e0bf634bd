//! COMPAT: what lets clients of either transport find the one they speak: a Streamable
//! HTTP client that POSTs to an HTTP+SSE server's URL must see a failure it falls back on.

use serde_json::json;

use super::{Check, Ctx, Findings, Level, LoginOptions, SSE, Verdict};
use crate::body;
use crate::http::Req;
use crate::http::streamable::{ACCEPT_BOTH, initialize_params};
use crate::version::{Version, Versions};

pub fn checks() -> Vec<Check> {
    vec![Check {
        id: "COMPAT-02",
        case: None,
        also: &[],
        level: Level::Should,
        versions: Versions::since(Version::V2025_03_26),
        scope: SSE,
        title: "a Streamable HTTP POST to the SSE URL fails with 400, 404 or 405",
        run: body!(clients_can_fall_back),
    }]
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
