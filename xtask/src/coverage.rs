//! `cargo xtask coverage [--check]`: the suite measured against its requirement catalogue.
//!
//! It writes two files. `conformance/faults.toml` is the reference server's fault table
//! (`server/src/fault.rs`) reduced to what the suite needs to name the faults that prove a
//! check; the suite embeds it because it must not link the server. `docs/coverage.md` lists,
//! per requirement, the checks that report it and the faults that prove each, the per-area
//! and overall share of server-observable requirements covered, the excluded requirements,
//! and, in a section of its own, the latest status per target read from the reports under
//! `target/conformance/<target>/`.
//!
//! `--check` regenerates both in memory and fails when either differs from the committed
//! file, or when a check names an ID the catalogue lacks. The status section depends on which
//! runs happened on the machine, so it is left out of the comparison: CI can be strict about
//! the rest without flaking.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::{cargo, project_root};

const FAULTS_TOML: &str = "conformance/faults.toml";
const COVERAGE_MD: &str = "docs/coverage.md";
const STATUS_BEGIN: &str = "<!-- status:begin -->";
const STATUS_END: &str = "<!-- status:end -->";
/// The targets `cargo xtask conformance` names its report folders after.
const TARGETS: [&str; 3] = ["rust", "python", "python-example"];
const VERSIONS: [&str; 5] = [
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];

pub fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => bail!("coverage takes only --check"),
    };
    let root = project_root();
    let fault_source = fs::read_to_string(root.join("server/src/fault.rs"))
        .context("cannot read server/src/fault.rs")?;
    let faults = faults_toml(&parse_fault_table(&fault_source)?);
    let faults_path = root.join(FAULTS_TOML);
    let committed_faults = fs::read_to_string(&faults_path).unwrap_or_default();
    if check && committed_faults != faults {
        eprintln!("xtask coverage: {FAULTS_TOML} is stale; run `cargo xtask coverage`");
        return Ok(ExitCode::FAILURE);
    }
    if !check && committed_faults != faults {
        fs::write(&faults_path, &faults).with_context(|| format!("cannot write {FAULTS_TOML}"))?;
        eprintln!("xtask coverage: wrote {FAULTS_TOML}");
    }

    // The suite's binary joins the catalogue with the checks and the faults it embeds.
    let export = duct::cmd(
        cargo(),
        [
            "run",
            "--quiet",
            "-p",
            "mcp-auth-conformance",
            "--",
            "explain",
            "--json",
        ],
    )
    .dir(&root)
    .stdout_capture()
    .run()
    .context("`mcp-auth-conformance explain --json` failed")?;
    let export: Value = serde_json::from_slice(&export.stdout)
        .context("`mcp-auth-conformance explain --json` printed no JSON")?;

    let unknown: Vec<&str> = export["unknown_ids"]
        .as_array()
        .map(|ids| ids.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !unknown.is_empty() {
        eprintln!(
            "xtask coverage: checks name IDs the catalogue lacks: {}",
            unknown.join(", ")
        );
        return Ok(ExitCode::FAILURE);
    }

    let target_dir = crate::conformance::cargo_target_dir(&root);
    let statuses: Vec<(&str, Option<BTreeMap<String, String>>)> = TARGETS
        .iter()
        .map(|t| (*t, latest_status(&target_dir.join("conformance").join(t))))
        .collect();
    let markdown = render(&export, &statuses)?;
    let path = root.join(COVERAGE_MD);
    if check {
        let committed = fs::read_to_string(&path).unwrap_or_default();
        if without_status(&committed) != without_status(&markdown) {
            eprintln!("xtask coverage: {COVERAGE_MD} is stale; run `cargo xtask coverage`");
            return Ok(ExitCode::FAILURE);
        }
        eprintln!("xtask coverage: {COVERAGE_MD} and {FAULTS_TOML} are up to date");
    } else {
        fs::write(&path, &markdown).with_context(|| format!("cannot write {COVERAGE_MD}"))?;
        eprintln!("xtask coverage: wrote {COVERAGE_MD}");
    }
    Ok(ExitCode::SUCCESS)
}

/// One row of the fault table.
#[derive(Debug, PartialEq, Eq)]
struct FaultRow {
    name: String,
    breaks: Vec<String>,
    also_breaks: Vec<String>,
    only: Vec<String>,
    /// A conforming variant (`=> allowed [...]`): it makes no check fail, so it proves
    /// nothing and is left out of the list.
    allowed: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Ident(String),
    Str(String),
    Punct(char),
}

