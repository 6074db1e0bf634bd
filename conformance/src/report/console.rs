//! The console rendering: a line per check as it finishes, then a summary table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{BaselineMark, CheckResult, Outcome, Report, Tally};

/// One progress line, plus the evidence of a failure or warning indented below it.
pub fn line(r: &CheckResult, verbose: bool) -> String {
    let mut out = format!(
        "{:4}  {:<22} {:<15} {:<6} {}",
        r.outcome.word(),
        r.key,
        r.transport,
        r.level.to_string(),
        r.title
    );
    match &r.baseline {
        Some(BaselineMark::Known { reason }) => {
            let _ = write!(out, "  [known failure: {reason}]");
        }
        Some(BaselineMark::Stale { reason }) => {
            let _ = write!(out, "  [STALE baseline entry: {reason}]");
        }
        None => {}
    }
    match &r.outcome {
        Outcome::Fail(e) | Outcome::Warn(e) => {
            let _ = write!(out, "\n      {}", e.message.replace('\n', "\n      "));
            let shown = if verbose || matches!(r.outcome, Outcome::Fail(_)) {
                e.exchanges.len()
            } else {
                0
            };
            for ex in e.exchanges.iter().take(shown.min(3)) {
                let _ = write!(out, "\n      | {}", ex.replace('\n', "\n      | "));
            }
        }
        Outcome::Skip { reason } => {
            let _ = write!(out, "\n      {reason}");
        }
        Outcome::Pass { note: Some(note) } if verbose => {
            let _ = write!(out, "\n      {note}");
        }
        Outcome::Pass { .. } => {}
    }
    out
}

/// The summary by area and by level, then the closing line.
pub fn summary(report: &Report) -> String {
    let mut by_area: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut by_level: BTreeMap<String, Tally> = BTreeMap::new();
    for r in &report.results {
        by_area.entry(r.area).or_default().add(r);
        by_level.entry(r.level.to_string()).or_default().add(r);
    }
    let mut out = String::new();
    let row = |out: &mut String, name: &str, t: &Tally| {
        let _ = writeln!(
            out,
            "  {:<12} {:>5} {:>5} {:>5} {:>5} {:>6}",
            name, t.passed, t.failed, t.warned, t.skipped, t.known
        );
    };
    let _ = writeln!(
        out,
        "\n  {:<12} {:>5} {:>5} {:>5} {:>5} {:>6}",
        "area", "pass", "fail", "warn", "skip", "known"
    );
    for (area, t) in &by_area {
        row(&mut out, area, t);
    }
    let _ = writeln!(
        out,
        "\n  {:<12} {:>5} {:>5} {:>5} {:>5} {:>6}",
        "level", "pass", "fail", "warn", "skip", "known"
    );
    for (level, t) in &by_level {
        row(&mut out, level, t);
    }
    let failing: Vec<&CheckResult> = report
        .results
        .iter()
        .filter(|r| r.counts_against())
        .collect();
    if !failing.is_empty() {
        let _ = writeln!(out, "\nFailures that fail the run:");
        for r in failing {
            let _ = writeln!(out, "  {} [{}] {}", r.key, r.transport, r.title);
        }
    }
    let _ = writeln!(out, "\n{}", report.summary_line());
    out
}
