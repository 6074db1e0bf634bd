//! The HTML rendering (`--html FILE`): one self-contained page (inline CSS and a few lines of
//! script, nothing fetched) with the summary, the area × transport grid, and every check with
//! its outcome, evidence and requirement. The filters need the script; without it the page
//! shows everything and stays readable.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::{BaselineMark, CheckResult, Outcome, Report, TOOL_NAME, TOOL_VERSION, Tally};

/// The outcome's class name, also the filter value.
fn outcome_class(r: &CheckResult) -> &'static str {
    match (&r.outcome, &r.baseline) {
        (Outcome::Fail(_) | Outcome::Error(_), Some(BaselineMark::Known { .. })) => "known",
        (_, Some(BaselineMark::Stale { .. })) => "stale",
        (Outcome::Pass { .. }, _) => "pass",
        (Outcome::Fail(_), _) => "fail",
        (Outcome::Error(_), _) => "error",
        (Outcome::Warn(_), _) => "warn",
        (Outcome::Skip { .. }, _) => "skip",
        (Outcome::Blocked { .. }, _) => "blocked",
    }
}

/// Worst first, so that what needs attention is at the top.
fn rank(class: &str) -> u8 {
    match class {
        "fail" => 0,
        "stale" => 1,
        "error" => 2,
        "warn" => 3,
        "known" => 4,
        "blocked" => 5,
        "skip" => 6,
        _ => 7,
    }
}

const OUTCOMES: [(&str, &str); 8] = [
    ("fail", "failed"),
    ("error", "errors"),
    ("warn", "warned"),
    ("blocked", "blocked"),
    ("known", "known failures"),
    ("stale", "stale baseline"),
    ("skip", "skipped"),
    ("pass", "passed"),
];

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn tally_count(t: &Tally, class: &str) -> usize {
    match class {
        "fail" => t.failed,
        "error" => t.errors,
        "warn" => t.warned,
        "blocked" => t.blocked,
        "known" => t.known,
        "stale" => t.stale,
        "skip" => t.skipped,
        _ => t.passed,
    }
}

pub fn render(report: &Report) -> String {
    render_with_notice(report, None)
}

/// The HTML report of an interrupted run, with a banner that says it is partial.
pub fn render_interrupted(report: &Report, planned: usize) -> String {
    let notice = super::interrupted_notice(report.results.len(), planned);
    render_with_notice(report, Some(&notice))
}

