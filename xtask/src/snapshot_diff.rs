//! `cargo xtask snapshot-diff A B`: how two targets behave differently, read from their
//! normalized transcripts (see `conformance/src/snapshot.rs`).
//!
//! A side is a target name or a directory. A name reads the committed snapshots in
//! `fixtures/snapshots/<name>/` (insta files: a YAML header, then the JSON), or, when
//! there are none or with `--latest`, the last run's `target/conformance/<name>/snapshots/`
//! (`<transport>.json`, as the suite's `--snapshot-dir` writes them). A directory may
//! hold either kind.
//!
//! The transcripts of one target hold the authorization server's section in every
//! transport's file; it is compared once. Within a section, each entry (a metadata
//! document, an exchange, a result) is walked as JSON and every differing path is one
//! row with both values. An entry's requirement ID comes from the check that records it,
//! found in `conformance/src/checks/`, so new checks need no table here; a few paths
//! (metadata fields, challenge parameters) name a more precise requirement.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::project_root;

/// The header written above a committed transcript, in insta's layout.
const SNAP_HEADER: &str = "---\nsource: xtask/src/conformance.rs\n---\n";

/// Column widths of the table; longer values are cut with an ellipsis.
const ID_WIDTH: usize = 11;
const MAX_ID_WIDTH: usize = 24;
const PATH_WIDTH: usize = 44;
const VALUE_WIDTH: usize = 38;

/// Paths whose requirement is narrower than their entry's: (entry, path, ID). The
/// entry is a name, a prefix ending in `*`, or `*` for any entry, and then the path may
/// occur anywhere below the entry. A path matches itself and everything under it.
const PATH_IDS: &[(&str, &str, &str)] = &[
    (
        "authorization server metadata",
        ".authorization_response_iss_parameter_supported",
        "AUTH-ASM-11",
    ),
    ("authorization server metadata", ".issuer", "AUTH-ASM-06"),
    (
        "authorization server metadata",
        ".token_endpoint_auth_methods_supported",
        "AUTH-ASM-07",
    ),
    (
        "authorization server metadata",
        ".grant_types_supported",
        "AUTH-ASM-07",
    ),
    (
        "authorization server metadata",
        ".response_types_supported",
        "AUTH-ASM-07",
    ),
    (
        "authorization server metadata",
        ".revocation_endpoint",
        "AUTH-FLOW-19",
    ),
    (
        "authorization server metadata",
        ".revocation_endpoint_auth_methods_supported",
        "AUTH-FLOW-19",
    ),
    (
        "authorization server metadata",
        ".code_challenge_methods_supported",
        "AUTH-ASM-08",
    ),
    (
        "authorization server metadata",
        ".client_id_metadata_document_supported",
        "AUTH-ASM-10",
    ),
    ("protected resource metadata", ".resource", "AUTH-PRM-03"),
    (
        "protected resource metadata",
        ".authorization_servers",
        "AUTH-PRM-02",
    ),
    (
        "protected resource metadata",
        ".scopes_supported",
        "AUTH-PRM-07",
    ),
    ("token response*", ".headers.cache-control", "AUTH-FLOW-12"),
    ("*", ".structuredContent", "TOOLS-08"),
    ("*", ".outputSchema", "TOOLS-07"),
];

/// Above this many keys on one side only, an object's differing keys are one row that
/// lists them, rather than a row each.
const MAX_KEY_ROWS: usize = 4;

pub fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let mut latest = false;
    let mut sides = Vec::new();
    for arg in args {
        match arg.as_str() {
            "--latest" => latest = true,
            flag if flag.starts_with("--") => bail!("snapshot-diff: unknown option {flag}"),
            side => sides.push(side.to_owned()),
        }
    }
    let [left, right] = sides.as_slice() else {
        bail!(
            "snapshot-diff takes two targets or directories, e.g. `cargo xtask snapshot-diff \
             rust python`"
        );
    };
    let root = project_root();
    let left = Side::resolve(&root, left, latest)?;
    let right = Side::resolve(&root, right, latest)?;
    let ids = RequirementIds::scan(&root.join("conformance/src/checks"));
    let rows = compare(&left.sections, &right.sections);
    print!("{}", render(&left, &right, &rows, &ids));
    Ok(ExitCode::SUCCESS)
}

