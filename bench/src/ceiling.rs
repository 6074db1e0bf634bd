//! The ceiling: the least an MCP server over HTTP has to do. It checks the bearer
//! token the way the reference server does (SHA-256 of the token looked up in a map
//! behind a mutex), reads the JSON-RPC request's `id` and `method`, and answers with
//! a fixed result of the same size as the reference server's (captured from it, in
//! `ceiling_results.json`). No sessions on `/mcp`; on the legacy SSE transport, the
//! least that transport needs: a stream per `GET /sse`, `202` per POST, the answer
//! pushed onto the stream.
//!
//! For `tools/call` the ceiling does not call GitHub, so the ratio to it includes the
//! upstream round trip the real servers make.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Query, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{Next, from_fn_with_state},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures::StreamExt;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, value::RawValue};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// The environment variable that carries the one valid token.
pub const TOKEN_VAR: &str = "MCP_BENCH_CEILING_TOKEN";
/// Other tokens in the map, so that the lookup is not in a map of one.
const FILLER_TOKENS: usize = 1_000;

const RESULTS: &str = include_str!("ceiling_results.json");

struct Ceiling {
    /// SHA-256 of each valid token, to a user id.
    tokens: Mutex<HashMap<[u8; 32], u64>>,
    /// Serialized results by method.
    results: HashMap<String, String>,
    sessions: Mutex<HashMap<String, mpsc::Sender<String>>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<&'a str>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub async fn serve(port: u16) -> anyhow::Result<()> {
    let token = std::env::var(TOKEN_VAR).with_context(|| format!("{TOKEN_VAR} is not set"))?;
    let mut tokens = HashMap::new();
    tokens.insert(digest(&token), 1);
    for user in 0..FILLER_TOKENS {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        tokens.insert(Sha256::digest(bytes).into(), user as u64 + 2);
    }
    let results: HashMap<String, Value> = serde_json::from_str(RESULTS)?;
    let state = Arc::new(Ceiling {
        tokens: Mutex::new(tokens),
        results: results
            .into_iter()
            .map(|(method, result)| (method, result.to_string()))
            .collect(),
        sessions: Mutex::default(),
    });
    let app = Router::new()
        .route("/mcp", post(mcp))
        .route("/sse", get(sse))
        .route("/messages/", post(message))
        .route_layer(from_fn_with_state(state.clone(), bearer))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let address = listener.local_addr()?;
    println!("ready http://{address}");
    axum::serve(listener, app).await?;
    Ok(())
}

async fn bearer(State(state): State<Arc<Ceiling>>, request: Request, next: Next) -> Response {
    let user = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|(_, token)| {
            let digest = digest(token.trim());
            let tokens = state
                .tokens
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            tokens.get(&digest).copied()
        });
    match user {
        Some(_) => next.run(request).await,
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
        )
            .into_response(),
    }
}

/// The answer to a request, or `None` for a notification.
fn answer(state: &Ceiling, body: &[u8]) -> Result<Option<String>, StatusCode> {
    let message: Message = serde_json::from_slice(body).map_err(|_| StatusCode::BAD_REQUEST)?;
    let Some(id) = message.id else {
        return Ok(None);
    };
    let result = message
        .method
        .and_then(|method| state.results.get(method))
        .map_or("{}", String::as_str);
    Ok(Some(format!(
        r#"{{"jsonrpc":"2.0","id":{},"result":{result}}}"#,
        id.get()
    )))
}

async fn mcp(State(state): State<Arc<Ceiling>>, body: Bytes) -> Response {
    match answer(&state, &body) {
        Ok(Some(text)) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            text,
        )
            .into_response(),
        Ok(None) => StatusCode::ACCEPTED.into_response(),
        Err(status) => status.into_response(),
    }
}

async fn sse(State(state): State<Arc<Ceiling>>) -> Response {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let session: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    let (sender, receiver) = mpsc::channel::<String>(64);
    state
        .sessions
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(session.clone(), sender);
    let guard = SessionGuard {
        state: state.clone(),
        session: session.clone(),
    };
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/messages/?session_id={session}"));
    let received = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|data| (data, receiver))
    });
    let messages = received.map(move |data| {
        let _ = &guard;
        Ok::<_, Infallible>(Event::default().event("message").data(data))
    });
    let stream = futures::stream::iter([Ok(endpoint)]).chain(messages);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

struct SessionGuard {
    state: Arc<Ceiling>,
    session: String,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.state
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.session);
    }
}

#[derive(Deserialize)]
struct SessionQuery {
    session_id: String,
}

async fn message(
    State(state): State<Arc<Ceiling>>,
    Query(query): Query<SessionQuery>,
    body: Bytes,
) -> Response {
    let sender = state
        .sessions
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(&query.session_id)
        .cloned();
    let Some(sender) = sender else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match answer(&state, &body) {
        Ok(Some(text)) => {
            if sender.send(text).await.is_err() {
                return StatusCode::NOT_FOUND.into_response();
            }
            (StatusCode::ACCEPTED, Body::from("Accepted")).into_response()
        }
        Ok(None) => (StatusCode::ACCEPTED, Body::from("Accepted")).into_response(),
        Err(status) => status.into_response(),
    }
}
