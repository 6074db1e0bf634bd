//! Live mode against the reference server, with the mock only playing GitHub for the server:
//! the suite is not told about the mock, as it would not know GitHub's login page in a deployed
//! setup. Once without a login (only the unauthenticated checks run) and once with a token the
//! test got beforehand with the scripted browser. Every check that runs live must reach the
//! verdict it reaches in mock mode; every other one is skipped with a live-mode reason; and the
//! user's tokens still work afterwards.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mcp_auth_conformance::checks::live_reason;
use mcp_auth_conformance::config::{Live, LiveLogin, SuiteConfig};
use mcp_auth_conformance::http::streamable::Shttp;
use mcp_auth_conformance::http::{Http, Req};
use mcp_auth_conformance::oauth::REDIRECT_URI;
use mcp_auth_conformance::oauth::browser::{Browser, Consent, Script};
use mcp_auth_conformance::oauth::discovery::discover;
use mcp_auth_conformance::oauth::flow::{self, AuthParams, Pkce, Tokens};
use mcp_auth_conformance::oauth::registration::{self, Client, ClientKind};
use mcp_auth_conformance::redact::Redactor;
use mcp_auth_conformance::report::Outcome;
use mcp_auth_conformance::{Report, live_skips};
use url::Url;

/// Every reason a live run may give for not running a check.
const LIVE_REASONS: [&str; 6] = [
    live_reason::NEEDS_MOCK,
    live_reason::NEEDS_LOGIN,
    live_reason::NEEDS_OWN_LOGIN,
    live_reason::DESTRUCTIVE,
    live_reason::TOKEN_ELSEWHERE,
    live_reason::CIMD_UNREACHABLE,
];

fn live_config(target: &support::Target, login: Option<LiveLogin>) -> SuiteConfig {
    let mock_mode = target.config();
    let mut config = SuiteConfig::live(
        target.url.clone(),
        Live {
            login,
            allow_destructive: false,
        },
    );
    config.check_timeout = mock_mode.check_timeout;
    config.slow = mock_mode.slow;
    config
}

/// The outcomes of a run by check key and transport.
fn by_key(report: &Report) -> BTreeMap<(String, &'static str), Outcome> {
    report
        .results
        .iter()
        .map(|r| ((r.key.clone(), r.transport), r.outcome.clone()))
        .collect()
}

fn outcome_of<'a>(report: &'a Report, key: &str) -> Vec<&'a Outcome> {
    report
        .results
        .iter()
        .filter(|r| r.key == key)
        .map(|r| &r.outcome)
        .collect()
}

/// Holds a live report to the mock-mode report of the same server: nothing failed, errored or
/// was blocked; what ran has the mock-mode verdict; what did not run says why, in live-mode
/// words (or is skipped in mock mode too, for the same reason).
fn assert_agrees_with_mock_mode(live: &Report, mock: &Report) {
    let mock = by_key(mock);
    let mut ran = 0;
    for r in &live.results {
        let key = (r.key.clone(), r.transport);
        let expected = mock
            .get(&key)
            .unwrap_or_else(|| panic!("{key:?} not in mock mode"));
        match &r.outcome {
            Outcome::Skip { reason } if LIVE_REASONS.contains(&reason.as_str()) => {}
            Outcome::Skip { reason } => assert_eq!(
                expected, &r.outcome,
                "{key:?} was skipped live ({reason}) but not in mock mode"
            ),
            outcome => {
                ran += 1;
                assert!(
                    !matches!(
                        outcome,
                        Outcome::Fail(_) | Outcome::Error(_) | Outcome::Blocked { .. }
                    ),
                    "{key:?} live: {outcome:?}"
                );
                assert_eq!(
                    outcome.word(),
                    expected.word(),
                    "{key:?} live: {outcome:?}, in mock mode: {expected:?}"
                );
            }
        }
    }
    assert!(ran > 0, "no check ran live");
}