/// Writes each `<transport>.json` of `fresh` as `<transport>.snap` in `committed`, and
/// returns the file names written.
pub fn write_committed(fresh: &Path, committed: &Path) -> anyhow::Result<Vec<String>> {
    let transcripts = load_dir(fresh)?;
    if transcripts.is_empty() {
        bail!("the run left no transcripts in {}", fresh.display());
    }
    fs::create_dir_all(committed)
        .with_context(|| format!("cannot create {}", committed.display()))?;
    let mut written = Vec::new();
    for (transport, value) in &transcripts {
        let name = format!("{transport}.snap");
        let text = format!("{SNAP_HEADER}{}\n", serde_json::to_string_pretty(value)?);
        fs::write(committed.join(&name), text)
            .with_context(|| format!("cannot write {}", committed.join(&name).display()))?;
        written.push(name);
    }
    Ok(written)
}

/// How many paths differ between the transcripts in two directories.
pub fn count_differences(left: &Path, right: &Path) -> anyhow::Result<usize> {
    let left = merge_sections(&load_dir(left)?);
    let right = merge_sections(&load_dir(right)?);
    Ok(compare(&left, &right).len())
}

/// One side of the comparison.
struct Side {
    name: String,
    /// Where the transcripts were read from, for the heading.
    source: PathBuf,
    sections: Sections,
}

/// Section name → entry key → normalized value.
type Sections = BTreeMap<String, BTreeMap<String, Value>>;

impl Side {
    fn resolve(root: &Path, arg: &str, latest: bool) -> anyhow::Result<Side> {
        let is_path = arg.contains('/') || arg == "." || arg == "..";
        let (name, candidates) = if is_path {
            // The hints this task and `conformance` print are relative to the workspace,
            // so a path is tried there too.
            let as_dir = [PathBuf::from(arg), root.join(arg)]
                .into_iter()
                .find(|p| p.is_dir())
                .with_context(|| format!("snapshot-diff: {arg} is not a directory"))?;
            let name = as_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| arg.to_owned());
            // `target/conformance/<name>/snapshots` is named after its target.
            let name = if name == "snapshots" {
                as_dir
                    .parent()
                    .and_then(Path::file_name)
                    .map(|n| format!("{} (run)", n.to_string_lossy()))
                    .unwrap_or(name)
            } else {
                name
            };
            (name, vec![as_dir])
        } else {
            let committed = root.join("fixtures/snapshots").join(arg);
            let run = crate::conformance::cargo_target_dir(root)
                .join("conformance")
                .join(arg)
                .join("snapshots");
            let candidates = if latest {
                vec![run, committed]
            } else {
                vec![committed, run]
            };
            (arg.to_owned(), candidates)
        };
        for dir in &candidates {
            let transcripts = load_dir(dir)?;
            if !transcripts.is_empty() {
                return Ok(Side {
                    name,
                    source: dir.clone(),
                    sections: merge_sections(&transcripts),
                });
            }
        }
        let how = match arg {
            "rust" => "`cargo test -p mcp-auth-conformance --test snapshots` checks \
                       fixtures/snapshots/rust (INSTA_UPDATE=always writes it), and \
                       `cargo xtask conformance` writes target/conformance/rust/snapshots"
                .to_owned(),
            _ => format!(
                "`cargo xtask conformance --server {arg} --update-snapshots` writes \
                 fixtures/snapshots/{arg}; any `cargo xtask conformance --server {arg}` \
                 writes target/conformance/{arg}/snapshots"
            ),
        };
        bail!(
            "no snapshots for {arg} (looked in {}): {how}",
            candidates
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        )
    }
}

/// Transport name → transcript, from `*.snap` (insta) or `*.json` files in `dir`. A
/// missing directory holds none.
fn load_dir(dir: &Path) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    let Ok(read) = fs::read_dir(dir) else {
        return Ok(out);
    };
    let mut paths: Vec<PathBuf> = read.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
            continue;
        };
        if ext != "snap" && ext != "json" {
            continue;
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let json = if ext == "snap" {
            strip_snap_header(&text)
        } else {
            &text
        };
        let value: Value = serde_json::from_str(json)
            .with_context(|| format!("{} does not hold a JSON transcript", path.display()))?;
        if !value.is_object() {
            bail!("{} does not hold a transcript object", path.display());
        }
        // A committed `.snap` wins over a stray `.json` of the same transport.
        if ext == "snap" || !out.contains_key(&stem) {
            out.insert(stem, value);
        }
    }
    Ok(out)
}

