//! The report files of a real run, against the reference server with a MUST fault and a SHOULD
//! fault: the JSON report validates against `docs/report.schema.json`, the SARIF log against
//! the official SARIF 2.1.0 schema and carries what GitHub code scanning requires, JUnit shows
//! warnings, and the HTML page has the summary, the grid and every check (and, where Chromium
//! is installed, renders: a screenshot lands in `target/report.png`).

mod support;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use mcp_auth_conformance::Report;
use mcp_auth_conformance::report::{Outcome, console, html, json, junit, sarif};
use mcp_github_server::Fault;
use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn load_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_valid(schema: &Value, document: &Value, what: &str) {
    let validator = jsonschema::validator_for(schema).expect("the schema compiles");
    let problems: Vec<String> = validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .take(20)
        .collect();
    assert!(
        problems.is_empty(),
        "{what} does not validate:\n{}",
        problems.join("\n")
    );
}

/// A run of two areas against a server that checks the session before the token (AUTH-GEN-01,
/// a MUST: fails) and names no scope in its challenge (AUTH-PRM-06, a SHOULD: warns).
async fn faulty_run() -> Report {
    let target = support::start(
        &[Fault::SessionCheckBeforeAuth, Fault::NoScopeInChallenge],
        &[],
    )
    .await;
    let mut config = target.config();
    config.areas = vec!["AUTH-GEN".into(), "AUTH-PRM".into()];
    let report = support::run(config).await;
    let failed = |id: &str| {
        report
            .results
            .iter()
            .any(|r| r.id == id && matches!(r.outcome, Outcome::Fail(_)))
    };
    let warned = |id: &str| {
        report
            .results
            .iter()
            .any(|r| r.id == id && matches!(r.outcome, Outcome::Warn(_)))
    };
    assert!(failed("AUTH-GEN-01"), "the MUST fault fails its check");
    assert!(warned("AUTH-PRM-06"), "the SHOULD fault warns");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reports_of_a_real_run_are_valid_and_complete() {
    let report = faulty_run().await;

    // JSON: versioned, and valid against the schema the repository publishes.
    let document = json::document(&report).expect("the JSON report");
    assert_eq!(document["format"], "mcp-auth-conformance/report");
    assert_eq!(document["format_version"], 1);
    assert_eq!(document["tool"]["name"], "mcp-auth-conformance");
    assert_eq!(document["tool"]["version"], env!("CARGO_PKG_VERSION"));
    let schema = load_json(&repo_root().join("docs/report.schema.json"));
    assert_valid(&schema, &document, "the JSON report");
    let failing = document["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["id"] == "AUTH-GEN-01" && r["outcome"] == "fail")
        .expect("the failure in the JSON report");
    assert!(
        failing["requirement"]["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://")),
        "a result carries its requirement's link: {failing}"
    );
    // Every result carries its version; the document the profile, the versions and the grid.
    assert!(
        document["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|r| r.get("version").is_some()),
        "every result has a version field"
    );
    assert!(
        document["profile"]["name"].is_string() && document["profile"]["reason"].is_string(),
        "the profile the server was judged by: {}",
        document["profile"]
    );
    let grid = document["grid"].as_array().expect("the grid");
    assert!(
        grid.iter().any(|t| t["areas"]
            .as_array()
            .is_some_and(|areas| areas.iter().any(|a| a["area"] == "AUTH-GEN"))),
        "the grid has the areas that ran"
    );
    // The schema is not a formality: a report without its format is rejected.
    let mut broken = document.clone();
    broken.as_object_mut().expect("object").remove("format");
    assert!(
        !jsonschema::is_valid(&schema, &broken),
        "the schema rejects a report without `format`"
    );

    // SARIF: valid against the official schema, with what code scanning requires.
    let log = sarif::document(&report, "src/server.rs");
    let sarif_schema =
        load_json(&repo_root().join("conformance/tests/data/sarif-schema-2.1.0.json"));
    assert_valid(&sarif_schema, &log, "the SARIF log");
    assert_code_scanning_fields(&log, &report);
    // The log of an interrupted run is as valid, and says so in the invocation.
    let partial: Value = serde_json::from_str(
        &sarif::render_interrupted(&report, "src/server.rs", report.results.len() + 5)
            .expect("SARIF"),
    )
    .expect("JSON");
    assert_valid(
        &sarif_schema,
        &partial,
        "the SARIF log of an interrupted run",
    );
    assert_eq!(
        partial["runs"][0]["invocations"][0]["executionSuccessful"],
        false
    );
    // Fingerprints depend on the check, the transport and the artifact, not on the run.
    assert_eq!(
        sarif::document(&report, "src/server.rs")["runs"][0]["results"],
        log["runs"][0]["results"]
    );

    // JUnit: the warning is a property and the failure a <failure> with the requirement.
    let xml = junit::render(&report).expect("JUnit");
    assert!(
        xml.contains("<property name=\"warning\" value=\"SHOULD: "),
        "warnings are properties:\n{xml}"
    );
    assert!(xml.contains("<failure"), "the failure is a <failure>");
    assert!(
        xml.contains("expected, AUTH-GEN-01 MUST"),
        "the failure says what was expected"
    );
    assert_eq!(
        xml.matches("<property name=\"source\" value=\"https://")
            .count(),
        report.results.len(),
        "every test case carries its requirement's source link"
    );

    // Evidence: what was sent (with `>`), what came back (`<`), never Rust's Debug text.
    let failure = report
        .results
        .iter()
        .find(|r| r.id == "AUTH-GEN-01" && matches!(r.outcome, Outcome::Fail(_)))
        .and_then(|r| r.outcome.evidence())
        .expect("the failure's evidence");
    let exchange = failure
        .exchanges
        .first()
        .expect("the failure shows an exchange");
    assert!(
        exchange.contains("\n> ") && exchange.contains("\n< "),
        "{exchange}"
    );
    for r in &report.results {
        if let Some(e) = r.outcome.evidence() {
            for text in std::iter::once(&e.message).chain(&e.exchanges) {
                assert!(
                    !shows_debug_text(text),
                    "{} shows Rust's Debug text: {text}",
                    r.key
                );
            }
        }
    }

    // Console: every result's line ends its first line with the requirement's source link,
    // and the summary says which profile the server was judged by and prints the grid.
    for r in &report.results {
        let line = console::line(r, false);
        let first = line.lines().next().unwrap_or_default();
        assert!(
            first.ends_with('>') && first.contains("<https://"),
            "{first}"
        );
    }
    let summary = console::summary(&report);
    assert!(summary.contains("judged by the "), "{summary}");
    assert!(summary.contains("areas × versions"), "{summary}");

    // HTML: one page with the summary, the grid, and every check.
    let page = html::render(&report);
    check_html(&page, &report);
    let out = repo_root().join("target");
    std::fs::create_dir_all(&out).expect("target/");
    let file = out.join("report.html");
    std::fs::write(&file, &page).expect("write the page");
    screenshot(&file, &out.join("report.png"));
}

/// Whether a message shows Rust's Debug rendering of an `Option` or a JSON value (`Some("x")`,
/// `None`, `Object {...}`) instead of what the server sent.
fn shows_debug_text(text: &str) -> bool {
    let words: Vec<&str> = text.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    let bare_none = words
        .windows(2)
        .any(|pair| pair[0] == "None" && pair[1] != "of")
        || words.last() == Some(&"None");
    ["Some(", "Object {", "Array [", "String(", "Number("]
        .iter()
        .any(|debug| text.contains(debug))
        || bare_none
}

#[test]
fn debug_text_is_recognised() {
    assert!(shows_debug_text("answered 200 None"));
    assert!(shows_debug_text("Cache-Control is None, not no-store"));
    assert!(shows_debug_text(r#"resource is Some(String("x"))"#));
    assert!(!shows_debug_text("None of the endpoints answered 401"));
    assert!(!shows_debug_text("Cache-Control is absent, not no-store"));
}

fn assert_code_scanning_fields(log: &Value, report: &Report) {
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "mcp-auth-conformance");
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    let rule_ids: Vec<&str> = rules
        .iter()
        .map(|r| r["id"].as_str().expect("rule id"))
        .collect();
    let expected: BTreeSet<&str> = report.results.iter().map(|r| r.id).collect();
    assert_eq!(
        rule_ids.iter().copied().collect::<BTreeSet<_>>(),
        expected,
        "a rule per requirement run"
    );
    assert_eq!(rule_ids.len(), expected.len(), "rule IDs are unique");
    for rule in rules {
        for field in ["shortDescription", "fullDescription"] {
            assert!(
                rule[field]["text"].as_str().is_some_and(|t| !t.is_empty()),
                "{field}: {rule}"
            );
        }
        assert!(
            rule["helpUri"]
                .as_str()
                .is_some_and(|u| u.starts_with("https://")),
            "{rule}"
        );
        let tags = rule["properties"]["tags"].as_array().expect("tags");
        assert!(tags.len() >= 2, "area and level tags: {rule}");
    }
    let gen01 = rules
        .iter()
        .find(|r| r["id"] == "AUTH-GEN-01")
        .expect("AUTH-GEN-01's rule");
    assert_eq!(gen01["defaultConfiguration"]["level"], "error");
    let prm06 = rules
        .iter()
        .find(|r| r["id"] == "AUTH-PRM-06")
        .expect("AUTH-PRM-06's rule");
    assert_eq!(prm06["defaultConfiguration"]["level"], "warning");

    let results = run["results"].as_array().expect("results");
    let reported = report
        .results
        .iter()
        .filter(|r| {
            matches!(
                r.outcome,
                Outcome::Fail(_) | Outcome::Warn(_) | Outcome::Error(_)
            )
        })
        .count();
    assert_eq!(
        results.len(),
        reported,
        "a result per failing, erroring or warning check"
    );
    let mut fingerprints = BTreeSet::new();
    for result in results {
        let rule_id = result["ruleId"].as_str().expect("ruleId");
        let index = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[index]["id"], rule_id, "ruleIndex points at the rule");
        assert!(["error", "warning"].contains(&result["level"].as_str().expect("level")));
        assert!(
            result["message"]["text"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
        let location = &result["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uri"], "src/server.rs");
        assert_eq!(location["region"]["startLine"], 1);
        let fingerprint = result["partialFingerprints"]["primaryLocationLineHash"]
            .as_str()
            .expect("a fingerprint");
        assert!(
            fingerprints.insert(fingerprint.to_owned()),
            "fingerprints are unique: {fingerprint}"
        );
    }
    let failure = results
        .iter()
        .find(|r| r["ruleId"] == "AUTH-GEN-01")
        .expect("AUTH-GEN-01's result");
    assert_eq!(failure["level"], "error");
    let text = failure["message"]["text"].as_str().expect("text");
    assert!(text.contains("expected, AUTH-GEN-01 MUST"), "{text}");
}

fn check_html(page: &str, report: &Report) {
    assert!(page.starts_with("<!DOCTYPE html>"));
    for section in [
        "id=\"summary\"",
        "id=\"grid\"",
        "id=\"versions\"",
        "class=\"profile\"",
        "id=\"checks\"",
        "id=\"filters\"",
    ] {
        assert!(page.contains(section), "the page has {section}");
    }
    // Self-contained: nothing is loaded from anywhere.
    for external in ["<link", " src=", "@import", "url("] {
        assert!(
            !page.contains(external),
            "the page loads nothing ({external})"
        );
    }
    assert_eq!(
        page.matches("<details class=\"check").count(),
        report.results.len(),
        "every check is on the page"
    );
    assert!(page.contains("data-outcome=\"fail\" data-area=\"AUTH-GEN\""));
    assert!(page.contains("data-outcome=\"warn\" data-area=\"AUTH-PRM\""));
    assert!(
        page.contains("<blockquote class=\"requirement\">"),
        "requirements are quoted"
    );
    assert!(page.contains("<th>sse</th>") && page.contains("<th>streamable-http</th>"));
    assert!(!page.contains("<script src"), "the script is inline");
}

/// Renders the page in headless Chromium when it is installed, and checks that a screenshot
/// came out; says so when it is not, so the skip is never silent.
fn screenshot(page: &Path, png: &Path) {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| {
            std::process::Command::new(name)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        // Straight to stderr: the harness captures `println!` of passing tests, and a skip
        // must show.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: the HTML report's screenshot: no chromium on the PATH"
        );
        return;
    };
    let profile = std::env::temp_dir().join(format!("report-chromium-{}", std::process::id()));
    let _ = std::fs::remove_file(png);
    let status = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium starts");
    // Chromium logs its missing D-Bus and the like on stderr; it matters only on failure.
    let status = status.status;
    let _ = std::fs::remove_dir_all(&profile);
    assert!(status.success(), "chromium renders the page: {status}");
    let size = std::fs::metadata(png).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "the screenshot has content ({size} bytes)");
    let _ = writeln!(
        std::io::stderr(),
        "the HTML report's screenshot: {}",
        png.display()
    );
}

/// The report options are in `--help`, and a report path that cannot be written is an error
/// before anything runs (exit 2, naming the path), as for `--json` and `--junit`.
#[test]
fn the_report_options_are_documented_and_their_paths_checked_first() {
    let suite = env!("CARGO_BIN_EXE_mcp-auth-conformance");
    let help = std::process::Command::new(suite)
        .arg("--help")
        .output()
        .expect("the suite runs");
    let help = String::from_utf8_lossy(&help.stdout);
    for option in [
        "--sarif <SARIF>",
        "--sarif-artifact <PATH>",
        "--html <HTML>",
    ] {
        assert!(help.contains(option), "--help names {option}:\n{help}");
    }
    for option in ["--sarif", "--html"] {
        let path = format!("/nonexistent-dir/report{option}");
        let output = std::process::Command::new(suite)
            // Nothing listens on port 9 (discard), so a run that started would fail otherwise.
            .args(["--url", "http://127.0.0.1:9", option, &path])
            .output()
            .expect("the suite runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&path), "the error names {path}: {stderr}");
        assert!(
            stderr.contains(option),
            "the error names {option}: {stderr}"
        );
    }
}