/// Reads the entries of the `faults! { ... }` table: `Variant = "name" => ["ID", ...]`
/// followed by optional `also [...]`, `only [...]` and `env [...]` columns, ending in a comma.
/// Comments and doc comments are skipped.
fn parse_fault_table(source: &str) -> anyhow::Result<Vec<FaultRow>> {
    let start = source
        .find("\nfaults! {")
        .context("server/src/fault.rs has no `faults! {` table")?;
    let body = &source[start + "\nfaults! {".len()..];
    let end = body
        .find("\n}")
        .context("the `faults!` table does not end")?;
    let body: String = body[..end]
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let tokens = tokenize(&body)?;
    let mut rows = Vec::new();
    let mut at = 0;
    while at < tokens.len() {
        let (Some(Token::Ident(_)), Some(Token::Punct('=')), Some(Token::Str(name))) =
            (tokens.get(at), tokens.get(at + 1), tokens.get(at + 2))
        else {
            bail!("fault table: expected `Variant = \"name\"` at token {at}");
        };
        at += 3;
        if tokens.get(at) != Some(&Token::Punct('>')) {
            bail!("fault table: expected `=>` after {name:?}");
        }
        at += 1;
        let allowed = tokens.get(at) == Some(&Token::Ident("allowed".into()));
        if allowed {
            at += 1;
        }
        let breaks = string_list(&tokens, &mut at)
            .with_context(|| format!("fault table: the IDs of {name:?}"))?;
        let mut also_breaks = Vec::new();
        let mut only = Vec::new();
        while let Some(Token::Ident(column)) = tokens.get(at) {
            at += 1;
            let list = string_list(&tokens, &mut at)
                .with_context(|| format!("fault table: `{column}` of {name:?}"))?;
            match column.as_str() {
                "also" => also_breaks = list,
                "only" => only = list,
                "env" | "args" => {}
                other => bail!("fault table: unknown column `{other}` of {name:?}"),
            }
        }
        if tokens.get(at) != Some(&Token::Punct(',')) {
            bail!("fault table: expected `,` after {name:?}");
        }
        at += 1;
        rows.push(FaultRow {
            name: name.clone(),
            breaks,
            also_breaks,
            only,
            allowed,
        });
    }
    if rows.is_empty() {
        bail!("the fault table is empty");
    }
    Ok(rows)
}

/// `[ "a", "b" = "c", ... ]`: every string literal inside the brackets.
fn string_list(tokens: &[Token], at: &mut usize) -> anyhow::Result<Vec<String>> {
    if tokens.get(*at) != Some(&Token::Punct('[')) {
        bail!("expected `[`");
    }
    *at += 1;
    let mut out = Vec::new();
    loop {
        match tokens.get(*at) {
            Some(Token::Punct(']')) => {
                *at += 1;
                return Ok(out);
            }
            Some(Token::Str(s)) => out.push(s.clone()),
            Some(Token::Punct(',' | '=')) => {}
            other => bail!("unexpected {other:?} in a list"),
        }
        *at += 1;
    }
}

fn tokenize(text: &str) -> anyhow::Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => s.extend(chars.next()),
                        Some(c) => s.push(c),
                        None => bail!("fault table: unterminated string"),
                    }
                }
                tokens.push(Token::Str(s));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_alphanumeric() || n == '_' {
                        s.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Ident(s));
            }
            // `=>` is read as `=` then `>`; the parser expects that pair after the name.
            '=' if chars.peek() == Some(&'>') => {
                chars.next();
                tokens.push(Token::Punct('>'));
            }
            '=' | ',' | '[' | ']' => tokens.push(Token::Punct(c)),
            other => bail!("fault table: unexpected {other:?}"),
        }
    }
    Ok(tokens)
}