/// The JSON after insta's `---` … `---` header.
fn strip_snap_header(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("---\n") else {
        return text;
    };
    match rest.find("\n---\n") {
        Some(end) => &rest[end + "\n---\n".len()..],
        None => text,
    }
}

/// One target's sections across its transport files; a section that appears in several
/// (the authorization server's) is taken from the first file that has it.
fn merge_sections(transcripts: &BTreeMap<String, Value>) -> Sections {
    let mut sections = Sections::new();
    for transcript in transcripts.values() {
        for (section, entries) in transcript.as_object().into_iter().flatten() {
            if sections.contains_key(section) {
                continue;
            }
            let entries: BTreeMap<String, Value> = entries
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            sections.insert(section.clone(), entries);
        }
    }
    sections
}

/// One side of a differing path.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Absent,
    Value(Value),
    /// The keys of an object that only this side has.
    OnlyKeys(Vec<String>),
}

impl Cell {
    fn of(value: Option<&Value>) -> Cell {
        value.map_or(Cell::Absent, |v| Cell::Value(v.clone()))
    }

    fn value(&self) -> Option<&Value> {
        match self {
            Cell::Value(v) => Some(v),
            _ => None,
        }
    }
}

/// A differing path.
#[derive(Debug, PartialEq)]
struct Row {
    section: String,
    entry: String,
    /// `""` for the whole entry, else `.field`, `[index]` …
    path: String,
    left: Cell,
    right: Cell,
}

/// Every differing path, by section and entry. An entry on one side only is one row.
fn compare(left: &Sections, right: &Sections) -> Vec<Row> {
    let mut rows = Vec::new();
    let names: BTreeSet<&String> = left.keys().chain(right.keys()).collect();
    for section in section_order(names) {
        let (l, r) = (left.get(section), right.get(section));
        let keys: BTreeSet<&String> = l
            .into_iter()
            .chain(r)
            .flat_map(|entries| entries.keys())
            .collect();
        for entry in keys {
            let lv = l.and_then(|e| e.get(entry));
            let rv = r.and_then(|e| e.get(entry));
            let mut walked = Vec::new();
            walk(String::new(), lv, rv, &mut walked);
            rows.extend(walked.into_iter().map(|(path, left, right)| Row {
                section: section.clone(),
                entry: entry.clone(),
                path,
                left,
                right,
            }));
        }
    }
    rows
}

/// The authorization server first, then the transports as the suite lists them.
fn section_order(names: BTreeSet<&String>) -> Vec<&String> {
    let rank = |name: &str| match name {
        "authorization-server" => 0,
        "streamable-http" => 1,
        "sse" => 2,
        _ => 3,
    };
    let mut names: Vec<&String> = names.into_iter().collect();
    names.sort_by_key(|n| (rank(n), (*n).clone()));
    names
}

type Difference = (String, Cell, Cell);

