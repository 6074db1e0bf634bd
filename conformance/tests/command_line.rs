//! The `mcp-auth-conformance` binary as a user runs it: mistakes are caught before a run,
//! with a sentence that says what to do.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Output, Stdio};

use mcp_github_server::Config;
use mock_github::MockGitHub;

const BINARY: &str = env!("CARGO_BIN_EXE_mcp-auth-conformance");

fn suite(args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(args)
        .output()
        .expect("the suite binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn an_id_that_names_no_check_is_an_error_naming_the_closest() {
    let output = suite(&["--id", "AUTH-FLOW-4"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("--id AUTH-FLOW-4 names no check"),
        "{stderr}"
    );
    assert!(stderr.contains("AUTH-FLOW-04"), "{stderr}");
}

#[test]
fn an_area_that_names_nothing_is_an_error() {
    let output = suite(&["--area", "FOO"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(text(&output.stderr).contains("--area FOO names no area"));
}

#[test]
fn ids_ignore_case_and_take_comma_lists() {
    let output = suite(&["--list", "--id", "auth-flow-04,shttp-18"]);
    assert!(output.status.success(), "{output:?}");
    let stdout = text(&output.stdout);
    assert!(stdout.contains("AUTH-FLOW-04"), "{stdout}");
    assert!(stdout.contains("SHTTP-18"), "{stdout}");
    assert!(
        stdout
            .lines()
            .all(|line| line.starts_with("AUTH-FLOW-04") || line.starts_with("SHTTP-18")),
        "{stdout}"
    );
}

#[test]
fn filters_that_exist_but_select_nothing_together_are_an_error() {
    // SHTTP-18 is a Streamable HTTP check; on SSE it selects nothing.
    let output = suite(&["--list", "--id", "SHTTP-18", "--transport", "sse"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(text(&output.stderr).contains("select no check"));
}

#[test]
fn a_server_off_this_machine_is_refused_before_anything_runs() {
    let output = suite(&["--url", "http://example.com:8000"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing ran: {output:?}");
    let help = text(&suite(&["--help"]).stdout);
    assert!(help.contains("loopback"), "{help}");
}

#[test]
fn report_paths_are_checked_before_the_run_and_named() {
    let output = suite(&["--json", "/nonexistent-dir/report.json"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("/nonexistent-dir/report.json"), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing ran: {output:?}");

    let output = suite(&["--junit", "/nonexistent-dir/junit.xml"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(text(&output.stderr).contains("/nonexistent-dir/junit.xml"));
}

#[test]
fn list_with_json_writes_the_selected_checks() {
    let dir =
        std::env::temp_dir().join(format!("mcp-auth-conformance-list-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("list.json");
    let output = suite(&[
        "--list",
        "--area",
        "shttp",
        "--json",
        path.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let listed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the list was written"))
            .expect("the list is JSON");
    let _ = std::fs::remove_dir_all(&dir);
    let checks = listed["checks"].as_array().expect("a checks array");
    assert!(!checks.is_empty());
    assert!(checks.iter().all(|c| c["area"] == "SHTTP"), "{listed}");
    assert_eq!(checks.len(), text(&output.stdout).lines().count());
}

#[test]
fn version_is_the_program_version() {
    let output = suite(&["--version"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        text(&output.stdout).trim(),
        format!("mcp-auth-conformance {}", env!("CARGO_PKG_VERSION"))
    );
    let output = suite(&["--list", "--spec-version", "2024-11-05", "--area", "SSE"]);
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn a_closed_pipe_ends_the_listing_quietly() {
    // The reading end is closed before the suite writes, as `| head` does once it has
    // read its lines: every write fails with a broken pipe.
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let output = Command::new(BINARY)
        .arg("--list")
        .env("RUST_BACKTRACE", "1")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("the suite binary runs");
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{:?}\n{stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The reference server on a loopback port that calls itself `http://localhost:<port>`,
/// and a mock GitHub; the runtime keeps both alive.
async fn server_calling_itself_localhost() -> (MockGitHub, u16) {
    let mock = MockGitHub::builder().start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let port = listener.local_addr().expect("local addr").port();
    let base = url::Url::parse(&format!("http://localhost:{port}")).expect("url");
    let env: Vec<(String, String)> = mock
        .server_env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let config = Config::from_vars(env, base).expect("server configuration");
    tokio::spawn(mcp_github_server::serve(listener, config));
    (mock, port)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_url_naming_the_server_by_another_loopback_name_gets_a_note_first() {
    let (mock, port) = server_calling_itself_localhost().await;
    let args = vec![
        "--url".to_owned(),
        format!("http://127.0.0.1:{port}"),
        "--mock-github".to_owned(),
        mock.base_url(),
        "--id".to_owned(),
        "LIFE-01".to_owned(),
        "--transport".to_owned(),
        "streamable-http".to_owned(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::new(BINARY)
            .args(&args)
            .output()
            .expect("the suite binary runs")
    })
    .await
    .expect("the suite finished");
    let stdout = text(&output.stdout);
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.contains(&format!("the server calls itself http://localhost:{port}"))
            && first.contains("run with that URL"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_prints_the_summary_so_far_and_writes_an_incomplete_report() {
    let (mock, port) = server_calling_itself_localhost().await;
    let dir = std::env::temp_dir().join(format!(
        "mcp-auth-conformance-sigint-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let junit = dir.join("report.xml");
    let sarif = dir.join("report.sarif");
    let html = dir.join("report.html");
    let mut child = Command::new(BINARY)
        .args([
            "--url",
            &format!("http://localhost:{port}"),
            "--mock-github",
            &mock.base_url(),
            "--json",
            json.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "--sarif",
            sarif.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
            // Expired-token checks wait out their token's lifetime; one job keeps the run
            // going long after the first line.
            "--jobs",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the suite starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let pid = child.id().to_string();
    let (mut lines, status, stderr) = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        // The banner, then the first finished check: the run is under way.
        let mut seen = Vec::new();
        for line in lines.by_ref() {
            let line = line.expect("stdout is text");
            let check_line = !line.starts_with("mcp-auth-conformance:")
                && !line.starts_with(char::is_whitespace)
                && !line.is_empty();
            seen.push(line);
            if check_line {
                break;
            }
        }
        let killed = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        seen.extend(lines.map(|line| line.expect("stdout is text")));
        let output = child.wait_with_output().expect("the suite ends");
        (seen, output.status, text(&output.stderr))
    })
    .await
    .expect("the waiting thread finished");
    let report = std::fs::read_to_string(&json);
    let junit = std::fs::read_to_string(&junit);
    let sarif = std::fs::read_to_string(&sarif);
    let html = std::fs::read_to_string(&html);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let stdout = lines.join("\n");
    assert!(stdout.contains("passed"), "no summary:\n{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&report.expect("the partial report was written")).unwrap();
    assert_eq!(report["incomplete"], true, "{report}");
    assert!(
        report["planned_checks"].as_u64().unwrap_or(0) > 1,
        "{report}"
    );
    // Every other report says so too, each in its own format's terms.
    let junit = junit.expect("the partial JUnit report was written");
    assert!(
        junit.contains("type=\"incomplete\"") && junit.contains("interrupted after"),
        "{junit}"
    );
    let sarif: serde_json::Value =
        serde_json::from_str(&sarif.expect("the partial SARIF log was written")).unwrap();
    let invocation = &sarif["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false, "{invocation}");
    assert_eq!(invocation["properties"]["incomplete"], true, "{invocation}");
    let html = html.expect("the partial HTML report was written");
    assert!(
        html.contains("id=\"incomplete\"") && html.contains("interrupted after"),
        "the HTML report has no incomplete banner"
    );
    lines.clear();
}

/// Client ids and secrets are random strings that may begin with `-`: they are values, not
/// options, for the suite and for `connect` alike.
#[test]
fn a_client_secret_that_begins_with_a_dash_is_a_value() {
    let listed = suite(&["--client-id", "-id", "--client-secret", "-secret", "--list"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let help = suite(&[
        "connect",
        "--client-id",
        "-id",
        "--client-secret",
        "-secret",
        "--help",
    ]);
    assert!(help.status.success(), "{}", text(&help.stderr));
}
