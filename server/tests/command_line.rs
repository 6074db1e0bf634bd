//! The `mcp-github-server` binary as a user starts it.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
};

const BINARY: &str = env!("CARGO_BIN_EXE_mcp-github-server");

fn without_github_environment() -> Command {
    let mut command = Command::new(BINARY);
    for (name, _) in std::env::vars() {
        if name.starts_with("MCP_GITHUB_") {
            command.env_remove(name);
        }
    }
    command
}

#[test]
fn starting_without_credentials_exits_non_zero_and_names_both_variables() {
    let output = without_github_environment()
        .args(["--port", "0"])
        .output()
        .expect("the server binary runs");
    assert!(!output.status.success(), "exit status {:?}", output.status);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "MCP_GITHUB_GITHUB_CLIENT_ID",
        "MCP_GITHUB_GITHUB_CLIENT_SECRET",
        "export MCP_GITHUB_GITHUB_CLIENT_ID",
        "$env:MCP_GITHUB_GITHUB_CLIENT_SECRET",
        "set MCP_GITHUB_GITHUB_CLIENT_ID",
        "http://localhost:8000/github/callback",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected:?} missing from:\n{stderr}"
        );
    }
    assert!(output.stdout.is_empty(), "nothing may claim readiness");
}

#[test]
fn an_empty_secret_counts_as_missing() {
    let output = without_github_environment()
        .args(["--port", "0"])
        .env("MCP_GITHUB_GITHUB_CLIENT_ID", "an-id")
        .env("MCP_GITHUB_GITHUB_CLIENT_SECRET", "")
        .output()
        .expect("the server binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("MCP_GITHUB_GITHUB_CLIENT_SECRET"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("an-id"),
        "configuration values are not echoed"
    );
}

/// Kills the server however the test ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn port_zero_advertises_the_port_actually_bound() {
    let mut child = without_github_environment()
        .args(["--port", "0"])
        .env("MCP_GITHUB_GITHUB_CLIENT_ID", "an-id")
        .env("MCP_GITHUB_GITHUB_CLIENT_SECRET", "a-secret")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let _running = Running(child);
    let mut ready = String::new();
    BufReader::new(stdout)
        .read_line(&mut ready)
        .expect("the server announces readiness");
    let base = ready
        .trim()
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("unexpected first line {ready:?}"));
    let port: u16 = base
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {base:?}"));
    assert_ne!(port, 0);

    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the port accepts connections");
    write!(
        stream,
        "GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains(&format!("\"issuer\":\"http://localhost:{port}\"")),
        "{response}"
    );
    assert!(
        response.contains(&format!(
            "\"token_endpoint\":\"http://localhost:{port}/token\""
        )),
        "{response}"
    );
}

/// Starts the server on a free port with stdout and stderr piped, and returns it with
/// the base URL it announced.
fn start_with_credentials() -> (std::process::Child, String) {
    let mut child = without_github_environment()
        .args(["--port", "0"])
        .env("MCP_GITHUB_GITHUB_CLIENT_ID", "an-id")
        .env("MCP_GITHUB_GITHUB_CLIENT_SECRET", "a-secret")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut ready = String::new();
    BufReader::new(stdout)
        .read_line(&mut ready)
        .expect("the server announces readiness");
    let base = ready
        .trim()
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("unexpected first line {ready:?}"))
        .to_owned();
    (child, base)
}

fn port_of(base: &str) -> u16 {
    base.rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {base:?}"))
}

/// One HTTP/1.1 GET over a fresh connection; the whole response as text.
fn get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the port accepts connections");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn the_home_page_says_what_the_server_is_and_where_its_endpoints_are() {
    let (mut child, base) = start_with_credentials();
    let stderr = child.stderr.take();
    let _running = Running(child);
    // Nobody reads the log in this test; dropping the pipe's reader here could make the
    // server's log writes fail, so the reader is kept until the end.
    let _stderr = stderr;
    let response = get(port_of(&base), "/");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("a complete response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/html; charset=utf-8"),
        "{head}"
    );
    for expected in [
        format!("{base}/mcp"),
        format!("{base}/sse"),
        format!("{base}/github/callback"),
        "get_user_profile".to_owned(),
        "README".to_owned(),
    ] {
        assert!(
            body.contains(&expected),
            "{expected:?} missing from:\n{body}"
        );
    }
}

#[test]
fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let (mut child, base) = start_with_credentials();
    // A request adds a log line of its own to the start-up lines.
    assert!(get(port_of(&base), "/").starts_with("HTTP/1.1 200"));
    // The log is written by a thread of its own, so the request's line arrives some time
    // after the answer: the test reads until it does (bounded), and only then stops the
    // server.
    let stderr = child.stderr.take().expect("stderr is piped");
    let (lines, logged) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = String::new();
    while let Ok(line) = logged.recv_timeout(std::time::Duration::from_secs(30)) {
        log.push_str(&line);
        log.push('\n');
        if line.contains("request") {
            break;
        }
    }
    child.kill().expect("the server can be stopped");
    child.wait().expect("the server is reaped");
    assert!(
        log.contains("request"),
        "the request was not logged:\n{log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log that is no terminal:\n{log:?}"
    );
}