fn render_with_notice(report: &Report, notice: Option<&str>) -> String {
    let tally = report.tally();
    let mut out = String::new();
    let verdict = if report.ok() {
        ("ok", "conformant: no MUST failed")
    } else {
        ("bad", "not conformant: a MUST failed or errored")
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>MCP auth conformance: {target}</title>\n<style>{CSS}</style>\n</head>\n<body>\n\
         <header><h1>MCP auth conformance</h1>\n<p class=\"meta\">target <code>{target}</code> · \
         {tool} {version} · {checks} checks in {secs:.1} s</p>\n\
         <p class=\"verdict {vclass}\">{vtext}</p>\n{notice}</header>\n",
        target = escape(&report.target),
        tool = TOOL_NAME,
        version = TOOL_VERSION,
        checks = report.results.len(),
        secs = report.wall_time().as_secs_f64(),
        vclass = verdict.0,
        vtext = verdict.1,
        notice = notice
            .map(|text| format!(
                "<p class=\"verdict bad\" id=\"incomplete\">{}</p>\n",
                escape(text)
            ))
            .unwrap_or_default(),
    );

    // The profile the server was judged by, and the versions found per transport.
    if let Some(a) = &report.assessment {
        let _ = writeln!(
            out,
            "<p class=\"profile\">authorization profile <strong>{}</strong> (judged by {}): {}</p>",
            escape(a.profile.name()),
            a.judged_by,
            escape(&a.reason)
        );
        for t in &a.transports {
            let _ = writeln!(
                out,
                "<p class=\"meta\">{}: {} ({})</p>",
                t.transport,
                escape(&crate::profile::list(&t.tested)),
                escape(&t.how)
            );
        }
    }

    // The summary: one card per outcome that occurred.
    out.push_str("<section id=\"summary\"><h2>Summary</h2><div class=\"cards\">\n");
    for (class, label) in OUTCOMES {
        let n = tally_count(&tally, class);
        if n > 0 || matches!(class, "pass" | "fail") {
            let _ = writeln!(
                out,
                "<div class=\"card o-{class}\"><span class=\"n\">{n}</span> {label}</div>"
            );
        }
    }
    out.push_str("</div></section>\n");

    // The grid: areas down, transports across, a cell per pair with its counts.
    let transports: BTreeSet<&str> = report.results.iter().map(|r| r.transport).collect();
    let mut grid: BTreeMap<&str, BTreeMap<&str, Tally>> = BTreeMap::new();
    let mut versions: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in &report.results {
        grid.entry(r.area)
            .or_default()
            .entry(r.transport)
            .or_default()
            .add(r);
        versions.entry(r.area).or_default().insert(&r.versions);
    }
    out.push_str(
        "<section id=\"grid\"><h2>Areas × transports</h2>\n<table class=\"grid\"><thead><tr><th>area</th>",
    );
    for t in &transports {
        let _ = write!(out, "<th>{}</th>", escape(t));
    }
    out.push_str("<th>spec versions</th></tr></thead><tbody>\n");
    for (area, row) in &grid {
        let _ = write!(out, "<tr><th>{}</th>", escape(area));
        for t in &transports {
            match row.get(t) {
                None => out.push_str("<td class=\"none\">–</td>"),
                Some(cell) => {
                    let worst = OUTCOMES
                        .iter()
                        .map(|(c, _)| *c)
                        .find(|c| tally_count(cell, c) > 0)
                        .unwrap_or("pass");
                    let parts: Vec<String> = OUTCOMES
                        .iter()
                        .filter(|(c, _)| tally_count(cell, c) > 0)
                        .map(|(c, _)| {
                            format!("<span class=\"t-{c}\">{} {c}</span>", tally_count(cell, c))
                        })
                        .collect();
                    let _ = write!(out, "<td class=\"o-{worst}\">{}</td>", parts.join(" "));
                }
            }
        }
        let shown: Vec<&str> = versions.get(area).into_iter().flatten().copied().collect();
        let _ = writeln!(
            out,
            "<td class=\"versions\">{}</td></tr>",
            escape(&shown.join(", "))
        );
    }
    out.push_str("</tbody></table></section>\n");
    version_grid(&mut out, report);

    // The filters, shown only when the script runs (it removes `hidden`).
    let areas: BTreeSet<&str> = report.results.iter().map(|r| r.area).collect();
    out.push_str("<section id=\"checks\"><h2>Checks</h2>\n<form id=\"filters\" hidden>\n<fieldset><legend>outcome</legend>");
    for (class, label) in OUTCOMES {
        let n = report
            .results
            .iter()
            .filter(|r| outcome_class(r) == class)
            .count();
        if n > 0 {
            let _ = write!(
                out,
                "<label class=\"t-{class}\"><input type=\"checkbox\" name=\"outcome\" value=\"{class}\" checked> {label} ({n})</label>"
            );
        }
    }
    out.push_str("</fieldset>\n<label>area <select name=\"area\"><option value=\"\">all</option>");
    for a in &areas {
        let _ = write!(out, "<option>{}</option>", escape(a));
    }
    out.push_str("</select></label>\n<label>transport <select name=\"transport\"><option value=\"\">all</option>");
    for t in &transports {
        let _ = write!(out, "<option>{}</option>", escape(t));
    }
    out.push_str("</select></label>\n<span id=\"shown\"></span></form>\n");

    let mut ordered: Vec<&CheckResult> = report.results.iter().collect();
    ordered.sort_by_key(|r| rank(outcome_class(r)));
    for r in ordered {
        check(&mut out, r);
    }
    out.push_str("</section>\n<script>");
    out.push_str(SCRIPT);
    out.push_str("</script>\n</body>\n</html>\n");
    out
}

