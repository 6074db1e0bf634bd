//! `cargo xtask faults`: proves that every check of the suite can fail.
//!
//! It builds the reference server with the `fault-injection` feature, reads the fault
//! table from `--list-faults` (the table lives in `server/src/fault.rs`: each fault, the
//! requirement IDs it breaks, the further checks that see it, and how a run must be set
//! up), and for every fault launches a mock GitHub and the server with `--fault NAME`,
//! runs the suite binary on both transports with `--json`, and compares the outcome of
//! each check with a clean run set up the same way. A check *trips* when it ends worse
//! than in the clean run in a way its level counts: a MUST check only when it fails or
//! errors, a SHOULD, MAY or informational check also when it warns. A blocked check never
//! trips: its prerequisite failed, and that is where the fault shows.
//!
//! It fails when a fault trips no check, trips a check it does not name, leaves a named
//! check untouched, or when some check (on some transport) is tripped by no fault. It
//! prints the detection matrix: one row per fault with the checks it tripped, marked ✓
//! when they are exactly the ones it names (`--markdown` prints the same as a table).

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::{
    process::{Launched, MockGitHubProcess, free_port},
    progress, project_root,
};

/// Runs at once by default: the machine has two cores, and each run is a server, a mock
/// and a suite of sixteen concurrent checks.
const DEFAULT_JOBS: usize = 3;
/// The server gives up on GitHub after this long, so the suite's `--slow` checks (GitHub
/// never answering) take a few seconds. At one second, a loaded two-core machine running
/// three servers, three mocks and three suites sometimes made an ordinary login time out.
const UPSTREAM_TIMEOUT_SECS: &str = "3";
/// How long the mock's timeout faults hold their answer: well past the server's
/// upstream timeout, and short enough that nothing lingers after a run.
const MOCK_SLOW_DELAY_MS: &str = "6000";
/// Requests of the robustness phase in the runs that judge it: enough for every class of
/// input to reach every endpoint many times, few enough for a run of seconds.
const ROBUSTNESS_CASES: &str = "3000";
const ROBUSTNESS_SEED: &str = "20261130";
/// The seed of the model phase in runs limited to MODEL checks.
const MODEL_SEED: &str = "1";
/// How long a launched server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts to start a server, since the port from `free_port` can be taken by another
/// run before the server binds it.
const START_ATTEMPTS: usize = 3;

/// One row of the fault table, as `mcp-github-server --list-faults` prints it.
#[derive(Debug, Clone)]
struct FaultSpec {
    name: String,
    /// A conforming variant: the checks it names may warn, nothing may fail.
    allowed: bool,
    breaks: Vec<String>,
    also_breaks: Vec<String>,
    setup: Setup,
}

impl FaultSpec {
    /// The IDs a tripped check may be named after: what the fault breaks and what it
    /// also breaks.
    fn named(&self) -> BTreeSet<&str> {
        self.breaks
            .iter()
            .chain(&self.also_breaks)
            .map(String::as_str)
            .collect()
    }
}

/// How a run is set up: server variables and the checks it is limited to. A faulty run
/// is compared with the clean run of the same setup.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Setup {
    env: Vec<(String, String)>,
    only: Vec<String>,
    /// Suite options, such as a pre-registered client.
    args: Vec<String>,
}

/// One check on one transport in a report.
#[derive(Debug, Clone)]
struct Outcome {
    id: String,
    also: Vec<String>,
    /// `MUST`, `SHOULD`, `MAY` or `INFO`.
    level: String,
    /// 0 pass, skip or blocked, 1 warn, 2 fail or error: the suite's own ordering.
    severity: u8,
    word: String,
    message: String,
}

/// A check on a transport: `(key, transport)`.
type CheckKey = (String, String);

type Report = BTreeMap<CheckKey, Outcome>;

