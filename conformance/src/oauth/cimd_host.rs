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
    /// Always `Some` until dropped; see the `Drop` impl.
    server: Option<MockServer>,
}

impl CimdHost {
    pub async fn start() -> CimdHost {
        CimdHost {
            // A server of its own rather than one from wiremock's shared pool: a pooled
            // server is reset on drop by blocking on the reset, which can stall a busy
            // runtime; a bare one only shuts its thread down.
            server: Some(MockServer::builder().start().await),
        }
    }

    fn server(&self) -> &MockServer {
        self.server
            .as_ref()
            .expect("the fixture host's server lives until drop")
    }

    /// The URL of a document at `path` (which starts with `/`): the `client_id` it stands for.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server().uri())
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
            .mount(self.server())
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
        self.server()
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|request| request.url.path() == at)
            .count()
    }
}

/// wiremock's `MockServer` verifies its expectations when dropped, with a
/// `futures::executor::block_on` over a tokio lock. Dropped inside a tokio task that has
/// used up its cooperative budget, that lock answers "pending, try again" for ever, and the
/// drop spins at full CPU; a check's timeout cannot end it, since the spin never yields.
/// The host sets no expectations, so the verification has nothing to say: it runs on a
/// thread of its own, outside any runtime, where the budget does not apply.
impl Drop for CimdHost {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = std::thread::Builder::new()
                .name("cimd-host-drop".into())
                .spawn(move || drop(server));
        }
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

/// A loopback HTTP/1.1 server that answers every request with one body sent chunked,
/// without `Content-Length`, and counts the requests: a document whose size its reader learns
/// only by reading it. wiremock always announces the length.
pub struct ChunkedHost {
    port: u16,
    requests: Arc<AtomicUsize>,
    body: Arc<std::sync::Mutex<Arc<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ChunkedHost {
    /// The size of each chunk written.
    const CHUNK: usize = 16 * 1024;

    /// Starts the host with an empty body: a document names its own URL, which needs the
    /// port first, so the body is set afterwards ([`ChunkedHost::serve`]).
    pub async fn start() -> anyhow::Result<ChunkedHost> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(AtomicUsize::new(0));
        let body = Arc::new(std::sync::Mutex::new(Arc::new(Vec::new())));
        let (counter, served) = (requests.clone(), body.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                let body = served
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .clone();
                tokio::spawn(async move {
                    // A reader that stops early (the point of a size limit) ends the
                    // connection; what could not be written is of no interest.
                    let _ = answer_chunked(stream, &counter, &body).await;
                });
            }
        });
        Ok(ChunkedHost {
            port,
            requests,
            body,
            task,
        })
    }

    /// Serves `body` to every request from now on, whatever its path.
    pub fn serve(&self, body: Vec<u8>) {
        *self
            .body
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(body);
    }

    /// The URL of `path` on this host.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// How many requests arrived, for any path.
    pub fn fetches(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads one request head (bounded, with a deadline), counts it, and sends the body chunked.
async fn answer_chunked(
    mut stream: tokio::net::TcpStream,
    requests: &AtomicUsize,
    body: &[u8],
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    let read_head = async {
        while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < 64 * 1024 {
            let read = stream.read(&mut buffer).await?;
            if read == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            head.extend_from_slice(&buffer[..read]);
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read_head)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    requests.fetch_add(1, Ordering::SeqCst);
    stream
        .write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
              transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        )
        .await?;
    for chunk in body.chunks(ChunkedHost::CHUNK) {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await?;
        stream.write_all(chunk).await?;
        stream.write_all(b"\r\n").await?;
    }
    stream.write_all(b"0\r\n\r\n").await?;
    stream.shutdown().await
}

impl Drop for ChunkedHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::FutureExt;

    use super::CimdHost;

    /// A check that ends while its task has no cooperative budget left drops the host right
    /// there. That drop must return: before it ran on a thread of its own, it spun for ever.
    #[test]
    fn dropping_the_host_with_no_budget_left_returns() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let host = CimdHost::start().await;
                let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
                for _ in 0..1_000 {
                    sender.send(()).expect("an open channel");
                }
                // Each ready receive takes one unit of the task's budget; once it is gone,
                // the receive answers "pending" without the task ever yielding.
                while receiver.recv().now_or_never().is_some() {}
                drop(host);
            });
            let _ = done.send(());
        });
        // A bound on a hang, not a speed target: the drop takes milliseconds.
        assert!(
            finished.recv_timeout(Duration::from_secs(60)).is_ok(),
            "dropping the CIMD fixture host spun instead of returning"
        );
    }
}
