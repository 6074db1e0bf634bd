//! `cargo xtask conformance`: launches a target against the mock GitHub and runs the
//! suite against it.
//!
//! Besides the suite's own report it keeps two files true: the target's baseline of known
//! failures (`--update-baseline` rewrites it from the run) and, for targets other than
//! the Rust server, its committed transcripts under `fixtures/snapshots/<target>/`
//! (`--update-snapshots` refreshes them; otherwise a run says whether they still match).

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    io::ErrorKind,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::{
    process::{Launched, MockGitHubProcess, free_port},
    progress, project_root, snapshot_diff,
};

/// Access tokens of the Rust target live this long, so the suite can wait out an
/// expiry (told to wait this long) without slowing the run much, and long enough that a
/// check on a busy machine (a login, then several requests, 3-4 s at a load average of
/// 10) still finishes inside it.
const SHORT_TOKEN_TTL_SECS: u64 = 5;

/// The Python server answers a login's eight requests more slowly than the Rust one,
/// and under the suite's sixteen parallel checks a 2 s token can expire between a
/// login and its first MCP request. This lifetime leaves room for that, and the suite
/// is told to wait it out for the expiry check.
const PYTHON_TOKEN_TTL_SECS: u64 = 10;

/// The access-token lifetime a target is launched with, which the suite is told to wait
/// out. Node answers as slowly as Python under the suite's parallel checks.
fn token_ttl_secs(target: &Target) -> u64 {
    match target {
        Target::Python | Target::TypeScript => PYTHON_TOKEN_TTL_SECS,
        _ => SHORT_TOKEN_TTL_SECS,
    }
}

/// The `mcp` release the GitHub-era `simple-auth` example runs on (it imports
/// `mcp.server.fastmcp`, gone in 2.x, and predates the 1.10 resource-server split).
const EXAMPLE_MCP_VERSION: &str = "1.9.4";

/// Pins that the example needs next to an `mcp` 1.x today: pydantic 2.12 changed
/// forward-reference handling, and `mcp` 1.9's settings models then fail to import.
/// `mcp` 2.x requires a newer pydantic itself.
const EXAMPLE_EXTRA_PINS_1X: &[&str] = &["pydantic<2.12"];

/// Where a run with `--intercept-github` keeps the mock's CA, under the target's logs.
const GITHUB_CA_FILE: &str = "github-ca.pem";

/// Suite options that select a subset of the checks. A subset cannot rewrite a
/// baseline or the snapshots, which describe a whole run.
const FILTERS: &[&str] = &["--id", "--area", "--spec-version", "--transport", "--list"];

/// Suite options this task sets itself for every launch.
const SET_BY_XTASK: &[&str] = &["--url", "--mock-github"];

/// `cargo xtask conformance --help`.
pub const HELP: &str = "\
usage: cargo xtask conformance [OPTIONS] [SUITE OPTIONS]

Starts the mock GitHub, launches the target with its environment pointed at the mock,
waits until it is ready, runs the suite, tears it all down. The baseline
fixtures/baselines/<target>.toml applies when it exists.

options:
  --server rust|python|typescript|python-example=DIR|cmd=\"COMMAND\"
        the target (default rust). python: fixtures/python on the Python SDK, in
        target/python-venv (python3 3.10+; XTASK_PYTHON names another interpreter).
        typescript: fixtures/typescript on the TypeScript SDK (node and npm; its
        packages as locked, installed with npm ci), GitHub's URLs intercepted.
        python-example=DIR: a checkout of the SDK's GitHub-era simple-auth example.
        COMMAND may use {port}; it also gets PORT in its environment.
  --ready-timeout SECS       how long the target may take to accept connections (60)
  --example-mcp-version V    the mcp release for python-example (1.9.4)
  --update-baseline          rewrite the target's baseline from the run
  --update-snapshots         write the run's transcripts to fixtures/snapshots/<target>/
  --transport sse|streamable-http|both
  --json FILE, --junit FILE  the suite's reports (default JSON: target/conformance/<target>/)
  --quiet                    no progress, only the suite's output and errors
  -h, --help                 this text

Every other option goes to the suite and is checked against its options before
anything is launched, for example --id AUTH-FLOW-04,SHTTP-18, --area SHTTP,
--spec-version 2025-06-18, --slow, --verbose. The suite's options:
  cargo run -p mcp-auth-conformance -- --help
(--url and --mock-github are set by this task.)
";

/// The oldest Python the pinned `mcp` releases install on.
const MIN_PYTHON: (u32, u32) = (3, 10);

/// What to run the suite against.
enum Target {
    /// The reference server in this workspace.
    Rust,
    /// The server in `fixtures/python` on the official Python SDK.
    Python,
    /// A user's checkout of the Python SDK's GitHub-era `examples/servers/simple-auth`,
    /// run unmodified in its own venv.
    PythonExample(Example),
    /// Any command; `{port}` in it is replaced by the port to listen on.
    Command(String),
    /// The server in `fixtures/typescript` on the TypeScript SDK's server-side auth, with
    /// GitHub's URLs fixed in its code: always run with `--intercept-github`.
    TypeScript,
}

/// A checked `simple-auth` checkout.
struct Example {
    /// The project directory (the one with `pyproject.toml`).
    dir: PathBuf,
    /// Early versions serve SSE only and have no `--transport` option.
    has_transport_option: bool,
}

impl Target {
    fn parse(value: &str) -> anyhow::Result<Target> {
        Ok(match value {
            "rust" => Target::Rust,
            "python" => Target::Python,
            "typescript" => Target::TypeScript,
            _ => {
                if let Some(dir) = value.strip_prefix("python-example=") {
                    Target::PythonExample(Example::find(Path::new(dir))?)
                } else {
                    match value.strip_prefix("cmd=") {
                        Some(command) if !command.trim().is_empty() => {
                            Target::Command(command.to_owned())
                        }
                        _ => bail!(
                            "--server takes rust, python, typescript, python-example=DIR or \
                             cmd=\"COMMAND\", not {value:?}"
                        ),
                    }
                }
            }
        })
    }

    /// The name that picks the baseline and the snapshot folder.
    fn name(&self) -> &str {
        match self {
            Target::Rust => "rust",
            Target::Python => "python",
            Target::PythonExample(_) => "python-example",
            Target::Command(_) => "cmd",
            Target::TypeScript => "typescript",
        }
    }

    /// Targets whose GitHub URLs are fixed in their code meet the mock through its
    /// intercepting proxy, whatever the command line says.
    fn needs_interception(&self) -> bool {
        matches!(self, Target::TypeScript | Target::PythonExample(_))
    }
}

