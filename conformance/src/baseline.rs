//! Baselines: the known failures of a target, each with a reason, in
//! `fixtures/baselines/<target>.toml`:
//!
//! ```toml
//! [[known-failure]]
//! id = "AUTH-FLOW-18"          # an ID (all its cases) or a case key such as "AUTH-GEN-05#expired"
//! transport = "sse"            # optional: sse, streamable-http or auth-server; all when absent
//! reason = "no iss parameter yet (RFC 9207), tracked in #12"
//! ```
//!
//! A check that runs at several protocol versions has a result per version; an entry matches
//! all of them, or with `@VERSION` after the ID or key (`SHTTP-02@2025-06-18`) only that one.
//!
//! A listed check that fails or errors is reported as known and does not fail the run; a listed
//! check that passes fails the run as stale, so the list shrinks as the target improves. An entry
//! that names an ID covers its cases too: a case that passes while the entry still explains a
//! failure is left alone, and the entry is stale once nothing it covers fails. Skipped and
//! blocked checks leave their entry alone: they said nothing about the requirement.

use std::path::Path;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::report::{BaselineMark, CheckResult, Outcome, Report};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownFailure {
    pub id: String,
    #[serde(default)]
    pub transport: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    #[serde(default, rename = "known-failure")]
    pub known_failures: Vec<KnownFailure>,
}

impl Baseline {
    pub fn parse(text: &str) -> anyhow::Result<Baseline> {
        let baseline: Baseline =
            toml::from_str(text).context("the baseline is not valid TOML of the expected shape")?;
        for entry in &baseline.known_failures {
            if entry.reason.trim().is_empty() {
                bail!(
                    "the baseline entry for {} has an empty reason; every known failure needs one",
                    entry.id
                );
            }
            if let Some((_, version)) = entry.id.split_once('@')
                && version.parse::<crate::version::Version>().is_err()
            {
                bail!(
                    "the baseline entry {} names an unknown version {version:?}",
                    entry.id
                );
            }
            if let Some(t) = &entry.transport
                && !matches!(t.as_str(), "sse" | "streamable-http" | "auth-server")
            {
                bail!(
                    "the baseline entry for {} names an unknown transport {t:?}",
                    entry.id
                );
            }
        }
        Ok(baseline)
    }

    pub fn load(path: &Path) -> anyhow::Result<Baseline> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Baseline::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Marks known failures and stale entries in the report.
    pub fn apply(&self, report: &mut Report) {
        for r in &mut report.results {
            r.baseline = self.mark(r);
        }
        // An entry that names an ID covers the failures of its cases, and a case that passes is
        // not held against it while the entry still explains a failure. An entry whose every
        // result passed explains nothing any more: each of those results marks it stale.
        for (index, entry) in self.known_failures.iter().enumerate() {
            let covered: Vec<usize> = (0..report.results.len())
                .filter(|&i| self.entry_for(&report.results[i]) == Some(index))
                .collect();
            let explains_something = covered.iter().any(|&i| {
                matches!(
                    report.results[i].baseline,
                    Some(BaselineMark::Known { .. } | BaselineMark::Stale { .. })
                )
            });
            if explains_something {
                continue;
            }
            for i in covered {
                let r = &mut report.results[i];
                if matches!(r.outcome, Outcome::Pass { .. } | Outcome::Warn(_)) {
                    r.baseline = Some(BaselineMark::Stale {
                        reason: entry.reason.clone(),
                    });
                }
            }
        }
    }

    /// The index of the first entry that lists this result.
    fn entry_for(&self, r: &CheckResult) -> Option<usize> {
        self.known_failures.iter().position(|e| {
            let (id, version) = Self::split(e);
            (id == r.key || id == r.id)
                && version.is_none_or(|v| r.version.is_some_and(|at| at.as_str() == v))
                && e.transport.as_deref().is_none_or(|t| t == r.transport)
        })
    }

    fn split(entry: &KnownFailure) -> (&str, Option<&str>) {
        match entry.id.split_once('@') {
            Some((id, version)) => (id, Some(version)),
            None => (entry.id.as_str(), None),
        }
    }

