//! Failure text is written for people: no message, note, reason or request line the suite
//! writes may show Rust's debug forms (`Some(...)`, `None`, `Object {...}`, `String("...")`),
//! which tell a reader nothing about what the server sent.
//!
//! The run switches on faults whose failures go through messages that once printed such
//! forms: a metadata list or field that is missing or not what was expected, an error code or
//! `Content-Type` that may be absent, an SSE event that is not the one wanted. Each fault must
//! make its check fail or warn, so the messages are really produced.

mod support;

use mcp_auth_conformance::Report;
use mcp_auth_conformance::checks::Evidence;
use mcp_auth_conformance::report::Outcome;
use mcp_github_server::Fault;

/// The faults of each run, each with the check whose failure message it provokes. Faults
/// that shape the same document differently (the OpenID Connect document, the first SSE
/// event) go to different runs, so each shows its own message.
const RUNS: &[&[(Fault, &str)]] = &[
    &[
        // grant_types_supported and token_endpoint_auth_methods_supported lack what is used.
        (Fault::MetadataListsDisagree, "AUTH-ASM-07"),
        // The OpenID Connect document has no code_challenge_methods_supported.
        (Fault::OidcWithoutPkceMethods, "AUTH-ASM-08"),
        (Fault::OidcWithoutPkceMethods, "AUTH-ASM-09"),
        // Registration answers an OAuth error that may or may not name its code.
        (Fault::RejectApplicationType, "AUTH-REG-06"),
        // The SSE answers start with data that is not JSON.
        (Fault::NonJsonSseEvent, "SHTTP-07"),
        (Fault::NonJsonSseEvent, "SHTTP-10"),
        // A JSON-RPC error code, present or not, and a result field that is absent.
        (Fault::Base64McpNameNotDecoded, "SHTTP5-14"),
        (Fault::ResultWithoutResultType, "SHTTP5-19"),
    ],
    &[
        // The OpenID Connect document names another issuer.
        (Fault::OidcWrongIssuer, "AUTH-ASM-09"),
        // The SSE answers start with the response, without a priming event.
        (Fault::NoPrimingEvent, "SHTTP-10"),
        // A stream's first message is a method, not the one expected.
        (Fault::NotificationBeforeSubscriptionAck, "SHTTP5-26"),
    ],
    &[
        // An error code where none was expected, and a 202 without a Content-Type.
        (Fault::MethodNotFoundGets200, "SHTTP5-25"),
        (Fault::StatelessRequestGets202, "SHTTP5-05"),
    ],
];

/// What Rust's `Debug` prints for the types a message might carelessly format: options and
/// `serde_json::Value`s.
const DEBUG_FORMS: &[&str] = &[
    "Some(", "Object {", "String(", "Array [", "Number(", "Bool(",
];

/// The debug forms in `text`, with `None` matched as a word (a sentence may say "none").
fn debug_forms_in(text: &str) -> Vec<&'static str> {
    let mut found: Vec<&'static str> = DEBUG_FORMS
        .iter()
        .copied()
        .filter(|form| text.contains(form))
        .collect();
    let is_word_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let none_as_word = text.match_indices("None").any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + "None".len()..].chars().next();
        !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char)
    });
    if none_as_word {
        found.push("None");
    }
    found
}

/// The parts of an exchange the suite writes: the request line with the status, and the
/// request's headers and body (`> `). What the server answered (`< ` and its continuation
/// lines) is its own text, which the suite shows as it came.
fn suite_lines(exchange: &str) -> Vec<&str> {
    exchange
        .lines()
        .enumerate()
        .filter(|(at, line)| *at == 0 || line.starts_with("> "))
        .map(|(_, line)| line)
        .collect()
}

/// The texts of a verdict's evidence that the suite wrote.
fn evidence_texts(evidence: &Evidence) -> Vec<&str> {
    let mut texts = vec![evidence.message.as_str()];
    for exchange in &evidence.exchanges {
        texts.extend(suite_lines(exchange));
    }
    texts
}

/// Every text of an outcome that the suite wrote, for the console and the reports alike.
fn texts(outcome: &Outcome) -> Vec<&str> {
    match outcome {
        Outcome::Pass { note } => note.iter().map(String::as_str).collect(),
        Outcome::Fail(e) | Outcome::Warn(e) | Outcome::Error(e) => evidence_texts(e),
        Outcome::Skip { reason } | Outcome::Blocked { reason, .. } => vec![reason.as_str()],
    }
}

#[test]
fn debug_forms_are_recognised() {
    assert_eq!(
        debug_forms_in(r#"answered 400 Some("invalid_client_metadata")"#),
        ["Some("]
    );
    assert_eq!(debug_forms_in("resultType None, not a string"), ["None"]);
    assert_eq!(
        debug_forms_in(r#"is Some(Array [String("plain")])"#),
        ["Some(", "String(", "Array ["]
    );
    assert!(debug_forms_in("no resultType: absent, none came back; Nonexistent").is_empty());
    assert_eq!(
        suite_lines("POST http://x/mcp -> 400\n> accept: */*\n< Some(body)\n  None"),
        ["POST http://x/mcp -> 400", "> accept: */*"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failure_text_shows_no_rust_debug_forms() {
    let mut leaks = Vec::new();
    for run in RUNS {
        let mut faults: Vec<Fault> = run.iter().map(|(fault, _)| *fault).collect();
        faults.dedup();
        let target = support::start(&faults, &[]).await;
        let mut config = target.config();
        config.ids = run.iter().map(|(_, id)| (*id).to_owned()).collect();
        let report = support::run(config).await;
        for (fault, id) in *run {
            let outcomes = support::outcomes(&report, id);
            assert!(
                outcomes
                    .iter()
                    .any(|o| matches!(o, Outcome::Fail(_) | Outcome::Warn(_))),
                "{fault} should make {id} fail or warn, so its message is written: {:?}",
                outcomes.iter().map(|o| o.word()).collect::<Vec<_>>()
            );
        }
        leaks.extend(debug_forms_of(&report));
    }
    assert!(
        leaks.is_empty(),
        "failure text shows Rust's debug forms:\n{}",
        leaks.join("\n")
    );
}

/// One line for each text of the report that shows a debug form.
fn debug_forms_of(report: &Report) -> Vec<String> {
    report
        .results
        .iter()
        .flat_map(|r| {
            texts(&r.outcome).into_iter().filter_map(move |text| {
                let forms = debug_forms_in(text);
                (!forms.is_empty())
                    .then(|| format!("{} [{}] shows {forms:?}: {text}", r.key, r.transport))
            })
        })
        .collect()
}
