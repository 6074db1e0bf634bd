//! The JSON rendering of a report (`--json FILE`).

use serde_json::json;

use super::Report;

pub fn render(report: &Report) -> anyhow::Result<String> {
    let value = json!({
        "target": report.target,
        "transports": report.transports,
        "wall_time_ms": report.wall_time_ms,
        "ok": report.ok(),
        "summary": report.tally(),
        "results": report.results,
    });
    Ok(serde_json::to_string_pretty(&value)? + "\n")
}