impl Example {
    /// Accepts the example's own directory or the root of a Python SDK checkout.
    fn find(dir: &Path) -> anyhow::Result<Example> {
        let dir = fs::canonicalize(dir)
            .with_context(|| format!("python-example: cannot open {}", dir.display()))?;
        let nested = dir.join("examples/servers/simple-auth");
        let project = if nested.join("pyproject.toml").exists() {
            nested
        } else {
            dir
        };
        let manifest = fs::read_to_string(project.join("pyproject.toml")).unwrap_or_default();
        if !manifest.contains("name = \"mcp-simple-auth\"") {
            bail!(
                "python-example: {} is not a checkout of the Python SDK's \
                 examples/servers/simple-auth (no pyproject.toml naming mcp-simple-auth)",
                project.display()
            );
        }
        let server =
            fs::read_to_string(project.join("mcp_simple_auth/server.py")).unwrap_or_default();
        if !server.contains("env_prefix=\"MCP_GITHUB_\"") {
            bail!(
                "python-example: {} is not the GitHub-era simple-auth (its server.py does not \
                 read MCP_GITHUB_* settings). Check out a commit from 2025-05-07 to 2025-06-11, \
                 e.g. `git -C <sdk> worktree add /tmp/simple-auth 543961968`; later versions \
                 split the authorization server off or dropped GitHub",
                project.display()
            );
        }
        Ok(Example {
            has_transport_option: server.contains("\"--transport\""),
            dir: project,
        })
    }
}

struct Options {
    /// `--help`: print [`HELP`] and do nothing else.
    help: bool,
    target: Target,
    ready_timeout: Duration,
    example_mcp_version: String,
    update_baseline: bool,
    update_snapshots: bool,
    /// `--intercept-github`: the target keeps its own GitHub URLs and reaches the mock
    /// through `HTTPS_PROXY` with the mock's CA trusted.
    intercept_github: bool,
    /// `--transport` as given, kept out of `suite_args` because the example is
    /// launched once per transport.
    transport: Option<String>,
    /// `--json` and `--junit` as given; with several launches each gets a suffix.
    json: Option<PathBuf>,
    junit: Option<PathBuf>,
    suite_args: Vec<String>,
}

impl Options {
    fn has_suite_option(&self, name: &str) -> bool {
        self.suite_args
            .iter()
            .any(|arg| arg == name || arg.starts_with(&format!("{name}=")))
    }

    fn filtered(&self) -> bool {
        self.transport.as_deref().is_some_and(|t| t != "both")
            || FILTERS.iter().any(|f| self.has_suite_option(f))
    }
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        help: false,
        target: Target::Rust,
        ready_timeout: Duration::from_secs(60),
        example_mcp_version: EXAMPLE_MCP_VERSION.to_owned(),
        update_baseline: false,
        update_snapshots: false,
        intercept_github: false,
        transport: None,
        json: None,
        junit: None,
        suite_args: Vec::new(),
    };
    let mut example_version_given = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> anyhow::Result<String> {
            match &inline {
                Some(value) => Ok(value.clone()),
                None => args
                    .next()
                    .cloned()
                    .with_context(|| format!("{name} needs a value")),
            }
        };
        match name {
            "-h" | "--help" => options.help = true,
            "--server" => options.target = Target::parse(&value()?)?,
            "--ready-timeout" => {
                let seconds: u64 = value()?.parse().context("--ready-timeout takes seconds")?;
                options.ready_timeout = Duration::from_secs(seconds);
            }
            "--example-mcp-version" => {
                options.example_mcp_version = value()?;
                example_version_given = true;
            }
            "--update-baseline" => options.update_baseline = true,
            "--update-snapshots" => options.update_snapshots = true,
            "--intercept-github" => options.intercept_github = true,
            "--transport" => options.transport = Some(value()?),
            "--json" => options.json = Some(PathBuf::from(value()?)),
            "--junit" => options.junit = Some(PathBuf::from(value()?)),
            _ => options.suite_args.push(arg.clone()),
        }
    }
    if options.help {
        return Ok(options);
    }
    if example_version_given && !matches!(options.target, Target::PythonExample(_)) {
        bail!("--example-mcp-version applies only to --server python-example=DIR");
    }
    if (options.update_baseline || options.update_snapshots) && options.filtered() {
        bail!(
            "--update-baseline and --update-snapshots describe a whole run; drop --id, --area, \
             --spec-version, --transport and --list"
        );
    }
    if options.update_snapshots {
        match options.target {
            Target::Rust => bail!(
                "the Rust target's snapshots are insta snapshots: refresh them with \
                 `INSTA_UPDATE=always cargo test -p mcp-auth-conformance --test snapshots`"
            ),
            Target::Command(_) => bail!(
                "a cmd= target has no snapshot folder; pass --snapshot-dir DIR to keep its \
                 transcripts"
            ),
            Target::Python | Target::PythonExample(_) | Target::TypeScript => {}
        }
    }
    Ok(options)
}

/// How a target's process is started, once its environment exists.
enum Launcher {
    Rust(PathBuf),
    /// The fixture's interpreter.
    Python(PathBuf),
    /// The example's console script, as `uv run mcp-simple-auth` would run it.
    Example {
        script: PathBuf,
        has_transport_option: bool,
    },
    Command(String),
    /// Node 22 running the TypeScript fixture.
    Node(PathBuf),
}

impl Launcher {
    /// The target's command for one launch on `port`, before the common environment.
    fn command(&self, root: &Path, launch: &Launch, port: u16, base_url: &str) -> duct::Expression {
        match self {
            Launcher::Rust(server) => duct::cmd(server, ["--port".to_owned(), port.to_string()]),
            // Launched directly, not through a shell, so that a kill reaches it.
            Launcher::Python(python) => duct::cmd(
                python,
                [
                    root.join("fixtures/python/server.py").display().to_string(),
                    "--port".to_owned(),
                    port.to_string(),
                ],
            ),
            Launcher::Example {
                script,
                has_transport_option,
            } => {
                let mut args = vec![
                    "--host".to_owned(),
                    "127.0.0.1".to_owned(),
                    "--port".to_owned(),
                    port.to_string(),
                ];
                if let (true, Some(transport)) = (*has_transport_option, launch.transport) {
                    args.extend(["--transport".to_owned(), transport.to_owned()]);
                }
                // The example builds its callback from this full URL, and `--port` moves
                // only the listener. Its fixed `https://api.github.com/user` reaches the mock
                // through the intercepting proxy.
                duct::cmd(script, args).env(
                    "MCP_GITHUB_GITHUB_CALLBACK_PATH",
                    format!("{base_url}/github/callback"),
                )
            }
            Launcher::Node(node) => duct::cmd(
                node,
                [
                    root.join("fixtures/typescript/server.mjs")
                        .display()
                        .to_string(),
                    "--port".to_owned(),
                    port.to_string(),
                ],
            ),
            Launcher::Command(command) => {
                let command = command.replace("{port}", &port.to_string());
                // `exec` replaces the shell, so the kill reaches the server itself.
                duct::cmd("sh", ["-c".to_owned(), format!("exec {command}")])
            }
        }
    }
}