fn walk(path: String, left: Option<&Value>, right: Option<&Value>, out: &mut Vec<Difference>) {
    if left == right {
        return;
    }
    match (left, right) {
        (Some(Value::Object(l)), Some(Value::Object(r))) => {
            let only = |a: &serde_json::Map<String, Value>, b: &serde_json::Map<String, Value>| {
                a.keys()
                    .filter(|k| !b.contains_key(*k))
                    .cloned()
                    .collect::<Vec<_>>()
            };
            let (only_left, only_right) = (only(l, r), only(r, l));
            let summarize = only_left.len() + only_right.len() > MAX_KEY_ROWS;
            if summarize {
                out.push((
                    path.clone(),
                    Cell::OnlyKeys(only_left),
                    Cell::OnlyKeys(only_right),
                ));
            }
            let keys: BTreeSet<&String> = l.keys().chain(r.keys()).collect();
            for key in keys {
                if summarize && !(l.contains_key(key) && r.contains_key(key)) {
                    continue;
                }
                walk(format!("{path}.{key}"), l.get(key), r.get(key), out);
            }
        }
        // Each launcher sets its own token lifetime (the Rust snapshot test keeps the
        // default 3600 s, `cargo xtask conformance` a few seconds), so only the presence
        // of `expires_in` says something about the target.
        (Some(Value::Number(_)), Some(Value::Number(_))) if path.ends_with(".expires_in") => {}
        // Lists of objects (events, tools, content) are compared item by item; lists of
        // plain values (supported methods, scopes) read better whole.
        (Some(Value::Array(l)), Some(Value::Array(r)))
            if l.iter().chain(r).any(|v| v.is_object() || v.is_array()) =>
        {
            for i in 0..l.len().max(r.len()) {
                walk(format!("{path}[{i}]"), l.get(i), r.get(i), out);
            }
        }
        _ => out.push((path, Cell::of(left), Cell::of(right))),
    }
}

/// Requirement IDs of transcript entries, from the check modules' sources.
#[derive(Debug, Default)]
struct RequirementIds {
    by_entry: BTreeMap<String, String>,
}

impl RequirementIds {
    /// Reads each `checks/*.rs`: which function records which entry (`cx.record(…)` and
    /// `cx.record_exchange(…)` with a literal key), and which check runs which function
    /// (`id: "…"` then `run: body!(function)`). A missing directory yields no IDs.
    fn scan(dir: &Path) -> RequirementIds {
        let mut ids = RequirementIds::default();
        let Ok(read) = fs::read_dir(dir) else {
            return ids;
        };
        let mut paths: Vec<PathBuf> = read.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            if let Ok(source) = fs::read_to_string(&path) {
                ids.add_source(&source);
            }
        }
        ids
    }

    fn add_source(&mut self, source: &str) {
        // A check is declared as `Check::new("ID", SCOPE, body!(function))`, with
        // builder calls after it; the first ID that names a function is its check.
        let mut check_of_function: BTreeMap<String, String> = BTreeMap::new();
        const DECLARATION: &str = "Check::new(";
        let mut rest = source;
        while let Some(at) = rest.find(DECLARATION) {
            rest = &rest[at + DECLARATION.len()..];
            let Some(id) = leading_string_literal(rest) else {
                continue;
            };
            let next = rest.find(DECLARATION).unwrap_or(rest.len());
            if let Some(run) = rest[..next].find("body!(") {
                let function: String = rest[run + "body!(".len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                check_of_function.entry(function).or_insert(id);
            }
        }
        // Where each function starts, to find the one a call sits in; a key may be on
        // the line after the call, so calls are found in the whole text.
        let mut functions: Vec<(usize, String)> = Vec::new();
        let mut offset = 0;
        for line in source.split_inclusive('\n') {
            let trimmed = line.trim_start();
            if let Some(signature) = ["pub async fn ", "pub fn ", "async fn ", "fn "]
                .iter()
                .find_map(|p| trimmed.strip_prefix(p))
            {
                let name = signature
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                functions.push((offset, name));
            }
            offset += line.len();
        }
        for call in ["cx.record_exchange(", "cx.record("] {
            let mut from = 0;
            while let Some(at) = source[from..].find(call) {
                let start = from + at + call.len();
                from = start;
                let Some(key) = leading_string_literal(&source[start..]) else {
                    continue;
                };
                let enclosing = functions
                    .iter()
                    .rev()
                    .find(|(o, _)| *o <= start)
                    .map(|(_, f)| f.as_str());
                if let Some(id) = enclosing.and_then(|f| check_of_function.get(f)) {
                    self.by_entry.entry(key).or_insert_with(|| id.clone());
                }
            }
        }
    }

    /// The requirement of a row: a path rule's, else the entry's, else `-`.
    fn for_row(
        &self,
        entry: &str,
        path: &str,
        left: Option<&Value>,
        right: Option<&Value>,
    ) -> String {
        if path == ".headers.www-authenticate"
            && let Some(id) = challenge_id(entry, left, right)
        {
            return id;
        }
        // The most specific (longest) matching path wins.
        let rule = PATH_IDS
            .iter()
            .filter(|(rule_entry, rule_path, _)| {
                let anywhere = *rule_entry == "*";
                let entry_matches = anywhere
                    || match rule_entry.strip_suffix('*') {
                        Some(prefix) => entry.starts_with(prefix),
                        None => *rule_entry == entry,
                    };
                entry_matches && path_matches(path, rule_path, anywhere)
            })
            .max_by_key(|(_, rule_path, _)| rule_path.len());
        if let Some((_, _, id)) = rule {
            return (*id).to_owned();
        }
        self.by_entry
            .get(entry)
            .cloned()
            .unwrap_or_else(|| "-".to_owned())
    }
}