struct Options {
    markdown: bool,
    jobs: usize,
    /// Only these faults; the coverage of every check is then not judged.
    selected: Vec<String>,
    /// Only every `count`-th fault of the table, starting at the `index`-th (1-based), so
    /// that a slice samples every area of the table; the coverage of every check is then
    /// not judged. The shards `1/N` to `N/N` together are the whole table.
    shard: Option<Shard>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    fn parse(text: &str) -> anyhow::Result<Shard> {
        let (index, count) = text
            .split_once('/')
            .with_context(|| format!("--shard takes K/N, such as 1/4, not {text:?}"))?;
        let index: usize = index
            .parse()
            .with_context(|| format!("--shard {text}: K is not a number"))?;
        let count: usize = count
            .parse()
            .with_context(|| format!("--shard {text}: N is not a number"))?;
        if count == 0 || index == 0 || index > count {
            bail!("--shard {text}: K must be between 1 and N");
        }
        Ok(Shard { index, count })
    }

    /// Whether the fault at `position` (0-based, in table order) is in this shard.
    fn holds(self, position: usize) -> bool {
        position % self.count == self.index - 1
    }
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        markdown: false,
        jobs: DEFAULT_JOBS,
        selected: Vec::new(),
        shard: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--markdown" => options.markdown = true,
            "--jobs" => {
                options.jobs = args
                    .next()
                    .context("--jobs needs a number")?
                    .parse()
                    .context("--jobs takes a number")?;
                if options.jobs == 0 {
                    bail!("--jobs must be at least 1");
                }
            }
            "--fault" => options
                .selected
                .push(args.next().context("--fault needs a name")?.clone()),
            "--shard" => {
                options.shard = Some(Shard::parse(
                    args.next().context("--shard needs K/N, such as 1/4")?,
                )?);
            }
            other => bail!(
                "faults takes --markdown, --jobs N, --fault NAME and --shard K/N, not {other:?}"
            ),
        }
    }
    Ok(options)
}