/// One start of the target and one run of the suite against it.
struct Launch {
    /// The transport the example is started with; `None` runs what the user asked.
    transport: Option<&'static str>,
    /// The suffix of this launch's log and report files.
    label: Option<&'static str>,
}

pub fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let options = parse(args)?;
    if options.help {
        print!("{HELP}");
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(taken) = options
        .suite_args
        .iter()
        .find(|arg| SET_BY_XTASK.iter().any(|flag| option_name(arg) == *flag))
    {
        bail!(
            "{taken}: cargo xtask conformance sets --url and --mock-github itself; to check a \
             server you started, run the suite directly (`cargo run -p mcp-auth-conformance -- \
             --help`)"
        );
    }
    let root = project_root();
    let target_dir = cargo_target_dir(&root);
    let name = options.target.name().to_owned();
    let logs = target_dir.join("conformance").join(&name);
    let baseline = root.join("fixtures/baselines").join(format!("{name}.toml"));
    let use_baseline = baseline.exists() && !options.has_suite_option("--baseline");
    if use_baseline {
        refuse_unfinished_baseline(&baseline)?;
    }

    let launches = launches(&options)?;

    let mut packages = vec!["-p", "mock-github", "-p", "mcp-auth-conformance"];
    if matches!(options.target, Target::Rust) {
        packages.extend(["-p", "mcp-github-server"]);
    }
    let what = packages
        .iter()
        .filter(|p| **p != "-p")
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    progress::cargo_build(&root, &packages, &what)?;
    let bin = target_dir.join("debug");
    // The suite's options are checked against the suite itself, so a mistyped one fails
    // here, before an environment is made or anything is launched, and the list never
    // falls behind the suite's.
    check_suite_args(&bin.join("mcp-auth-conformance"), &options.suite_args)?;

    // The Python environments come before any launch: a missing interpreter or a failed
    // install then fails before the mock starts.
    let launcher = match &options.target {
        Target::Rust => Launcher::Rust(target_dir.join("debug").join("mcp-github-server")),
        Target::Python => Launcher::Python(python_environment(&root, &target_dir)?),
        Target::PythonExample(example) => Launcher::Example {
            script: example_environment(example, &options.example_mcp_version, &target_dir)?,
            has_transport_option: example.has_transport_option,
        },
        Target::Command(command) => Launcher::Command(command.clone()),
        Target::TypeScript => Launcher::Node(typescript_environment(&root, &target_dir)?),
    };

    let intercept = options.intercept_github || options.target.needs_interception();
    let ca_file = logs.join(GITHUB_CA_FILE).display().to_string();
    let mock_args: &[&str] = if intercept {
        // The mock then announces the proxy's environment (HTTPS_PROXY, the CA file in
        // SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, ...) instead of its GitHub URLs.
        &["--intercept", "--ca-file", &ca_file]
    } else {
        &[]
    };
    let mock = MockGitHubProcess::start(&bin.join("mock-github"), mock_args, &logs)?;
    if intercept {
        eprintln!(
            "xtask: the target keeps its own GitHub URLs; mock-github intercepts them (CA in {ca_file})"
        );
    }

    let snapshot_dir = match suite_option_value(&options.suite_args, "--snapshot-dir") {
        Some(dir) => PathBuf::from(dir),
        None => {
            // A transport this run does not cover must not keep an older run's file.
            let dir = logs.join("snapshots");
            let _ = fs::remove_dir_all(&dir);
            dir
        }
    };
    let mut worst = 0;
    let mut reports = Vec::new();
    for launch in &launches {
        let port = free_port()?;
        let base_url = format!("http://127.0.0.1:{port}");
        let mut expression = mock.apply_env(launcher.command(&root, launch, port, &base_url));
        let ttl = token_ttl_secs(&options.target);
        expression = expression
            .env("PORT", port.to_string())
            .env("MCP_GITHUB_SERVER_URL", &base_url)
            .env("MCP_GITHUB_ACCESS_TOKEN_TTL_SECS", ttl.to_string())
            .dir(&root);
        if matches!(options.target, Target::Rust) {
            // The suite serves client ID metadata documents on a loopback IP literal, which
            // the reference server refuses to fetch from without its test setting.
            expression = expression.env("MCP_GITHUB_CIMD_ALLOW_LOOPBACK", "1");
        }
        let shown = match launch.transport {
            Some(transport) => format!("the {name} target ({transport})"),
            None => format!("the {name} target"),
        };
        progress::note(&format!("xtask: launching {shown} on {base_url}"));
        let log_name = match launch.label {
            Some(label) => format!("server-{label}"),
            None => "server".to_owned(),
        };
        let server = Launched::start(&log_name, expression, &logs)?;
        wait_until_ready(&launcher, &server, port, options.ready_timeout)
            .with_context(|| format!("{shown} never became ready"))?;

        let report = suffixed(
            options
                .json
                .clone()
                .unwrap_or_else(|| logs.join("report.json")),
            launch.label,
        );
        let mut suite = vec![
            "--url".to_owned(),
            base_url,
            "--mock-github".to_owned(),
            mock.base_url.clone(),
            "--json".to_owned(),
            report.display().to_string(),
        ];
        if let Some(transport) = launch.transport.or(options.transport.as_deref()) {
            suite.extend(["--transport".to_owned(), transport.to_owned()]);
        }
        if let Some(junit) = &options.junit {
            suite.extend([
                "--junit".to_owned(),
                suffixed(junit.clone(), launch.label).display().to_string(),
            ]);
        }
        if use_baseline {
            suite.extend(["--baseline".to_owned(), baseline.display().to_string()]);
        }
        if !options.has_suite_option("--snapshot-dir") {
            suite.extend([
                "--snapshot-dir".to_owned(),
                snapshot_dir.display().to_string(),
            ]);
        }
        if !options.has_suite_option("--max-expiry-wait") {
            suite.extend([
                "--max-expiry-wait".to_owned(),
                token_ttl_secs(&options.target).to_string(),
            ]);
        }
        // The robustness phase judges the target's memory when it knows the process: the
        // launched child is the server itself, except for a command, which runs in a shell.
        if options.has_suite_option("--robustness")
            && !options.has_suite_option("--target-pid")
            && !matches!(options.target, Target::Command(_))
            && let Some(pid) = server.pid()
        {
            suite.extend(["--target-pid".to_owned(), pid.to_string()]);
        }
        suite.extend(options.suite_args.iter().cloned());
        // A report from an earlier run must not stand in for this one.
        let _ = fs::remove_file(&report);
        let output = duct::cmd(bin.join("mcp-auth-conformance"), &suite)
            .dir(&root)
            .unchecked()
            .run()
            .context("cannot run the suite")?;
        let code = output.status.code().unwrap_or(2);
        if code != 0 {
            eprintln!(
                "xtask: the suite failed against {shown}; the target's output is in {}",
                logs.display()
            );
        }
        worst = worst.max(code);
        reports.push(report);
        drop(server);
    }
    drop(mock);

    // Exit status 2 is the suite's own error (no report); there is nothing to keep then.
    let complete = worst < 2 && !options.filtered();
    if options.update_baseline {
        if worst >= 2 {
            bail!("the suite did not finish, so the baseline was left as it was");
        }
        update_baseline(&baseline, &name, &reports)?;
    }
    if complete && !matches!(options.target, Target::Rust | Target::Command(_)) {
        let committed = root.join("fixtures/snapshots").join(&name);
        if options.update_snapshots {
            let written = snapshot_diff::write_committed(&snapshot_dir, &committed)?;
            eprintln!(
                "xtask: wrote {} in {}",
                written.join(", "),
                snapshot_diff::shown(&committed)
            );
        } else if committed.is_dir() {
            report_snapshot_drift(&committed, &snapshot_dir, &name)?;
        }
    }
    Ok(ExitCode::from(u8::try_from(worst).unwrap_or(2)))
}

