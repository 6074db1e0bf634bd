//! Results of a run and their renderings: one line per check while it runs ([`console`]), a
//! summary by area and level, JSON ([`json`]), JUnit XML ([`junit`]), SARIF for code scanning
//! ([`sarif`]) and a single-file HTML page ([`html`]).

pub mod console;
pub mod html;
pub mod json;
pub mod junit;
pub mod sarif;

use std::time::Duration;

use serde::Serialize;

use crate::checks::{Evidence, Level};
use crate::config::Transport;
use crate::profile::Assessment;
use crate::version::Version;

/// The tool's name and version, as every report names them.
pub const TOOL_NAME: &str = "mcp-auth-conformance";
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The one sentence every report of an interrupted run carries.
pub fn interrupted_notice(finished: usize, planned: usize) -> String {
    format!("incomplete: the run was interrupted after {finished} of {planned} checks")
}

/// Why a check's requirement holds, from the catalogue: `MUST (source): "sentence" <url>`. A
/// failure shows it under its evidence so the reader sees what was expected and where it is
/// written. `None` for an ID the catalogue lacks (a test's made-up result).
pub fn requirement_text(id: &str) -> Option<String> {
    let requirement = crate::catalogue::get(id)?;
    Some(format!(
        "{} ({}): \"{}\" <{}>",
        requirement.level, requirement.source, requirement.quote, requirement.url
    ))
}

/// The label of a result's transport; authorization-server checks have none.
pub fn transport_label(t: Option<Transport>) -> &'static str {
    t.map_or("auth-server", Transport::as_str)
}

/// How a check ended.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    Pass {
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    Fail(Evidence),
    Warn(Evidence),
    /// The check does not apply, for the stated reason (the feature is not offered, a version
    /// filter, `--slow` not given).
    Skip {
        reason: String,
    },
    /// The check could not reach a verdict: the server misbehaved, did not answer in time, or a
    /// step the check needed failed for a reason no other check judges. An error in a MUST
    /// check fails the run like a failure.
    Error(Evidence),
    /// A step the check needed (registration, the authorization round trip, the token
    /// exchange, opening a session) failed, and the named check, which judges that step,
    /// failed or errored in the same run. The prerequisite's evidence is shown there once.
    Blocked {
        /// The key of the prerequisite check (`AUTH-REG-02`).
        by: String,
        /// What went wrong in this check, redacted.
        reason: String,
    },
}

impl Outcome {
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Pass { .. } => "PASS",
            Outcome::Fail(_) => "FAIL",
            Outcome::Warn(_) => "WARN",
            Outcome::Skip { .. } => "SKIP",
            Outcome::Error(_) => "ERROR",
            Outcome::Blocked { .. } => "BLOCKED",
        }
    }

    /// Ordering from best to worst, used to compare runs. A blocked check ranks with skips:
    /// the defect is its prerequisite's, which is counted there.
    pub fn severity(&self) -> u8 {
        match self {
            Outcome::Pass { .. } | Outcome::Skip { .. } | Outcome::Blocked { .. } => 0,
            Outcome::Warn(_) => 1,
            Outcome::Fail(_) | Outcome::Error(_) => 2,
        }
    }

    /// The evidence of a failure, warning or error.
    pub fn evidence(&self) -> Option<&Evidence> {
        match self {
            Outcome::Fail(e) | Outcome::Warn(e) | Outcome::Error(e) => Some(e),
            _ => None,
        }
    }

    /// The one-line message of any outcome but a plain pass.
    pub fn message(&self) -> String {
        match self {
            Outcome::Fail(e) | Outcome::Warn(e) | Outcome::Error(e) => e.message.clone(),
            Outcome::Skip { reason } => reason.clone(),
            Outcome::Blocked { by, reason } => format!("blocked by {by}: {reason}"),
            Outcome::Pass { note } => note.clone().unwrap_or_default(),
        }
    }
}

/// A known failure listed in the baseline, as applied to a result.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum BaselineMark {
    /// The check failed (or errored) and the baseline expected it.
    Known { reason: String },
    /// The baseline expected a failure, but the check passed.
    Stale { reason: String },
}

