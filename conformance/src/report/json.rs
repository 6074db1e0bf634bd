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
/// from the catalogue (`requirement.url`, the source link), so that a reader of the file needs
/// nothing else. The document also holds the profile the server was judged by, the versions
/// found per transport, and the area × version grid per transport.
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
    let mut document = json!({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool": {"name": TOOL_NAME, "version": TOOL_VERSION},
        "target": report.target,
        "transports": report.transports,
        "wall_time_ms": report.wall_time_ms,
        "ok": report.ok(),
        "summary": report.tally(),
        "results": results,
        "grid": grid(report),
    });
    if let Some(assessment) = &report.assessment {
        document["profile"] = json!({
            "name": assessment.profile,
            "judged_by": assessment.judged_by,
            "reason": assessment.reason,
            "claimed": assessment.claimed,
        });
        document["versions"] = serde_json::to_value(&assessment.transports)?;
    }
    Ok(document)
}

/// The version grid: per transport, its versions and a row per area with the counts at each.
fn grid(report: &Report) -> Value {
    let grid = report.grid();
    let transports: Vec<Value> = grid
        .columns
        .iter()
        .map(|(transport, versions)| {
            let areas: Vec<Value> = grid
                .rows
                .iter()
                .filter(|row| row.transport == *transport)
                .map(|row| {
                    let cells: serde_json::Map<String, Value> = row
                        .cells
                        .iter()
                        .map(|(v, tally)| {
                            let mut cell = json!(tally);
                            cell["symbol"] = json!(tally.symbol());
                            cell["green"] = json!(tally.green());
                            (v.as_str().to_owned(), cell)
                        })
                        .collect();
                    json!({"area": row.area, "cells": cells})
                })
                .collect();
            json!({"transport": transport, "versions": versions, "areas": areas})
        })
        .collect();
    Value::Array(transports)
}
