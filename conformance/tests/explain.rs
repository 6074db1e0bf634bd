//! `mcp-auth-conformance explain`: the binary's front door to the requirement catalogue.

use std::process::Command;

fn explain(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_mcp-auth-conformance"))
        .arg("explain")
        .args(args)
        .output()
        .expect("the binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_known_id_prints_its_source_checks_and_faults() {
    let (code, out, _) = explain(&["AUTH-FLOW-04"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("AUTH-FLOW-04  "), "{out}");
    assert!(out.contains("level:    MUST (binds the server)"), "{out}");
    assert!(out.contains("RFC 6749 §4.1.2"), "{out}");
    assert!(
        out.contains("https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2"),
        "{out}"
    );
    assert!(out.contains("[authorization server]"), "{out}");
    assert!(out.contains("proven by: accept-reused-code"), "{out}");
}

#[test]
fn an_unknown_id_exits_2_naming_the_closest() {
    let (code, out, err) = explain(&["AUTH-FLOW-4"]);
    assert_eq!(code, 2);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("closest: AUTH-FLOW-04"), "{err}");
}

#[test]
fn json_export_lists_every_requirement_and_check() {
    let (code, out, _) = explain(&["--json"]);
    assert_eq!(code, 0);
    let value: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        value["requirements"].as_array().map(Vec::len),
        Some(mcp_auth_conformance::catalogue::all().len())
    );
    assert!(value["checks"].as_array().is_some_and(|c| !c.is_empty()));
    assert_eq!(value["unknown_ids"], serde_json::json!([]));
}

#[test]
fn a_run_flag_after_explain_is_refused() {
    let (code, _, err) = explain(&["--url", "http://127.0.0.1:1"]);
    assert_eq!(code, 2);
    assert!(err.contains("explain takes requirement IDs"), "{err}");
}
