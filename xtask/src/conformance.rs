//! `cargo xtask conformance`: launches a target against the mock GitHub and runs the
//! suite against it.

use std::{
    fs,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, bail};

use crate::{
    cargo,
    process::{Launched, free_port},
    project_root,
};

/// Access tokens of launched targets live this long, so the suite can wait out an
/// expiry (it waits at most 3 s by default) without slowing the run much.
const SHORT_TOKEN_TTL_SECS: &str = "2";

/// What to run the suite against.
enum Target {
    /// The reference server in this workspace.
    Rust,
    /// The server in `fixtures/python` on the official Python SDK.
    Python,
    /// Any command; `{port}` in it is replaced by the port to listen on.
    Command(String),
}

impl Target {
    fn parse(value: &str) -> anyhow::Result<Target> {
        Ok(match value {
            "rust" => Target::Rust,
            "python" => Target::Python,
            _ => match value.strip_prefix("cmd=") {
                Some(command) if !command.trim().is_empty() => Target::Command(command.to_owned()),
                _ => bail!("--server takes rust, python or cmd=\"COMMAND\", not {value:?}"),
            },
        })
    }

    /// The name that picks the baseline and the snapshot folder.
    fn name(&self) -> &str {
        match self {
            Target::Rust => "rust",
            Target::Python => "python",
            Target::Command(_) => "cmd",
        }
    }
}

struct Options {
    target: Target,
    ready_timeout: Duration,
    suite_args: Vec<String>,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut target = Target::Rust;
    let mut ready_timeout = Duration::from_secs(60);
    let mut suite_args = Vec::new();
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
            "--server" => target = Target::parse(&value()?)?,
            "--ready-timeout" => {
                let seconds: u64 = value()?.parse().context("--ready-timeout takes seconds")?;
                ready_timeout = Duration::from_secs(seconds);
            }
            _ => suite_args.push(arg.clone()),
        }
    }
    Ok(Options {
        target,
        ready_timeout,
        suite_args,
    })
}

pub fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let options = parse(args)?;
    let root = project_root();
    let target_dir = root.join("target");
    let logs = target_dir.join("conformance").join(options.target.name());

    let mut packages = vec!["-p", "mock-github", "-p", "mcp-auth-conformance"];
    if matches!(options.target, Target::Rust) {
        packages.extend(["-p", "mcp-github-server"]);
    }
    eprintln!(
        "xtask: building {}",
        packages
            .iter()
            .filter(|p| **p != "-p")
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    );
    duct::cmd(cargo(), ["build", "--quiet"].into_iter().chain(packages))
        .dir(&root)
        .run()
        .context("cargo build failed")?;
    let bin = target_dir.join("debug");

    let mock = Launched::start(
        "mock-github",
        duct::cmd(bin.join("mock-github"), ["--port", "0", "--json"]),
        &logs,
    )?;
    let announcement = mock.first_stdout_line(Duration::from_secs(30))?;
    let announcement: serde_json::Value =
        serde_json::from_str(&announcement).context("mock-github printed no JSON line")?;
    let mock_url = announcement["base_url"]
        .as_str()
        .context("mock-github named no base_url")?
        .to_owned();
    let mock_env = announcement["env"]
        .as_object()
        .context("mock-github named no environment")?
        .clone();

    let port = free_port()?;
    let base_url = format!("http://127.0.0.1:{port}");
    let mut expression = match &options.target {
        Target::Rust => duct::cmd(
            bin.join("mcp-github-server"),
            ["--port".to_owned(), port.to_string()],
        ),
        Target::Python => {
            let python = python_environment(&root, &target_dir)?;
            // Launched directly, not through a shell, so that a kill reaches it.
            duct::cmd(
                python,
                [
                    root.join("fixtures/python/server.py").display().to_string(),
                    "--port".to_owned(),
                    port.to_string(),
                ],
            )
        }
        Target::Command(command) => {
            let command = command.replace("{port}", &port.to_string());
            // `exec` replaces the shell, so the kill reaches the server itself.
            duct::cmd("sh", ["-c".to_owned(), format!("exec {command}")])
        }
    };
    for (name, value) in &mock_env {
        expression = expression.env(name, value.as_str().unwrap_or_default());
    }
    expression = expression
        .env("PORT", port.to_string())
        .env("MCP_GITHUB_SERVER_URL", &base_url)
        .env("MCP_GITHUB_ACCESS_TOKEN_TTL_SECS", SHORT_TOKEN_TTL_SECS)
        .dir(&root);
    eprintln!(
        "xtask: launching the {} target on {base_url}",
        options.target.name()
    );
    let server = Launched::start("server", expression, &logs)?;
    server.wait_for_port(
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        options.ready_timeout,
    )?;

    let mut suite = vec![
        "--url".to_owned(),
        base_url,
        "--mock-github".to_owned(),
        mock_url,
    ];
    let baseline = root
        .join("fixtures/baselines")
        .join(format!("{}.toml", options.target.name()));
    if baseline.exists()
        && !options
            .suite_args
            .iter()
            .any(|arg| arg.starts_with("--baseline"))
    {
        suite.extend(["--baseline".to_owned(), baseline.display().to_string()]);
    }
    if !options
        .suite_args
        .iter()
        .any(|arg| arg.starts_with("--snapshot-dir"))
    {
        suite.extend([
            "--snapshot-dir".to_owned(),
            logs.join("snapshots").display().to_string(),
        ]);
    }
    suite.extend(options.suite_args.iter().cloned());
    let output = duct::cmd(bin.join("mcp-auth-conformance"), &suite)
        .dir(&root)
        .unchecked()
        .run()
        .context("cannot run the suite")?;
    let code = output.status.code().unwrap_or(1);
    if code != 0 {
        eprintln!(
            "xtask: the suite failed; the target's output is in {}",
            logs.display()
        );
    }
    drop(server);
    drop(mock);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// Creates, or reuses, the virtual environment for the Python target under
/// `target/`, installing the pinned requirements when they changed.
pub(crate) fn python_environment(root: &Path, target_dir: &Path) -> anyhow::Result<PathBuf> {
    let requirements = root.join("fixtures/python/requirements.txt");
    let pins = fs::read_to_string(&requirements)
        .with_context(|| format!("cannot read {}", requirements.display()))?;
    let venv = target_dir.join("python-venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        eprintln!("xtask: creating {}", venv.display());
        duct::cmd(
            "python3",
            [
                "-m".to_owned(),
                "venv".to_owned(),
                venv.display().to_string(),
            ],
        )
        .stdout_to_stderr()
        .run()
        .context(
            "cannot create a Python virtual environment: python3 (3.10 or newer, with the \
                 venv module) must be on the PATH",
        )?;
    }
    let stamp = venv.join("requirements.installed");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(pins.as_str()) {
        eprintln!("xtask: installing {}", requirements.display());
        let output = duct::cmd(
            &python,
            [
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
                "-r",
                &requirements.display().to_string(),
            ],
        )
        .stderr_to_stdout()
        .stdout_capture()
        .unchecked()
        .run()
        .context("cannot run pip")?;
        if !output.status.success() {
            bail!(
                "installing the Python target's requirements failed:\n{}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
        fs::write(&stamp, &pins)?;
    }
    Ok(python)
}
