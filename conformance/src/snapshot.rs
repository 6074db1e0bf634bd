//! The normalized transcript: while checks run, they record what the server said (metadata,
//! registration and token response shapes, challenges, initialize, tools/list, tool results,
//! error bodies) with tokens, ids, ports, codes and times replaced by placeholders, so two runs
//! against the same implementation produce the same JSON and two implementations can be diffed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context as _;
use serde_json::{Map, Value, json};

use crate::config::{SuiteConfig, Transport};
use crate::http::sse::SseParser;
use crate::http::{Exchange, media_type};
use crate::redact::redact_by_shape;

/// JSON keys whose values change from run to run.
const VOLATILE_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "client_id",
    "client_secret",
    "client_id_issued_at",
    "client_secret_expires_at",
    "registration_access_token",
    "code",
    "state",
    "iat",
    "exp",
    "nbf",
    "jti",
    "session_id",
    "sessionId",
];

/// Response headers worth keeping in a transcript.
const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "www-authenticate",
    "cache-control",
    "location",
    "mcp-session-id",
    "x-frame-options",
    "content-security-policy",
    "set-cookie",
    "allow",
];

/// Recorded entries by section (`authorization-server`, `sse`, `streamable-http`).
#[derive(Debug, Default)]
pub struct Transcript {
    entries: Mutex<BTreeMap<String, BTreeMap<String, Value>>>,
}

const AS_SECTION: &str = "authorization-server";

impl Transcript {
    /// Keeps the first value recorded under a key, so concurrent checks cannot make the result
    /// depend on timing.
    pub fn record(&self, transport: Option<Transport>, key: &str, value: Value) {
        let section = transport.map_or(AS_SECTION, Transport::as_str).to_owned();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .entry(section)
            .or_default()
            .entry(key.to_owned())
            .or_insert(value);
    }

    /// The transcript of one transport: the authorization server's entries and its own.
    pub fn for_transport(&self, transport: Transport) -> Value {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let section = |name: &str| json!(entries.get(name).cloned().unwrap_or_default());
        json!({
            AS_SECTION: section(AS_SECTION),
            transport.as_str(): section(transport.as_str()),
        })
    }

    /// Writes `<dir>/<transport>.json` for each transport.
    pub fn write_dir(&self, dir: &Path, transports: &[Transport]) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for t in transports {
            let path = dir.join(format!("{}.json", t.as_str()));
            let text = serde_json::to_string_pretty(&self.for_transport(*t))? + "\n";
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

/// Replaces run-specific URLs with placeholders.
fn normalize_text(config: &SuiteConfig, text: &str) -> String {
    let server = config.url.as_str().trim_end_matches('/');
    let mock = config.mock_github.as_str().trim_end_matches('/');
    redact_by_shape(&text.replace(server, "[server]").replace(mock, "[github]"))
}

/// Normalizes a JSON value: volatile keys get placeholders, strings lose run-specific URLs.
pub fn normalize_json(config: &SuiteConfig, value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                // Volatile values are strings (tokens, codes, ids) or times; a JSON-RPC error's
                // integer `code` is not volatile, and `client_secret_expires_at: 0` means "never".
                let volatile = VOLATILE_KEYS.contains(&k.as_str())
                    && (v.is_string() || (v.is_number() && k != "code" && v.as_i64() != Some(0)));
                let nv = if volatile {
                    Value::String(format!("[{k}]"))
                } else {
                    normalize_json(config, v)
                };
                out.insert(k.clone(), nv);
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| normalize_json(config, v)).collect())
        }
        Value::String(s) => Value::String(normalize_text(config, s)),
        other => other.clone(),
    }
}

/// A normalized view of a response: status, kept headers and body.
pub fn normalize_exchange(config: &SuiteConfig, ex: &Exchange) -> Value {
    let mut headers = Map::new();
    for name in KEPT_HEADERS {
        let values: Vec<Value> = ex
            .header_all(name)
            .into_iter()
            .map(|v| {
                let v = match *name {
                    "mcp-session-id" => "[session-id]".to_owned(),
                    "set-cookie" => match v.split_once('=') {
                        Some((cookie, rest)) => {
                            let attrs = rest.split_once(';').map(|(_, a)| a).unwrap_or_default();
                            format!("{cookie}=[value];{attrs}")
                        }
                        None => v.to_owned(),
                    },
                    _ => normalize_text(config, v),
                };
                Value::String(v)
            })
            .collect();
        match values.len() {
            0 => {}
            1 => {
                headers.insert((*name).to_owned(), values[0].clone());
            }
            _ => {
                headers.insert((*name).to_owned(), Value::Array(values));
            }
        }
    }
    let body = match media_type(ex.header("content-type")).as_deref() {
        _ if ex.body.is_empty() => Value::Null,
        Some("application/json") => match serde_json::from_slice::<Value>(&ex.body) {
            Ok(v) => normalize_json(config, &v),
            Err(_) => Value::String(normalize_text(config, &ex.text())),
        },
        Some("text/event-stream") => {
            let events = SseParser::new().push(&ex.body);
            Value::Array(
                events
                    .iter()
                    .map(|e| {
                        let data = serde_json::from_str::<Value>(&e.data)
                            .map(|v| normalize_json(config, &v))
                            .unwrap_or_else(|_| Value::String(normalize_text(config, &e.data)));
                        json!({"event": e.kind(), "data": data})
                    })
                    .collect(),
            )
        }
        Some("text/html") => Value::String("[html]".into()),
        _ => Value::String(normalize_text(config, &ex.text())),
    };
    json!({
        "request": format!("{} {}", ex.request.method, normalize_text(config, ex.request.url.path())),
        "status": ex.status,
        "headers": headers,
        "body": body,
    })
}
