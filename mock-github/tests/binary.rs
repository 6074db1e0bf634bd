//! The standalone `mock-github` binary, as a server in another language would use it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mock-github");

/// Kills the child on drop, so a failing assertion never leaves a mock running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Running {
    fn spawn(args: &[&str]) -> (Running, BufReader<std::process::ChildStdout>) {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        (Running(child), stdout)
    }

    /// Sends SIGTERM to this child (by its pid) and waits, bounded, for it to exit.
    #[cfg(unix)]
    fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "mock-github ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn read_line(stdout: &mut impl BufRead) -> String {
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    line
}

#[tokio::test]
async fn json_mode_prints_one_line_and_serves_until_sigterm() {
    let (mut running, mut stdout) = Running::spawn(&["--port", "0", "--json"]);
    let line: Value = serde_json::from_str(&read_line(&mut stdout)).unwrap();
    let base = line["base_url"].as_str().unwrap().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert_eq!(
        line["env"]["MCP_GITHUB_GITHUB_CLIENT_ID"],
        mock_github::CLIENT_ID
    );
    assert_eq!(
        line["env"]["MCP_GITHUB_GITHUB_TOKEN_URL"],
        format!("{base}/login/oauth/access_token")
    );
    assert_eq!(
        line["env"]["MCP_GITHUB_GITHUB_API_URL"],
        format!("{base}/api")
    );

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let users: Value = client
        .get(format!("{base}{}", mock_github::USERS_PATH))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users[0]["login"], "octocat");

    #[cfg(unix)]
    assert!(running.terminate().success());
}

#[test]
fn shell_mode_prints_bash_powershell_and_cmd_lines() {
    let (_running, mut stdout) = Running::spawn(&["--port", "0"]);
    let lines: Vec<String> = (0..19).map(|_| read_line(&mut stdout)).collect();
    let text = lines.concat();
    assert!(text.contains("export MCP_GITHUB_GITHUB_CLIENT_ID='mock-github-client-id'\n"));
    assert!(text.contains("$env:MCP_GITHUB_GITHUB_CLIENT_SECRET = 'mock-github-client-secret'\n"));
    assert!(text.contains("set \"MCP_GITHUB_GITHUB_AUTH_URL=http://127.0.0.1:"));
}

#[test]
fn a_taken_port_is_reported_not_panicked_on() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = Command::new(BIN).args(["--port", &port]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot listen"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn intercept_mode_writes_the_ca_and_announces_the_proxy_environment() {
    let dir = std::env::temp_dir().join(format!("mock-github-binary-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    let ca_arg = ca_file.display().to_string();
    let (mut running, mut stdout) =
        Running::spawn(&["--port", "0", "--json", "--intercept", "--ca-file", &ca_arg]);
    let line: Value = serde_json::from_str(&read_line(&mut stdout)).unwrap();
    let proxy = line["proxy_url"].as_str().unwrap().to_owned();
    assert!(proxy.starts_with("http://127.0.0.1:"), "{proxy}");
    assert_eq!(line["ca_file"], ca_arg);
    let env = &line["env"];
    assert_eq!(env["HTTPS_PROXY"], proxy);
    assert_eq!(env["SSL_CERT_FILE"], ca_arg);
    assert_eq!(env["NODE_EXTRA_CA_CERTS"], ca_arg);
    assert_eq!(env["MCP_GITHUB_GITHUB_CLIENT_ID"], mock_github::CLIENT_ID);
    // The server's own GitHub URLs are what is checked, so none is handed out.
    assert!(env.get("MCP_GITHUB_GITHUB_AUTH_URL").is_none(), "{env}");
    assert!(env.get("MCP_GITHUB_GITHUB_API_URL").is_none(), "{env}");

    // The file is written before the line is printed, and it is the CA the proxy's leaf
    // chains to: a client trusting only it reaches the mock as api.github.com.
    let pem = std::fs::read(&ca_file).unwrap();
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(&proxy).unwrap())
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .user_agent("binary-test")
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let response = client
        .get("https://api.github.com/user")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "the mock's answer to a request without a token"
    );

    #[cfg(unix)]
    assert!(running.terminate().success());
    let _ = std::fs::remove_dir_all(&dir);
}
