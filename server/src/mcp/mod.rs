//! The MCP endpoints: Streamable HTTP at `/mcp` (rmcp's transport behind a thin
//! layer) and the legacy HTTP+SSE transport at `/sse` + `/messages/` (ours, on top of
//! rmcp's message handling). Both sit behind the Origin and bearer checks.

mod handler;
mod sse;
mod streamable;

use std::{collections::HashMap, sync::Mutex};

use axum::{Router, middleware::from_fn_with_state};
use rmcp::model::ClientJsonRpcMessage;
use tokio::sync::mpsc;

use crate::{AppState, http_util, resource};

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
    owner: u64,
    incoming: mpsc::Sender<ClientJsonRpcMessage>,
}

/// Every live session and the GitHub user it belongs to, so that another user's
/// token cannot use it (MCP security best practices: bind sessions to the user).
#[derive(Default)]
pub struct Sessions {
    streamable_owners: Mutex<HashMap<String, u64>>,
    sse: Mutex<HashMap<String, SseSession>>,
}

impl Sessions {
    fn streamable(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
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