/// Logs in as `octocat` the way a user would before a live run: the scripted browser at the
/// mock GitHub stands in for the person at the real one.
async fn log_in(http: &Http, target: &support::Target) -> (Client, Url, String, Tokens) {
    let mcp = target.url.join("/mcp").expect("MCP URL");
    let probe = Req::post(mcp.clone())
        .header(
            "Accept",
            mcp_auth_conformance::http::streamable::ACCEPT_BOTH,
        )
        .json(
            &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": mcp_auth_conformance::http::streamable::initialize_params("2025-06-18")}),
        );
    let found = discover(http, &mcp, probe).await.expect("discovery");
    let endpoints = found.endpoints.clone();
    let registration = endpoints
        .registration
        .clone()
        .expect("registration endpoint");
    let client = registration::register(
        http,
        &registration,
        ClientKind::Public,
        "live test",
        REDIRECT_URI,
    )
    .await
    .expect("registration");
    let pkce = Pkce::s256();
    // The server as a whole (its issuer), not one endpoint: a token for `/mcp` alone is not
    // accepted at `/sse`, and the test holds both transports to mock mode.
    let resource = found.issuer.clone();
    let url = AuthParams::for_client(&client, &pkce, "live-test", Some(&resource), None)
        .url(&endpoints.authorization);
    let mock = Url::parse(&target.mock.base_url()).expect("mock URL");
    let mut browser = Browser::new(http.clone(), &mock);
    let script = Script {
        login: "octocat".into(),
        fault: None,
        consent: Consent::Approve,
        redirect_uri: Url::parse(REDIRECT_URI).expect("redirect URI"),
    };
    let outcome = flow::authorize(&mut browser, url, &script)
        .await
        .expect("the login walk");
    let code = outcome
        .callback()
        .and_then(|c| c.code)
        .expect("an authorization code");
    let ex = flow::exchange_code(
        http,
        &endpoints.token,
        &client,
        &code,
        Some(&pkce.verifier),
        Some(&resource),
    )
    .await
    .expect("token request");
    let tokens = flow::parse_tokens(http, ex).expect("tokens");
    (client, endpoints.token, resource, tokens)
}