/// Whether `path` is `rule` or lies under it (at its start, or `anywhere` in it).
fn path_matches(path: &str, rule: &str, anywhere: bool) -> bool {
    let ends_there = |rest: &str| rest.is_empty() || rest.starts_with(['.', '[']);
    if anywhere {
        path.match_indices(rule)
            .any(|(at, _)| ends_there(&path[at + rule.len()..]))
    } else {
        path.strip_prefix(rule).is_some_and(ends_there)
    }
}

/// The string literal at the start of `text` (after whitespace), unescaped simply.
fn leading_string_literal(text: &str) -> Option<String> {
    let text = text.trim_start().strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

/// Which challenge parameter makes two `WWW-Authenticate` values differ: `error` on a
/// request without credentials is AUTH-GEN-07, `scope` AUTH-PRM-06, `resource_metadata`
/// AUTH-PRM-04.
fn challenge_id(entry: &str, left: Option<&Value>, right: Option<&Value>) -> Option<String> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
    let (l, r) = (text(left), text(right));
    let has = |value: &str, param: &str| value.contains(&format!("{param}="));
    let mut ids = Vec::new();
    for (param, id) in [
        ("resource_metadata", "AUTH-PRM-04"),
        ("scope", "AUTH-PRM-06"),
        ("error", "AUTH-GEN-07"),
    ] {
        // `error` is wrong only where no credentials were sent; an invalid token needs it.
        let relevant = param != "error" || entry.contains("unauthenticated");
        if relevant && has(&l, param) != has(&r, param) {
            ids.push(id);
        }
    }
    (!ids.is_empty()).then(|| ids.join(" "))
}

/// A cell as one short line: compact JSON, cut to `width` characters.
fn shorten(cell: &Cell, width: usize) -> String {
    let text = match cell {
        Cell::Absent => "(absent)".to_owned(),
        Cell::OnlyKeys(keys) if keys.is_empty() => "(no keys of its own)".to_owned(),
        Cell::OnlyKeys(keys) => format!("only here: {}", keys.join(", ")),
        // An exchange on one side only reads best as its status and request.
        Cell::Value(Value::Object(m)) if m.contains_key("status") && m.contains_key("request") => {
            format!(
                "{} {}",
                m["status"],
                m["request"].as_str().unwrap_or_default()
            )
        }
        // Strings read better without JSON's quotes and escapes; an empty one keeps them
        // so that it stays visible.
        Cell::Value(Value::String(text)) if !text.is_empty() => text.replace('\n', "⏎"),
        Cell::Value(v) => v.to_string(),
    };
    cut(&text, width)
}

fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let kept: String = text.chars().take(width.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

fn pad(text: &str, width: usize) -> String {
    let count = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(count)))
}