pub fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let options = parse(args)?;
    let started = Instant::now();
    let root = project_root();
    let work = root.join("target").join("faults");
    let binaries = build(&root, &work)?;
    let mut faults = list_faults(&binaries.server)?;
    if !options.selected.is_empty() {
        let known: BTreeSet<&str> = faults.iter().map(|f| f.name.as_str()).collect();
        if let Some(unknown) = options
            .selected
            .iter()
            .find(|name| !known.contains(name.as_str()))
        {
            bail!("there is no fault {unknown:?}; `--list-faults` names them");
        }
        faults.retain(|f| options.selected.contains(&f.name));
    }
    if let Some(shard) = options.shard {
        faults = faults
            .into_iter()
            .enumerate()
            .filter(|(position, _)| shard.holds(*position))
            .map(|(_, fault)| fault)
            .collect();
        if faults.is_empty() {
            bail!("--shard {}/{} holds no fault", shard.index, shard.count);
        }
    }

    // The clean runs first in the queue: one per setup, the plain one included.
    let mut runs: Vec<Run> = BTreeSet::from_iter(
        std::iter::once(Setup::default()).chain(faults.iter().map(|f| f.setup.clone())),
    )
    .into_iter()
    .enumerate()
    .map(|(i, setup)| Run {
        label: format!("clean-{i}"),
        fault: None,
        setup,
    })
    .collect();
    runs.extend(faults.iter().map(|f| Run {
        label: f.name.clone(),
        fault: Some(f.name.clone()),
        setup: f.setup.clone(),
    }));
    progress::note(&format!(
        "xtask faults: {} faults, {} runs, {} at a time",
        faults.len(),
        runs.len(),
        options.jobs
    ));
    let mut reports = run_all(&binaries, &work, runs, options.jobs)?;
    let (mut rows, mut problems) = judge_all(&faults, &reports)?;

    // A run that shares two cores with two others can time out where it never does
    // alone. What went wrong is rerun once, alone: the clean runs of the setups
    // involved and the faults with problems. A problem that holds on the rerun fails
    // the matrix; one that does not is printed as flaky, with what the first run saw.
    let mut flaky = Vec::new();
    if !problems.is_empty() && options.jobs > 1 {
        let failing: Vec<&FaultSpec> = faults
            .iter()
            .filter(|spec| {
                rows.iter()
                    .any(|row| row.fault == spec.name && !row.problems.is_empty())
            })
            .collect();
        let plain_fails = !clean_failures(&reports)?.is_empty();
        if failing.len() <= MAX_RERUNS {
            let setups: BTreeSet<Setup> = failing
                .iter()
                .map(|spec| spec.setup.clone())
                .chain(plain_fails.then(Setup::default))
                .collect();
            let reruns: Vec<Run> = reports
                .iter()
                .map(|(run, _)| run)
                .filter(|run| match &run.fault {
                    None => setups.contains(&run.setup),
                    Some(name) => failing.iter().any(|spec| spec.name == *name),
                })
                .map(|run| Run {
                    label: format!("{}-rerun", run.label),
                    ..run.clone()
                })
                .collect();
            progress::note(&format!(
                "xtask faults: {} problems; rerunning {} runs alone",
                problems.len(),
                reruns.len()
            ));
            let again = run_all(&binaries, &work, reruns, 1)?;
            for (rerun, report) in again {
                if let Some(slot) = reports
                    .iter_mut()
                    .find(|(run, _)| run.fault == rerun.fault && run.setup == rerun.setup)
                {
                    slot.1 = report;
                }
            }
            let first = std::mem::take(&mut problems);
            (rows, problems) = judge_all(&faults, &reports)?;
            flaky = first
                .into_iter()
                .filter(|problem| !problems.contains(problem))
                .collect();
        }
    }
    let plain = reports
        .iter()
        .find(|(run, _)| run.fault.is_none() && run.setup == Setup::default())
        .map(|(_, report)| report)
        .context("the plain clean run is missing")?;
    let mut tripped_by: BTreeMap<CheckKey, Vec<String>> = BTreeMap::new();
    for (spec, row) in faults.iter().zip(&rows) {
        // A conforming variant proves no check can fail.
        if spec.allowed {
            continue;
        }
        for key in &row.tripped {
            tripped_by
                .entry(key.clone())
                .or_default()
                .push(spec.name.clone());
        }
    }
    let mut untripped = Vec::new();
    if options.selected.is_empty() && options.shard.is_none() {
        for key in plain.keys() {
            if !tripped_by.contains_key(key) {
                untripped.push(key.clone());
                problems.push(format!("{} [{}] is tripped by no fault", key.0, key.1));
            }
        }
    }

    let elapsed = started.elapsed();
    let transports = transports(plain);
    if options.markdown {
        // The blank line ends the table.
        println!("{}", render_markdown(&rows, &transports));
    } else {
        print!("{}", render_text(&rows, &transports));
    }
    println!(
        "{} faults; {} checks on their transports, {} tripped by some fault; {:.0} s",
        rows.len(),
        plain.len(),
        plain.len() - untripped.len(),
        elapsed.as_secs_f64()
    );
    if !flaky.is_empty() {
        eprintln!(
            "xtask faults: {} problems went away when rerun alone (flaky under load; logs in {}):",
            flaky.len(),
            work.display()
        );
        for problem in &flaky {
            eprintln!("  {problem}");
        }
    }
    if problems.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "xtask faults: {} problems (logs in {}):",
            problems.len(),
            work.display()
        );
        for problem in &problems {
            eprintln!("  {problem}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// At most this many faults are rerun alone; more problems than that are no matter of
/// load, and rerunning them would only double a failing run's time.
const MAX_RERUNS: usize = 4;

/// The checks that fail against the clean server without faults.
fn clean_failures(reports: &[(Run, Report)]) -> anyhow::Result<Vec<String>> {
    let plain = reports
        .iter()
        .find(|(run, _)| run.fault.is_none() && run.setup == Setup::default())
        .map(|(_, report)| report)
        .context("the plain clean run is missing")?;
    Ok(plain
        .iter()
        .filter(|(_, outcome)| outcome.severity == 2)
        .map(|(key, outcome)| {
            format!(
                "{} [{}] fails against the clean server: {}",
                key.0, key.1, outcome.message
            )
        })
        .collect())
}

/// Every fault's row, in the order of `faults`, and every problem: checks failing
/// against the clean server, then each row's.
fn judge_all(
    faults: &[FaultSpec],
    reports: &[(Run, Report)],
) -> anyhow::Result<(Vec<Row>, Vec<String>)> {
    let clean: BTreeMap<&Setup, &Report> = reports
        .iter()
        .filter(|(run, _)| run.fault.is_none())
        .map(|(run, report)| (&run.setup, report))
        .collect();
    let mut problems = clean_failures(reports)?;
    let mut rows = Vec::new();
    for spec in faults {
        let report = reports
            .iter()
            .find(|(run, _)| run.fault.as_deref() == Some(&spec.name))
            .map(|(_, report)| report)
            .context("a faulty run is missing")?;
        let row = judge(spec, clean[&spec.setup], report);
        problems.extend(row.problems.iter().cloned());
        rows.push(row);
    }
    Ok((rows, problems))
}

struct Binaries {
    server: PathBuf,
    mock: PathBuf,
    suite: PathBuf,
}

/// Builds the mock and the suite, and the server with fault injection. The server binary
/// is copied out of `target/debug`, where a build without the feature (as `cargo xtask
/// conformance` makes) would replace it.
fn build(root: &Path, work: &Path) -> anyhow::Result<Binaries> {
    progress::cargo_build(
        root,
        &["-p", "mock-github", "-p", "mcp-auth-conformance"],
        "mock-github, mcp-auth-conformance",
    )?;
    progress::cargo_build(
        root,
        &["-p", "mcp-github-server", "--features", "fault-injection"],
        "mcp-github-server with fault-injection",
    )?;
    let debug = root.join("target").join("debug");
    fs::create_dir_all(work).with_context(|| format!("cannot create {}", work.display()))?;
    let server = work.join("mcp-github-server");
    fs::copy(debug.join("mcp-github-server"), &server)
        .context("cannot copy the fault-injection server binary")?;
    Ok(Binaries {
        server,
        mock: debug.join("mock-github"),
        suite: debug.join("mcp-auth-conformance"),
    })
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The fault table, from the server binary itself.
fn list_faults(server: &Path) -> anyhow::Result<Vec<FaultSpec>> {
    let output = duct::cmd(server, ["--list-faults"])
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .context("cannot run the server to list its faults")?;
    if !output.status.success() {
        bail!(
            "{} --list-faults failed (built without fault-injection?):\n{}",
            server.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut faults = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let row: Value = serde_json::from_str(line)
            .with_context(|| format!("--list-faults printed a line that is not JSON: {line}"))?;
        let env = row["env"]
            .as_object()
            .map(|vars| {
                vars.iter()
                    .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().into()))
                    .collect()
            })
            .unwrap_or_default();
        faults.push(FaultSpec {
            name: row["name"]
                .as_str()
                .context("a fault without a name")?
                .to_owned(),
            allowed: row["allowed"].as_bool().unwrap_or(false),
            breaks: strings(&row["breaks"]),
            also_breaks: strings(&row["also_breaks"]),
            setup: Setup {
                env,
                only: strings(&row["only"]),
                args: strings(&row["args"]),
            },
        });
    }
    if faults.is_empty() {
        bail!("{} --list-faults listed no faults", server.display());
    }
    Ok(faults)
}

/// A suite run against a server with one fault, or none.
#[derive(Debug, Clone)]
struct Run {
    label: String,
    fault: Option<String>,
    setup: Setup,
}

/// Runs everything, `jobs` at a time, each run in a thread of its own that launches its
/// mock and server and waits for its suite.
fn run_all(
    binaries: &Binaries,
    work: &Path,
    runs: Vec<Run>,
    jobs: usize,
) -> anyhow::Result<Vec<(Run, Report)>> {
    let total = runs.len();
    let counter = progress::Counter::new("xtask faults", total);
    let counter = &counter;
    let queue = Arc::new(Mutex::new(runs.into_iter().rev().collect::<Vec<_>>()));
    let done = Arc::new(Mutex::new(Vec::new()));
    thread::scope(|scope| {
        for _ in 0..jobs.min(total) {
            let queue = queue.clone();
            let done = done.clone();
            scope.spawn(move || {
                loop {
                    let Some(run) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                        break;
                    };
                    counter.started(&run.label);
                    let mut result = run_one(binaries, work, &run);
                    // A run that could not finish (a server slow to start, a suite that
                    // could not reach it) gets one more try; the first error is printed.
                    if let Err(error) = &result {
                        progress::note(&format!(
                            "xtask faults: the run {} failed, trying it once more: {error:#}",
                            run.label
                        ));
                        let again = Run {
                            label: format!("{}-again", run.label),
                            ..run.clone()
                        };
                        result = run_one(binaries, work, &again);
                    }
                    let result = result.with_context(|| format!("the run {} failed", run.label));
                    let mut done = done.lock().unwrap_or_else(|e| e.into_inner());
                    if result.is_ok() {
                        counter.finished(&run.label);
                    }
                    done.push((run, result));
                }
            });
        }
    });
    let done = Arc::try_unwrap(done)
        .map_err(|_| anyhow::anyhow!("a run thread is still holding the results"))?
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let mut reports = Vec::new();
    for (run, result) in done {
        reports.push((run, result?));
    }
    Ok(reports)
}

/// One run: a mock GitHub, the server (with the fault), and the suite with `--json`.
fn run_one(binaries: &Binaries, work: &Path, run: &Run) -> anyhow::Result<Report> {
    let logs = work.join(&run.label);
    let mock = MockGitHubProcess::start(
        &binaries.mock,
        &["--slow-delay-ms", MOCK_SLOW_DELAY_MS],
        &logs,
    )?;

    let (server, base_url) = start_server(binaries, &logs, run, &mock)?;

    let report_path = logs.join("report.json");
    let mut suite = vec![
        "--url".to_owned(),
        base_url,
        "--mock-github".to_owned(),
        mock.base_url.clone(),
        "--json".to_owned(),
        report_path.display().to_string(),
        "--slow".to_owned(),
    ];
    for id in &run.setup.only {
        suite.extend(["--id".to_owned(), id.clone()]);
    }
    // The robustness phase runs only when asked; its runs (clean and faulty alike) get a
    // fixed seed, so both send the same requests, and the server's pid for the memory
    // verdict.
    if run.setup.only.iter().any(|id| id.starts_with("ROBUST-")) {
        suite.extend(
            [
                "--robustness",
                "--robustness-cases",
                ROBUSTNESS_CASES,
                "--robustness-seed",
                ROBUSTNESS_SEED,
            ]
            .map(str::to_owned),
        );
        if let Some(pid) = server.pid() {
            suite.extend(["--target-pid".to_owned(), pid.to_string()]);
        }
    }
    // The MODEL checks judge the model phase, which runs only when asked for; a fixed seed
    // makes the clean and the faulty run try the same sequences.
    if run.setup.only.iter().any(|id| id.starts_with("MODEL-")) {
        suite.extend(["--model", "--model-seed", MODEL_SEED].map(str::to_owned));
    }
    suite.extend(run.setup.args.iter().cloned());
    // The exit status says whether a MUST failed, which faulty runs are meant to do; the
    // report is what is judged.
    duct::cmd(&binaries.suite, &suite)
        .stdout_path(logs.join("suite.stdout.log"))
        .stderr_path(logs.join("suite.stderr.log"))
        .unchecked()
        .run()
        .context("cannot run the suite")?;
    drop(server);
    drop(mock);
    read_report(&report_path)
}

fn start_server(
    binaries: &Binaries,
    logs: &Path,
    run: &Run,
    mock: &MockGitHubProcess,
) -> anyhow::Result<(Launched, String)> {
    let mut last_error = None;
    for _ in 0..START_ATTEMPTS {
        let port = free_port()?;
        let base_url = format!("http://127.0.0.1:{port}");
        let mut args = vec!["--port".to_owned(), port.to_string()];
        if let Some(fault) = &run.fault {
            args.extend(["--fault".to_owned(), fault.clone()]);
        }
        let mut expression = mock
            .apply_env(duct::cmd(&binaries.server, &args))
            .env("MCP_GITHUB_SERVER_URL", &base_url)
            .env("MCP_GITHUB_UPSTREAM_TIMEOUT_SECS", UPSTREAM_TIMEOUT_SECS)
            // The suite serves client ID metadata documents on a loopback IP literal.
            .env("MCP_GITHUB_CIMD_ALLOW_LOOPBACK", "1");
        for (name, value) in &run.setup.env {
            expression = expression.env(name, value);
        }
        let server = Launched::start("server", expression, logs)?;
        match server.wait_for_port(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), READY_TIMEOUT) {
            Ok(()) => return Ok((server, base_url)),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("the server did not start")))
}

