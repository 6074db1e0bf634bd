//! Child processes that are always killed and reaped, whichever way the task ends.

use std::{
    fs,
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::ExitStatus,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// How often a readiness wait looks again. Readiness has no event to wait on
/// across processes, so it is polled, with a deadline.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

pub struct Launched {
    name: String,
    handle: duct::Handle,
    stdout_log: PathBuf,
    stderr_log: PathBuf,
}

impl Launched {
    /// Starts `expression` with stdout and stderr sent to files under `logs`, so a
    /// chatty child never blocks on a full pipe and its output can be shown later.
    pub fn start(
        name: &str,
        expression: duct::Expression,
        logs: &Path,
    ) -> anyhow::Result<Launched> {
        fs::create_dir_all(logs).with_context(|| format!("cannot create {}", logs.display()))?;
        let stdout_log = logs.join(format!("{name}.stdout.log"));
        let stderr_log = logs.join(format!("{name}.stderr.log"));
        let handle = expression
            .stdin_null()
            .stdout_path(&stdout_log)
            .stderr_path(&stderr_log)
            .unchecked()
            .start()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Launched {
            name: name.to_owned(),
            handle,
            stdout_log,
            stderr_log,
        })
    }

    /// Fails with the child's output if it has already exited.
    fn ensure_running(&self) -> anyhow::Result<()> {
        if let Some(output) = self.handle.try_wait()? {
            bail!(
                "{} exited with {} before it was ready\n{}",
                self.name,
                output.status,
                self.output_tail()
            );
        }
        Ok(())
    }

    /// Waits for the first complete line on stdout.
    pub fn first_stdout_line(&self, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let stdout = fs::read_to_string(&self.stdout_log).unwrap_or_default();
            if let Some((line, _)) = stdout.split_once('\n') {
                return Ok(line.trim().to_owned());
            }
            self.ensure_running()?;
            if Instant::now() > deadline {
                bail!(
                    "{} printed nothing within {} s\n{}",
                    self.name,
                    timeout.as_secs(),
                    self.output_tail()
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits until `address` accepts TCP connections.
    pub fn wait_for_port(&self, address: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if TcpStream::connect_timeout(&address, POLL_INTERVAL).is_ok() {
                return Ok(());
            }
            self.ensure_running()?;
            if Instant::now() > deadline {
                bail!(
                    "{} did not accept connections on {address} within {} s \
                     (raise it with --ready-timeout)\n{}",
                    self.name,
                    timeout.as_secs(),
                    self.output_tail()
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits for the child to exit, at most `timeout`; `None` means it is still
    /// running (dropping the `Launched` then kills it).
    pub fn wait_timeout(&self, timeout: Duration) -> anyhow::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(output) = self.handle.try_wait()? {
                return Ok(Some(output.status));
            }
            if Instant::now() > deadline {
                return Ok(None);
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// The child's process id (for `/proc/<pid>/status` and `prlimit`).
    pub fn pid(&self) -> Option<u32> {
        self.handle.pids().first().copied()
    }

    /// Everything the child wrote to stdout so far.
    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout_log).unwrap_or_default()
    }

    /// Everything the child wrote to stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// The last lines the child wrote, for error messages.
    pub fn output_tail(&self) -> String {
        let mut tail = String::new();
        for (stream, path) in [("stdout", &self.stdout_log), ("stderr", &self.stderr_log)] {
            let text = fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(40);
            if !lines.is_empty() {
                tail.push_str(&format!(
                    "--- {} {stream} ({}) ---\n",
                    self.name,
                    path.display()
                ));
                for line in &lines[start..] {
                    tail.push_str(line);
                    tail.push('\n');
                }
            }
        }
        tail
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        // duct never kills on drop, and an unreaped child stays a zombie.
        let _ = self.handle.kill();
        let _ = self.handle.wait();
    }
}

/// A loopback port that was free a moment ago. The child binds it itself; the gap is
/// a small race that a launcher of arbitrary commands cannot avoid.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("no free port")?;
    Ok(listener.local_addr()?.port())
}

/// A mock GitHub in its own process (`mock-github --port 0 --json`), with what its
/// announcement line says: where it listens and the environment a server needs.
pub struct MockGitHubProcess {
    /// Kept so the process lives as long as this value.
    _process: Launched,
    pub base_url: String,
    /// The `MCP_GITHUB_GITHUB_*` variables pointing a server at this mock.
    pub env: Vec<(String, String)>,
}

impl MockGitHubProcess {
    /// Starts `binary` on a free port, with `extra_args` after `--json`, and reads
    /// its announcement.
    pub fn start(binary: &Path, extra_args: &[&str], logs: &Path) -> anyhow::Result<Self> {
        let mut args = vec!["--port", "0", "--json"];
        args.extend_from_slice(extra_args);
        let process = Launched::start("mock-github", duct::cmd(binary, &args), logs)?;
        let line = process.first_stdout_line(Duration::from_secs(30))?;
        let announcement: serde_json::Value =
            serde_json::from_str(&line).context("mock-github printed no JSON line")?;
        let text = |field: &str| -> anyhow::Result<String> {
            announcement[field]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("mock-github named no {field}"))
        };
        let env = announcement["env"]
            .as_object()
            .context("mock-github named no environment")?
            .iter()
            .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().to_owned()))
            .collect();
        Ok(MockGitHubProcess {
            base_url: text("base_url")?,
            env,
            _process: process,
        })
    }

    /// `expression` with this mock's environment added.
    pub fn apply_env(&self, mut expression: duct::Expression) -> duct::Expression {
        for (name, value) in &self.env {
            expression = expression.env(name, value);
        }
        expression
    }
}