/// How often the mock's GitHub login page was visited.
async fn authorize_visits(target: &support::Target) -> usize {
    target
        .mock
        .journal()
        .await
        .iter()
        .filter(|e| e.path.contains("authorize"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_mode_runs_what_needs_no_mock_and_skips_the_rest_with_reasons() {
    let target = support::start(&[], &[]).await;
    let mock_mode = support::run_quietly(target.config()).await;
    let http = Http::new(Duration::from_secs(10), Arc::new(Redactor::default())).expect("client");

    // Without a login.
    let visits = authorize_visits(&target).await;
    let anonymous = support::run(live_config(&target, None)).await;
    assert_agrees_with_mock_mode(&anonymous, &mock_mode);
    // AUTH-ASM-07 is no longer among them: it compares the metadata with what a login
    // issues (a refresh token means the refresh_token grant is listed).
    for key in [
        "AUTH-PRM-01",
        "AUTH-ASM-04",
        "AUTH-REG-02",
        "AUTH-FLOW-01",
        "AUTH-GEN-07",
    ] {
        for outcome in outcome_of(&anonymous, key) {
            assert!(
                matches!(outcome, Outcome::Pass { .. }),
                "{key}: {outcome:?}"
            );
        }
    }
    for outcome in outcome_of(&anonymous, "TOOLS-02") {
        assert_eq!(
            outcome,
            &Outcome::Skip {
                reason: live_reason::NEEDS_LOGIN.into()
            }
        );
    }
    for outcome in outcome_of(&anonymous, "AUTH-3P-02") {
        assert_eq!(
            outcome,
            &Outcome::Skip {
                reason: live_reason::NEEDS_MOCK.into()
            }
        );
    }
    let reasons: Vec<String> = live_skips(&anonymous).into_iter().map(|(r, _)| r).collect();
    assert!(
        reasons.contains(&live_reason::NEEDS_LOGIN.to_owned()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&live_reason::DESTRUCTIVE.to_owned()),
        "{reasons:?}"
    );

    // With the user's token, got beforehand.
    let (client, token_endpoint, resource, tokens) = log_in(&http, &target).await;
    let visits_after_login = authorize_visits(&target).await;
    assert!(
        visits_after_login > visits,
        "the test's own login went to the mock"
    );
    let login = LiveLogin {
        access_token: tokens.access_token.clone(),
        refresh_token: tokens.refresh_token.clone(),
        client_id: Some(client.client_id.clone()),
        client_secret: None,
        source: "the test".into(),
    };
    let logged_in = support::run(live_config(&target, Some(login))).await;
    assert_agrees_with_mock_mode(&logged_in, &mock_mode);
    for key in ["TOOLS-02", "LIFE-02", "RPC-08", "SHTTP-18", "SSE-04"] {
        let outcomes = outcome_of(&logged_in, key);
        assert!(!outcomes.is_empty(), "{key} was not planned");
        for outcome in outcomes {
            assert!(
                matches!(outcome, Outcome::Pass { .. }),
                "{key}: {outcome:?}"
            );
        }
    }
    // A second user, an upstream fault, the journal: only the mock gives them.
    for key in ["AUTH-TOK-05", "TOOLS-06#profile", "TOOLS-10", "AUTH-TOK-03"] {
        for outcome in outcome_of(&logged_in, key) {
            assert_eq!(
                outcome,
                &Outcome::Skip {
                    reason: live_reason::NEEDS_MOCK.into()
                },
                "{key}"
            );
        }
    }
    for outcome in outcome_of(&logged_in, "AUTH-FLOW-19") {
        assert!(matches!(outcome, Outcome::Skip { .. }), "{outcome:?}");
    }
    assert!(
        !live_skips(&logged_in)
            .iter()
            .any(|(r, _)| r == live_reason::NEEDS_LOGIN),
        "with a login, no check asked for one"
    );
    // The suite never went to the GitHub login, which it was not told about.
    assert_eq!(authorize_visits(&target).await, visits_after_login);

    // Nothing was revoked: the access token still opens a session, and the refresh token
    // still refreshes.
    let mut session = Shttp::new(
        http.clone(),
        target.url.join("/mcp").expect("MCP URL"),
        Some(tokens.access_token.clone()),
    );
    session
        .initialize("2025-06-18")
        .await
        .expect("the user's token still works after the live runs");
    let refresh = tokens.refresh_token.expect("a refresh token");
    let ex = flow::refresh(&http, &token_endpoint, &client, &refresh, Some(&resource))
        .await
        .expect("refresh request");
    assert_eq!(ex.status, 200, "the refresh token still works");
}

const BINARY: &str = env!("CARGO_BIN_EXE_mcp-auth-conformance");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_says_live_counts_what_could_not_run_and_never_prints_the_token() {
    let target = support::start(&[], &[]).await;
    let http = Http::new(Duration::from_secs(10), Arc::new(Redactor::default())).expect("client");
    let (_, _, _, tokens) = log_in(&http, &target).await;
    let url = target.url.to_string();
    let token = tokens.access_token.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BINARY)
            .args(["--live", "--url", &url, "--area", "TOOLS", "--verbose"])
            .env("MCP_AUTH_CONFORMANCE_TOKEN", &token)
            .env_remove("MCP_AUTH_CONFORMANCE_REFRESH_TOKEN")
            .output()
            .expect("the suite binary runs")
    })
    .await
    .expect("the binary's thread");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("(live: no mock GitHub; logged in with the given token; non-destructive)"),
        "{stdout}"
    );
    // TOOLS-06 (another user's profile) and TOOLS-10 (a GitHub fault), on both transports at
    // each version the server negotiates there: the count is that of their skip lines.
    let needs_mock = stdout
        .lines()
        .filter(|line| line.trim() == live_reason::NEEDS_MOCK)
        .count();
    assert!(needs_mock >= 4, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "Live run: {needs_mock} checks could not run here:\n{needs_mock:>6}  {}",
            live_reason::NEEDS_MOCK
        )),
        "{stdout}"
    );
    assert!(!stdout.contains(&tokens.access_token), "{stdout}");
    assert!(!stderr.contains(&tokens.access_token), "{stderr}");
}