/// Where cargo puts the binaries, and so where the venvs and logs go too.
pub(crate) fn cargo_target_dir(root: &Path) -> PathBuf {
    // A relative CARGO_TARGET_DIR is relative to the workspace; `join` keeps an absolute one.
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |dir| root.join(dir))
}

/// The example serves one transport per process, so it is launched once per transport;
/// every other target serves both from one process.
fn launches(options: &Options) -> anyhow::Result<Vec<Launch>> {
    let Target::PythonExample(example) = &options.target else {
        return Ok(vec![Launch {
            transport: None,
            label: None,
        }]);
    };
    let asked: Vec<&'static str> = match options.transport.as_deref().unwrap_or("both") {
        "both" => vec!["streamable-http", "sse"],
        "streamable-http" => vec!["streamable-http"],
        "sse" => vec!["sse"],
        other => bail!("--transport takes sse, streamable-http or both, not {other:?}"),
    };
    let mut launches = Vec::new();
    for transport in asked {
        if transport == "streamable-http" && !example.has_transport_option {
            if options.transport.as_deref() == Some("streamable-http") {
                bail!("python-example: this checkout serves SSE only (its CLI has no --transport)");
            }
            eprintln!(
                "xtask: python-example: this checkout serves SSE only (its CLI has no \
                 --transport); Streamable HTTP is not run"
            );
            continue;
        }
        launches.push(Launch {
            transport: Some(transport),
            label: Some(transport),
        });
    }
    Ok(launches)
}

/// `path` with `.<label>` before its extension, so several launches keep apart.
fn suffixed(path: PathBuf, label: Option<&str>) -> PathBuf {
    let Some(label) = label else { return path };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{label}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{label}"),
    };
    path.with_file_name(name)
}

/// `--name` of `--name=value`, or the argument itself.
fn option_name(arg: &str) -> &str {
    match arg.split_once('=') {
        Some((name, _)) if name.starts_with("--") => name,
        _ => arg,
    }
}

/// The suite's options as its `--help` lists them: each long name (and short alias) with
/// whether it takes a value.
fn suite_options(suite: &Path) -> anyhow::Result<BTreeMap<String, bool>> {
    let output = duct::cmd(suite, ["--help"])
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .with_context(|| format!("cannot run {} --help", suite.display()))?;
    if !output.status.success() {
        bail!(
            "{} --help failed: {}",
            suite.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(parse_help_options(&String::from_utf8_lossy(&output.stdout)))
}

/// Reads clap's option lines: `  -v, --verbose`, `      --url <URL>`.
fn parse_help_options(help: &str) -> BTreeMap<String, bool> {
    let mut options = BTreeMap::new();
    for line in help.lines() {
        let line = line.trim_start();
        if !line.starts_with('-') {
            continue;
        }
        let takes_value = line
            .split("  ")
            .next()
            .is_some_and(|synopsis| synopsis.contains('<'));
        for word in line
            .split([',', ' '])
            .take_while(|w| w.is_empty() || w.starts_with('-'))
        {
            if word.starts_with('-') && word.len() > 1 {
                options.insert(word.to_owned(), takes_value);
            }
        }
    }
    options
}

/// Fails on a suite argument that the suite does not know, naming the closest option.
fn check_suite_args(suite: &Path, args: &[String]) -> anyhow::Result<()> {
    if args.is_empty() {
        return Ok(());
    }
    let known = suite_options(suite)?;
    validate_suite_args(&known, args)
}

fn validate_suite_args(known: &BTreeMap<String, bool>, args: &[String]) -> anyhow::Result<()> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let name = option_name(arg);
        if !name.starts_with('-') {
            bail!(
                "unexpected argument {arg:?}: options of cargo xtask conformance and the suite \
                 start with -- (see cargo xtask conformance --help)"
            );
        }
        match known.get(name) {
            Some(true) if name == arg.as_str() => {
                if iter.next().is_none() {
                    bail!("{name} needs a value");
                }
            }
            Some(_) => {}
            None => {
                let closest = known
                    .keys()
                    .filter(|k| k.starts_with("--"))
                    .min_by_key(|k| edit_distance(name, k))
                    .cloned()
                    .unwrap_or_default();
                bail!(
                    "unknown option {name} (did you mean {closest}?); see cargo xtask \
                     conformance --help and the suite's `cargo run -p mcp-auth-conformance -- --help`"
                );
            }
        }
        if matches!(name, "--help" | "-h" | "--version" | "-V") {
            bail!("{name} is not a suite option here: cargo xtask conformance --help");
        }
    }
    Ok(())
}

/// Levenshtein distance, for suggesting the option a typo meant.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

fn suite_option_value(args: &[String], name: &str) -> Option<String> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == name {
            return iter.next().cloned();
        }
        if let Some(value) = arg.strip_prefix(&format!("{name}=")) {
            return Some(value.to_owned());
        }
    }
    None
}

