//! The requirement catalogue, `conformance/requirements.toml`, embedded in the binary: every
//! requirement the suite knows by ID, with its level, whom it binds, the spec versions it
//! applies to, the quoted normative sentence, its source and link, and how a black-box test
//! observes it. Also embedded: `conformance/faults.toml`, the names of the reference server's
//! faults and the requirements each breaks, generated from `server/src/fault.rs` by `cargo
//! xtask coverage` (the suite must not link the server, so it carries a copy that the tests
//! and `cargo xtask coverage --check` keep true).
//!
//! `mcp-auth-conformance explain ID` prints an entry with the checks that report it and the
//! faults that prove them ([`explain`]); `explain --json` is what `cargo xtask coverage`
//! reads ([`export`]).

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::sync::LazyLock;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use crate::checks::{self, Check, Level, Scope};
use crate::version::{Version, Versions};

/// Whom a requirement's sentence binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Binds {
    Server,
    /// A client rule: the server-side check derived from it only warns.
    Client,
    Both,
}

impl fmt::Display for Binds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Binds::Server => "server",
            Binds::Client => "client",
            Binds::Both => "both",
        })
    }
}

/// One entry of the catalogue.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub id: String,
    /// The ID without its number (`AUTH-FLOW`).
    pub area: String,
    pub title: String,
    #[serde(deserialize_with = "level")]
    pub level: Level,
    pub binds: Binds,
    /// The spec versions it applies to, oldest first.
    #[serde(deserialize_with = "versions")]
    pub versions: Vec<Version>,
    /// The normative sentence, verbatim apart from markup.
    pub quote: String,
    /// Spec version and section title, or RFC and section number.
    pub source: String,
    pub url: String,
    /// How a black-box test observes it.
    pub observe: String,
    /// False when nothing a server does over HTTP shows it.
    pub observable: bool,
    #[serde(default)]
    pub excluded_reason: Option<String>,
    /// Where the level or versions need a word, or the checklist and the spec differ.
    #[serde(default)]
    pub note: Option<String>,
}

impl Requirement {
    /// The versions as the contiguous range checks declare, when they are one.
    pub fn version_range(&self) -> Option<Versions> {
        let first = *self.versions.first()?;
        let last = *self.versions.last()?;
        let range = Versions::range(first, last);
        let expected: Vec<Version> = Version::ALL
            .into_iter()
            .filter(|v| range.contains(*v))
            .collect();
        (expected == self.versions).then_some(range)
    }
}

fn level<'de, D: Deserializer<'de>>(d: D) -> Result<Level, D::Error> {
    let text = String::deserialize(d)?;
    parse_level(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "unknown level {text:?}; use MUST, SHOULD, MAY or INFO"
        ))
    })
}

fn parse_level(text: &str) -> Option<Level> {
    match text {
        "MUST" => Some(Level::Must),
        "SHOULD" => Some(Level::Should),
        "MAY" => Some(Level::May),
        "INFO" => Some(Level::Info),
        _ => None,
    }
}

fn versions<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Version>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|v| v.parse().map_err(serde::de::Error::custom))
        .collect()
}

/// One fault of the reference server's fault table, as `conformance/faults.toml` lists it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub name: String,
    /// The requirement IDs it breaks.
    pub breaks: Vec<String>,
    /// Check keys or IDs that see the same defect a second way.
    #[serde(default)]
    pub also_breaks: Vec<String>,
    /// The checks (IDs or case keys) a run with the fault is limited to; empty for all.
    #[serde(default)]
    pub only: Vec<String>,
}

impl Fault {
    /// Whether a run with this fault must make `check` worse: the check is named after (or
    /// also proves) a requirement the fault breaks, or the fault names the check itself.
    pub fn proves(&self, check: &Check) -> bool {
        self.runs(check)
            && (check.ids().any(|id| self.breaks.iter().any(|b| b == id)) || self.names(check))
    }

