//! The JSON rendering of a report (`--json FILE`): a versioned document whose shape
//! `docs/report.schema.json` describes. `format_version` grows when a field changes meaning or
//! goes away; new fields may appear without it.

use serde_json::{Value, json};

use super::{Report, TOOL_NAME, TOOL_VERSION};

/// The name of the report format, as the document's `format` field carries it.
pub const FORMAT: &str = "mcp-auth-conformance/report";
/// The version of the report format.
pub const FORMAT_VERSION: u64 = 1;

pub fn render(report: &Report) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(&document(report)?)? + "\n")
}

/// The report as a JSON value; each result also carries its requirement's sentence and link
/// from the catalogue, so that a reader of the file needs nothing else.
pub fn document(report: &Report) -> anyhow::Result<Value> {
    let mut results = Vec::with_capacity(report.results.len());
    for r in &report.results {
        let mut value = serde_json::to_value(r)?;
        if let (Some(object), Some(requirement)) =
            (value.as_object_mut(), crate::catalogue::get(r.id))
        {
            object.insert(
                "requirement".into(),
                json!({
                    "quote": requirement.quote,
                    "source": requirement.source,
                    "url": requirement.url,
                }),
            );
        }
        results.push(value);
    }
    Ok(json!({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool": {"name": TOOL_NAME, "version": TOOL_VERSION},
        "target": report.target,
        "transports": report.transports,
        "wall_time_ms": report.wall_time_ms,
        "ok": report.ok(),
        "summary": report.tally(),
        "results": results,
    }))
}