/// The fixture says `ready http://HOST:PORT` once its app has started; it binds the
/// socket before building the app, so an open port alone would not mean it is ready.
/// Every other target is ready when its port accepts connections.
fn wait_until_ready(
    launcher: &Launcher,
    server: &Launched,
    port: u16,
    timeout: Duration,
) -> anyhow::Result<()> {
    if let Launcher::Python(_) = launcher {
        let line = server.first_stdout_line(timeout)?;
        if !line.starts_with("ready ") {
            bail!(
                "server printed {line:?} where `ready http://HOST:PORT` was expected\n{}",
                server.output_tail()
            );
        }
        return Ok(());
    }
    server.wait_for_port(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout)
}

/// The interpreter that makes the virtual environments: `XTASK_PYTHON` when set, else
/// `python3`.
fn base_python() -> String {
    std::env::var("XTASK_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Checks that the base interpreter runs and is new enough, so that a missing or old
/// Python is one sentence rather than a pip resolution failure.
fn check_base_python(python: &str) -> anyhow::Result<()> {
    let probe = duct::cmd(
        python,
        [
            "-c",
            // Debian ships `venv` without `ensurepip` unless python3-venv is installed,
            // and venv creation then fails halfway.
            "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])",
        ],
    )
    .stderr_to_stdout()
    .stdout_capture()
    .unchecked()
    .run();
    let output = match probe {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => bail!(
            "{python} is not on the PATH. The Python targets need Python {}.{} or newer with \
             the venv module (Debian: apt-get install python3 python3-venv); XTASK_PYTHON \
             names another interpreter",
            MIN_PYTHON.0,
            MIN_PYTHON.1
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot run {python}")),
    };
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "{python} cannot create virtual environments (it needs the venv module; Debian: \
             apt-get install python3-venv). Its output:\n{text}"
        );
    }
    let version = text.trim();
    let parsed = version
        .split_once('.')
        .and_then(|(major, minor)| Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?)));
    match parsed {
        Some(found) if found >= MIN_PYTHON => Ok(()),
        _ => bail!(
            "{python} is Python {version}; the Python targets need {}.{} or newer (XTASK_PYTHON \
             names another interpreter)",
            MIN_PYTHON.0,
            MIN_PYTHON.1
        ),
    }
}

/// Creates `venv` unless an earlier run completed it. A venv left half-made by an
/// interrupted run has no stamp and is made again from scratch.
fn create_venv(venv: &Path) -> anyhow::Result<PathBuf> {
    let python = venv.join("bin").join("python");
    let stamp = venv.join("venv.created");
    // Environments made before the stamp existed are complete if their python runs pip.
    let complete = stamp.exists()
        || (python.exists()
            && duct::cmd(&python, ["-m", "pip", "--version"])
                .stdout_null()
                .stderr_null()
                .unchecked()
                .run()
                .is_ok_and(|o| o.status.success()));
    if complete {
        return Ok(python);
    }
    let base = base_python();
    check_base_python(&base)?;
    eprintln!("xtask: creating {}", venv.display());
    let output = duct::cmd(
        &base,
        [
            "-m".to_owned(),
            "venv".to_owned(),
            "--clear".to_owned(),
            venv.display().to_string(),
        ],
    )
    .stderr_to_stdout()
    .stdout_capture()
    .unchecked()
    .run()
    .with_context(|| format!("cannot run {base}"))?;
    if !output.status.success() {
        bail!(
            "creating the virtual environment {} with {base} failed. Its output:\n{}",
            venv.display(),
            String::from_utf8_lossy(&output.stdout)
        );
    }
    fs::write(&stamp, "")?;
    Ok(python)
}

/// Runs pip in `python`'s environment; a failure carries pip's whole output.
fn pip_install(python: &Path, args: &[String], what: &str) -> anyhow::Result<()> {
    let mut command = vec![
        "-m".to_owned(),
        "pip".to_owned(),
        "install".to_owned(),
        "--disable-pip-version-check".to_owned(),
        "--quiet".to_owned(),
    ];
    command.extend(args.iter().cloned());
    let output = duct::cmd(python, &command)
        .stderr_to_stdout()
        .stdout_capture()
        .unchecked()
        .run()
        .context("cannot run pip")?;
    if !output.status.success() {
        bail!(
            "installing {what} failed (pip install {}). pip's output:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout).trim_end()
        );
    }
    Ok(())
}

/// Creates, or reuses, the virtual environment for the Python target under
/// `target/`, installing the pinned requirements when they changed.
pub(crate) fn python_environment(root: &Path, target_dir: &Path) -> anyhow::Result<PathBuf> {
    let requirements = root.join("fixtures/python/requirements.txt");
    let pins = fs::read_to_string(&requirements)
        .with_context(|| format!("cannot read {}", requirements.display()))?;
    let venv = target_dir.join("python-venv");
    let python = create_venv(&venv)?;
    let stamp = venv.join("requirements.installed");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(pins.as_str()) {
        eprintln!("xtask: installing {}", requirements.display());
        pip_install(
            &python,
            &["-r".to_owned(), requirements.display().to_string()],
            "the Python target's requirements",
        )?;
        fs::write(&stamp, &pins)?;
    }
    Ok(python)
}

/// Node 22 (as `cargo xtask interop` installs it, into `target/interop/node`) and the
/// TypeScript fixture's packages, as locked in `fixtures/typescript/package-lock.json`;
/// `npm ci` runs again only when the lockfile changes. Returns the `node` binary.
fn typescript_environment(root: &Path, target_dir: &Path) -> anyhow::Result<PathBuf> {
    let node = crate::interop::install_node(root, &target_dir.join("interop"))?;
    let fixture = root.join("fixtures/typescript");
    let lock = fs::read_to_string(fixture.join("package-lock.json"))
        .context("cannot read fixtures/typescript/package-lock.json")?;
    let out = target_dir.join("typescript");
    let stamp = out.join("installed-package-lock.json");
    if !fixture.join("node_modules").exists()
        || fs::read_to_string(&stamp).ok().as_deref() != Some(lock.as_str())
    {
        eprintln!("xtask: npm ci in {}", fixture.display());
        fs::create_dir_all(&out)?;
        crate::interop::npm_ci(&fixture, node.parent(), &out)?;
        fs::write(&stamp, lock)?;
    }
    Ok(node)
}

