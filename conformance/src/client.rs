//! One MCP client over either transport, for checks that are the same on both (lifecycle, RPC
//! errors, tools, token validation). Transport-specific checks use the raw clients in
//! [`crate::http`] directly.

use anyhow::bail;
use serde_json::{Value, json};

use crate::http::Exchange;
use crate::http::legacy::LegacySession;
use crate::http::streamable::Shttp;

/// An initialized MCP session.
// One connection per check at most: boxing the larger variant would save nothing worth
// the indirection.
#[allow(clippy::large_enum_variant)]
pub enum McpConn {
    Shttp(Shttp),
    Sse(Box<LegacySession>),
}

impl McpConn {
    /// Sends a request and returns the exchange that carried it and the response message.
    pub async fn call(&mut self, method: &str, params: Value) -> anyhow::Result<(Exchange, Value)> {
        match self {
            McpConn::Shttp(c) => {
                let (reply, response) = c.call(method, params).await?;
                Ok((reply.exchange, response))
            }
            McpConn::Sse(s) => s.call(method, params).await,
        }
    }

    /// Sends any JSON-RPC message (possibly malformed) and returns the exchange and, when the
    /// message had an id, the response with that id if one came.
    pub async fn send_raw(&mut self, message: &Value) -> anyhow::Result<(Exchange, Option<Value>)> {
        let id = message.get("id").cloned();
        match self {
            McpConn::Shttp(c) => {
                let reply = c.post(message).await?;
                let response = match &id {
                    Some(id) => reply.response(id).cloned(),
                    None => reply.messages.first().cloned(),
                };
                Ok((reply.exchange, response))
            }
            McpConn::Sse(s) => {
                let exchange = s.post(message).await?;
                if !(200..300).contains(&exchange.status) {
                    return Ok((exchange, None));
                }
                let wait = s.http.timeout;
                let response = match &id {
                    Some(id) => s.wait_response(id, wait).await,
                    None => None,
                };
                Ok((exchange, response))
            }
        }
    }

    /// Sends a body that is not JSON, for parse-error checks.
    pub async fn send_bytes(&mut self, body: &[u8]) -> anyhow::Result<(Exchange, Option<Value>)> {
        match self {
            McpConn::Shttp(c) => {
                let req = c
                    .req(reqwest::Method::POST)
                    .raw(body.to_vec(), "application/json");
                let reply = c.send(req).await?;
                let first = reply.messages.first().cloned();
                Ok((reply.exchange, first))
            }
            McpConn::Sse(s) => {
                let exchange = s
                    .http
                    .send(s.req().raw(body.to_vec(), "application/json"))
                    .await?;
                // A server that accepted the bytes may still answer with an error on the stream.
                let answer = if (200..300).contains(&exchange.status) {
                    s.drain(std::time::Duration::from_millis(300))
                        .await
                        .into_iter()
                        .next()
                } else {
                    None
                };
                Ok((exchange, answer))
            }
        }
    }

    pub async fn notify(
        &mut self,
        method: &str,
        params: Option<Value>,
    ) -> anyhow::Result<Exchange> {
        match self {
            McpConn::Shttp(c) => Ok(c.notify(method, params).await?.exchange),
            McpConn::Sse(s) => s.notify(method, params).await,
        }
    }

    /// Calls a tool and returns the `result`, failing when the server answered with an error.
    pub async fn call_tool(
        &mut self,
        name: &str,
        arguments: Value,
    ) -> anyhow::Result<(Exchange, Value)> {
        let (ex, response) = self
            .call("tools/call", json!({"name": name, "arguments": arguments}))
            .await?;
        match response.get("result") {
            Some(result) => Ok((ex, result.clone())),
            None => bail!("tools/call {name} answered with an error: {response}"),
        }
    }

    pub fn session_id(&self) -> Option<String> {
        match self {
            McpConn::Shttp(c) => c.session.clone(),
            McpConn::Sse(s) => s.session_id(),
        }
    }
}