    /// Whether the fault makes the check named after `id` fail as that requirement: it breaks
    /// `id` itself, or names the check.
    pub fn proves_own(&self, check: &Check) -> bool {
        self.runs(check) && (self.breaks.iter().any(|b| b == check.id) || self.names(check))
    }

    /// Whether a run with this fault runs the check at all.
    fn runs(&self, check: &Check) -> bool {
        let key = check.key();
        self.only.is_empty() || self.only.iter().any(|o| *o == key || o == check.id)
    }

    /// Whether the fault's `also` column names the check.
    fn names(&self, check: &Check) -> bool {
        let key = check.key();
        self.also_breaks.iter().any(|a| *a == key || a == check.id)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    requirement: Vec<Requirement>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultFile {
    fault: Vec<Fault>,
}

/// The catalogue's source, as embedded.
pub const REQUIREMENTS_TOML: &str = include_str!("../requirements.toml");
/// The fault list's source, as embedded.
pub const FAULTS_TOML: &str = include_str!("../faults.toml");

static REQUIREMENTS: LazyLock<Vec<Requirement>> = LazyLock::new(|| {
    // The unit tests parse the same text, so a broken file never reaches a release.
    toml::from_str::<CatalogueFile>(REQUIREMENTS_TOML)
        .expect("conformance/requirements.toml parses (see the catalogue tests)")
        .requirement
});

static FAULTS: LazyLock<Vec<Fault>> = LazyLock::new(|| {
    toml::from_str::<FaultFile>(FAULTS_TOML)
        .expect("conformance/faults.toml parses (see the catalogue tests)")
        .fault
});

/// Every requirement, in catalogue order.
pub fn all() -> &'static [Requirement] {
    &REQUIREMENTS
}

/// The requirement with this ID.
pub fn get(id: &str) -> Option<&'static Requirement> {
    REQUIREMENTS.iter().find(|r| r.id == id)
}

/// Every fault of the reference server.
pub fn faults() -> &'static [Fault] {
    &FAULTS
}

/// Up to `n` catalogue IDs nearest to `wanted` (case-insensitive edit distance), nearest first.
pub fn closest(wanted: &str, n: usize) -> Vec<&'static str> {
    let wanted = wanted.to_ascii_uppercase();
    let mut scored: Vec<(usize, usize, &'static str)> = REQUIREMENTS
        .iter()
        .enumerate()
        .map(|(i, r)| (edit_distance(&wanted, &r.id), i, r.id.as_str()))
        .collect();
    scored.sort();
    scored.into_iter().take(n).map(|(_, _, id)| id).collect()
}

/// Levenshtein distance over characters: how the suite suggests what a typo meant.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// Where a check runs, in words.
pub fn scope_label(check: &Check) -> String {
    match check.scope {
        Scope::AuthServer => "authorization server".to_owned(),
        Scope::Transports(transports) => transports
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The checks that report `id`: those named after it first, then those that also prove it.
pub fn checks_reporting(id: &str) -> Vec<Check> {
    let all = checks::all();
    let own = all.iter().filter(|c| c.id == id);
    let also = all.iter().filter(|c| c.id != id && c.also.contains(&id));
    own.chain(also).copied().collect()
}

/// The names of the faults that prove `check`.
pub fn faults_proving(check: &Check) -> Vec<&'static str> {
    FAULTS
        .iter()
        .filter(|f| f.proves(check))
        .map(|f| f.name.as_str())
        .collect()
}

/// Why `explain` could not print an ID.
#[derive(Debug)]
pub struct UnknownId {
    pub id: String,
    pub closest: Vec<&'static str>,
}

impl fmt::Display for UnknownId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no requirement {:?} in the catalogue; closest: {}",
            self.id,
            self.closest.join(", ")
        )
    }
}

