//! Results of a run and their renderings: one line per check while it runs ([`console`]), a
//! summary by area and level, JSON ([`json`]) and JUnit XML ([`junit`]).

pub mod console;
pub mod json;
pub mod junit;

use std::time::Duration;

use serde::Serialize;

use crate::checks::{Evidence, Level};
use crate::config::Transport;

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
    Skip {
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
        }
    }

    /// Ordering from best to worst, used to compare runs.
    pub fn severity(&self) -> u8 {
        match self {
            Outcome::Pass { .. } | Outcome::Skip { .. } => 0,
            Outcome::Warn(_) => 1,
            Outcome::Fail(_) => 2,
        }
    }
}

/// A known failure listed in the baseline, as applied to a result.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum BaselineMark {
    /// The check failed and the baseline expected it.
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
    pub transport: &'static str,
    pub title: &'static str,
    #[serde(flatten)]
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineMark>,
    pub duration_ms: u64,
}

impl CheckResult {
    /// A failure the baseline did not expect, or a stale baseline entry: what fails the run.
    pub fn counts_against(&self) -> bool {
        match (&self.outcome, &self.baseline) {
            (_, Some(BaselineMark::Stale { .. })) => true,
            (Outcome::Fail(_), Some(BaselineMark::Known { .. })) => false,
            (Outcome::Fail(_), _) => true,
            _ => false,
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
}

/// Counts by outcome.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
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
            (Outcome::Fail(_), Some(BaselineMark::Known { .. })) => self.known += 1,
            (Outcome::Pass { .. }, _) => self.passed += 1,
            (Outcome::Fail(_), _) => self.failed += 1,
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

    /// True when no MUST failed outside the baseline and no baseline entry is stale.
    pub fn ok(&self) -> bool {
        !self.results.iter().any(CheckResult::counts_against)
    }

    /// The result of a check on a transport (`None` transport = authorization server).
    pub fn get(&self, key: &str, transport: Option<Transport>) -> Option<&CheckResult> {
        self.results
            .iter()
            .find(|r| r.key == key && r.transport == transport_label(transport))
    }

    /// `N passed, N failed, N warned, N skipped in T`: the closing line.
    pub fn summary_line(&self) -> String {
        let t = self.tally();
        let mut line = format!(
            "{} passed, {} failed, {} warned, {} skipped",
            t.passed, t.failed, t.warned, t.skipped
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
