//! The JUnit XML rendering (`--junit FILE`): a test suite per area, a test case per check and
//! transport; failures carry the evidence, errors are `<error>`, blocked checks are skipped with
//! the prerequisite that blocked them. A warning is a pass (a SHOULD does not fail a run) that
//! CI tools still show: a `warning` property on the test case (GitLab, Jenkins and the JUnit
//! viewers of GitHub Actions list properties) and the evidence as its output.

use std::collections::BTreeMap;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use super::{BaselineMark, Outcome, Report};

pub fn render(report: &Report) -> anyhow::Result<String> {
    Ok(build(report).to_string()?)
}

/// The JUnit report of an interrupted run: what finished, and one `<error>` test case that
/// says the run stopped early, so that no CI tool counts the partial report as a whole run.
pub fn render_interrupted(report: &Report, planned: usize) -> anyhow::Result<String> {
    let mut junit = build(report);
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
    status.set_message(super::interrupted_notice(report.results.len(), planned));
    status.set_type("incomplete");
    let mut suite = TestSuite::new("run");
    suite.add_test_case(TestCase::new("the run finished", status));
    junit.add_test_suite(suite);
    Ok(junit.to_string()?)
}

fn build(report: &Report) -> quick_junit::Report {
    let mut suites: BTreeMap<&str, TestSuite> = BTreeMap::new();
    for r in &report.results {
        let evidence = |e: &crate::checks::Evidence| {
            let mut text = e.message.clone();
            for ex in &e.exchanges {
                text.push_str("\n\n");
                text.push_str(ex);
            }
            if let Some(why) = super::requirement_text(r.id) {
                text.push_str(&format!("\n\nexpected, {} {why}", r.id));
            }
            text
        };
        let mut status = match (&r.outcome, &r.baseline) {
            (Outcome::Fail(e) | Outcome::Error(e), Some(BaselineMark::Known { reason })) => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(format!("known failure: {reason}"));
                s.set_description(evidence(e));
                s
            }
            (_, Some(BaselineMark::Stale { reason })) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!(
                    "stale baseline entry: the check passes now ({reason})"
                ));
                s
            }
            (Outcome::Fail(e), None) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(e.message.clone());
                s.set_type(r.level.to_string());
                s.set_description(evidence(e));
                s
            }
            (Outcome::Error(e), None) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(e.message.clone());
                s.set_type(format!("{} error", r.level));
                s.set_description(evidence(e));
                s
            }
            (Outcome::Skip { reason }, _) => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(reason.clone());
                s
            }
            (Outcome::Blocked { by, reason }, _) => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(format!("blocked by {by}"));
                s.set_description(reason.clone());
                s
            }
            _ => TestCaseStatus::success(),
        };
        if let (Outcome::Fail(_) | Outcome::Error(_), Some(BaselineMark::Known { .. })) =
            (&r.outcome, &r.baseline)
        {
            status.set_type("known-failure");
        }
        let mut case = TestCase::new(
            format!("{} [{}] {}", r.versioned_key(), r.transport, r.title),
            status,
        );
        case.set_classname(format!("{}.{}", r.area, r.transport));
        case.set_time(Duration::from_millis(r.duration_ms));
        if let Outcome::Warn(e) = &r.outcome {
            case.add_property(Property::new(
                "warning",
                format!("{}: {}", r.level, e.message),
            ));
            case.set_system_out(format!("WARN ({}): {}", r.level, evidence(e)));
        }
        case.add_property(Property::new("requirement", r.id));
        case.add_property(Property::new("level", r.level.to_string()));
        if let Some(url) = r.source_url() {
            case.add_property(Property::new("source", url));
        }
        if let Some(v) = r.version {
            case.add_property(Property::new("version", v.as_str()));
        }
        suites
            .entry(r.area)
            .or_insert_with(|| TestSuite::new(r.area))
            .add_test_case(case);
    }
    let mut junit = quick_junit::Report::new("mcp-auth-conformance");
    junit.set_time(report.wall_time());
    junit.add_test_suites(suites.into_values());
    junit
}
