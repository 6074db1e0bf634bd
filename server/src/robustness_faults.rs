//! The defects behind the robustness phase's faults (`--robustness` in the suite): what a
//! server does when garbage input reaches code that never expected it. They sit in one
//! middleware in front of every route, since the classes they stand for (a 5xx, a request
//! never answered, a dropped connection, unbounded memory) are not tied to one endpoint.
//! This module exists only with the `fault-injection` feature.

use std::sync::Mutex;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// The most of a body the middleware buffers; larger bodies pass through untouched.
const BUFFER_LIMIT: usize = 8 << 20;

/// Every body [`crate::fault::Fault::KeepRequestBodies`] kept, never released.
static KEPT: Mutex<Vec<Bytes>> = Mutex::new(Vec::new());

/// The protocol versions the faulty server waits for.
const KNOWN_VERSIONS: &[&str] = &[
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];

pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let config = &state.config;
    if crate::injected!(config, PanicOnNonAsciiHeader)
        && request
            .headers()
            .values()
            .any(|v| v.as_bytes().iter().any(|b| *b >= 0x80))
    {
        // An unwrap on a header value that was assumed to be ASCII: the connection's task
        // dies and the client is left without an answer.
        panic!("a header value is not ASCII");
    }
    if crate::injected!(config, HangOnUnknownProtocolVersion)
        && let Some(version) = request.headers().get("mcp-protocol-version")
        && !KNOWN_VERSIONS
            .iter()
            .any(|k| version.as_bytes() == k.as_bytes())
    {
        // Waits for a negotiation that never comes.
        std::future::pending::<()>().await;
    }
    let buffers = crate::injected!(config, ServerErrorOnMalformedJson)
        || crate::injected!(config, KeepRequestBodies);
    if !buffers {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, BUFFER_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    if crate::injected!(config, KeepRequestBodies) && !bytes.is_empty() {
        KEPT.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Bytes::copy_from_slice(&bytes));
    }
    let json = parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if crate::injected!(config, ServerErrorOnMalformedJson)
        && json
        && serde_json::from_slice::<serde_json::Value>(&bytes).is_err()
    {
        // The parse error escapes as an internal error.
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
