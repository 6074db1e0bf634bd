//! `cargo xtask mutants`: mutation testing of the reference server with the suite as the
//! test. cargo-mutants changes one thing in `server/src` at a time (a return value, an
//! operator, a deleted statement), builds, and runs `conformance/tests/mutation_oracle.rs`,
//! which runs the whole suite against the mutated server. A mutant the suite does not
//! notice is a missing or weak check.
//!
//! Two passes: the first catches a mutant when a MUST check fails or errors; the second
//! re-tests only the mutants the first missed, with warnings denied, so that a mutant which
//! only breaks a SHOULD is counted apart. What is never mutated, and why, is in
//! `.cargo/mutants.toml`; every entry there needs a comment, which this task checks.
//! Mutants in code that only a configured fault runs are left out by analysis of the
//! source (`fault_only`), and counted apart.

mod fault_only;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::{cargo, progress, project_root};

/// The cargo-mutants release the options below are written for.
const CARGO_MUTANTS_VERSION: &str = "27.1.0";

/// The areas the mutation score is measured on, as the issue of record names them.
const SCORED: [&str; 4] = [
    "server/src/oauth/",
    "server/src/resource.rs",
    "server/src/store.rs",
    "server/src/mcp/",
];

const USAGE: &str = "\
usage: cargo xtask mutants [--shard K/N] [--file GLOB]... [--timeout SECS] [--jobs N]
                           [--list] [--no-warnings-pass] [--in-place] [--write-doc]
                           [--report-only]

Mutates server/src one change at a time (cargo-mutants) and runs the suite against each
mutant (conformance/tests/mutation_oracle.rs). A mutant is caught when a MUST check fails
or errors; the mutants that survive are tested again with warnings denied and counted
apart. Exclusions, each with its reason, are in .cargo/mutants.toml.
  --shard K/N        only every N-th mutant, starting at the K-th (0-based): a sample spread
                     over every file, for CI and for parallel machines
  --file GLOB        only files matching GLOB (repeatable), e.g. server/src/store.rs
  --timeout SECS     a mutant whose suite run takes longer is a timeout (default 300)
  --jobs N           mutants built and tested at once (default 1)
  --list             list the mutants and exit
  --no-warnings-pass skip the second pass
  --in-place         mutate this tree and build in its target/ (warm, no copy) instead of a
                     scratch copy; cargo-mutants restores each file, but do not edit meanwhile
  --write-doc        keep this run's results in docs/mutants/ (one file per shard) and write
                     docs/mutants.md from every shard kept there, saying which are missing
  --report-only      run nothing: print (and with --write-doc write) the tables of the last
                     run from target/mutants/, given the --shard and --file it ran with
Installs cargo-mutants with `cargo install --locked` when it is missing. Results are in
target/mutants/ (one directory per pass).";

struct Options {
    shard: Option<String>,
    files: Vec<String>,
    timeout: u64,
    jobs: usize,
    list: bool,
    warnings_pass: bool,
    in_place: bool,
    write_doc: bool,
    report_only: bool,
}

fn parse(args: &[String]) -> anyhow::Result<Option<Options>> {
    let mut options = Options {
        shard: None,
        files: Vec::new(),
        timeout: 300,
        jobs: 1,
        list: false,
        warnings_pass: true,
        in_place: false,
        write_doc: false,
        report_only: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .cloned()
                .with_context(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "--shard" => {
                let shard = value("--shard")?;
                let valid = shard.split_once('/').is_some_and(|(k, n)| {
                    matches!((k.parse::<usize>(), n.parse::<usize>()), (Ok(k), Ok(n)) if k < n)
                });
                if !valid {
                    bail!("--shard takes K/N with 0 <= K < N, not {shard:?}");
                }
                options.shard = Some(shard);
            }
            "--file" => options.files.push(value("--file")?),
            "--timeout" => {
                options.timeout = value("--timeout")?
                    .parse()
                    .context("--timeout takes whole seconds")?;
            }
            "--jobs" => {
                options.jobs = value("--jobs")?.parse().context("--jobs takes a number")?;
            }
            "--list" => options.list = true,
            "--no-warnings-pass" => options.warnings_pass = false,
            "--in-place" => options.in_place = true,
            "--write-doc" => options.write_doc = true,
            "--report-only" => options.report_only = true,
            other => bail!("unknown option {other:?}\n\n{USAGE}"),
        }
    }
    if options.in_place && options.jobs > 1 {
        bail!("--in-place mutates one tree, so it runs one mutant at a time: drop --jobs");
    }
    Ok(Some(options))
}