fn read_report(path: &Path) -> anyhow::Result<Report> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("the suite wrote no report to {}", path.display()))?;
    let doc: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let mut report = Report::new();
    for result in doc["results"]
        .as_array()
        .context("the report has no results")?
    {
        let word = result["outcome"].as_str().unwrap_or_default().to_owned();
        let severity = match word.as_str() {
            "fail" | "error" => 2,
            "warn" => 1,
            _ => 0,
        };
        let message = result["message"]
            .as_str()
            .or_else(|| result["reason"].as_str())
            .unwrap_or_default()
            .to_owned();
        let key = (
            result["key"].as_str().unwrap_or_default().to_owned(),
            result["transport"].as_str().unwrap_or_default().to_owned(),
        );
        // A check that runs at several protocol versions has a result per version; the
        // matrix judges the check on its transport by its worst one.
        if report
            .get(&key)
            .is_some_and(|seen: &Outcome| seen.severity >= severity)
        {
            continue;
        }
        report.insert(
            key,
            Outcome {
                id: result["id"].as_str().unwrap_or_default().to_owned(),
                also: strings(&result["also"]),
                level: result["level"].as_str().unwrap_or_default().to_owned(),
                severity,
                word,
                message,
            },
        );
    }
    Ok(report)
}

/// Whether an outcome is worse than a clean run's severity in a way the check's level counts:
/// a MUST check trips only by failing or erroring (a warning proves only a SHOULD), any other
/// check also by warning.
fn trips(outcome: &Outcome, clean_severity: u8) -> bool {
    if outcome.level == "MUST" {
        outcome.severity == 2 && clean_severity < 2
    } else {
        outcome.severity > clean_severity
    }
}