/// One check on one transport.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// The ID, plus `#case` when a requirement has several checks.
    pub key: String,
    pub id: &'static str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub also: Vec<&'static str>,
    pub area: &'static str,
    pub level: Level,
    pub versions: String,
    /// The version this run was judged at: a check whose outcome depends on the negotiated
    /// version has a result per version; `None` for a check that did not run (no version it
    /// applies to).
    pub version: Option<Version>,
    /// The check has a result per negotiated version (its key is shown with the version).
    #[serde(skip)]
    pub per_version: bool,
    pub transport: &'static str,
    pub title: &'static str,
    #[serde(flatten)]
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineMark>,
    pub duration_ms: u64,
    /// For failures and errors: the check's last requests and responses in full (method, URL,
    /// headers, body), redacted; the console shows them with `--verbose`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<String>,
}

impl CheckResult {
    /// The key, with the version for a check that has a result per version
    /// (`SHTTP-02@2025-06-18`), as baselines may name it: unique in a report per transport.
    pub fn versioned_key(&self) -> String {
        match self.version {
            Some(v) if self.per_version => format!("{}@{v}", self.key),
            _ => self.key.clone(),
        }
    }

    /// The link to the requirement's source, from the catalogue.
    pub fn source_url(&self) -> Option<&'static str> {
        crate::catalogue::get(self.id).map(|r| r.url.as_str())
    }

    /// Whether the outcome is a failure, or an error in a MUST check: what fails a run unless
    /// the baseline expects it.
    pub fn is_must_failure(&self) -> bool {
        match &self.outcome {
            Outcome::Fail(_) => true,
            Outcome::Error(_) => self.level == Level::Must,
            _ => false,
        }
    }

    /// A MUST failure or error the baseline did not expect, or a stale baseline entry: what
    /// fails the run.
    pub fn counts_against(&self) -> bool {
        match &self.baseline {
            Some(BaselineMark::Stale { .. }) => true,
            Some(BaselineMark::Known { .. }) => false,
            None => self.is_must_failure(),
        }
    }
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub target: String,
    pub transports: Vec<Transport>,
    pub wall_time_ms: u64,
    pub results: Vec<CheckResult>,
    /// The normalized transcript the checks recorded (see [`crate::snapshot`]).
    #[serde(skip)]
    pub transcript: std::sync::Arc<crate::snapshot::Transcript>,
    /// What the server claims (versions per transport, the authorization profile it was
    /// judged by); `None` for a run that ended before it was known.
    #[serde(skip)]
    pub assessment: Option<std::sync::Arc<Assessment>>,
}

/// One row of the version grid: an area on a transport, with a tally per version.
#[derive(Debug, Clone, Serialize)]
pub struct GridRow {
    pub transport: &'static str,
    pub area: &'static str,
    /// The tally at each version the grid shows for the transport, in its column order.
    pub cells: Vec<(Version, Tally)>,
}

/// The version grid: per transport (the authorization server too), the versions its results
/// were judged at and a row per area. Checks that did not run (no version) are left out.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Grid {
    /// Per transport, its columns.
    pub columns: Vec<(&'static str, Vec<Version>)>,
    pub rows: Vec<GridRow>,
}

impl Tally {
    /// A cell in symbols and counts: `✗2` failed, `!1` errors, `✓12` passed (`✓11~1` with a
    /// warning), `~3` warned only, `k1` known failures only, `·` nothing that ran (skipped or
    /// blocked only).
    pub fn symbol(&self) -> String {
        if self.failed > 0 || self.stale > 0 {
            format!("✗{}", self.failed + self.stale)
        } else if self.errors > 0 {
            format!("!{}", self.errors)
        } else if self.passed > 0 && self.warned > 0 {
            format!("✓{}~{}", self.passed, self.warned)
        } else if self.passed > 0 {
            format!("✓{}", self.passed)
        } else if self.warned > 0 {
            format!("~{}", self.warned)
        } else if self.known > 0 {
            format!("k{}", self.known)
        } else {
            "·".to_owned()
        }
    }

    /// Whether the cell is green: nothing in it failed, errored or is a stale baseline entry
    /// (a warning, a SHOULD or a note, does not fail a run, and shows as `~`).
    pub fn green(&self) -> bool {
        self.failed == 0 && self.errors == 0 && self.stale == 0
    }
}

/// Counts by outcome.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    /// Checks that could not reach a verdict, at any level.
    pub errors: usize,
    /// Checks whose prerequisite check failed or errored.
    pub blocked: usize,
    pub warned: usize,
    pub skipped: usize,
    /// Failures the baseline lists.
    pub known: usize,
    /// Baseline entries whose check now passes.
    pub stale: usize,
}