pub fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let Some(options) = parse(args)? else {
        return Ok(ExitCode::SUCCESS);
    };
    let root = project_root();
    let out = root.join("target/mutants");
    if options.report_only {
        return report(&root, &options, &out);
    }
    check_exclusions_have_reasons(&root.join(".cargo/mutants.toml"))?;
    install(&root)?;
    let first = out.join("must");
    let second = out.join("should");
    for dir in [&first, &second] {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let fault_only = fault_only_mutants(&root, &options, &first)?;
    let excluded: Vec<String> = fault_only
        .iter()
        .flat_map(|name| {
            [
                "--exclude-re".to_owned(),
                format!("^{}$", regex_escape(name)),
            ]
        })
        .collect();
    if options.list {
        let mut extra = excluded.clone();
        extra.push("--list".into());
        let command = base_command(&options, &first, &extra);
        let status = duct::cmd(cargo(), &command)
            .dir(&root)
            .unchecked()
            .run()?
            .status;
        return Ok(if status.success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    // The commit measured, for the report; the tree may move on before the run ends.
    let commit = duct::cmd("git", ["rev-parse", "--short", "HEAD"])
        .dir(&root)
        .read()
        .unwrap_or_default();
    fs::write(out.join("commit.txt"), format!("{commit}\n"))
        .context("cannot write target/mutants/commit.txt")?;
    // What the measure depends on: the code mutated, the exclusions, and the suite that
    // judges the mutants. Shards measured at different commits deal out the same mutants
    // when the first two are the same.
    let trees = measured_objects(&root, &options)?;
    fs::write(out.join("trees.txt"), format!("{trees}\n"))
        .context("cannot write target/mutants/trees.txt")?;
    // A second pass of an earlier run must not be read as this run's.
    let _ = fs::remove_dir_all(second.join("mutants.out"));
    progress::note("xtask mutants: pass 1, a mutant is caught when a MUST fails or errors");
    progress::note(&format!(
        "xtask mutants: {} mutants in code only a fault runs are left out (target/mutants/fault-only.txt)",
        fault_only.len()
    ));
    run_cargo_mutants(&root, &base_command(&options, &first, &excluded), &[])?;
    let must = outcomes(&first.join("mutants.out/outcomes.json"))?;
    let missed: Vec<&Mutant> = must
        .iter()
        .filter(|m| m.outcome == Outcome::Missed)
        .collect();
    let mut should_caught: Vec<String> = Vec::new();
    if options.warnings_pass && !missed.is_empty() {
        progress::note(&format!(
            "xtask mutants: pass 2, {} surviving mutants with warnings denied",
            missed.len()
        ));
        // What the unmutated server warns about is no finding: record it first.
        let clean_warnings = out.join("clean-warnings.txt");
        let status = duct::cmd(
            cargo(),
            [
                "test",
                "-p",
                "mcp-auth-conformance",
                "--test",
                "mutation_oracle",
                "--",
                "--ignored",
            ],
        )
        .dir(&root)
        .env("MCP_MUTANTS_RECORD_WARNINGS", &clean_warnings)
        .unchecked()
        .run()
        .context("cannot run the oracle against the unmutated server")?
        .status;
        if !status.success() {
            bail!("the suite rejects the unmutated server; fix that before measuring mutants");
        }
        // Exactly the survivors of the first pass, by name.
        let survivors: Vec<String> = missed
            .iter()
            .flat_map(|m| ["--re".to_owned(), format!("^{}$", regex_escape(&m.name))])
            .collect();
        let command = base_command(&options, &second, &survivors);
        let clean_warnings = clean_warnings.display().to_string();
        run_cargo_mutants(
            &root,
            &command,
            &[("MCP_MUTANTS_DENY_WARNINGS", clean_warnings.as_str())],
        )?;
        should_caught = outcomes(&second.join("mutants.out/outcomes.json"))?
            .into_iter()
            .filter(|m| m.outcome == Outcome::Caught)
            .map(|m| m.name)
            .collect();
    }
    finish(&root, &options, &must, &should_caught, &fault_only)
}

/// Prints the tables and, with `--write-doc`, writes docs/mutants.md; fails when a mutant
/// survived both passes.
fn finish(
    root: &Path,
    options: &Options,
    must: &[Mutant],
    should_caught: &[String],
    fault_only: &[String],
) -> anyhow::Result<ExitCode> {
    let mut table = summary(must, should_caught);
    let _ = writeln!(
        table,
        "left out: {} mutants in code that only a configured fault runs",
        fault_only.len()
    );
    print!("{table}");
    if options.write_doc {
        let measured = |name: &str| {
            fs::read_to_string(root.join("target/mutants").join(name))
                .map(|text| text.trim().to_owned())
                .unwrap_or_default()
        };
        let record = Record {
            shard: options.shard.clone(),
            files: options.files.clone(),
            commit: measured("commit.txt"),
            trees: measured("trees.txt"),
            mutants: must.to_vec(),
            should_caught: should_caught.to_vec(),
            fault_only: fault_only.to_vec(),
            excluded_since: 0,
        };
        let mut records = store_record(&root.join(RECORDS), &record)?;
        leave_out_excluded_since(root, options, &mut records)?;
        let doc = root.join("docs/mutants.md");
        fs::write(&doc, document(&records, &record.fault_only))
            .with_context(|| format!("cannot write {}", doc.display()))?;
        progress::note(&format!(
            "xtask mutants: wrote {} from {} shard records in {RECORDS}",
            doc.display(),
            records.len()
        ));
    }
    let missed_at_all = must
        .iter()
        .filter(|m| m.outcome == Outcome::Missed && !should_caught.contains(&m.name))
        .count();
    Ok(if missed_at_all == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `--report-only`: the last run's results, read back from `out`.
fn report(root: &Path, options: &Options, out: &Path) -> anyhow::Result<ExitCode> {
    let must = outcomes(&out.join("must/mutants.out/outcomes.json"))?;
    let second = out.join("should/mutants.out/outcomes.json");
    let should_caught: Vec<String> = if second.exists() {
        outcomes(&second)?
            .into_iter()
            .filter(|m| m.outcome == Outcome::Caught)
            .map(|m| m.name)
            .collect()
    } else {
        Vec::new()
    };
    let fault_only: Vec<String> = fs::read_to_string(out.join("fault-only.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    finish(root, options, &must, &should_caught, &fault_only)
}

/// The cargo-mutants command line both passes share, with `extra` options of cargo-mutants
/// before the `--` that starts cargo test's arguments.
fn base_command(options: &Options, output: &Path, extra: &[String]) -> Vec<String> {
    let mut command: Vec<String> = [
        "mutants",
        "--package",
        "mcp-github-server",
        "--test-package",
        "mcp-auth-conformance",
        "--no-shuffle",
        "--baseline",
        "skip",
    ]
    .map(String::from)
    .to_vec();
    command.extend(["--timeout".into(), options.timeout.to_string()]);
    // In place there is one tree, so one mutant at a time.
    if !options.in_place {
        command.extend(["--jobs".into(), options.jobs.to_string()]);
    }
    command.extend(["--output".into(), output.display().to_string()]);
    // The second pass names its survivors, which a shard of their own list would thin out.
    let first_pass = !extra.iter().any(|option| option == "--re");
    if let (Some(shard), true) = (&options.shard, first_pass) {
        // Round-robin, so that a shard samples every file rather than a few of them.
        command.extend(["--shard".into(), shard.clone()]);
        command.extend(["--sharding".into(), "round-robin".into()]);
    }
    if options.in_place {
        command.push("--in-place".into());
    }
    for file in &options.files {
        command.extend(["--file".into(), file.clone()]);
    }
    command.extend_from_slice(extra);
    // What cargo builds and runs for each mutant: the oracle alone, which is ignored
    // otherwise. Named as a cargo argument, so that the build links only the oracle and not
    // every other test binary of the package.
    command.push("--cargo-arg=--test=mutation_oracle".into());
    command.extend(["--", "--", "--ignored"].map(String::from));
    command
}

fn run_cargo_mutants(root: &Path, command: &[String], env: &[(&str, &str)]) -> anyhow::Result<()> {
    let mut expression = duct::cmd(cargo(), command).dir(root).unchecked();
    for (name, value) in env {
        expression = expression.env(name, value);
    }
    let status = expression.run().context("cannot run cargo mutants")?.status;
    // cargo-mutants exits 2 when mutants were missed and 3 on timeouts: results, not
    // failures of the run. Anything else means the run itself went wrong.
    match status.code() {
        Some(0 | 2 | 3) => Ok(()),
        other => bail!("cargo mutants failed (exit {other:?}); see its output above"),
    }
}

fn install(root: &Path) -> anyhow::Result<()> {
    let installed = duct::cmd(cargo(), ["mutants", "--version"])
        .dir(root)
        .stdout_capture()
        .stderr_null()
        .unchecked()
        .run()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned());
    if installed.is_some_and(|version| version.contains(CARGO_MUTANTS_VERSION)) {
        return Ok(());
    }
    progress::note(&format!(
        "xtask mutants: installing cargo-mutants {CARGO_MUTANTS_VERSION} (cargo install --locked)"
    ));
    duct::cmd(
        cargo(),
        [
            "install",
            "--locked",
            &format!("cargo-mutants@{CARGO_MUTANTS_VERSION}"),
        ],
    )
    .run()
    .context("cargo install cargo-mutants failed")?;
    Ok(())
}

/// Every exclusion in `.cargo/mutants.toml` follows a comment that gives its reason: an
/// exclusion without one would hide a missed mutant for no stated cause.
fn check_exclusions_have_reasons(config: &Path) -> anyhow::Result<()> {
    let text =
        fs::read_to_string(config).with_context(|| format!("cannot read {}", config.display()))?;
    let mut unexplained = Vec::new();
    let mut in_list = false;
    let mut previous_is_comment = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("exclude_globs") || line.starts_with("exclude_re") {
            in_list = !line.ends_with(']');
        } else if in_list && line.starts_with(']') {
            in_list = false;
        } else if in_list && line.starts_with('"') && !previous_is_comment {
            unexplained.push(line.to_owned());
        }
        previous_is_comment = line.starts_with('#');
    }
    if !unexplained.is_empty() {
        bail!(
            "{}: these exclusions have no comment giving their reason:\n{}",
            config.display(),
            unexplained.join("\n")
        );
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Caught,
    Missed,
    Timeout,
    Unviable,
}

#[derive(Debug, Clone)]
struct Mutant {
    name: String,
    file: String,
    outcome: Outcome,
}

/// The mutants of one pass, from cargo-mutants' `outcomes.json`.
fn outcomes(path: &Path) -> anyhow::Result<Vec<Mutant>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let mut out = Vec::new();
    for entry in value["outcomes"].as_array().into_iter().flatten() {
        let Some(mutant) = entry["scenario"].get("Mutant") else {
            continue; // the baseline
        };
        let outcome = match entry["summary"].as_str() {
            Some("CaughtMutant") => Outcome::Caught,
            Some("MissedMutant") => Outcome::Missed,
            Some("Timeout") => Outcome::Timeout,
            Some("Unviable") => Outcome::Unviable,
            other => bail!("{}: unknown outcome {other:?}", path.display()),
        };
        let file = mutant["file"].as_str().unwrap_or_default().to_owned();
        let name = mutant["name"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| describe(mutant, &file));
        out.push(Mutant {
            name,
            file,
            outcome,
        });
    }
    Ok(out)
}

/// A mutant's display name when the JSON has none: file, line, and the replacement.
fn describe(mutant: &Value, file: &str) -> String {
    let line = mutant
        .pointer("/span/start/line")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let replacement = mutant["replacement"].as_str().unwrap_or("?");
    format!("{file}:{line}: replace with {replacement}")
}

fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~ ".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Per file: caught by a MUST, caught only with warnings denied, missed, timeouts and
/// unviable mutants; then the score over the scored areas.
fn summary(must: &[Mutant], should_caught: &[String]) -> String {
    #[derive(Default)]
    struct Row {
        must: usize,
        should: usize,
        missed: usize,
        timeout: usize,
        unviable: usize,
    }
    let mut rows: BTreeMap<&str, Row> = BTreeMap::new();
    for m in must {
        let row = rows.entry(m.file.as_str()).or_default();
        match m.outcome {
            Outcome::Caught => row.must += 1,
            Outcome::Missed if should_caught.contains(&m.name) => row.should += 1,
            Outcome::Missed => row.missed += 1,
            Outcome::Timeout => row.timeout += 1,
            Outcome::Unviable => row.unviable += 1,
        }
    }
    let mut out = String::from(
        "| file | caught (MUST) | caught only with warnings denied | missed | timeout | unviable |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let (mut caught, mut should, mut viable) = (0, 0, 0);
    for (file, row) in &rows {
        let _ = writeln!(
            out,
            "| `{file}` | {} | {} | {} | {} | {} |",
            row.must, row.should, row.missed, row.timeout, row.unviable
        );
        if SCORED.iter().any(|area| file.starts_with(area)) {
            // A timeout is a caught mutant: the suite did not accept the server.
            caught += row.must + row.timeout;
            should += row.should;
            viable += row.must + row.should + row.missed + row.timeout;
        }
    }
    let percent = |part: usize| {
        if viable == 0 {
            100.0
        } else {
            100.0 * part as f64 / viable as f64
        }
    };
    let _ = writeln!(
        out,
        "\nscored areas ({}): {caught} of {viable} viable mutants caught by a MUST or a timeout \
         ({:.1}%); {} caught counting those caught only with warnings denied ({:.1}%)",
        SCORED.join(", "),
        percent(caught),
        caught + should,
        percent(caught + should),
    );
    out
}

/// Where `--write-doc` keeps each shard's results, one JSON file per shard, so that shards
/// measured one at a time (on one machine, or on several) add up to the whole.
const RECORDS: &str = "docs/mutants";

/// One run's results as kept in [`RECORDS`].
struct Record {
    shard: Option<String>,
    files: Vec<String>,
    commit: String,
    /// The code mutated ([`mutated_code`]), `.cargo/mutants.toml` and `conformance` as
    /// the run measured them, as git object ids in that order.
    trees: String,
    mutants: Vec<Mutant>,
    should_caught: Vec<String>,
    fault_only: Vec<String>,
    /// Mutants of the record that `.cargo/mutants.toml` has excluded since the run; set
    /// when the document is written, never stored.
    excluded_since: usize,
}

impl Record {
    fn file_name(&self) -> String {
        match self
            .shard
            .as_deref()
            .and_then(|shard| shard.split_once('/'))
        {
            Some((k, n)) => format!("shard-{k}-of-{n}.json"),
            None => "all.json".to_owned(),
        }
    }

    /// `(K, N)` of a shard; `(0, 1)` for a whole run.
    fn shard_numbers(&self) -> (usize, usize) {
        self.shard
            .as_deref()
            .and_then(|shard| shard.split_once('/'))
            .and_then(|(k, n)| Some((k.parse().ok()?, n.parse().ok()?)))
            .unwrap_or((0, 1))
    }

    fn to_json(&self) -> Value {
        let outcome = |m: &Mutant| match m.outcome {
            Outcome::Caught => "caught",
            Outcome::Missed if self.should_caught.contains(&m.name) => {
                "caught-with-warnings-denied"
            }
            Outcome::Missed => "missed",
            Outcome::Timeout => "timeout",
            Outcome::Unviable => "unviable",
        };
        serde_json::json!({
            "shard": self.shard,
            "files": self.files,
            "commit": self.commit,
            "trees": self.trees,
            "mutants": self.mutants.iter().map(|m| serde_json::json!({
                "name": m.name,
                "file": m.file,
                "outcome": outcome(m),
            })).collect::<Vec<_>>(),
            "fault_only": self.fault_only,
        })
    }

    fn from_json(value: &Value) -> anyhow::Result<Record> {
        let strings = |key: &str| -> Vec<String> {
            value[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        };
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
        let mut mutants = Vec::new();
        let mut should_caught = Vec::new();
        for entry in value["mutants"].as_array().into_iter().flatten() {
            let name = entry["name"].as_str().unwrap_or_default().to_owned();
            let outcome = match entry["outcome"].as_str() {
                Some("caught") => Outcome::Caught,
                Some("caught-with-warnings-denied") => {
                    should_caught.push(name.clone());
                    Outcome::Missed
                }
                Some("missed") => Outcome::Missed,
                Some("timeout") => Outcome::Timeout,
                Some("unviable") => Outcome::Unviable,
                other => bail!("a mutant with the unknown outcome {other:?}"),
            };
            mutants.push(Mutant {
                name,
                file: entry["file"].as_str().unwrap_or_default().to_owned(),
                outcome,
            });
        }
        Ok(Record {
            shard: value["shard"].as_str().map(str::to_owned),
            files: strings("files"),
            commit: text("commit"),
            trees: text("trees"),
            mutants,
            should_caught,
            fault_only: strings("fault_only"),
            excluded_since: 0,
        })
    }
}

/// Writes `record` into `dir` and returns every record there that adds up with it: the same
/// files and the same number of shards. Records of another division are removed, since they
/// can no longer be added to; a whole run replaces every shard.
fn store_record(dir: &Path, record: &Record) -> anyhow::Result<Vec<Record>> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut records = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_none_or(|extension| extension != "json") {
            continue;
        }
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let kept = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|value| Record::from_json(&value).ok())
            .filter(|old| {
                old.files == record.files
                    && old.shard_numbers().1 == record.shard_numbers().1
                    && old.file_name() != record.file_name()
            });
        match kept {
            Some(old) => records.push(old),
            None => fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?,
        }
    }
    let path = dir.join(record.file_name());
    let text = serde_json::to_string_pretty(&record.to_json())? + "\n";
    fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    records.push(Record::from_json(&record.to_json())?);
    records.sort_by_key(Record::shard_numbers);
    Ok(records)
}

/// Every mutant of the files `options` names, unsharded, as cargo-mutants lists them with
/// the current exclusions.
fn listed_mutants(root: &Path, options: &Options) -> anyhow::Result<Vec<Value>> {
    let listing = Options {
        shard: None,
        files: options.files.clone(),
        ..*options
    };
    let scratch = root.join("target/mutants/listing");
    let mut command = base_command(&listing, &scratch, &["--list".into(), "--json".into()]);
    // cargo test's arguments mean nothing to a listing.
    if let Some(end) = command.iter().position(|argument| argument == "--") {
        command.truncate(end);
    }
    let listed = duct::cmd(cargo(), &command)
        .dir(root)
        .stderr_null()
        .read()
        .context("cannot list the mutants (cargo mutants --list --json)")?;
    serde_json::from_str(&listed).context("cargo mutants --list --json gave no JSON list")
}

/// The code the mutants are named in, as one git object id over the blobs of the files that
/// hold them: where it is the same, a mutant's name (which carries its line) means the same
/// change. Other files of the server (the fault table, say) may differ.
fn mutated_code(root: &Path, mutants: &[Value]) -> String {
    let files: std::collections::BTreeSet<&str> = mutants
        .iter()
        .filter_map(|mutant| mutant["file"].as_str())
        .collect();
    let mut arguments = vec!["ls-tree", "HEAD", "--"];
    arguments.extend(files);
    let Ok(blobs) = duct::cmd("git", arguments).dir(root).read() else {
        return String::new();
    };
    duct::cmd("git", ["hash-object", "--stdin"])
        .dir(root)
        .stdin_bytes(blobs)
        .read()
        .map(|id| id.chars().take(7).collect())
        .unwrap_or_default()
}

/// The code mutated, the exclusions and the suite, as git object ids separated by spaces.
fn measured_objects(root: &Path, options: &Options) -> anyhow::Result<String> {
    let object = |path: &str| {
        duct::cmd("git", ["rev-parse", "--short", &format!("HEAD:{path}")])
            .dir(root)
            .read()
            .unwrap_or_default()
    };
    Ok(format!(
        "{} {} {}",
        mutated_code(root, &listed_mutants(root, options)?),
        object(".cargo/mutants.toml"),
        object("conformance")
    ))
}

/// An exclusion reasoned after a shard was measured applies to its record too: where the
/// record measured the mutated code as it is now (so that mutant names, which carry line
/// numbers, still mean the same change), its mutants that the current exclusions no longer list are
/// left out of the sums and counted apart.
fn leave_out_excluded_since(
    root: &Path,
    options: &Options,
    records: &mut [Record],
) -> anyhow::Result<()> {
    let listed = listed_mutants(root, options)?;
    let code_now = mutated_code(root, &listed);
    let current: std::collections::BTreeSet<String> = listed
        .iter()
        .filter_map(|mutant| mutant["name"].as_str().map(str::to_owned))
        .collect();
    for record in records {
        if code_now.is_empty() || record.trees.split(' ').next() != Some(code_now.as_str()) {
            continue;
        }
        let before = record.mutants.len();
        record.mutants.retain(|m| current.contains(&m.name));
        record.excluded_since = before - record.mutants.len();
    }
    Ok(())
}

/// docs/mutants.md from the records of one division into shards: the tables summed over the
/// shards measured, saying which they are and what each measured. Every run lists the
/// fault-only mutants of all the files, unsharded; `fault_only` is the newest run's list.
fn document(records: &[Record], fault_only: &[String]) -> String {
    let mut out = String::from(
        "# Mutation testing\n\n\
         Generated by `cargo xtask mutants --write-doc`; do not edit. Each mutant is one change \
         to `server/src` made by cargo-mutants; the test is the whole suite against the \
         mutated server (`conformance/tests/mutation_oracle.rs`). Caught (MUST): a MUST check \
         failed or errored. Caught only with warnings denied: the mutant breaks a SHOULD \
         only. Exclusions and their reasons are in `.cargo/mutants.toml`. Each run's results \
         are kept in `docs/mutants/`, one file per shard, and the tables below add them up.\n\n",
    );
    let Some(first) = records.first() else {
        return out;
    };
    let files = if first.files.is_empty() {
        "every file of `server/src`".to_owned()
    } else {
        format!("files {}", first.files.join(", "))
    };
    let (_, shards) = first.shard_numbers();
    let mutants: Vec<Mutant> = records.iter().flat_map(|r| r.mutants.clone()).collect();
    let should_caught: Vec<String> = records
        .iter()
        .flat_map(|r| r.should_caught.clone())
        .collect();
    if shards == 1 {
        let _ = writeln!(
            out,
            "Scope: {files}, every mutant ({} mutants).\n",
            mutants.len()
        );
    } else {
        let measured: Vec<usize> = records.iter().map(|r| r.shard_numbers().0).collect();
        let missing: Vec<String> = (0..shards)
            .filter(|k| !measured.contains(k))
            .map(|k| format!("{k}/{shards}"))
            .collect();
        let whole = if missing.is_empty() {
            "all of them, so every mutant".to_owned()
        } else {
            let (noun, verb) = if missing.len() == 1 {
                ("shard", "is")
            } else {
                ("shards", "are")
            };
            format!(
                "{} of them, so a sample: {noun} {} {verb} not measured yet",
                measured.len(),
                missing.join(", ")
            )
        };
        let _ = writeln!(
            out,
            "Scope: {files}, dealt round-robin into {shards} shards (`--shard K/{shards}`); \
             measured: {whole} ({} mutants).\n",
            mutants.len()
        );
    }
    out.push_str(
        "| shard | commit | mutated code, exclusions, suite (git objects) | mutants |\n\
         | --- | --- | --- | ---: |\n",
    );
    for record in records {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            record.shard.as_deref().unwrap_or("all"),
            record.commit,
            record.trees,
            record.mutants.len()
        );
    }
    // The mutated code and the exclusions decide the list of mutants the shards deal out;
    // the suite decides only the verdicts.
    let dealt: std::collections::BTreeSet<Vec<&str>> = records
        .iter()
        .map(|r| r.trees.split(' ').take(2).collect())
        .collect();
    let judged: std::collections::BTreeSet<Option<&str>> =
        records.iter().map(|r| r.trees.split(' ').nth(2)).collect();
    if dealt.len() > 1 {
        out.push_str(
            "\nThe shards measured different versions of the mutated code or of the exclusions: \
             where the list of mutants changed in between, the shards overlap or leave gaps, \
             so the sum is close to the whole but not exactly it.\n",
        );
    } else if judged.len() > 1 {
        out.push_str(
            "\nThe shards deal out the same mutants (the same code and exclusions), judged \
             by different versions of the suite.\n",
        );
    }
    let excluded_since: usize = records.iter().map(|r| r.excluded_since).sum();
    if excluded_since > 0 {
        let _ = writeln!(
            out,
            "\n{excluded_since} of the mutants measured have been excluded since, each with its \
             reason in `.cargo/mutants.toml`; the tables leave them out."
        );
    }
    out.push('\n');
    out.push_str(&summary(&mutants, &should_caught));
    let survivors: Vec<(&Record, &Mutant)> = records
        .iter()
        .flat_map(|r| r.mutants.iter().map(move |m| (r, m)))
        .filter(|(r, m)| m.outcome == Outcome::Missed && !r.should_caught.contains(&m.name))
        .collect();
    if !survivors.is_empty() {
        out.push_str("\n## Missed mutants\n\nEach is a missing or weak check, or an exclusion to reason.\n\n");
        for (record, m) in survivors {
            let shard = record.shard.as_deref().unwrap_or("all");
            let _ = writeln!(out, "- `{}` (shard {shard})", m.name);
        }
    }
    if !fault_only.is_empty() {
        out.push_str(
            "\n## Left out: code only a fault runs\n\n\
             The oracle runs the server without faults, so these mutants change nothing it can \
             run: they sit under `#[cfg(feature = \"fault-injection\")]`, beside an `injected!` \
             switch in a conjunction, or in a block or match arm such a condition guards \
             (`xtask/src/mutants/fault_only.rs`).\n\n",
        );
        for name in fault_only {
            let _ = writeln!(out, "- `{name}`");
        }
    }
    out
}

/// The mutants of this run that sit in fault-only code, by name; a run (not a listing) also
/// writes them to `fault-only.txt` beside the first pass's results.
fn fault_only_mutants(
    root: &Path,
    options: &Options,
    output: &Path,
) -> anyhow::Result<Vec<String>> {
    // Unsharded: a shard is dealt after the exclusions, from what remains.
    let mutants = listed_mutants(root, options)?;
    let files: std::collections::BTreeSet<String> = mutants
        .iter()
        .filter_map(|mutant| mutant["file"].as_str().map(str::to_owned))
        .collect();
    let regions = fault_only::regions_by_file(root, files)?;
    let names: Vec<String> = mutants
        .iter()
        .filter(|mutant| {
            let (Some(file), Some((start, end))) =
                (mutant["file"].as_str(), fault_only::mutant_span(mutant))
            else {
                return false;
            };
            let name = mutant["name"].as_str().unwrap_or_default();
            regions
                .get(file)
                .is_some_and(|found| found.iter().any(|region| region.covers(start, end, name)))
        })
        .filter_map(|mutant| mutant["name"].as_str().map(str::to_owned))
        .collect();
    // A listing leaves the last run's record alone, for `--report-only`.
    if !options.list {
        let list = output.parent().unwrap_or(output).join("fault-only.txt");
        fs::write(&list, names.join("\n") + "\n")
            .with_context(|| format!("cannot write {}", list.display()))?;
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(shard: &str, outcomes: &[(&str, Outcome)], should: &[&str]) -> Record {
        Record {
            shard: Some(shard.to_owned()),
            files: vec!["server/src/store.rs".to_owned()],
            commit: "abc1234".to_owned(),
            trees: "1111111 2222222 3333333".to_owned(),
            mutants: outcomes
                .iter()
                .map(|(name, outcome)| Mutant {
                    name: (*name).to_owned(),
                    file: "server/src/store.rs".to_owned(),
                    outcome: *outcome,
                })
                .collect(),
            should_caught: should.iter().map(|name| (*name).to_owned()).collect(),
            fault_only: vec!["server/src/store.rs:64:5: replace xor_eq -> bool with true".into()],
            excluded_since: 0,
        }
    }

    /// Shards written one at a time add up; a record of another division is dropped, and
    /// the document says which shards are still missing.
    #[test]
    fn shard_records_add_up_and_the_document_names_what_is_missing() {
        let dir = std::env::temp_dir().join(format!("xtask-mutants-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let stale = record("0/20", &[("a", Outcome::Missed)], &[]);
        store_record(&dir, &stale).expect("stores");
        let first = record(
            "0/4",
            &[("a", Outcome::Caught), ("b", Outcome::Missed)],
            &[],
        );
        store_record(&dir, &first).expect("stores");
        let second = record(
            "3/4",
            &[("c", Outcome::Missed), ("d", Outcome::Unviable)],
            &["c"],
        );
        let records = store_record(&dir, &second).expect("stores");
        assert_eq!(records.len(), 2, "the 0/20 record is gone");
        assert!(!dir.join("shard-0-of-20.json").exists());
        let doc = document(&records, &second.fault_only);
        assert!(
            doc.contains("shards 1/4, 2/4 are not measured yet"),
            "{doc}"
        );
        // a caught; c caught with warnings denied; b missed; d unviable.
        assert!(
            doc.contains("| `server/src/store.rs` | 1 | 1 | 1 | 0 | 1 |"),
            "{doc}"
        );
        assert!(doc.contains("- `b` (shard 0/4)"), "{doc}");
        assert!(!doc.contains("- `c`"), "{doc}");
        // Writing a shard again replaces its record.
        let again = record(
            "0/4",
            &[("a", Outcome::Caught), ("b", Outcome::Caught)],
            &[],
        );
        let records = store_record(&dir, &again).expect("stores");
        assert_eq!(records.len(), 2);
        assert!(!document(&records, &again.fault_only).contains("- `b`"));
        let _ = fs::remove_dir_all(&dir);
    }
}
