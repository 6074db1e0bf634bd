//! The console rendering: a line per check as it finishes, then a summary table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{BaselineMark, CheckResult, Outcome, Report, Tally};

/// One progress line, plus the evidence of a failure, error or warning indented below it. With
/// `verbose`, failures and errors also show the check's last exchanges in full.
/// The first line shows the outcome, the key, the transport, the version the check was judged
/// at (`25-06`; `-` for a check that did not run), the level, the title and the requirement's
/// source link.
pub fn line(r: &CheckResult, verbose: bool) -> String {
    let mut out = format!(
        "{:7}  {:<22} {:<15} {:<5} {:<6} {}",
        r.outcome.word(),
        r.key,
        r.transport,
        r.version.map_or("-", |v| v.tag()),
        r.level.to_string(),
        r.title
    );
    if let Some(url) = r.source_url() {
        let _ = write!(out, "  <{url}>");
    }
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
        Outcome::Fail(e) | Outcome::Warn(e) | Outcome::Error(e) => {
            let _ = write!(out, "\n      {}", e.message.replace('\n', "\n      "));
            let shown = if verbose || !matches!(r.outcome, Outcome::Warn(_)) {
                e.exchanges.len()
            } else {
                0
            };
            for ex in e.exchanges.iter().take(shown.min(3)) {
                let _ = write!(out, "\n      | {}", ex.replace('\n', "\n      | "));
            }
            // What was expected and where it is written: always under a failure, under
            // warnings and errors with --verbose.
            if (verbose || matches!(r.outcome, Outcome::Fail(_)))
                && let Some(why) = super::requirement_text(r.id)
            {
                let _ = write!(out, "\n      expected, {} {why}", r.id);
            }
            if verbose && !r.trace.is_empty() {
                let _ = write!(
                    out,
                    "\n      the check's last {} exchanges, in full:",
                    r.trace.len()
                );
                for ex in &r.trace {
                    let _ = write!(out, "\n      | {}", ex.replace('\n', "\n      | "));
                }
            }
        }
        Outcome::Skip { reason } => {
            let _ = write!(out, "\n      {reason}");
        }
        Outcome::Blocked { by, reason } => {
            let _ = write!(out, "\n      blocked by {by}: {}", first_line(reason));
        }
        Outcome::Pass { note: Some(note) } if verbose => {
            let _ = write!(out, "\n      {note}");
        }
        Outcome::Pass { .. } => {}
    }
    out
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// One line per failed prerequisite naming the checks it blocked: `blocked by AUTH-REG-02
/// [auth-server]: AUTH-FLOW-04 [auth-server], LIFE-02 [sse], ...`. The prerequisite's own
/// failure is printed once, on its own line.
pub fn blocked(report: &Report) -> String {
    let mut out = String::new();
    for ((by, transport), members) in report.blocked_by() {
        let names: Vec<String> = members
            .iter()
            .map(|r| format!("{} [{}]", r.versioned_key(), r.transport))
            .collect();
        let _ = writeln!(out, "blocked by {by} [{transport}]: {}", names.join(", "));
    }
    out
}

/// The blocked checks, the summary by area and by level, then the closing line.
pub fn summary(report: &Report) -> String {
    let mut by_area: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut by_level: BTreeMap<String, Tally> = BTreeMap::new();
    for r in &report.results {
        by_area.entry(r.area).or_default().add(r);
        by_level.entry(r.level.to_string()).or_default().add(r);
    }
    let mut out = String::new();
    let blocked = blocked(report);
    if !blocked.is_empty() {
        let _ = write!(out, "\n{blocked}");
    }
    let row = |out: &mut String, name: &str, t: &Tally| {
        let _ = writeln!(
            out,
            "  {:<12} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>6}",
            name, t.passed, t.failed, t.errors, t.blocked, t.warned, t.skipped, t.known
        );
    };
    let header = |out: &mut String, first: &str| {
        let _ = writeln!(
            out,
            "\n  {:<12} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>6}",
            first, "pass", "fail", "error", "block", "warn", "skip", "known"
        );
    };
    header(&mut out, "area");
    for (area, t) in &by_area {
        row(&mut out, area, t);
    }
    header(&mut out, "level");
    for (level, t) in &by_level {
        row(&mut out, level, t);
    }
    if let Some(assessment) = &report.assessment {
        let _ = writeln!(out, "\n{}", assessment.line());
        for t in &assessment.transports {
            let _ = writeln!(
                out,
                "  {}: {} ({})",
                t.transport,
                crate::profile::list(&t.tested),
                t.how
            );
        }
    }
    out.push_str(&grid(report));
    let failing: Vec<&CheckResult> = report
        .results
        .iter()
        .filter(|r| r.counts_against())
        .collect();
    if !failing.is_empty() {
        let _ = writeln!(out, "\nFailures and errors that fail the run:");
        for r in failing {
            let _ = writeln!(
                out,
                "  {} {} [{}] {}",
                r.outcome.word(),
                r.versioned_key(),
                r.transport,
                r.title
            );
        }
    }
    let _ = writeln!(out, "\n{}", report.summary_line());
    out
}

/// The version grid: per transport, an area per row and a version per column, each cell a
/// symbol and a count (see [`super::Tally::symbol`]; blank: no check of the area at that
/// version).
pub fn grid(report: &Report) -> String {
    let grid = report.grid();
    let mut out = String::new();
    if grid.rows.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nareas × versions (✓ passed, ✗ failed, ! errors, ~ warned, k known failures, · skipped \
         or blocked only):"
    );
    for (transport, versions) in &grid.columns {
        let _ = write!(out, "\n  {transport:<16}");
        for v in versions {
            let _ = write!(out, " {:>6}", v.tag());
        }
        out.push('\n');
        for row in grid.rows.iter().filter(|r| r.transport == *transport) {
            let _ = write!(out, "  {:<16}", row.area);
            for v in versions {
                let cell = row
                    .cells
                    .iter()
                    .find(|(at, _)| at == v)
                    .map_or(String::new(), |(_, t)| t.symbol());
                let _ = write!(out, " {cell:>6}");
            }
            out.push('\n');
        }
    }
    out
}