impl Tally {
    pub fn add(&mut self, r: &CheckResult) {
        match (&r.outcome, &r.baseline) {
            (Outcome::Fail(_) | Outcome::Error(_), Some(BaselineMark::Known { .. })) => {
                self.known += 1
            }
            (Outcome::Pass { .. }, _) => self.passed += 1,
            (Outcome::Fail(_), _) => self.failed += 1,
            (Outcome::Error(_), _) => self.errors += 1,
            (Outcome::Blocked { .. }, _) => self.blocked += 1,
            (Outcome::Warn(_), _) => self.warned += 1,
            (Outcome::Skip { .. }, _) => self.skipped += 1,
        }
        if matches!(r.baseline, Some(BaselineMark::Stale { .. })) {
            self.stale += 1;
        }
    }
}

impl Report {
    pub fn wall_time(&self) -> Duration {
        Duration::from_millis(self.wall_time_ms)
    }

    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        for r in &self.results {
            t.add(r);
        }
        t
    }

    /// The version grid (see [`Grid`]).
    pub fn grid(&self) -> Grid {
        let mut order: Vec<&'static str> = Vec::new();
        let mut columns: std::collections::BTreeMap<
            &'static str,
            std::collections::BTreeSet<Version>,
        > = Default::default();
        let mut cells: std::collections::BTreeMap<(&'static str, &'static str, Version), Tally> =
            Default::default();
        let mut areas: Vec<(&'static str, &'static str)> = Vec::new();
        for r in &self.results {
            let Some(v) = r.version else { continue };
            // A phase the run did not ask for has no cell: its skip says nothing of the server.
            if matches!(&r.outcome, Outcome::Skip { reason }
                if crate::checks::opt_in::ALL.contains(&reason.as_str()))
            {
                continue;
            }
            if !order.contains(&r.transport) {
                order.push(r.transport);
            }
            columns.entry(r.transport).or_default().insert(v);
            cells.entry((r.transport, r.area, v)).or_default().add(r);
            if !areas.contains(&(r.transport, r.area)) {
                areas.push((r.transport, r.area));
            }
        }
        // Transports as the report lists them, the authorization server last.
        order.sort_by_key(|t| (*t == transport_label(None), *t));
        let mut grid = Grid::default();
        for t in order {
            let versions: Vec<Version> = columns[t].iter().copied().collect();
            for (_, area) in areas.iter().filter(|(at, _)| *at == t) {
                grid.rows.push(GridRow {
                    transport: t,
                    area,
                    cells: versions
                        .iter()
                        .filter_map(|v| cells.get(&(t, *area, *v)).map(|c| (*v, *c)))
                        .collect(),
                });
            }
            grid.columns.push((t, versions));
        }
        grid
    }

    /// True when no MUST failed or errored outside the baseline and no baseline entry is stale.
    pub fn ok(&self) -> bool {
        !self.results.iter().any(CheckResult::counts_against)
    }

    /// The result of a check on a transport (`None` transport = authorization server).
    pub fn get(&self, key: &str, transport: Option<Transport>) -> Option<&CheckResult> {
        self.results
            .iter()
            .find(|r| r.key == key && r.transport == transport_label(transport))
    }

    /// The blocked checks grouped by their prerequisite (key and transport), in report order.
    pub fn blocked_by(&self) -> Vec<((String, &'static str), Vec<&CheckResult>)> {
        let mut groups: Vec<((String, &'static str), Vec<&CheckResult>)> = Vec::new();
        for r in &self.results {
            let Outcome::Blocked { by, .. } = &r.outcome else {
                continue;
            };
            let prerequisite = self
                .results
                .iter()
                .find(|p| {
                    p.key == *by
                        && (p.transport == r.transport || p.transport == transport_label(None))
                })
                .map_or(r.transport, |p| p.transport);
            let key = (by.clone(), prerequisite);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(r),
                None => groups.push((key, vec![r])),
            }
        }
        groups
    }

    /// `N passed, N failed, N errors, N blocked, N warned, N skipped in T`: the closing line.
    pub fn summary_line(&self) -> String {
        let t = self.tally();
        let mut line = format!(
            "{} passed, {} failed, {} errors, {} blocked, {} warned, {} skipped",
            t.passed, t.failed, t.errors, t.blocked, t.warned, t.skipped
        );
        if t.known > 0 {
            line.push_str(&format!(", {} known failures", t.known));
        }
        if t.stale > 0 {
            line.push_str(&format!(", {} stale baseline entries", t.stale));
        }
        line.push_str(&format!(" in {:.2} s", self.wall_time().as_secs_f64()));
        line
    }
}