/// A path relative to the workspace, for headings and hints.
pub fn shown(path: &Path) -> String {
    let root = project_root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn render(left: &Side, right: &Side, rows: &[Row], ids: &RequirementIds) -> String {
    let mut out = format!(
        "snapshot-diff: {} ({}) vs {} ({})\n",
        left.name,
        shown(&left.source),
        right.name,
        shown(&right.source)
    );
    if rows.is_empty() {
        out.push_str("the transcripts are identical\n");
        return out;
    }
    let entries = |sections: &Sections| -> BTreeSet<(String, String)> {
        sections
            .iter()
            .flat_map(|(s, e)| e.keys().map(move |k| (s.clone(), k.clone())))
            .collect()
    };
    let total = entries(&left.sections)
        .union(&entries(&right.sections))
        .count();
    let differing: BTreeSet<(&str, &str)> = rows
        .iter()
        .map(|r| (r.section.as_str(), r.entry.as_str()))
        .collect();
    out.push_str(&format!(
        "{} differing paths in {} of {} entries; `expires_in` is compared by presence only\n",
        rows.len(),
        differing.len(),
        total
    ));
    let entry_id = |entry: &str| {
        ids.by_entry
            .get(entry)
            .cloned()
            .unwrap_or_else(|| "-".into())
    };
    let row_ids: Vec<String> = rows
        .iter()
        .map(|r| ids.for_row(&r.entry, &r.path, r.left.value(), r.right.value()))
        .collect();
    let id_width = rows
        .iter()
        .map(|r| entry_id(&r.entry))
        .chain(row_ids.iter().cloned())
        .map(|id| id.chars().count())
        .chain([ID_WIDTH])
        .max()
        .unwrap_or(ID_WIDTH)
        .min(MAX_ID_WIDTH);
    let line = |id: &str, place: &str, l: &str, r: &str| {
        format!(
            "  {} {} {} {}\n",
            pad(&cut(id, id_width), id_width),
            pad(&cut(place, PATH_WIDTH), PATH_WIDTH),
            pad(l, VALUE_WIDTH),
            r
        )
        .trim_end()
        .to_owned()
            + "\n"
    };
    let mut section = "";
    let mut entry = "";
    let mut shown_id = String::new();
    for (row, id) in rows.iter().zip(&row_ids) {
        if row.section != section {
            section = &row.section;
            entry = "";
            out.push_str(&format!("\n{section}\n"));
            out.push_str(&line(
                "requirement",
                "entry / path",
                &cut(&left.name, VALUE_WIDTH),
                &cut(&right.name, VALUE_WIDTH),
            ));
            out.push_str(&line(
                &"-".repeat(id_width),
                &"-".repeat(PATH_WIDTH),
                &"-".repeat(VALUE_WIDTH),
                &"-".repeat(VALUE_WIDTH),
            ));
        }
        let (l, r) = (
            shorten(&row.left, VALUE_WIDTH),
            shorten(&row.right, VALUE_WIDTH),
        );
        if row.entry != entry {
            entry = &row.entry;
            if row.path.is_empty() {
                // The entry exists on one side only: one line says it all.
                out.push_str(&line(id, entry, &l, &r));
                continue;
            }
            out.push_str(&line(&entry_id(entry), entry, "", ""));
            shown_id = entry_id(entry);
        }
        // A path's ID is shown where it differs from the one above it: the entry's at
        // first, then each narrower requirement once for its run of rows.
        let own = if *id == shown_id { "" } else { id.as_str() };
        shown_id = id.clone();
        out.push_str(&line(own, &format!("  {}", row.path), &l, &r));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sections(value: Value) -> Sections {
        merge_sections(&BTreeMap::from([("streamable-http".to_owned(), value)]))
    }

    #[test]
    fn differing_paths_are_rows_and_plain_lists_stay_whole() {
        let left = sections(json!({
            "authorization-server": {
                "authorization server metadata": {
                    "issuer": "[server]",
                    "token_endpoint_auth_methods_supported": ["none", "client_secret_post"],
                    "authorization_response_iss_parameter_supported": true
                }
            },
            "streamable-http": {
                "tools/list result": {"tools": [{"name": "a", "x": 1}]},
                "only left": {"status": 404, "request": "DELETE [server]/mcp"}
            }
        }));
        let right = sections(json!({
            "authorization-server": {
                "authorization server metadata": {
                    "issuer": "[server]",
                    "token_endpoint_auth_methods_supported": ["client_secret_post"]
                }
            },
            "streamable-http": {
                "tools/list result": {"tools": [{"name": "a", "x": 2}]}
            }
        }));
        let rows = compare(&left, &right);
        let paths: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.entry.as_str(), r.path.as_str()))
            .collect();
        assert_eq!(
            paths,
            [
                (
                    "authorization server metadata",
                    ".authorization_response_iss_parameter_supported"
                ),
                (
                    "authorization server metadata",
                    ".token_endpoint_auth_methods_supported"
                ),
                ("only left", ""),
                ("tools/list result", ".tools[0].x"),
            ]
        );
        assert_eq!(rows[0].right, Cell::Absent);
        let ids = RequirementIds::default();
        assert_eq!(
            ids.for_row(&rows[0].entry, &rows[0].path, None, None),
            "AUTH-ASM-11"
        );
        assert_eq!(shorten(&rows[2].left, 40), "404 DELETE [server]/mcp");
    }

    #[test]
    fn token_lifetimes_and_wholesale_key_changes_stay_short() {
        let left = sections(
            json!({"authorization-server": {"token response (refresh_token)": {
                "body": {"expires_in": 3600, "token_type": "Bearer"},
                "schema": {"a": 1, "b": 2, "c": 3, "same": 1}
            }}}),
        );
        let right = sections(
            json!({"authorization-server": {"token response (refresh_token)": {
                "body": {"expires_in": 10, "token_type": "Bearer"},
                "schema": {"x": 1, "y": 2, "same": 2}
            }}}),
        );
        let rows = compare(&left, &right);
        let paths: Vec<&str> = rows.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, [".schema", ".schema.same"]);
        assert_eq!(shorten(&rows[0].left, 40), "only here: a, b, c");
    }

    #[test]
    fn path_rules_match_whole_names_only() {
        let ids = RequirementIds::default();
        let id = |entry: &str, path: &str| ids.for_row(entry, path, None, None);
        assert_eq!(
            id("protected resource metadata", ".resource"),
            "AUTH-PRM-03"
        );
        assert_eq!(id("protected resource metadata", ".resource_name"), "-");
        assert_eq!(
            id(
                "authorization server metadata",
                ".revocation_endpoint_auth_methods_supported"
            ),
            "AUTH-FLOW-19"
        );
        assert_eq!(
            id(
                "token response (authorization_code)",
                ".headers.cache-control"
            ),
            "AUTH-FLOW-12"
        );
        assert_eq!(
            id("registration (public client)", ".headers.cache-control"),
            "-"
        );
        assert_eq!(
            id("tools/call x", ".result.structuredContent.login"),
            "TOOLS-08"
        );
    }

    #[test]
    fn insta_headers_are_skipped() {
        assert_eq!(
            strip_snap_header("---\nsource: x\nassertion_line: 3\n---\n{\"a\": 1}\n"),
            "{\"a\": 1}\n"
        );
        assert_eq!(strip_snap_header("{}"), "{}");
    }

    #[test]
    fn challenge_parameters_name_their_requirements() {
        let ids = RequirementIds::default();
        let id = ids.for_row(
            "401 unauthenticated POST",
            ".headers.www-authenticate",
            Some(&json!("Bearer resource_metadata=\"x\", scope=\"user\"")),
            Some(&json!(
                "Bearer error=\"invalid_token\", resource_metadata=\"x\""
            )),
        );
        assert_eq!(id, "AUTH-PRM-06 AUTH-GEN-07");
    }

    /// The IDs come from the checks' sources; this proves the scan still understands
    /// them, and that every entry the checks record gets an ID.
    #[test]
    fn every_recorded_entry_is_traced_to_its_check() {
        let dir = project_root().join("conformance/src/checks");
        let ids = RequirementIds::scan(&dir);
        for (entry, id) in [
            ("authorization server metadata", "AUTH-ASM-04"),
            ("403 foreign origin", "SHTTP-02"),
            ("tools/list result", "TOOLS-02"),
            ("endpoint event", "SSE-02"),
        ] {
            assert_eq!(
                ids.by_entry.get(entry).map(String::as_str),
                Some(id),
                "{entry}"
            );
        }
        let mut untraced = Vec::new();
        for path in fs::read_dir(&dir).unwrap() {
            let source = fs::read_to_string(path.unwrap().path()).unwrap_or_default();
            for call in ["cx.record_exchange(", "cx.record("] {
                for (at, _) in source.match_indices(call) {
                    if let Some(key) = leading_string_literal(&source[at + call.len()..])
                        && !ids.by_entry.contains_key(&key)
                    {
                        untraced.push(key);
                    }
                }
            }
        }
        assert!(
            untraced.is_empty(),
            "recorded in a function that no check runs directly: {untraced:?}"
        );
    }
}