/// A fault's row of the matrix.
struct Row {
    fault: String,
    breaks: Vec<String>,
    also_breaks: Vec<String>,
    tripped: Vec<CheckKey>,
    problems: Vec<String>,
}

/// Compares a faulty run with the clean run of the same setup.
fn judge(spec: &FaultSpec, clean: &Report, faulty: &Report) -> Row {
    let named = spec.named();
    let names = |outcome: &Outcome| {
        named.contains(outcome.id.as_str())
            || outcome.also.iter().any(|id| named.contains(id.as_str()))
    };
    let worse: Vec<(&CheckKey, &Outcome)> = faulty
        .iter()
        .filter(|(key, outcome)| {
            trips(outcome, clean.get(*key).map_or(0, |before| before.severity))
        })
        .collect();
    let mut problems = Vec::new();
    if spec.allowed {
        // A conforming variant: the checks it names may warn that something optional is
        // missing; nothing may fail, and nothing else may get worse.
        for (key, outcome) in &worse {
            if outcome.severity >= 2 || !names(outcome) {
                problems.push(format!(
                    "{}: the allowed variant made {} [{}] worse ({}: {})",
                    spec.name, key.0, key.1, outcome.word, outcome.message
                ));
            }
        }
        return Row {
            fault: spec.name.clone(),
            breaks: spec.breaks.clone(),
            also_breaks: spec.also_breaks.clone(),
            tripped: worse.into_iter().map(|(key, _)| key.clone()).collect(),
            problems,
        };
    }
    for (key, outcome) in worse.iter().filter(|(_, outcome)| !names(outcome)) {
        problems.push(format!(
            "{}: tripped {} [{}], which it does not name ({}: {})",
            spec.name, key.0, key.1, outcome.word, outcome.message
        ));
    }
    for id in &named {
        let seen = worse
            .iter()
            .any(|(_, outcome)| outcome.id == *id || outcome.also.iter().any(|a| a == id));
        if !seen {
            problems.push(format!("{}: did not trip {id}", spec.name));
        }
    }
    Row {
        fault: spec.name.clone(),
        breaks: spec.breaks.clone(),
        also_breaks: spec.also_breaks.clone(),
        tripped: worse.into_iter().map(|(key, _)| key.clone()).collect(),
        problems,
    }
}