/// Creates, or reuses, `target/python-example-venv/mcp-<version>` with that `mcp`, the
/// extra pins and the checkout installed as a package (not editable, so the checkout
/// gets no build or bytecode files). Returns the `mcp-simple-auth` console script.
fn example_environment(
    example: &Example,
    mcp_version: &str,
    target_dir: &Path,
) -> anyhow::Result<PathBuf> {
    if mcp_version.is_empty() || mcp_version.contains(char::is_whitespace) {
        bail!("--example-mcp-version takes a version such as {EXAMPLE_MCP_VERSION}");
    }
    let venv = target_dir
        .join("python-example-venv")
        .join(format!("mcp-{mcp_version}"));
    let python = create_venv(&venv)?;
    let script = venv.join("bin").join("mcp-simple-auth");
    let extra = if mcp_version.starts_with("1.") {
        EXAMPLE_EXTRA_PINS_1X
    } else {
        &[]
    };
    let pins: Vec<String> = std::iter::once(format!("mcp=={mcp_version}"))
        .chain(extra.iter().map(|p| (*p).to_owned()))
        .collect();
    let wanted = format!(
        "{}\n{}\n{:016x}\n",
        pins.join("\n"),
        example.dir.display(),
        fingerprint(&example.dir)?
    );
    let stamp = venv.join("example.installed");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) || !script.exists() {
        eprintln!(
            "xtask: installing {} with {} into {}",
            example.dir.display(),
            pins.join(", "),
            venv.display()
        );
        let checkout = example.dir.display().to_string();
        let mut args = pins.clone();
        args.push(checkout.clone());
        pip_install(&python, &args, "the simple-auth example")?;
        // The checkout keeps its version number when its code changes, so pip would
        // keep the old copy; this puts the current one in place.
        pip_install(
            &python,
            &[
                "--no-deps".to_owned(),
                "--force-reinstall".to_owned(),
                checkout,
            ],
            "the simple-auth example",
        )?;
        fs::write(&stamp, wanted)?;
    }
    Ok(script)
}

/// A digest of every file's path and content under `dir`, to notice an edited checkout.
fn fingerprint(dir: &Path) -> anyhow::Result<u64> {
    // FNV-1a: stable across Rust releases, unlike `DefaultHasher`.
    fn feed(hash: &mut u64, bytes: &[u8]) {
        for byte in bytes {
            *hash ^= u64::from(*byte);
            *hash = hash.wrapping_mul(0x100_0000_01b3);
        }
    }
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    let mut pending = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(current) = pending.pop() {
        for entry in
            fs::read_dir(&current).with_context(|| format!("cannot read {}", current.display()))?
        {
            let path = entry?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with('.') || name == "__pycache__" {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    for file in files {
        feed(&mut hash, file.to_string_lossy().as_bytes());
        feed(&mut hash, &fs::read(&file).unwrap_or_default());
    }
    Ok(hash)
}

/// What `--update-baseline` writes in place of a reason it cannot know.
const TODO_REASON: &str = "TODO";

/// A baseline written by `--update-baseline` that still has a placeholder reason is
/// not a baseline yet: every known failure needs its reason before it can pass a run.
fn refuse_unfinished_baseline(path: &Path) -> anyhow::Result<()> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let unfinished: Vec<String> = entries_with_todo(&text);
    if !unfinished.is_empty() {
        bail!(
            "{} has entries whose reason is still {TODO_REASON:?}: {}. Write what the target \
             does and the requirement it breaks",
            path.display(),
            unfinished.join(", ")
        );
    }
    Ok(())
}

/// The `id`s of entries whose reason starts with the placeholder.
fn entries_with_todo(text: &str) -> Vec<String> {
    let mut id = String::new();
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(value) = line.strip_prefix("id = ") {
            id = value.trim_matches('"').to_owned();
        } else if line.starts_with(&format!("reason = \"{TODO_REASON}")) {
            found.push(id.clone());
        }
    }
    found
}

/// One entry of a rewritten baseline.
#[derive(Debug, PartialEq)]
struct Entry {
    id: String,
    transport: Option<String>,
    reason: String,
    /// The failure's message, as a comment for a new entry.
    evidence: Option<String>,
}

/// How one check ended on one transport, from the suite's JSON report.
struct Outcome {
    key: String,
    /// The requirement ID without the case (`AUTH-GEN-05` for `AUTH-GEN-05#expired`).
    id: String,
    transport: String,
    failed: bool,
    ran: bool,
    reason: Option<String>,
    message: String,
}

fn outcomes(reports: &[PathBuf]) -> anyhow::Result<Vec<Outcome>> {
    let mut outcomes = Vec::new();
    for path in reports {
        let text = fs::read_to_string(path)
            .with_context(|| format!("the suite wrote no report at {}", path.display()))?;
        let report: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a JSON report", path.display()))?;
        for result in report["results"].as_array().into_iter().flatten() {
            let text = |field: &str| result[field].as_str().unwrap_or_default().to_owned();
            let outcome = text("outcome");
            outcomes.push(Outcome {
                key: text("key"),
                id: text("id"),
                transport: text("transport"),
                // What fails a run: a failure, or an error in a MUST check.
                failed: outcome == "fail" || (outcome == "error" && text("level") == "MUST"),
                ran: outcome != "skip" && outcome != "blocked",
                reason: result["baseline"]["reason"].as_str().map(str::to_owned),
                message: text("message"),
            });
        }
    }
    Ok(outcomes)
}

/// The entries that describe `outcomes`: one per failing check, without `transport`
/// when it failed on every transport it ran on. Reasons of entries that still match
/// are kept; new entries get the placeholder.
fn entries(outcomes: &[Outcome]) -> Vec<Entry> {
    let mut by_key: BTreeMap<&str, Vec<&Outcome>> = BTreeMap::new();
    for outcome in outcomes {
        by_key.entry(&outcome.key).or_default().push(outcome);
    }
    let mut entries = Vec::new();
    for (key, results) in by_key {
        let failed: BTreeSet<&str> = results
            .iter()
            .filter(|r| r.failed)
            .map(|r| r.transport.as_str())
            .collect();
        if failed.is_empty() {
            continue;
        }
        let ran: BTreeSet<&str> = results
            .iter()
            .filter(|r| r.ran)
            .map(|r| r.transport.as_str())
            .collect();
        let entry_for = |transport: Option<&str>| {
            let first = results
                .iter()
                .find(|r| r.failed && transport.is_none_or(|t| t == r.transport))
                .expect("a failing result exists for every entry");
            let known = results
                .iter()
                .filter(|r| r.failed && transport.is_none_or(|t| t == r.transport))
                .find_map(|r| r.reason.clone());
            Entry {
                id: key.to_owned(),
                transport: transport.map(str::to_owned),
                evidence: known.is_none().then(|| first.message.clone()),
                reason: known.unwrap_or_else(|| TODO_REASON.to_owned()),
            }
        };
        if failed == ran {
            entries.push(entry_for(None));
        } else {
            for transport in failed {
                entries.push(entry_for(Some(transport)));
            }
        }
    }
    entries
}

/// The entries of an existing baseline file.
fn parse_entries(text: &str) -> anyhow::Result<Vec<Entry>> {
    let table: toml::Table = toml::from_str(text).context("the baseline is not valid TOML")?;
    let mut entries = Vec::new();
    for item in table
        .get("known-failure")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
    {
        let field = |name: &str| {
            item.get(name)
                .and_then(toml::Value::as_str)
                .map(str::to_owned)
        };
        entries.push(Entry {
            id: field("id").context("a baseline entry has no id")?,
            transport: field("transport"),
            reason: field("reason").unwrap_or_default(),
            evidence: None,
        });
    }
    Ok(entries)
}

/// The file's opening comment: the comment and blank lines before the first entry, up
/// to the last blank line among them (a comment right above an entry belongs to it).
fn baseline_header(text: &str) -> String {
    let block: Vec<&str> = text
        .lines()
        .take_while(|line| line.trim().is_empty() || line.starts_with('#'))
        .collect();
    let end = if block.len() == text.lines().count() {
        block.len()
    } else {
        block
            .iter()
            .rposition(|line| line.trim().is_empty())
            .map_or(block.len(), |i| i + 1)
    };
    block[..end]
        .iter()
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Rewrites the baseline from the run's reports, keeping the file's opening comment.
/// An old entry whose checks did not run (skipped, or blocked by another failure) is
/// kept as it was: the run says nothing about it.
fn update_baseline(path: &Path, name: &str, reports: &[PathBuf]) -> anyhow::Result<()> {
    let outcomes = outcomes(reports)?;
    let mut entries = entries(&outcomes);
    let old = fs::read_to_string(path).unwrap_or_default();
    let old_entries = if old.trim().is_empty() {
        Vec::new()
    } else {
        parse_entries(&old).with_context(|| format!("in {}", path.display()))?
    };
    let mut unverified = 0;
    for entry in old_entries.iter() {
        let covers = |o: &&Outcome| {
            (o.key == entry.id || o.id == entry.id)
                && entry.transport.as_deref().is_none_or(|t| t == o.transport)
        };
        let present = entries
            .iter()
            .any(|e| e.id == entry.id && e.transport == entry.transport);
        if !present && !outcomes.iter().filter(covers).any(|o| o.ran) {
            entries.push(Entry {
                id: entry.id.clone(),
                transport: entry.transport.clone(),
                reason: entry.reason.clone(),
                evidence: None,
            });
            unverified += 1;
        }
    }
    entries.sort_by(|a, b| (&a.id, &a.transport).cmp(&(&b.id, &b.transport)));
    let header = baseline_header(&old);
    let header = if header.trim().is_empty() {
        format!(
            "# Known failures of the {name} target: each entry says what the target does and \
             the requirement\n# it breaks. A listed check that passes fails the run as stale.\n\
             # Rewrite from a run: cargo xtask conformance --server {name} --update-baseline\n\n"
        )
    } else {
        header
    };
    let new = entries.iter().filter(|e| e.evidence.is_some()).count();
    let confirmed = entries.len() - new - unverified;
    let dropped = old_entries
        .iter()
        .filter(|o| {
            !entries
                .iter()
                .any(|e| e.id == o.id && e.transport == o.transport)
        })
        .count();
    fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    fs::write(path, render_baseline(&header, &entries))
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "xtask: wrote {}: {} entries: {confirmed} still failing, {unverified} kept unchecked \
         (their checks did not run), {new} new with reason {TODO_REASON:?}; {dropped} of the \
         old entries dropped",
        snapshot_diff::shown(path),
        entries.len()
    );
    if new > 0 {
        eprintln!(
            "xtask: write a reason for each new entry (what the target does, and the \
             requirement); until then the baseline refuses to run"
        );
    }
    Ok(())
}

fn render_baseline(header: &str, entries: &[Entry]) -> String {
    let mut out = header.to_owned();
    if !out.ends_with("\n\n") {
        out.push('\n');
    }
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if let Some(evidence) = &entry.evidence {
            let evidence: String = evidence
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            out.push_str(&format!("# failed with: {evidence}\n"));
        }
        out.push_str("[[known-failure]]\n");
        out.push_str(&format!("id = {}\n", toml_string(&entry.id)));
        if let Some(transport) = &entry.transport {
            out.push_str(&format!("transport = {}\n", toml_string(transport)));
        }
        out.push_str(&format!("reason = {}\n", toml_reason(&entry.reason)));
    }
    out
}

