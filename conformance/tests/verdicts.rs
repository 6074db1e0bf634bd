//! The verdict model: errors that name a failed prerequisite become `blocked`, the others stay
//! errors and fail the run for a MUST; the console names a prerequisite once; bodies are read
//! only up to the limit.

use std::sync::Arc;
use std::time::Duration;

use mcp_auth_conformance::checks::{Evidence, Level};
use mcp_auth_conformance::http::trace::{self, Trace};
use mcp_auth_conformance::http::{Http, Req};
use mcp_auth_conformance::redact::Redactor;
use mcp_auth_conformance::report::{CheckResult, Outcome, Report, console};
use mcp_auth_conformance::resolve_blocked;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn result(
    key: &'static str,
    transport: &'static str,
    level: Level,
    outcome: Outcome,
) -> CheckResult {
    CheckResult {
        key: key.into(),
        id: key,
        also: Vec::new(),
        area: "X",
        level,
        versions: "all".into(),
        version: None,
        per_version: false,
        transport,
        title: "t",
        outcome,
        baseline: None,
        duration_ms: 0,
        trace: Vec::new(),
    }
}

fn error(message: &str) -> Outcome {
    Outcome::Error(Evidence {
        message: message.into(),
        exchanges: Vec::new(),
    })
}

fn report(results: Vec<CheckResult>) -> Report {
    Report {
        target: "t".into(),
        transports: Vec::new(),
        wall_time_ms: 0,
        results,
        transcript: Default::default(),
        assessment: None,
    }
}

#[test]
fn errors_become_blocked_only_by_a_prerequisite_that_failed_in_the_same_scope() {
    let mut results = vec![
        // The registration check failed on the authorization server.
        result(
            "AUTH-REG-02",
            "auth-server",
            Level::Must,
            Outcome::Fail(Evidence {
                message: "registration answered 500".into(),
                exchanges: Vec::new(),
            }),
        ),
        // Opening a session errored on SSE (itself blocked by registration) and passed on
        // Streamable HTTP.
        result("LIFE-02", "sse", Level::Must, error("registration failed")),
        result(
            "LIFE-02",
            "streamable-http",
            Level::Must,
            Outcome::Pass { note: None },
        ),
        result("TOOLS-02", "sse", Level::Must, error("initialize failed")),
        result(
            "TOOLS-02",
            "streamable-http",
            Level::Must,
            error("initialize timed out"),
        ),
        // A prerequisite that did not run leaves an error.
        result("AUTH-FLOW-04", "auth-server", Level::Must, error("no code")),
    ];
    let pending = [
        None,
        Some("AUTH-REG-02"),
        None,
        Some("LIFE-02"),
        Some("LIFE-02"),
        Some("AUTH-3P-01"),
    ];
    resolve_blocked(&mut results, &pending);
    let blocked_by = |i: usize| match &results[i].outcome {
        Outcome::Blocked { by, .. } => Some(by.as_str()),
        _ => None,
    };
    assert_eq!(blocked_by(1), Some("AUTH-REG-02"));
    // Blocked by a blocked check means blocked by the first failure of the chain.
    assert_eq!(blocked_by(3), Some("AUTH-REG-02"));
    // The prerequisite passed on this transport: the step failed for another reason.
    assert!(matches!(results[4].outcome, Outcome::Error(_)));
    assert!(matches!(results[5].outcome, Outcome::Error(_)));

    let report = report(results);
    let tally = report.tally();
    assert_eq!((tally.failed, tally.errors, tally.blocked), (1, 2, 2));
    assert!(!report.ok());
    assert!(
        report.results[4].counts_against(),
        "a MUST error fails the run"
    );
    assert!(
        !report.results[1].counts_against(),
        "a blocked check does not"
    );

    let printed = console::summary(&report);
    let line = printed
        .lines()
        .find(|l| l.starts_with("blocked by AUTH-REG-02"))
        .expect("a line for the prerequisite");
    assert_eq!(
        line,
        "blocked by AUTH-REG-02 [auth-server]: LIFE-02 [sse], TOOLS-02 [sse]"
    );
    assert_eq!(printed.matches("blocked by").count(), 1, "{printed}");
}

#[test]
fn an_error_in_a_should_check_is_counted_but_does_not_fail_the_run() {
    let report = report(vec![result(
        "AUTH-PRM-06",
        "sse",
        Level::Should,
        error("no answer"),
    )]);
    assert_eq!(report.tally().errors, 1);
    assert!(report.ok());
    assert!(report.summary_line().contains("1 errors"));
}

#[tokio::test]
async fn a_body_beyond_the_limit_is_cut_and_noted() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf).await;
        let body = vec![b'x'; 3 << 20];
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(&body).await;
    });
    let http = Http::new(Duration::from_secs(5), Arc::new(Redactor::default()))
        .expect("client")
        .with_max_body(1 << 20);
    let collected = Arc::new(Trace::for_check("X-01"));
    let url = url::Url::parse(&format!("http://{addr}/big")).expect("url");
    let ex = trace::scope(collected.clone(), http.send(Req::get(url)))
        .await
        .expect("a cut body is no error");
    assert_eq!(ex.body.len(), 1 << 20);
    let notes = collected.notes();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("larger than 1048576 bytes")),
        "{notes:?}"
    );
}