/// The text `mcp-auth-conformance explain ID` prints.
pub fn explain(id: &str) -> Result<String, UnknownId> {
    let r = get(&id.to_ascii_uppercase()).ok_or_else(|| UnknownId {
        id: id.to_owned(),
        closest: closest(id, 3),
    })?;
    let mut out = String::new();
    let versions: Vec<&str> = r.versions.iter().map(|v| v.as_str()).collect();
    let _ = writeln!(out, "{}  {}", r.id, r.title);
    let _ = writeln!(out, "  level:    {} (binds the {})", r.level, r.binds);
    let _ = writeln!(out, "  versions: {}", versions.join(", "));
    let _ = writeln!(out, "  source:   {}", r.source);
    let _ = writeln!(out, "  link:     {}", r.url);
    let _ = writeln!(out, "\n  \"{}\"", r.quote);
    let _ = writeln!(out, "\nObserved:");
    for line in r.observe.lines() {
        let _ = writeln!(out, "  {line}");
    }
    if let Some(note) = &r.note {
        let _ = writeln!(out, "\nNote: {note}");
    }
    if let Some(reason) = &r.excluded_reason {
        let _ = writeln!(out, "\nNot observable on a server: {reason}");
    }
    let reporting = checks_reporting(&r.id);
    if reporting.is_empty() {
        let _ = writeln!(out, "\nNo check reports it yet.");
    } else {
        let _ = writeln!(out, "\nChecks:");
        for check in &reporting {
            let how = if check.id == r.id {
                String::new()
            } else {
                format!(" (also proves {})", r.id)
            };
            let _ = writeln!(
                out,
                "  {}{how}  [{}]  {}  {}",
                check.key(),
                scope_label(check),
                check.level,
                check.title
            );
            let faults = faults_proving(check);
            if faults.is_empty() {
                let _ = writeln!(out, "    no fault proves it can fail");
            } else {
                let _ = writeln!(out, "    proven by: {}", faults.join(", "));
            }
        }
    }
    Ok(out)
}

/// The catalogue joined with the checks and the faults, as JSON: what `explain --json` prints
/// and `cargo xtask coverage` reads.
pub fn export() -> Value {
    let all = checks::all();
    let requirements: Vec<Value> = REQUIREMENTS
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "area": r.area,
                "title": r.title,
                "level": r.level,
                "binds": r.binds,
                "versions": r.versions,
                "source": r.source,
                "url": r.url,
                "observable": r.observable,
                "excluded_reason": r.excluded_reason,
            })
        })
        .collect();
    let checks: Vec<Value> = all
        .iter()
        .map(|c| {
            let proven_by: Vec<&str> = faults_proving(c);
            let proven_own: Vec<&str> = FAULTS
                .iter()
                .filter(|f| f.proves_own(c))
                .map(|f| f.name.as_str())
                .collect();
            json!({
                "key": c.key(),
                "id": c.id,
                "also": c.also,
                "level": c.level,
                "scope": scope_label(c),
                "title": c.title,
                "faults": proven_by,
                "faults_own": proven_own,
            })
        })
        .collect();
    let known: BTreeSet<&str> = REQUIREMENTS.iter().map(|r| r.id.as_str()).collect();
    let unknown: BTreeSet<&str> = all
        .iter()
        .flat_map(|c| c.ids())
        .filter(|id| !known.contains(id))
        .collect();
    json!({
        "requirements": requirements,
        "checks": checks,
        "unknown_ids": unknown,
    })
}

