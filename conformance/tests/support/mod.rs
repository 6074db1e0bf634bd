//! Shared test setup: a mock GitHub and the reference server in this process, on port 0.

#![allow(dead_code)]

use std::time::Duration;

use mcp_auth_conformance::report::Outcome;
use mcp_auth_conformance::{Report, SuiteConfig};
use mcp_github_server::{Config, Fault};
use mock_github::MockGitHub;
use url::Url;

/// A running mock GitHub and reference server. The server task ends with the test's runtime.
pub struct Target {
    pub mock: MockGitHub,
    pub url: Url,
}

impl Target {
    /// The suite configuration for this target.
    pub fn config(&self) -> SuiteConfig {
        let mut config = SuiteConfig::new(
            self.url.clone(),
            Url::parse(&self.mock.base_url()).expect("the mock's URL"),
        );
        config.check_timeout = Duration::from_secs(20);
        // The server gives up on GitHub after three seconds (see `start`), so the checks
        // that wait for that are quick enough to run every time.
        config.slow = true;
        config
    }
}

/// Starts the reference server with the given faults and extra configuration variables.
pub async fn start(faults: &[Fault], vars: &[(&str, &str)]) -> Target {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let url = Url::parse(&format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("local addr").port()
    ))
    .expect("url");
    start_behind(faults, vars, listener, url).await
}

/// Starts the reference server on `listener` with `url` as its public URL (a proxy in front
/// of it, for tests that put one there).
pub async fn start_behind(
    faults: &[Fault],
    vars: &[(&str, &str)],
    listener: tokio::net::TcpListener,
    url: Url,
) -> Target {
    // The mock's slow answers come after 6 s, well after the server's upstream timeout of
    // 3 s, so the timeout checks see the server give up rather than the mock answer. A
    // shorter timeout made ordinary logins time out on a loaded two-core machine.
    let mock = MockGitHub::builder()
        .slow_delay(Duration::from_secs(6))
        .start()
        .await;
    let mut env: Vec<(String, String)> = mock
        .server_env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.push(("MCP_GITHUB_UPSTREAM_TIMEOUT_SECS".into(), "3".into()));
    // The suite serves client ID metadata documents on a loopback IP literal.
    env.push(("MCP_GITHUB_CIMD_ALLOW_LOOPBACK".into(), "1".into()));
    env.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let mut config = Config::from_vars(env, url.clone()).expect("server configuration");
    config.faults = faults.iter().copied().collect();
    tokio::spawn(mcp_github_server::serve(listener, config));
    Target { mock, url }
}

/// Applies the suite options a fault's table entry asks for (`Fault::suite_args`), as
/// the command line would.
pub fn apply_suite_args(config: &mut SuiteConfig, args: &[&str]) {
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .expect("every suite option of the fault table takes a value");
        match *flag {
            "--client-id" => {
                config.client = Some(mcp_auth_conformance::config::PreRegisteredClient {
                    client_id: (*value).to_owned(),
                    client_secret: None,
                    redirect_uri: mcp_auth_conformance::oauth::REDIRECT_URI.to_owned(),
                });
            }
            "--tool-profile" => {
                config.tool_profile = value.parse().expect("a tool profile");
            }
            other => panic!("the tests do not know the suite option {other}"),
        }
    }
}

/// Runs the suite and prints every non-passing result, so a failing test shows why.
pub async fn run(config: SuiteConfig) -> Report {
    let report = run_quietly(config).await;
    for r in &report.results {
        if !matches!(
            r.outcome,
            mcp_auth_conformance::report::Outcome::Pass { .. }
        ) {
            println!("{}", mcp_auth_conformance::report::console::line(r, true));
        }
    }
    println!(
        "{}",
        mcp_auth_conformance::report::console::summary(&report)
    );
    report
}

/// Runs the suite without printing, for tests that run it many times and report
/// differences themselves.
pub async fn run_quietly(config: SuiteConfig) -> Report {
    // Every check has its own timeout; this bound turns anything else that hangs into
    // a failure with a message instead of a test that never ends.
    tokio::time::timeout(Duration::from_secs(300), mcp_auth_conformance::run(config))
        .await
        .expect("the suite finishes within 5 minutes")
        .expect("the suite runs")
}

/// Runs only the checks `keys` against the reference server with `faults`.
pub async fn run_only(faults: &[Fault], keys: &[&str]) -> Report {
    let target = start(faults, &[]).await;
    let mut config = target.config();
    config.ids = keys.iter().map(|k| (*k).to_owned()).collect();
    run(config).await
}

/// The outcomes of check `key` on every transport and version it ran at; it must have run.
pub fn outcomes<'a>(report: &'a Report, key: &str) -> Vec<&'a Outcome> {
    let found: Vec<&Outcome> = report
        .results
        .iter()
        .filter(|r| r.key == key)
        .map(|r| &r.outcome)
        .collect();
    assert!(!found.is_empty(), "{key} did not run");
    found
}
