//! The SARIF 2.1.0 rendering (`--sarif FILE`), for GitHub code scanning and other SARIF
//! viewers: a rule per requirement a check of the run reports, with the quoted sentence and
//! its link; a result per failing, erroring or warning check and transport.
//!
//! A conformance finding has no line of source. Code scanning still requires a physical
//! location, so every result points at one artifact, `--sarif-artifact PATH` (a path in the
//! server's repository, such as its entry point; [`DEFAULT_ARTIFACT`] unless given), at line 1.
//! Findings dedupe across runs by `partialFingerprints`, computed from the check's key, the
//! transport and the artifact only, never from evidence that changes between runs (ports,
//! timings).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::{BaselineMark, CheckResult, Outcome, Report, TOOL_NAME, TOOL_VERSION};
use crate::checks::Level;

/// The artifact results point at when `--sarif-artifact` is not given: a repository-relative
/// placeholder that stays the same between runs, so alerts keep their identity.
pub const DEFAULT_ARTIFACT: &str = "mcp-server";

/// The schema the document names; SARIF viewers use it to recognise the version.
pub const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

pub fn render(report: &Report, artifact: &str) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(&document(report, artifact))? + "\n")
}

/// The SARIF log of an interrupted run: the invocation did not succeed, and a tool
/// execution notification says how much ran (SARIF 2.1.0 §3.20.14 and §3.20.21).
pub fn render_interrupted(
    report: &Report,
    artifact: &str,
    planned: usize,
) -> anyhow::Result<String> {
    let mut log = document(report, artifact);
    if let Some(invocation) = log.pointer_mut("/runs/0/invocations/0") {
        invocation["executionSuccessful"] = false.into();
        invocation["toolExecutionNotifications"] = json!([{
            "level": "error",
            "message": {"text": super::interrupted_notice(report.results.len(), planned)},
        }]);
        invocation["properties"]["incomplete"] = true.into();
        invocation["properties"]["planned_checks"] = planned.into();
    }
    Ok(serde_json::to_string_pretty(&log)? + "\n")
}

/// The SARIF log as a JSON value.
pub fn document(report: &Report, artifact: &str) -> Value {
    // One rule per requirement ID, in ID order, with the index results refer to.
    let mut rule_ids: BTreeMap<&str, &CheckResult> = BTreeMap::new();
    for r in &report.results {
        rule_ids.entry(r.id).or_insert(r);
    }
    let index: BTreeMap<&str, usize> = rule_ids
        .keys()
        .enumerate()
        .map(|(i, id)| (*id, i))
        .collect();
    let rules: Vec<Value> = rule_ids.values().map(|r| rule(r)).collect();
    let results: Vec<Value> = report
        .results
        .iter()
        .filter_map(|r| result(r, index[r.id], artifact))
        .collect();
    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": TOOL_NAME,
                "version": TOOL_VERSION,
                "semanticVersion": TOOL_VERSION,
                "rules": rules,
            }},
            "automationDetails": {"description": {"text": format!("conformance of {}", report.target)}},
            "invocations": [{
                "executionSuccessful": true,
                "properties": {"target": report.target, "ok": report.ok(), "summary": report.tally()},
            }],
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

/// The level a requirement's findings default to: a MUST fails a run, anything else warns.
fn default_level(level: Level) -> &'static str {
    match level {
        Level::Must => "error",
        _ => "warning",
    }
}

fn rule(r: &CheckResult) -> Value {
    let requirement = crate::catalogue::get(r.id);
    let title = requirement.map_or(r.title, |q| q.title.as_str());
    let quote = requirement.map_or(r.title, |q| q.quote.as_str());
    let mut rule = json!({
        "id": r.id,
        "name": r.id,
        "shortDescription": {"text": title},
        "fullDescription": {"text": quote},
        "defaultConfiguration": {"level": default_level(r.level)},
        "properties": {
            "tags": [r.area, r.level.to_string(), "mcp", "oauth"],
            "precision": "very-high",
        },
    });
    if let Some(q) = requirement {
        rule["helpUri"] = json!(q.url);
        rule["help"] = json!({
            "text": format!("{} ({}): \"{}\" {}", q.level, q.source, q.quote, q.url),
            "markdown": format!("**{}** ({}): \n\n> {}\n\n[{}]({})", q.level, q.source, q.quote, q.url, q.url),
        });
    }
    rule
}

/// A result for a failure, an error or a warning; `None` for the other outcomes.
fn result(r: &CheckResult, rule_index: usize, artifact: &str) -> Option<Value> {
    let (evidence, level) = match &r.outcome {
        Outcome::Fail(e) => (e, "error"),
        Outcome::Error(e) => (e, default_level(r.level)),
        Outcome::Warn(e) => (e, "warning"),
        _ => return None,
    };
    let key = r.versioned_key();
    let mut text = format!(
        "{} [{}] {}: {}: {}",
        key,
        r.transport,
        r.title,
        r.outcome.word().to_lowercase(),
        evidence.message
    );
    for ex in &evidence.exchanges {
        text.push_str("\n\n");
        text.push_str(ex);
    }
    if let Some(why) = super::requirement_text(r.id) {
        text.push_str(&format!("\n\nexpected, {} {why}", r.id));
    }
    // A check with a result per version is one finding per version.
    let identity = format!("{}|{}|{}", key, r.transport, artifact);
    let hash = Sha256::digest(identity.as_bytes());
    let hex: String = hash.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let mut result = json!({
        "ruleId": r.id,
        "ruleIndex": rule_index,
        "level": level,
        "kind": "fail",
        "message": {"text": text},
        "locations": [{
            "physicalLocation": {
                "artifactLocation": {"uri": artifact},
                "region": {"startLine": 1},
            },
            "logicalLocations": [{"name": r.transport, "kind": "module"}],
        }],
        "partialFingerprints": {
            "primaryLocationLineHash": format!("{hex}:1"),
            "mcpAuthConformance/v1": format!("{}|{}", key, r.transport),
        },
        "properties": {
            "key": r.key,
            "transport": r.transport,
            "outcome": r.outcome.word().to_lowercase(),
            "versions": r.versions,
            "version": r.version,
            "source": r.source_url(),
        },
    });
    // A failure the baseline expects is a suppressed result: viewers show it as dismissed.
    if let Some(BaselineMark::Known { reason }) = &r.baseline {
        result["suppressions"] = json!([{"kind": "external", "justification": reason}]);
    }
    Some(result)
}