#[test]
fn live_flags_are_checked_before_a_run() {
    let run = |args: &[&str]| {
        std::process::Command::new(BINARY)
            .args(args)
            .output()
            .expect("the suite binary runs")
    };
    // Live mode has no mock GitHub to name.
    let both = run(&["--live", "--mock-github", "http://127.0.0.1:1"]);
    assert_eq!(both.status.code(), Some(2), "{both:?}");
    // Logging in and destructive checks are live-mode options.
    for args in [&["--login", "browser"][..], &["--allow-destructive"][..]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--live"),
            "{out:?}"
        );
    }
    // Mock mode stays on loopback; live mode takes any http(s) URL (here: refused at once by
    // the loopback rule only without --live).
    let remote = run(&["--url", "https://mcp.example.com", "--list"]);
    assert_eq!(remote.status.code(), Some(2), "{remote:?}");
    let listed = run(&["--live", "--url", "https://mcp.example.com", "--list"]);
    assert_eq!(listed.status.code(), Some(0), "{listed:?}");
    let help = String::from_utf8_lossy(&run(&["--help"]).stdout).into_owned();
    assert!(help.contains("loopback addresses only"), "{help}");
    assert!(help.contains("--url may then be any http(s) URL"), "{help}");
}

/// `--login browser` logs in as `connect` does, in the "system browser" of the connect tests
/// (`tests/support/browser.sh` hands the URL to this test, whose scripted browser logs in at
/// the mock and delivers the redirect); a second run reuses the cached tokens without one.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_browser_logs_in_as_connect_does_and_the_next_run_uses_its_cache() {
    let target = support::start(&[], &[]).await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("live-login-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test directory");
    let fifo = dir.join("browser.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let browser = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/browser.sh");
    let suite = |browser: &std::path::Path, login: bool| {
        let mut command = std::process::Command::new(BINARY);
        command
            .args(["--live", "--url", target.url.as_str(), "--area", "TOOLS"])
            .env("BROWSER", browser)
            .env("CONNECT_TEST_BROWSER_FIFO", &fifo)
            // The connect cache lives in the user's cache directory: here, the test's.
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .env_remove("MCP_AUTH_CONFORMANCE_TOKEN")
            .env_remove("MCP_AUTH_CONFORMANCE_REFRESH_TOKEN");
        if login {
            command.args(["--login", "browser"]);
        }
        command
    };
    let mut first = suite(&browser, true);
    let running = tokio::task::spawn_blocking(move || first.output().expect("the suite runs"));
    let fifo_path = fifo.clone();
    let url = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || std::fs::read_to_string(fifo_path)),
    )
    .await
    .expect("the suite opens the browser")
    .expect("reader")
    .expect("read the FIFO");
    let url = Url::parse(url.trim()).expect("the authorization URL");
    let redirect_uri = url
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| Url::parse(&v).expect("redirect_uri"))
        .expect("a redirect_uri");
    let http = Http::new(Duration::from_secs(10), Arc::default()).expect("client");
    let mock = Url::parse(&target.mock.base_url()).expect("mock URL");
    let mut walker = Browser::new(http.clone(), &mock);
    let script = Script {
        login: "octocat".into(),
        fault: None,
        consent: Consent::Approve,
        redirect_uri,
    };
    let arrival = walker.walk(url, &script).await.expect("the walk");
    let mcp_auth_conformance::oauth::browser::Arrival::Callback(callback) = arrival else {
        panic!("the login did not come back to the suite: {arrival:?}");
    };
    let page = http
        .send(Req::get(callback))
        .await
        .expect("the listener answers");
    assert_eq!(page.status, 200, "{}", page.text());
    let output = tokio::time::timeout(Duration::from_secs(120), running)
        .await
        .expect("the run ends")
        .expect("the run's thread");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("(live: no mock GitHub; logged in with a browser login;"),
        "{stdout}"
    );
    assert!(stdout.contains("PASS     TOOLS-02"), "{stdout}");

    // No browser this time (`false` fails if it is started): the cached tokens are used.
    let second = tokio::task::spawn_blocking({
        let mut command = suite(std::path::Path::new("false"), false);
        move || command.output().expect("the suite runs")
    })
    .await
    .expect("the run's thread");
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert_eq!(second.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("(live: no mock GitHub; logged in with the connect cache;"),
        "{stdout}"
    );
    assert!(stdout.contains("PASS     TOOLS-02"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