    /// The mark the baseline gives one result: known when a listed check failed or errored,
    /// stale when it passed or only warned. A case listed only through its ID's entry that
    /// passes gets no mark here: [`Baseline::apply`] marks it stale once nothing the entry
    /// covers fails.
    pub fn mark(&self, r: &CheckResult) -> Option<BaselineMark> {
        let entry = &self.known_failures[self.entry_for(r)?];
        let through_its_id = Self::split(entry).0 != r.key;
        match r.outcome {
            Outcome::Fail(_) | Outcome::Error(_) => Some(BaselineMark::Known {
                reason: entry.reason.clone(),
            }),
            Outcome::Pass { .. } | Outcome::Warn(_) if through_its_id => None,
            Outcome::Pass { .. } | Outcome::Warn(_) => Some(BaselineMark::Stale {
                reason: entry.reason.clone(),
            }),
            Outcome::Skip { .. } | Outcome::Blocked { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_without_a_reason_is_rejected() {
        let err =
            Baseline::parse("[[known-failure]]\nid = \"SHTTP-02\"\nreason = \" \"\n").unwrap_err();
        assert!(format!("{err:#}").contains("reason"));
        assert!(Baseline::parse("[[known-failure]]\nid = \"SHTTP-02\"\n").is_err());
    }

    fn result(key: &str, transport: &'static str, outcome: Outcome) -> crate::report::CheckResult {
        crate::report::CheckResult {
            key: key.into(),
            id: "AUTH-FLOW-18",
            also: Vec::new(),
            area: "AUTH-FLOW",
            level: crate::checks::Level::Must,
            versions: "26-07".into(),
            version: Some(crate::version::Version::V2026_07_28),
            per_version: false,
            transport,
            title: "t",
            outcome,
            baseline: None,
            duration_ms: 0,
            trace: Vec::new(),
        }
    }

    fn report(results: Vec<CheckResult>) -> Report {
        Report {
            target: "t".into(),
            transports: Vec::new(),
            wall_time_ms: 0,
            results,
            transcript: Default::default(),
            assessment: None,
        }
    }

    #[test]
    fn a_listed_failure_is_known_and_a_listed_pass_is_stale() {
        let baseline = Baseline::parse(
            "[[known-failure]]\nid = \"AUTH-FLOW-18\"\ntransport = \"sse\"\nreason = \"no iss yet\"\n",
        )
        .unwrap();
        let fail = Outcome::Fail(crate::checks::Evidence::default());
        let mut report = report(vec![
            result("AUTH-FLOW-18", "sse", fail.clone()),
            result("AUTH-FLOW-18", "streamable-http", fail),
        ]);
        baseline.apply(&mut report);
        assert!(matches!(
            report.results[0].baseline,
            Some(BaselineMark::Known { .. })
        ));
        assert!(
            report.results[1].baseline.is_none(),
            "the entry names only sse"
        );
        assert!(!report.ok(), "the unlisted failure still fails the run");
        report.results.truncate(1);
        assert!(report.ok());
        report.results[0].outcome = Outcome::Pass { note: None };
        report.results[0].baseline = None;
        baseline.apply(&mut report);
        assert!(matches!(
            report.results[0].baseline,
            Some(BaselineMark::Stale { .. })
        ));
        assert!(!report.ok(), "a stale entry fails the run");
    }

    #[test]
    fn an_entry_with_a_version_matches_only_that_version() {
        use crate::version::Version;
        let baseline = Baseline::parse(
            "[[known-failure]]\nid = \"AUTH-FLOW-18@2025-06-18\"\nreason = \"r\"\n",
        )
        .unwrap();
        let fail = Outcome::Fail(crate::checks::Evidence::default());
        let mut at = result("AUTH-FLOW-18", "sse", fail);
        at.version = Some(Version::V2025_06_18);
        assert!(matches!(
            baseline.mark(&at),
            Some(BaselineMark::Known { .. })
        ));
        at.version = Some(Version::V2025_11_25);
        assert!(
            baseline.mark(&at).is_none(),
            "another version is not listed"
        );
        let all =
            Baseline::parse("[[known-failure]]\nid = \"AUTH-FLOW-18\"\nreason = \"r\"\n").unwrap();
        assert!(
            all.mark(&at).is_some(),
            "an entry without a version matches every version"
        );
        assert!(
            Baseline::parse("[[known-failure]]\nid = \"X-1@2099-01-01\"\nreason = \"r\"\n")
                .is_err()
        );
    }

    #[test]
    fn an_id_entry_is_stale_only_when_none_of_its_cases_fails() {
        let baseline =
            Baseline::parse("[[known-failure]]\nid = \"AUTH-FLOW-18\"\nreason = \"r\"\n").unwrap();
        let fail = Outcome::Fail(crate::checks::Evidence::default());
        let warn = Outcome::Warn(crate::checks::Evidence::default());
        let mut report = report(vec![
            result("AUTH-FLOW-18", "sse", fail),
            result("AUTH-FLOW-18#case", "sse", warn.clone()),
        ]);
        baseline.apply(&mut report);
        assert!(matches!(
            report.results[0].baseline,
            Some(BaselineMark::Known { .. })
        ));
        assert!(
            report.results[1].baseline.is_none(),
            "a case that only warns is not held against an entry that still explains a failure"
        );
        assert!(report.ok());

        report.results.remove(0);
        baseline.apply(&mut report);
        assert!(
            matches!(report.results[0].baseline, Some(BaselineMark::Stale { .. })),
            "nothing the entry covers fails any more"
        );
        assert!(!report.ok());

        let case_entry =
            Baseline::parse("[[known-failure]]\nid = \"AUTH-FLOW-18#case\"\nreason = \"r\"\n")
                .unwrap();
        let mut passing_case = result("AUTH-FLOW-18#case", "sse", warn);
        passing_case.baseline = None;
        assert!(
            matches!(
                case_entry.mark(&passing_case),
                Some(BaselineMark::Stale { .. })
            ),
            "an entry that names the case itself is stale as soon as the case passes"
        );
    }

    #[test]
    fn an_unknown_transport_is_rejected() {
        assert!(
            Baseline::parse(
                "[[known-failure]]\nid = \"X-1\"\ntransport = \"ws\"\nreason = \"r\"\n"
            )
            .is_err()
        );
    }
}
