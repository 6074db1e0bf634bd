//! The fixture host of the client ID metadata document checks (AUTH-CIMD): a loopback HTTP
//! server that serves the documents a check writes and counts how often the server under
//! test fetched each, and a canary listener that only counts connections, for the addresses a
//! server must not fetch from at all.
//!
//! The documents are served over plain HTTP on `127.0.0.1`, where the MCP spec asks for
//! HTTPS: the suite starts after the server it checks, so a certificate authority of the run
//! would have to be handed to a running server. A server under test therefore needs a test
//! setting that lets it fetch from a loopback IP literal (the reference server's is
//! `MCP_GITHUB_CIMD_ALLOW_LOOPBACK=1`); the SSRF check (AUTH-CIMD-06) uses host names, which
//! such a setting must not cover.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The redirect URI the documents list. A host name rather than the suite's usual
/// `127.0.0.1`, so that a consent page that shows it cannot do so by accident through the
/// server's own loopback address.
pub const CIMD_REDIRECT_URI: &str = "http://localhost:33418/callback";

/// A loopback HTTP server for metadata documents.
pub struct CimdHost {
    server: MockServer,
}

impl CimdHost {
    pub async fn start() -> CimdHost {
        CimdHost {
            // A server of its own rather than one from wiremock's shared pool: a pooled
            // server is reset on drop by blocking on the reset, which can stall a busy
            // runtime; a bare one only shuts its thread down.
            server: MockServer::builder().start().await,
        }
    }

    /// The URL of a document at `path` (which starts with `/`): the `client_id` it stands for.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.uri())
    }

    /// Serves `body` as `application/json` at `path`, with `Cache-Control` when given.
    pub async fn serve(&self, at: &str, body: impl Into<Vec<u8>>, cache_control: Option<&str>) {
        let mut response = ResponseTemplate::new(200).set_body_raw(body.into(), "application/json");
        if let Some(value) = cache_control {
            response = response.insert_header("cache-control", value);
        }
        Mock::given(method("GET"))
            .and(path(at))
            .respond_with(response)
            .mount(&self.server)
            .await;
    }

    /// Serves a valid document for the URL of `path`, listing [`CIMD_REDIRECT_URI`], and returns
    /// that URL.
    pub async fn serve_valid(&self, at: &str, name: &str, cache_control: Option<&str>) -> String {
        let client_id = self.url(at);
        let document = document(&client_id, name, &[CIMD_REDIRECT_URI]);
        self.serve(at, document.to_string(), cache_control).await;
        client_id
    }

    /// How many requests for `path` arrived.
    pub async fn fetches(&self, at: &str) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|request| request.url.path() == at)
            .count()
    }
}

/// A client metadata document with the fields MCP 2025-11-25 requires of it (`client_id`,
/// `client_name`, `redirect_uris`), for a public client.
pub fn document(client_id: &str, name: &str, redirect_uris: &[&str]) -> Value {
    json!({
        "client_id": client_id,
        "client_name": name,
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

/// A loopback listener that accepts connections, counts them and closes them at once. A
/// connection is counted before it is closed, so by the time the server under test has seen
/// its fetch fail and answered, the count includes it.
pub struct Canary {
    pub port: u16,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Canary {
    pub async fn start() -> anyhow::Result<Canary> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Ok(Canary {
            port,
            connections,
            task,
        })
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        self.task.abort();
    }
}