/// `explain ID...` and `explain --json [ID...]`: the exit status, with the output printed.
pub fn explain_command(args: &[String]) -> u8 {
    let json_output = args.iter().any(|a| a == "--json");
    let ids: Vec<&String> = args.iter().filter(|a| *a != "--json").collect();
    if let Some(flag) = ids.iter().find(|a| a.starts_with('-')) {
        eprintln!("error: explain takes requirement IDs and --json, not {flag:?}");
        return 2;
    }
    if ids.is_empty() && !json_output {
        eprintln!("usage: mcp-auth-conformance explain ID... | explain --json [ID...]");
        return 2;
    }
    let mut status = 0;
    let mut texts = Vec::new();
    for id in &ids {
        match explain(id) {
            Ok(text) => texts.push(text),
            Err(unknown) => {
                eprintln!("error: {unknown}");
                status = 2;
            }
        }
    }
    if json_output {
        let mut value = export();
        if !ids.is_empty() {
            let wanted: BTreeSet<String> = ids.iter().map(|i| i.to_ascii_uppercase()).collect();
            if let Some(list) = value["requirements"].as_array_mut() {
                list.retain(|r| r["id"].as_str().is_some_and(|id| wanted.contains(id)));
            }
        }
        match serde_json::to_string_pretty(&value) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        }
    } else {
        print!("{}", texts.join("\n"));
    }
    status
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn the_catalogue_parses_and_every_field_is_well_formed() {
        let parsed: CatalogueFile = toml::from_str(REQUIREMENTS_TOML).expect("parses");
        // 200 requirements of the specification, its RFCs and the drafts it cites, the 4
        // of the robustness profile and the 4 of the model profile.
        assert_eq!(parsed.requirement.len(), 208);
        let mut seen = BTreeSet::new();
        for r in &parsed.requirement {
            assert!(seen.insert(r.id.clone()), "{} twice", r.id);
            assert_eq!(checks::area_of(&r.id), r.area, "{}: area", r.id);
            assert!(
                r.id.rsplit_once('-')
                    .is_some_and(|(_, n)| n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit())),
                "{}: the ID ends in a two-digit number",
                r.id
            );
            assert!(!r.title.is_empty() && !r.quote.is_empty(), "{}", r.id);
            assert!(!r.source.is_empty() && !r.observe.is_empty(), "{}", r.id);
            assert!(!r.versions.is_empty(), "{}: no versions", r.id);
            assert!(
                r.versions.windows(2).all(|w| w[0] < w[1]),
                "{}: versions are oldest first, once each",
                r.id
            );
            let spec = "https://modelcontextprotocol.io/specification/";
            let url_ok = if let Some(rest) = r.url.strip_prefix(spec) {
                Version::ALL
                    .iter()
                    .any(|v| rest.starts_with(&format!("{}/", v.as_str())))
            } else {
                r.url.starts_with("https://www.rfc-editor.org/rfc/rfc")
                    || r.url
                        .starts_with("https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1")
                    || r.url.starts_with(
                        "https://datatracker.ietf.org/doc/html/draft-ietf-oauth-client-id-metadata-document",
                    )
                    || r.url.starts_with("https://www.jsonrpc.org/specification#")
            };
            assert!(url_ok, "{}: url {:?}", r.id, r.url);
            assert!(
                url::Url::parse(&r.url).is_ok_and(|u| !u.fragment().is_some_and(str::is_empty)),
                "{}: url {:?} is no URL",
                r.id,
                r.url
            );
            assert_eq!(
                r.observable,
                r.excluded_reason.is_none(),
                "{}: an excluded_reason exactly when it is not observable",
                r.id
            );
        }
        // The catalogue keeps its areas in one block each.
        let mut areas: Vec<&str> = parsed.requirement.iter().map(|r| r.area.as_str()).collect();
        areas.dedup();
        let distinct: BTreeSet<&str> = areas.iter().copied().collect();
        assert_eq!(areas.len(), distinct.len(), "areas are contiguous");
    }

    #[test]
    fn the_fault_list_parses_and_names_catalogue_ids() {
        assert!(!faults().is_empty());
        let mut names = BTreeSet::new();
        for fault in faults() {
            assert!(names.insert(&fault.name), "{} twice", fault.name);
            for id in &fault.breaks {
                assert!(get(id).is_some(), "{}: breaks unknown {id}", fault.name);
            }
        }
    }

    /// The embedded fault list is the reference server's fault table; `cargo xtask coverage`
    /// rewrites it when the table changes.
    #[test]
    fn the_fault_list_matches_the_servers_fault_table() {
        use mcp_github_server::fault::Fault as ServerFault;
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let table: Vec<_> = ServerFault::ALL
            .iter()
            .filter(|f| !f.allowed())
            .map(|f| {
                (
                    f.name().to_owned(),
                    owned(f.breaks()),
                    owned(f.also_breaks()),
                    owned(f.only()),
                )
            })
            .collect();
        let embedded: Vec<_> = faults()
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    f.breaks.clone(),
                    f.also_breaks.clone(),
                    f.only.clone(),
                )
            })
            .collect();
        assert!(
            table == embedded,
            "conformance/faults.toml is stale; run `cargo xtask coverage`"
        );
    }

    /// Disagreements between a check's declaration and the catalogue that the catalogue is
    /// right about; each is for the check's owner to fix, and the entry goes with the fix.
    const KNOWN_DISAGREEMENTS: &[(&str, &str)] = &[
        (
            "SHTTP-25: versions 25-03..25-11 but the catalogue says 2025-03-26, 2025-06-18, 2025-11-25, 2026-07-28",
            "the check sends requests inside a session, and 2026-07-28 has none",
        ),
        (
            "SHTTP-24: versions 25-03..25-11 but the catalogue says 2025-03-26, 2025-06-18, 2025-11-25, 2026-07-28",
            "the check reads answers inside a session, and 2026-07-28 has none",
        ),
        (
            "LIFE-04: versions 25-03..25-11 but the catalogue says 2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25",
            "the check watches a Streamable HTTP session, which 2024-11-05 does not have",
        ),
        (
            "RPC-04: versions 24-11+ but the catalogue says 2025-03-26, 2025-06-18, 2025-11-25, 2026-07-28",
            "JSON-RPC 2.0 forbids answering a notification in every version; the catalogue lists those whose MCP text restates it",
        ),
        (
            "AUTH-ASM-13: versions 25-03+ but the catalogue says 2025-03-26",
            "the MCP-Protocol-Version sentence for metadata discovery is only in 2025-03-26",
        ),
        (
            "AUTH-TOK-04: versions 25-03+ but the catalogue says 2025-03-26",
            "the third-party authorization section is only in 2025-03-26",
        ),
        (
            "AUTH-3P-02: versions 25-03+ but the catalogue says 2025-03-26",
            "the third-party authorization section is only in 2025-03-26",
        ),
        (
            "AUTH-3P-02#user: versions 25-03+ but the catalogue says 2025-03-26",
            "the third-party authorization section is only in 2025-03-26",
        ),
        (
            "AUTH-3P-02#timeout: versions 25-03+ but the catalogue says 2025-03-26",
            "the third-party authorization section is only in 2025-03-26",
        ),
        (
            "AUTH-FLOW-19#access-token: level SHOULD but the catalogue says MUST",
            "RFC 7009 §2: implementations \"SHOULD support the revocation of access tokens\"; \
             the MUST of the catalogue's sentence is the refresh-token half, which AUTH-FLOW-19 \
             itself judges",
        ),
        (
            "AUTH-FLOW-06#https-loopback: level SHOULD but the catalogue says MUST",
            "RFC 8252 §7.3 defines loopback redirect URIs as http ones, but OAuth 2.1 §2.3.1 \
             excepts \"loopback redirects\" from exact matching without naming a scheme, and \
             the TypeScript SDK reads it so",
        ),
        (
            "AUTH-FLOW-06#omitted: level SHOULD but the catalogue says MUST",
            "OAuth 2.1 §4.1.1 makes redirect_uri optional for a client with one registered URI; \
             MCP clients always send it, so a server that requires it strands none of them",
        ),
        (
            "AUTH-FLOW-06#loopback-port: level SHOULD but the catalogue says MUST",
            "RFC 8252 §7.3 asks for any port on loopback redirect URIs, but the MCP text the \
             catalogue quotes asks for exact string matching and does not name the exception",
        ),
        (
            "AUTH-FLOW-03#verifier-length: level SHOULD but the catalogue says MUST",
            "RFC 7636 §4.1 puts the verifier's 43 to 128 characters on the client; a server \
             that redeems a shorter verifier matching its challenge breaks no MUST of its own",
        ),
        (
            "AUTH-3P-04#forged-cancel: level SHOULD but the catalogue says MUST",
            "no specification says what a refused forged approval does to the pending request; \
             a server that drops it lets anyone who saw the form cancel the user's approval",
        ),
        (
            "AUTH-3P-04#bidi-name: level SHOULD but the catalogue says MUST",
            "no specification names bidirectional overrides in a client name; a consent page \
             that shows them still shows the name, which then reads as another",
        ),
        (
            "RPC-07#stateless: versions 26-07 but the catalogue says 2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25, 2026-07-28",
            "the case sends 2026-07-28 requests (headers and _meta); the session-era RPC-07 \
             covers the earlier versions",
        ),
        (
            "AUTH-TOK-04#one-client: versions 25-03+ but the catalogue says 2025-03-26",
            "the third-party authorization section is only in 2025-03-26",
        ),
    ];

    #[test]
    fn every_check_names_catalogue_ids_and_agrees_on_level_and_versions() {
        let mut problems = Vec::new();
        for check in checks::all() {
            for id in check.ids() {
                if get(id).is_none() {
                    problems.push(format!(
                        "{}: names {id}, which the catalogue lacks",
                        check.key()
                    ));
                }
            }
            let Some(r) = get(check.id) else { continue };
            if check.level != r.level {
                problems.push(format!(
                    "{}: level {} but the catalogue says {}",
                    check.key(),
                    check.level,
                    r.level
                ));
            }
            if r.version_range() != Some(check.versions) {
                let listed: Vec<&str> = r.versions.iter().map(|v| v.as_str()).collect();
                problems.push(format!(
                    "{}: versions {} but the catalogue says {}",
                    check.key(),
                    check.versions,
                    listed.join(", ")
                ));
            }
        }
        let known: BTreeMap<&str, &str> = KNOWN_DISAGREEMENTS.iter().copied().collect();
        let unexpected: Vec<&String> = problems
            .iter()
            .filter(|p| !known.contains_key(p.as_str()))
            .collect();
        let stale: Vec<&&str> = known
            .keys()
            .filter(|k| !problems.iter().any(|p| p == *k))
            .collect();
        for p in &problems {
            println!("{p}");
        }
        assert!(
            unexpected.is_empty() && stale.is_empty(),
            "checks disagree with the catalogue:\n{}\nstale known disagreements:\n{}",
            unexpected
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            stale.iter().map(|s| **s).collect::<Vec<_>>().join("\n")
        );
    }

    #[test]
    fn lookups_find_ids_and_suggest_close_ones() {
        assert_eq!(get("AUTH-FLOW-04").map(|r| r.level), Some(Level::Must));
        assert!(get("AUTH-FLOW-99").is_none());
        assert_eq!(closest("AUTH-FLOW-4", 1), ["AUTH-FLOW-04"]);
        assert_eq!(closest("auth-flow-04", 1), ["AUTH-FLOW-04"]);
        let text = explain("AUTH-FLOW-04").expect("known");
        assert!(text.contains("https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2"));
        let err = explain("AUTH-FLOW-99").expect_err("unknown");
        assert!(err.closest.iter().all(|id| id.starts_with("AUTH-FLOW-")));
    }

    #[test]
    fn level_words_parse_exactly() {
        assert_eq!(parse_level("SHOULD"), Some(Level::Should));
        assert_eq!(parse_level("should"), None);
        assert_eq!(parse_level("RFC"), None);
    }
}