fn faults_toml(rows: &[FaultRow]) -> String {
    let list = |items: &[String]| {
        let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
        format!("[{}]", quoted.join(", "))
    };
    let mut out = String::from(
        "# The reference server's faults and the requirements each breaks, for\n\
         # `mcp-auth-conformance explain` and `cargo xtask coverage`. Generated from\n\
         # server/src/fault.rs by `cargo xtask coverage`; do not edit.\n",
    );
    for row in rows.iter().filter(|row| !row.allowed) {
        let _ = write!(
            out,
            "\n[[fault]]\nname = {:?}\nbreaks = {}\nalso_breaks = {}\nonly = {}\n",
            row.name,
            list(&row.breaks),
            list(&row.also_breaks),
            list(&row.only)
        );
    }
    out
}

/// The worst outcome per requirement ID (of the checks named after it) in the newest reports
/// of one target, or `None` when it has not run here.
fn latest_status(dir: &Path) -> Option<BTreeMap<String, String>> {
    let mut reports: Vec<_> = fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("report") && n.ends_with(".json"))
        })
        .collect();
    reports.sort();
    let mut worst: BTreeMap<String, (u8, String)> = BTreeMap::new();
    for path in reports {
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let Ok(report) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        for result in report["results"].as_array().into_iter().flatten() {
            let (Some(id), Some(outcome)) = (result["id"].as_str(), result["outcome"].as_str())
            else {
                continue;
            };
            let known = result["baseline"]["status"].as_str() == Some("known");
            let (rank, word) = match outcome {
                "fail" if known => (3, "FAIL (known)"),
                "fail" => (4, "FAIL"),
                "warn" => (2, "WARN"),
                "pass" => (1, "PASS"),
                _ => (0, "SKIP"),
            };
            let entry = worst.entry(id.to_owned()).or_insert((0, "SKIP".to_owned()));
            if rank >= entry.0 {
                *entry = (rank, word.to_owned());
            }
        }
    }
    Some(worst.into_iter().map(|(id, (_, w))| (id, w)).collect())
}

/// The versions in short form: `25-06+`, `25-03..25-11`, `24-11`.
fn version_tag(versions: &[Value]) -> String {
    let list: Vec<&str> = versions.iter().filter_map(Value::as_str).collect();
    let tag = |v: &str| v.get(2..7).unwrap_or(v).to_owned();
    let index = |v: &str| VERSIONS.iter().position(|x| *x == v);
    let (Some(first), Some(last)) = (list.first(), list.last()) else {
        return String::new();
    };
    let contiguous = match (index(first), index(last)) {
        (Some(a), Some(b)) => b + 1 - a == list.len(),
        _ => false,
    };
    if !contiguous {
        list.iter().map(|v| tag(v)).collect::<Vec<_>>().join(", ")
    } else if first == last {
        tag(first)
    } else if *last == VERSIONS[VERSIONS.len() - 1] {
        if *first == VERSIONS[0] {
            "all".to_owned()
        } else {
            format!("{}+", tag(first))
        }
    } else {
        format!("{}..{}", tag(first), tag(last))
    }
}

fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        "–".to_owned()
    } else {
        format!("{:.0}%", 100.0 * part as f64 / whole as f64)
    }
}