/// The transports each check runs on, from a report.
type Transports = BTreeMap<String, BTreeSet<String>>;

fn transports(report: &Report) -> Transports {
    let mut out = Transports::new();
    for (key, transport) in report.keys() {
        out.entry(key.clone())
            .or_default()
            .insert(transport.clone());
    }
    out
}

/// The checks a fault tripped, in catalogue order; a check that runs on both transports
/// but tripped on one names it: `AUTH-GEN-01 (sse), AUTH-GEN-02`.
fn tripped_checks(row: &Row, transports: &Transports) -> String {
    let mut by_key: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (key, transport) in &row.tripped {
        by_key.entry(key).or_default().insert(transport.clone());
    }
    let mut keys: Vec<&str> = by_key.keys().copied().collect();
    keys.sort_by_key(|key| catalogue_order(key));
    keys.iter()
        .map(|key| {
            let tripped = &by_key[key];
            let partial = transports
                .get(*key)
                .is_some_and(|all| all.len() > tripped.len());
            if partial {
                let on: Vec<&str> = tripped.iter().map(String::as_str).collect();
                format!("{key} ({})", on.join(", "))
            } else {
                (*key).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Areas in the order of the catalogue, then the number, then the case.
fn catalogue_order(key: &str) -> (usize, String) {
    const AREAS: &[&str] = &[
        "AUTH-GEN",
        "AUTH-ASM",
        "AUTH-PRM",
        "AUTH-SCOPE",
        "AUTH-REG",
        "AUTH-FLOW",
        "AUTH-TOK",
        "AUTH-3P",
        "SHTTP",
        "SSE",
        "SEC",
        "LIFE",
        "RPC",
        "TOOLS",
    ];
    let id = key.split('#').next().unwrap_or(key);
    let area = id.rsplit_once('-').map_or(id, |(area, _)| area);
    let rank = AREAS.iter().position(|a| *a == area).unwrap_or(AREAS.len());
    (rank, key.to_owned())
}

fn mark(row: &Row) -> &'static str {
    if row.problems.is_empty() {
        "✓"
    } else {
        "✗"
    }
}

fn render_text(rows: &[Row], transports: &Transports) -> String {
    let width = rows.iter().map(|r| r.fault.len()).max().unwrap_or(0);
    let mut out = String::new();
    for row in rows {
        out.push_str(&format!(
            "{:<width$}  {}  {}\n",
            row.fault,
            mark(row),
            tripped_checks(row, transports)
        ));
    }
    out
}

fn render_markdown(rows: &[Row], transports: &Transports) -> String {
    let mut out = String::from("| fault | breaks | tripped | |\n| --- | --- | --- | --- |\n");
    for row in rows {
        let mut named = row.breaks.join(", ");
        if !row.also_breaks.is_empty() {
            named.push_str(&format!(" (also {})", row.also_breaks.join(", ")));
        }
        out.push_str(&format!(
            "| `{}` | {named} | {} | {} |\n",
            row.fault,
            tripped_checks(row, transports),
            mark(row)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shards_of_a_table_are_the_whole_table_once() {
        let shards: Vec<Shard> = (1..=4)
            .map(|k| Shard::parse(&format!("{k}/4")).expect("a shard"))
            .collect();
        for position in 0..23 {
            let holding = shards.iter().filter(|s| s.holds(position)).count();
            assert_eq!(holding, 1, "fault {position} is in {holding} shards");
        }
    }

    #[test]
    fn a_shard_outside_its_count_is_refused() {
        for text in ["0/4", "5/4", "1/0", "1", "a/4", "1/b"] {
            assert!(Shard::parse(text).is_err(), "{text} was accepted");
        }
    }

    use super::*;

    fn outcome(id: &str, also: &[&str], severity: u8) -> Outcome {
        Outcome {
            id: id.into(),
            also: also.iter().map(|a| (*a).to_owned()).collect(),
            level: "SHOULD".into(),
            severity,
            word: ["pass", "warn", "fail"][usize::from(severity)].into(),
            message: String::new(),
        }
    }

    fn report(entries: &[(&str, &str, Outcome)]) -> Report {
        entries
            .iter()
            .map(|(key, transport, o)| (((*key).to_owned(), (*transport).to_owned()), o.clone()))
            .collect()
    }

    fn spec(breaks: &[&str], also: &[&str]) -> FaultSpec {
        FaultSpec {
            name: "f".into(),
            allowed: false,
            breaks: breaks.iter().map(|b| (*b).to_owned()).collect(),
            also_breaks: also.iter().map(|a| (*a).to_owned()).collect(),
            setup: Setup::default(),
        }
    }

    #[test]
    fn a_fault_that_trips_exactly_what_it_names_has_no_problems() {
        let clean = report(&[
            ("A-01", "sse", outcome("A-01", &[], 0)),
            ("B-01", "sse", outcome("B-01", &["A-02"], 1)),
        ]);
        let faulty = report(&[
            ("A-01", "sse", outcome("A-01", &[], 2)),
            ("B-01", "sse", outcome("B-01", &["A-02"], 2)),
        ]);
        let row = judge(&spec(&["A-01"], &["A-02"]), &clean, &faulty);
        assert!(row.problems.is_empty(), "{:?}", row.problems);
        assert_eq!(row.tripped.len(), 2);
    }

    #[test]
    fn unnamed_trips_and_untripped_names_are_problems() {
        let clean = report(&[
            ("A-01", "sse", outcome("A-01", &[], 0)),
            ("C-01", "sse", outcome("C-01", &[], 1)),
        ]);
        let faulty = report(&[
            ("A-01", "sse", outcome("A-01", &[], 0)),
            ("C-01", "sse", outcome("C-01", &[], 2)),
        ]);
        let row = judge(&spec(&["A-01"], &[]), &clean, &faulty);
        assert_eq!(row.problems.len(), 2, "{:?}", row.problems);
        assert!(row.problems.iter().any(|p| p.contains("does not name")));
        assert!(row.problems.iter().any(|p| p.contains("did not trip A-01")));
    }

    #[test]
    fn a_must_check_trips_only_by_failing_or_erroring() {
        let must = |severity, word: &str| Outcome {
            level: "MUST".into(),
            word: word.into(),
            ..outcome("A-01", &[], severity)
        };
        let clean = report(&[("A-01", "sse", must(0, "pass"))]);
        let warned = report(&[("A-01", "sse", must(1, "warn"))]);
        let row = judge(&spec(&["A-01"], &[]), &clean, &warned);
        assert!(row.tripped.is_empty());
        assert!(row.problems.iter().any(|p| p.contains("did not trip A-01")));
        let errored = report(&[("A-01", "sse", must(2, "error"))]);
        let row = judge(&spec(&["A-01"], &[]), &clean, &errored);
        assert!(row.problems.is_empty(), "{:?}", row.problems);
        let blocked = report(&[("A-01", "sse", must(0, "blocked"))]);
        let row = judge(&spec(&[], &[]), &clean, &blocked);
        assert!(row.tripped.is_empty() && row.problems.is_empty());
    }

    #[test]
    fn checks_sort_in_catalogue_order() {
        let mut keys = vec![
            "TOOLS-02",
            "AUTH-3P-01",
            "AUTH-GEN-05#expired",
            "AUTH-GEN-01",
        ];
        keys.sort_by_key(|key| catalogue_order(key));
        assert_eq!(
            keys,
            [
                "AUTH-GEN-01",
                "AUTH-GEN-05#expired",
                "AUTH-3P-01",
                "TOOLS-02"
            ]
        );
    }
}
