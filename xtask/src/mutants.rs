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
  --write-doc        write the tables to docs/mutants.md, saying which mutants the run covered
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
        let doc = root.join("docs/mutants.md");
        let commit = fs::read_to_string(root.join("target/mutants/commit.txt"))
            .map(|commit| commit.trim().to_owned())
            .unwrap_or_default();
        fs::write(
            &doc,
            document(options, &commit, &table, must, should_caught, fault_only),
        )
        .with_context(|| format!("cannot write {}", doc.display()))?;
        progress::note(&format!("xtask mutants: wrote {}", doc.display()));
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

fn document(
    options: &Options,
    commit: &str,
    table: &str,
    must: &[Mutant],
    should_caught: &[String],
    fault_only: &[String],
) -> String {
    let mut out = String::from(
        "# Mutation testing\n\n\
         Generated by `cargo xtask mutants --write-doc`; do not edit. Each mutant is one change \
         to `server/src` made by cargo-mutants; the test is the whole suite against the \
         mutated server (`conformance/tests/mutation_oracle.rs`). Caught (MUST): a MUST check \
         failed or errored. Caught only with warnings denied: the mutant breaks a SHOULD \
         only. Exclusions and their reasons are in `.cargo/mutants.toml`.\n\n",
    );
    // A partial run says which part it was, so that nobody reads a sample as the whole.
    let mut scope = Vec::new();
    if let Some(shard) = &options.shard {
        let every = shard.split_once('/').map_or("", |(_, n)| n);
        scope.push(format!(
            "shard {shard}, every {every}th mutant (`--shard {shard}`)"
        ));
    }
    if !options.files.is_empty() {
        scope.push(format!("files {}", options.files.join(", ")));
    }
    if scope.is_empty() {
        out.push_str("Scope: every mutant of `server/src`.\n\n");
    } else {
        let _ = writeln!(
            out,
            "Scope: a sample, {} ({} mutants), not the whole of `server/src`.\n",
            scope.join(" and "),
            must.len()
        );
    }
    if !commit.is_empty() {
        let _ = writeln!(out, "Measured at commit {commit}.\n");
    }
    out.push_str(table);
    let survivors: Vec<&Mutant> = must
        .iter()
        .filter(|m| m.outcome == Outcome::Missed && !should_caught.contains(&m.name))
        .collect();
    if !survivors.is_empty() {
        out.push_str("\n## Missed mutants\n\nEach is a missing or weak check, or an exclusion to reason.\n\n");
        for m in survivors {
            let _ = writeln!(out, "- `{}`", m.name);
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
    let listing = Options {
        shard: None,
        files: options.files.clone(),
        ..*options
    };
    let mut command = base_command(&listing, output, &["--list".into(), "--json".into()]);
    // cargo test's arguments mean nothing to a listing.
    if let Some(end) = command.iter().position(|argument| argument == "--") {
        command.truncate(end);
    }
    let listed = duct::cmd(cargo(), &command)
        .dir(root)
        .stderr_null()
        .read()
        .context("cannot list the mutants (cargo mutants --list --json)")?;
    let mutants: Vec<Value> =
        serde_json::from_str(&listed).context("cargo mutants --list --json gave no JSON list")?;
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