fn render(
    export: &Value,
    statuses: &[(&str, Option<BTreeMap<String, String>>)],
) -> anyhow::Result<String> {
    let requirements = export["requirements"]
        .as_array()
        .context("the export has no requirements")?;
    let checks = export["checks"]
        .as_array()
        .context("the export has no checks")?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };

    // Per requirement: the cells of its row and whether it is covered.
    struct Row {
        id: String,
        area: String,
        cells: String,
        observable: bool,
        covered: bool,
        reported: bool,
    }
    let mut rows = Vec::new();
    for r in requirements {
        let id = text(&r["id"]);
        let mut own = Vec::new();
        let mut also = Vec::new();
        let mut covered = false;
        for c in checks {
            let key = text(&c["key"]);
            let faults = names(&c["faults"]);
            let proven = if faults.is_empty() {
                "no fault".to_owned()
            } else {
                faults.join(", ")
            };
            if text(&c["id"]) == id {
                covered |= !names(&c["faults_own"]).is_empty();
                own.push(format!("`{key}` ({proven})"));
            } else if names(&c["also"]).contains(&id) {
                also.push(format!("`{key}`"));
            }
        }
        let mut reporting = own.join("; ");
        if !also.is_empty() {
            if !reporting.is_empty() {
                reporting.push_str("; ");
            }
            let _ = write!(reporting, "also {}", also.join(", "));
        }
        let observable = r["observable"].as_bool().unwrap_or(true);
        let mark = if !observable {
            "excluded"
        } else if covered {
            "✓"
        } else {
            ""
        };
        let cells = format!(
            "| [{id}]({}) | {} | {} | {} | {} | {} |",
            text(&r["url"]),
            text(&r["level"]),
            version_tag(r["versions"].as_array().map_or(&[][..], Vec::as_slice)),
            text(&r["title"]).replace('|', "\\|"),
            reporting,
            mark
        );
        rows.push(Row {
            id,
            area: text(&r["area"]),
            cells,
            observable,
            covered,
            reported: !own.is_empty() || !also.is_empty(),
        });
    }

    let mut areas: Vec<&str> = Vec::new();
    for row in &rows {
        if !areas.contains(&row.area.as_str()) {
            areas.push(&row.area);
        }
    }
    let mut out = String::new();
    out.push_str(
        "# Requirement coverage\n\n\
         Generated by `cargo xtask coverage` from `conformance/requirements.toml`, the checks and\n\
         the reference server's fault table; do not edit. CI runs `cargo xtask coverage --check`,\n\
         which fails when this file is stale (the status section at the end excepted) or when a\n\
         check names an ID the catalogue lacks. `mcp-auth-conformance explain ID` prints one\n\
         requirement with its quote, source, checks and faults.\n\n\
         A requirement is **covered** when a check reports it as its own ID and a fault of the\n\
         reference server (`server/src/fault.rs`) makes that check fail. Percentages count the\n\
         requirements a server can be observed to meet.\n\n",
    );
    out.push_str("## Summary\n\n| area | requirements | observable | reported by a check | covered | covered % |\n| --- | ---: | ---: | ---: | ---: | ---: |\n");
    let tally = |rows: &[&Row]| {
        let observable = rows.iter().filter(|r| r.observable).count();
        let reported = rows.iter().filter(|r| r.observable && r.reported).count();
        let covered = rows.iter().filter(|r| r.observable && r.covered).count();
        (rows.len(), observable, reported, covered)
    };
    for area in &areas {
        let in_area: Vec<&Row> = rows.iter().filter(|r| r.area == *area).collect();
        let (n, observable, reported, covered) = tally(&in_area);
        let _ = writeln!(
            out,
            "| {area} | {n} | {observable} | {reported} | {covered} | {} |",
            percent(covered, observable)
        );
    }
    let every: Vec<&Row> = rows.iter().collect();
    let (n, observable, reported, covered) = tally(&every);
    let _ = writeln!(
        out,
        "| **all** | {n} | {observable} | {reported} | {covered} | **{}** |",
        percent(covered, observable)
    );

    out.push_str("\n## Requirements\n\nChecks are listed with the faults that prove them; `also` names checks that report the\nrequirement besides their own.\n");
    for area in &areas {
        let _ = write!(
            out,
            "\n### {area}\n\n| ID | level | versions | title | checks (faults) | covered |\n| --- | --- | --- | --- | --- | --- |\n"
        );
        for row in rows.iter().filter(|r| r.area == *area) {
            out.push_str(&row.cells);
            out.push('\n');
        }
    }

    out.push_str("\n## Not observable on a server\n\n| ID | reason |\n| --- | --- |\n");
    for r in requirements {
        if r["observable"].as_bool() == Some(false) {
            let _ = writeln!(
                out,
                "| {} | {} |",
                text(&r["id"]),
                text(&r["excluded_reason"])
            );
        }
    }

    let _ = write!(
        out,
        "\n{STATUS_BEGIN}\n## Latest status per target\n\n\
         The worst outcome of the checks named after each requirement in the newest reports\n\
         under `target/conformance/<target>/` when this file was written (`cargo xtask\n\
         conformance` writes them). It depends on the runs made on that machine, so\n\
         `--check` does not compare it.\n\n| ID | {} |\n| --- |{}\n",
        TARGETS.join(" | "),
        " --- |".repeat(TARGETS.len())
    );
    for row in rows.iter().filter(|r| r.reported) {
        let cells: Vec<&str> = statuses
            .iter()
            .map(|(_, status)| match status {
                None => "not run",
                Some(map) => map.get(&row.id).map_or("–", String::as_str),
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", row.id, cells.join(" | "));
    }
    let _ = writeln!(out, "{STATUS_END}");
    Ok(out)
}

/// The file without its status section, which `--check` does not compare.
fn without_status(text: &str) -> String {
    match (text.find(STATUS_BEGIN), text.find(STATUS_END)) {
        (Some(begin), Some(end)) if begin < end => {
            format!("{}{}", &text[..begin], &text[end + STATUS_END.len()..])
        }
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fault_table_is_read_with_its_columns() {
        let source = r#"
macro_rules! faults { () => {} }

faults! {
    // AUTH-GEN: a comment.

    /// A doc line with "quotes" and [brackets].
    First = "first" => ["AUTH-GEN-01"],
    Second = "second" => ["AUTH-GEN-02"] also ["AUTH-GEN-01"],
    Third = "third" => ["AUTH-GEN-05", "AUTH-TOK-01"]
        only ["AUTH-GEN-05#expired"]
        env ["MCP_GITHUB_ACCESS_TOKEN_TTL_SECS" = "1"],
}

impl Fault {}
"#;
        let rows = parse_fault_table(source).expect("parses");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].also_breaks, ["AUTH-GEN-01"]);
        assert_eq!(rows[2].breaks, ["AUTH-GEN-05", "AUTH-TOK-01"]);
        assert!(rows[2].also_breaks.is_empty());
        assert_eq!(rows[2].only, ["AUTH-GEN-05#expired"]);
    }

    #[test]
    fn the_real_fault_table_parses() {
        let source = fs::read_to_string(project_root().join("server/src/fault.rs"))
            .expect("server/src/fault.rs");
        let rows = parse_fault_table(&source).expect("parses");
        assert!(rows.iter().any(|r| r.name == "accept-reused-code"));
        assert!(rows.iter().all(|r| !r.breaks.is_empty()));
    }

    #[test]
    fn a_broken_entry_is_an_error() {
        let source = "\nfaults! {\n    First = \"first\" [\"X\"],\n}\n";
        assert!(parse_fault_table(source).is_err());
    }

    #[test]
    fn versions_print_the_way_the_checklist_writes_them() {
        let v = |list: &[&str]| -> Vec<Value> { list.iter().map(|s| Value::from(*s)).collect() };
        assert_eq!(version_tag(&v(&VERSIONS)), "all");
        assert_eq!(version_tag(&v(&VERSIONS[2..])), "25-06+");
        assert_eq!(version_tag(&v(&VERSIONS[1..4])), "25-03..25-11");
        assert_eq!(version_tag(&v(&VERSIONS[1..2])), "25-03");
        assert_eq!(
            version_tag(&v(&["2025-03-26", "2026-07-28"])),
            "25-03, 26-07"
        );
    }

    #[test]
    fn the_latest_status_is_the_worst_outcome_across_reports() {
        let dir = std::env::temp_dir().join(format!("xtask-coverage-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let report = |results: Value| serde_json::json!({ "results": results }).to_string();
        fs::write(
            dir.join("report.json"),
            report(serde_json::json!([
                {"id": "A-01", "outcome": "pass"},
                {"id": "B-01", "outcome": "fail", "baseline": {"status": "known", "reason": "r"}},
                {"id": "C-01", "outcome": "skip"},
            ])),
        )
        .expect("write");
        fs::write(
            dir.join("report.sse.json"),
            report(serde_json::json!([
                {"id": "A-01", "outcome": "warn"},
                {"id": "C-01", "outcome": "fail"},
            ])),
        )
        .expect("write");
        fs::write(dir.join("junit.xml"), "<testsuites/>").expect("write");
        let status = latest_status(&dir).expect("reports");
        fs::remove_dir_all(&dir).expect("clean up");
        assert_eq!(status["A-01"], "WARN");
        assert_eq!(status["B-01"], "FAIL (known)");
        assert_eq!(status["C-01"], "FAIL");
        assert!(latest_status(&dir).is_none(), "no folder: not run");
    }

    #[test]
    fn the_status_section_is_left_out_of_the_comparison() {
        let a = format!("head\n{STATUS_BEGIN}\n| X | PASS |\n{STATUS_END}\n");
        let b = format!("head\n{STATUS_BEGIN}\n| X | not run |\n{STATUS_END}\n");
        assert_eq!(without_status(&a), without_status(&b));
        assert_ne!(without_status(&a), without_status("other\n"));
    }
}