/// Escapes `text` for a TOML basic string. In a multi-line one a quote needs escaping
/// only where it could end the string (before another quote, or last), so most reasons
/// keep their quotes readable.
fn toml_escape(text: &str, multi_line: bool) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if !multi_line || matches!(chars.peek(), None | Some('"')) => {
                out.push_str("\\\"");
            }
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

fn toml_string(text: &str) -> String {
    format!("\"{}\"", toml_escape(text, false))
}

/// Width that a reason is wrapped to.
const REASON_WIDTH: usize = 90;

/// A short reason on one line; a long one as a multi-line string whose line-ending
/// backslashes join the lines back into the same text, so it reads well in review and
/// parses to exactly the reason.
fn toml_reason(reason: &str) -> String {
    let single = toml_escape(reason, false);
    if "reason = ".len() + single.len() + 2 <= REASON_WIDTH + 4 {
        return format!("\"{single}\"");
    }
    let escaped = toml_escape(reason, true);
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for (i, word) in escaped.split(' ').enumerate() {
        // A break goes only before a non-empty word: the continuation trims the next
        // line's leading whitespace, so a space that starts a line would be lost. The
        // space that joined the two words stays, before the backslash.
        if i > 0
            && !word.is_empty()
            && !line.trim().is_empty()
            && line.len() + 1 + word.len() > REASON_WIDTH
        {
            lines.push(std::mem::take(&mut line));
        } else if i > 0 {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    let mut out = String::from("\"\"\"\\\n");
    let last = lines.len() - 1;
    for (i, line) in lines.iter().enumerate() {
        out.push_str("    ");
        out.push_str(line);
        if i < last {
            out.push_str(" \\\n");
        }
    }
    out.push_str("\"\"\"");
    out
}

/// Says whether this run's transcripts still match the committed ones, and how to see
/// or accept the difference. A report, not a failure: the baseline is what gates.
fn report_snapshot_drift(committed: &Path, fresh: &Path, name: &str) -> anyhow::Result<()> {
    let differences = snapshot_diff::count_differences(committed, fresh)?;
    if differences == 0 {
        eprintln!(
            "xtask: the transcripts match {}",
            snapshot_diff::shown(committed)
        );
    } else {
        eprintln!(
            "xtask: the transcripts differ from {} in {differences} places: \
             `cargo xtask snapshot-diff {name} {}` shows them, \
             `cargo xtask conformance --server {name} --update-snapshots` accepts them",
            snapshot_diff::shown(committed),
            snapshot_diff::shown(fresh)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITE_HELP: &str = "\
Usage: mcp-auth-conformance [OPTIONS]

Options:
      --url <URL>
          Base URL of the server under test
      --id <ID>
          Only these checks
      --slow
          Also run checks that wait
  -v, --verbose
          Show evidence
  -h, --help
          Print help (see a summary with '-h')
  -V, --version
          Print version
";

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn the_suite_help_gives_each_option_and_whether_it_takes_a_value() {
        let options = parse_help_options(SUITE_HELP);
        assert_eq!(options.get("--url"), Some(&true));
        assert_eq!(options.get("--id"), Some(&true));
        assert_eq!(options.get("--slow"), Some(&false));
        assert_eq!(options.get("-v"), Some(&false));
        assert_eq!(options.get("--verbose"), Some(&false));
        assert!(!options.contains_key("Usage:"));
    }

    #[test]
    fn suite_arguments_are_checked_before_anything_runs() {
        let known = parse_help_options(SUITE_HELP);
        validate_suite_args(&known, &args("--id AUTH-FLOW-04 --slow -v --id=SHTTP-18")).unwrap();
        let error = validate_suite_args(&known, &args("--slwo"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("unknown option --slwo (did you mean --slow?)"),
            "{error}"
        );
        let error = validate_suite_args(&known, &args("--id"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("--id needs a value"), "{error}");
        let error = validate_suite_args(&known, &args("--slow stray"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("unexpected argument \"stray\""), "{error}");
        assert!(validate_suite_args(&known, &args("--version")).is_err());
    }

    #[test]
    fn help_and_unknown_xtask_options_need_no_build() {
        let options = parse(&args("--help")).unwrap();
        assert!(options.help);
        let options = parse(&args("--server rust --slwo")).unwrap();
        assert_eq!(options.suite_args, ["--slwo"]);
    }

    fn outcome(key: &str, transport: &str, result: &str, reason: Option<&str>) -> Outcome {
        Outcome {
            key: key.into(),
            id: key.split('#').next().unwrap_or_default().into(),
            transport: transport.into(),
            failed: result == "fail",
            ran: result != "skip",
            reason: reason.map(str::to_owned),
            message: format!("{key} failed on {transport}"),
        }
    }

    #[test]
    fn a_check_failing_everywhere_it_ran_gets_one_entry_without_transport() {
        let entries = entries(&[
            outcome("RPC-09", "sse", "fail", Some("known")),
            outcome("RPC-09", "streamable-http", "fail", None),
            outcome("AUTH-PRM-03", "sse", "fail", None),
            outcome("AUTH-PRM-03", "streamable-http", "pass", None),
            outcome("SSE-07", "sse", "skip", None),
            outcome("AUTH-GEN-06", "auth-server", "fail", None),
            outcome("AUTH-GEN-06", "auth-server", "skip", None),
        ]);
        let summary: Vec<(&str, Option<&str>, &str)> = entries
            .iter()
            .map(|e| (e.id.as_str(), e.transport.as_deref(), e.reason.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("AUTH-GEN-06", None, TODO_REASON),
                ("AUTH-PRM-03", Some("sse"), TODO_REASON),
                ("RPC-09", None, "known"),
            ]
        );
        assert!(
            entries[2].evidence.is_none(),
            "a kept reason needs no evidence"
        );
    }

    #[derive(serde::Deserialize)]
    struct File {
        #[serde(rename = "known-failure")]
        known_failure: Vec<Item>,
    }

    #[derive(serde::Deserialize)]
    struct Item {
        id: String,
        transport: Option<String>,
        reason: String,
    }

    #[test]
    fn a_rendered_baseline_parses_back_to_the_same_reasons() {
        let long = "the SDK answers \"invalid_request\" with a pydantic message, not \
                    unsupported_grant_type (AUTH-FLOW-13); a backslash \\ and  two spaces stay, \
                    and so does a long-unbroken-word-that-is-longer-than-the-width-of-a-line-\
                    of-the-file-and-then-some-more-characters-to-be-sure, \"\"\" three quotes \
                    and a last \"quoted\"";
        let entries = [
            Entry {
                id: "AUTH-FLOW-13".into(),
                transport: None,
                reason: long.into(),
                evidence: None,
            },
            Entry {
                id: "AUTH-PRM-03".into(),
                transport: Some("sse".into()),
                reason: "short".into(),
                evidence: Some("resource is /mcp\nsecond line".into()),
            },
        ];
        let text = render_baseline("# header\n", &entries);
        assert!(
            text.lines()
                .all(|l| l.len() <= REASON_WIDTH + 8 || l.contains("unbroken"))
        );
        let parsed: File = toml::from_str(&text).unwrap();
        assert_eq!(parsed.known_failure[0].reason, long);
        assert_eq!(parsed.known_failure[0].id, "AUTH-FLOW-13");
        assert_eq!(parsed.known_failure[1].transport.as_deref(), Some("sse"));
        assert_eq!(parsed.known_failure[1].reason, "short");
        assert!(text.contains("# failed with: resource is /mcp\n[[known-failure]]"));
    }

    #[test]
    fn the_opening_comment_survives_and_an_entry_comment_does_not() {
        let text = "# about\n# more\n\n# failed with: x\n[[known-failure]]\nid = \"A-1\"\nreason = \"r\"\n";
        assert_eq!(baseline_header(text), "# about\n# more\n\n");
        let entries = parse_entries(text).unwrap();
        assert_eq!(
            (entries[0].id.as_str(), entries[0].reason.as_str()),
            ("A-1", "r")
        );
        assert_eq!(baseline_header("# only a comment\n"), "# only a comment\n");
    }

    #[test]
    fn placeholder_reasons_are_found() {
        let text = render_baseline(
            "",
            &[
                Entry {
                    id: "A-1".into(),
                    transport: None,
                    reason: TODO_REASON.into(),
                    evidence: Some("x".into()),
                },
                Entry {
                    id: "A-2".into(),
                    transport: None,
                    reason: "done".into(),
                    evidence: None,
                },
            ],
        );
        assert_eq!(entries_with_todo(&text), ["A-1"]);
    }

    #[test]
    fn report_files_of_several_launches_keep_apart() {
        assert_eq!(
            suffixed(PathBuf::from("t/report.json"), Some("sse")),
            PathBuf::from("t/report.sse.json")
        );
        assert_eq!(
            suffixed(PathBuf::from("t/report.json"), None),
            PathBuf::from("t/report.json")
        );
    }
}