/// The version grid: per transport, areas down and the versions its results were judged at
/// across, each cell its counts, coloured by the worst outcome in it.
fn version_grid(out: &mut String, report: &Report) {
    let grid = report.grid();
    if grid.rows.is_empty() {
        return;
    }
    out.push_str("<section id=\"versions\"><h2>Areas × versions</h2>\n");
    for (transport, versions) in &grid.columns {
        let _ = write!(
            out,
            "<table class=\"grid\"><thead><tr><th>{}</th>",
            escape(transport)
        );
        for v in versions {
            let _ = write!(out, "<th>{v}</th>");
        }
        out.push_str("</tr></thead><tbody>\n");
        for row in grid.rows.iter().filter(|r| r.transport == *transport) {
            let _ = write!(out, "<tr><th>{}</th>", escape(row.area));
            for v in versions {
                match row.cells.iter().find(|(at, _)| at == v) {
                    None => out.push_str("<td class=\"none\">–</td>"),
                    Some((_, cell)) => {
                        let worst = OUTCOMES
                            .iter()
                            .map(|(c, _)| *c)
                            .find(|c| tally_count(cell, c) > 0)
                            .unwrap_or("skip");
                        let _ = write!(
                            out,
                            "<td class=\"o-{worst}\" title=\"{} passed, {} failed, {} errors, {} warned\">{}</td>",
                            cell.passed,
                            cell.failed,
                            cell.errors,
                            cell.warned,
                            escape(&cell.symbol())
                        );
                    }
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</section>\n");
}

/// One check: a line with its outcome, and (open for failures and errors) the evidence and the
/// requirement.
fn check(out: &mut String, r: &CheckResult) {
    let class = outcome_class(r);
    let open = if matches!(class, "fail" | "error" | "stale") {
        " open"
    } else {
        ""
    };
    let _ = write!(
        out,
        "<details class=\"check o-{class}\" data-outcome=\"{class}\" data-area=\"{area}\" \
         data-transport=\"{transport}\"{open}>\n<summary><span class=\"badge o-{class}\">{word}</span> \
         <code class=\"key\">{key}</code> <span class=\"transport\">{transport}</span> \
         <span class=\"version\">{version}</span> \
         <span class=\"level\">{level}</span> {title}{link}</summary>\n<div class=\"body\">\n",
        version = r.version.map_or("-", |v| v.as_str()),
        link = r.source_url().map_or(String::new(), |url| format!(
            " <a class=\"source\" href=\"{}\">source</a>",
            escape(url)
        )),
        area = escape(r.area),
        transport = escape(r.transport),
        word = if class == "known" {
            "KNOWN"
        } else if class == "stale" {
            "STALE"
        } else {
            r.outcome.word()
        },
        key = escape(&r.key),
        level = r.level,
        title = escape(r.title),
    );
    match &r.baseline {
        Some(BaselineMark::Known { reason }) => {
            let _ = writeln!(
                out,
                "<p class=\"baseline\">known failure (baseline): {}</p>",
                escape(reason)
            );
        }
        Some(BaselineMark::Stale { reason }) => {
            let _ = writeln!(
                out,
                "<p class=\"baseline\">stale baseline entry: the check passes now ({})</p>",
                escape(reason)
            );
        }
        None => {}
    }
    match &r.outcome {
        Outcome::Fail(e) | Outcome::Warn(e) | Outcome::Error(e) => {
            let _ = writeln!(out, "<p class=\"message\">{}</p>", escape(&e.message));
            for ex in &e.exchanges {
                let _ = writeln!(out, "<pre class=\"exchange\">{}</pre>", escape(ex));
            }
        }
        Outcome::Skip { reason } => {
            let _ = writeln!(out, "<p class=\"message\">{}</p>", escape(reason));
        }
        Outcome::Blocked { by, reason } => {
            let _ = writeln!(
                out,
                "<p class=\"message\">blocked by <code>{}</code>: {}</p>",
                escape(by),
                escape(reason)
            );
        }
        Outcome::Pass { note } => {
            if let Some(note) = note {
                let _ = writeln!(out, "<p class=\"message\">{}</p>", escape(note));
            }
        }
    }
    if let Some(q) = crate::catalogue::get(r.id) {
        let _ = writeln!(
            out,
            "<blockquote class=\"requirement\"><span class=\"level\">{}</span> {}<br>\
             <a href=\"{}\">{}</a></blockquote>",
            q.level,
            escape(&q.quote),
            escape(&q.url),
            escape(&q.source)
        );
    }
    let _ = writeln!(
        out,
        "<p class=\"facts\">spec versions {} · {} ms</p>\n</div></details>",
        escape(&r.versions),
        r.duration_ms
    );
}

const CSS: &str = r#"
:root { --fail:#c62828; --error:#ad1457; --warn:#b26a00; --blocked:#6d4c41; --known:#5c6bc0;
  --stale:#c62828; --skip:#78909c; --pass:#2e7d32; --bg:#fafafa; --fg:#1d1d1f; --line:#e0e0e0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); margin: 0 auto; max-width: 1200px; padding: 24px; }
h1 { margin: 0 0 4px; font-size: 24px; } h2 { font-size: 18px; margin: 28px 0 10px; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px; }
.meta { color: #555; margin: 0; }
.verdict { display: inline-block; padding: 6px 12px; border-radius: 6px; font-weight: 600; margin: 12px 0 0; }
.verdict.ok { background: #e8f5e9; color: var(--pass); } .verdict.bad { background: #ffebee; color: var(--fail); }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { background: #fff; border: 1px solid var(--line); border-left: 6px solid; border-radius: 6px;
  padding: 8px 14px; min-width: 120px; }
.card .n { font-size: 22px; font-weight: 700; display: block; }
.t-fail { color: var(--fail); } .t-error { color: var(--error); } .t-warn { color: var(--warn); }
.t-blocked { color: var(--blocked); } .t-known { color: var(--known); } .t-stale { color: var(--stale); }
.t-skip { color: var(--skip); } .t-pass { color: var(--pass); }
table.grid { border-collapse: collapse; background: #fff; width: 100%; }
.grid th, .grid td { border: 1px solid var(--line); padding: 6px 10px; text-align: left; vertical-align: top; }
.grid thead th { background: #f0f0f0; } .grid td { border-left-width: 4px; }
.grid td.none { color: #aaa; } .grid td.versions { color: #555; font-size: 12px; }
.grid td span { white-space: nowrap; margin-right: 6px; font-weight: 600; }
form#filters { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px;
  margin-bottom: 12px; display: flex; flex-wrap: wrap; gap: 12px; align-items: center; }
form#filters[hidden] { display: none; }
fieldset { border: 0; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 10px; }
legend { float: left; margin-right: 6px; color: #555; }
#shown { color: #555; margin-left: auto; }
details.check { background: #fff; border: 1px solid var(--line); border-left: 6px solid; border-radius: 6px;
  margin: 6px 0; }
details.check > summary { cursor: pointer; padding: 7px 10px; list-style-position: inside; }
.badge { display: inline-block; min-width: 64px; text-align: center; color: #fff; border-radius: 4px;
  font-size: 11px; font-weight: 700; padding: 1px 6px; }
.badge.o-fail { background: var(--fail); } .badge.o-error { background: var(--error); }
.badge.o-warn { background: var(--warn); } .badge.o-blocked { background: var(--blocked); }
.badge.o-known { background: var(--known); } .badge.o-stale { background: var(--stale); }
.badge.o-skip { background: var(--skip); } .badge.o-pass { background: var(--pass); }
.key { font-weight: 600; } .transport { color: #555; font-size: 12px; }
.level { font-size: 11px; font-weight: 700; color: #555; border: 1px solid #ccc; border-radius: 3px; padding: 0 4px; }
.body { padding: 0 14px 10px 14px; border-top: 1px solid var(--line); }
.message { white-space: pre-wrap; }
pre.exchange { background: #f6f8fa; border: 1px solid var(--line); border-radius: 4px; padding: 8px;
  overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
blockquote.requirement { margin: 8px 0; padding: 6px 12px; border-left: 4px solid #90a4ae; background: #f5f7f8; }
.facts, .baseline { color: #666; font-size: 12px; }
/* Last and with `body`, so the outcome colour wins over the borders above. */
body .o-fail { border-left-color: var(--fail); } body .o-error { border-left-color: var(--error); } body .o-warn { border-left-color: var(--warn); }
body .o-blocked { border-left-color: var(--blocked); } body .o-known { border-left-color: var(--known); } body .o-stale { border-left-color: var(--stale); }
body .o-skip { border-left-color: var(--skip); } body .o-pass { border-left-color: var(--pass); }
"#;

/// The filters: hide the checks whose outcome is unticked or whose area or transport is not
/// the chosen one, and say how many are shown.
const SCRIPT: &str = r#"
(function () {
  var form = document.getElementById('filters');
  form.hidden = false;
  var checks = document.querySelectorAll('details.check');
  function apply() {
    var outcomes = {};
    form.querySelectorAll('input[name=outcome]').forEach(function (b) { outcomes[b.value] = b.checked; });
    var area = form.elements.area.value, transport = form.elements.transport.value, shown = 0;
    checks.forEach(function (c) {
      var show = outcomes[c.dataset.outcome] !== false &&
        (!area || c.dataset.area === area) && (!transport || c.dataset.transport === transport);
      c.hidden = !show;
      if (show) shown++;
    });
    document.getElementById('shown').textContent = shown + ' of ' + checks.length + ' checks shown';
  }
  form.addEventListener('change', apply);
  apply();
})();
"#;
