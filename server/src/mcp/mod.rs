//! The MCP endpoints: Streamable HTTP at `/mcp` (rmcp's transport behind a thin
//! layer) and the legacy HTTP+SSE transport at `/sse` + `/messages/` (ours, on top of
//! rmcp's message handling). Both sit behind the Origin and bearer checks.

mod handler;
mod sse;
mod streamable;

pub use handler::ToolList;

use std::{collections::HashMap, sync::Mutex};

use axum::{Router, middleware::from_fn_with_state};
use rmcp::model::ClientJsonRpcMessage;
use tokio::sync::mpsc;

use crate::{AppState, http_util, resource, resource::Authenticated};

pub fn routes(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    if state.config.transports.streamable_http() {
        router = router.merge(streamable::routes(state));
    }
    if state.config.transports.sse() {
        router = router.merge(sse::routes());
    }
    // Layers run outside-in in reverse order of addition: the Origin check first,
    // then the bearer check, then the transport.
    router
        .route_layer(from_fn_with_state(state.clone(), resource::require_bearer))
        .route_layer(from_fn_with_state(state.clone(), http_util::check_origin))
}

/// An open legacy SSE session: who opened it and where its POSTed messages go.
struct SseSession {
    owner: Authenticated,
    /// Boxed, because a channel preallocates slots and an open session should cost
    /// pointers, not whole messages.
    incoming: mpsc::Sender<Box<ClientJsonRpcMessage>>,
    /// Whether `initialize` arrived; only the `ignore-before-initialize` fault asks.
    initialized: bool,
}

/// Every live session and the caller who opened it, so that another user's token
/// cannot use it (MCP security best practices: bind sessions to the user).
#[derive(Default)]
pub struct Sessions {
    streamable_owners: Mutex<HashMap<String, Authenticated>>,
    sse: Mutex<HashMap<String, SseSession>>,
}

impl Sessions {
    fn streamable(&self) -> std::sync::MutexGuard<'_, HashMap<String, Authenticated>> {
        self.streamable_owners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn sse(&self) -> std::sync::MutexGuard<'_, HashMap<String, SseSession>> {
        self.sse
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Sessions {
    /// Who opened the session a request names (`Mcp-Session-Id` on `/mcp`, the
    /// `session_id` query parameter on the message endpoint), if it is live. Only the
    /// faults that let a session stand in for the token ask.
    pub(crate) fn owner_of<B>(&self, request: &http::Request<B>) -> Option<Authenticated> {
        if request.uri().path() == "/mcp" {
            let id = request.headers().get(streamable::SESSION_HEADER)?;
            return self.streamable().get(id.to_str().ok()?).cloned();
        }
        let id = url::form_urlencoded::parse(request.uri().query()?.as_bytes())
            .find(|(name, _)| name == "session_id")
            .map(|(_, value)| value.into_owned())?;
        self.sse().get(&id).map(|session| session.owner.clone())
    }
}

/// Faults that alter the JSON-RPC messages the server sends, the same way on both
/// transports: each transport passes every outgoing message through here.
pub(crate) fn rewrite_outgoing(config: &crate::Config, message: &mut serde_json::Value) {
    let is_response = message.get("result").is_some() || message.get("error").is_some();
    if !is_response {
        return;
    }
    if crate::injected!(config, DoubleEncodedStringIds)
        && let Some(serde_json::Value::String(id)) = message.get("id")
    {
        message["id"] = serde_json::Value::String(serde_json::Value::from(id.as_str()).to_string());
    }
    // Only `ping` answers with an empty result.
    if crate::injected!(config, PingResultNotEmpty)
        && message.get("result") == Some(&serde_json::json!({}))
    {
        message["result"] = serde_json::json!({"status": "ok"});
    }
}

/// Whether any fault asks for outgoing messages to be rewritten, so that streams are
/// only buffered when one does.
pub(crate) fn rewrites_outgoing(config: &crate::Config) -> bool {
    let rewriting = [
        crate::injected!(config, DoubleEncodedStringIds),
        crate::injected!(config, PingResultNotEmpty),
    ];
    rewriting.contains(&true)
}
