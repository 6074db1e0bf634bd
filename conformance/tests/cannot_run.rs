//! Targets the suite cannot test end the run at once with one clear line and exit status 2:
//! nothing listening, a plain static HTTP server, a server that accepts connections and never
//! answers. A server whose MCP requests hang after the login is tested, and fails: the checks
//! that needed a session are errors (or blocked by the one that judges opening a session).

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use mcp_auth_conformance::report::Outcome;
use mcp_auth_conformance::{CannotRun, SuiteConfig, Transport};
use mock_github::MockGitHub;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

/// How long a run against a target it cannot test may take: a few request timeouts at most.
const QUICKLY: Duration = Duration::from_secs(10);

async fn loopback() -> (TcpListener, Url) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let port = listener.local_addr().expect("local addr").port();
    let url = Url::parse(&format!("http://127.0.0.1:{port}")).expect("url");
    (listener, url)
}

/// A port nothing listens on: bound by the OS, then released.
async fn closed_port() -> Url {
    let (listener, url) = loopback().await;
    drop(listener);
    url
}

/// Reads one request head (up to the blank line) from a connection.
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

/// A static file server with no files: 404 to everything.
async fn static_server() -> Url {
    let (listener, url) = loopback().await;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if read_head(&mut stream).await.is_some() {
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\n\
                              Content-Length: 9\r\nConnection: close\r\n\r\nnot found",
                        )
                        .await;
                }
            });
        }
    });
    url
}

/// Accepts every connection and never sends a byte; the connections stay open until the test
/// ends.
async fn silent_server() -> Url {
    let (listener, url) = loopback().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    url
}

fn config(url: Url, mock: &MockGitHub) -> SuiteConfig {
    let mut config = SuiteConfig::new(url, Url::parse(&mock.base_url()).expect("mock URL"));
    config.request_timeout = Duration::from_secs(2);
    config
}

/// Runs the library and the binary against `url`: both must give up quickly with a
/// [`CannotRun`], the binary with exit status 2 and one line on stderr.
async fn assert_cannot_run(url: Url, expected: &str) {
    let mock = MockGitHub::start().await;
    let started = Instant::now();
    let error = tokio::time::timeout(
        QUICKLY,
        mcp_auth_conformance::run(config(url.clone(), &mock)),
    )
    .await
    .expect("the suite gives up within seconds")
    .expect_err("the suite cannot run");
    assert!(started.elapsed() < QUICKLY);
    let cannot = error
        .downcast_ref::<CannotRun>()
        .unwrap_or_else(|| panic!("not a CannotRun: {error:#}"));
    assert!(cannot.0.contains(expected), "{cannot}");

    let started = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-auth-conformance"))
        .args(["--url", url.as_str(), "--mock-github", &mock.base_url()])
        .args(["--timeout", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the suite binary starts");
    // The binary's own bound is what is tested; this one only keeps a broken binary from
    // holding the test, and kills it.
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the binary") {
            break status;
        }
        if started.elapsed() > QUICKLY {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the binary did not give up within {QUICKLY:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr is piped"), &mut stderr)
        .expect("read stderr");
    let output = std::process::Output {
        status,
        stdout: Vec::new(),
        stderr: stderr.into_bytes(),
    };
    assert!(started.elapsed() < QUICKLY);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_cannot_be_tested() {
    assert_cannot_run(closed_port().await, "nothing is listening").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_http_server_cannot_be_tested() {
    assert_cannot_run(static_server().await, "no MCP server").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_cannot_be_tested() {
    assert_cannot_run(silent_server().await, "sent no answer").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_mock_github_cannot_run() {
    let target = support::start(&[], &[]).await;
    let mut config = target.config();
    config.mock_github = closed_port().await;
    config.request_timeout = Duration::from_secs(2);
    let error = tokio::time::timeout(QUICKLY, mcp_auth_conformance::run(config))
        .await
        .expect("the suite gives up within seconds")
        .expect_err("the suite cannot run");
    let cannot = error.downcast_ref::<CannotRun>().expect("a CannotRun");
    assert!(cannot.0.contains("mock GitHub"), "{cannot}");
}

/// Whether a request head is an MCP request with credentials.
fn is_authenticated_mcp(head: &str) -> bool {
    let path = head.split(' ').nth(1).unwrap_or_default();
    let mcp = ["/mcp", "/sse", "/messages"]
        .iter()
        .any(|p| path.starts_with(p));
    mcp && head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("authorization:"))
}

/// A proxy in front of `upstream` that forwards everything except authenticated MCP requests,
/// which it never answers. Each forwarded request gets `Connection: close`, so that every
/// request arrives on a connection of its own and is inspected.
async fn hang_after_login_proxy(listener: TcpListener, upstream: std::net::SocketAddr) {
    while let Ok((mut client, _)) = listener.accept().await {
        tokio::spawn(async move {
            let Some(head) = read_head(&mut client).await else {
                return;
            };
            let head = String::from_utf8_lossy(&head).into_owned();
            if is_authenticated_mcp(&head) {
                // Hold the connection without answering until the client gives up.
                let mut sink = [0u8; 1024];
                while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
            let Ok(mut server) = TcpStream::connect(upstream).await else {
                return;
            };
            let mut rewritten: String = head
                .trim_end_matches("\r\n")
                .lines()
                .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                .map(|l| format!("{l}\r\n"))
                .collect();
            rewritten.push_str("Connection: close\r\n\r\n");
            if server.write_all(rewritten.as_bytes()).await.is_err() {
                return;
            }
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mcp_requests_that_hang_after_login_are_errors_that_fail_the_run() {
    let (upstream, _) = loopback().await;
    let upstream_addr = upstream.local_addr().expect("upstream addr");
    let (proxy, proxy_url) = loopback().await;
    let target = support::start_behind(&[], &[], upstream, proxy_url).await;
    tokio::spawn(hang_after_login_proxy(proxy, upstream_addr));

    let mut config = target.config();
    config.request_timeout = Duration::from_secs(2);
    config.transports = vec![Transport::StreamableHttp];
    config.areas = vec!["LIFE".into(), "TOOLS".into()];
    let report = tokio::time::timeout(Duration::from_secs(120), mcp_auth_conformance::run(config))
        .await
        .expect("the suite finishes")
        .expect("the target can be tested: it answers without credentials");
    for r in &report.results {
        println!("{}", mcp_auth_conformance::report::console::line(r, false));
    }
    assert!(
        !report.ok(),
        "a server whose MCP requests hang is not conformant"
    );
    let life_02 = report
        .get("LIFE-02", Some(Transport::StreamableHttp))
        .expect("LIFE-02 ran");
    assert!(
        matches!(life_02.outcome, Outcome::Error(_)),
        "LIFE-02: {:?}",
        life_02.outcome
    );
    assert!(life_02.counts_against());
    for r in &report.results {
        assert!(
            !matches!(r.outcome, Outcome::Pass { .. }),
            "{} [{}] cannot pass against a server that never answers: {:?}",
            r.key,
            r.transport,
            r.outcome
        );
        if let Outcome::Blocked { by, .. } = &r.outcome {
            assert_eq!(by, "LIFE-02", "{}", r.key);
        }
    }
    assert!(report.tally().errors >= 1);
}
