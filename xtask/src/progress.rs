//! Signs of life for the long steps: builds, fault runs, interop cells, benchmarks.
//!
//! On a terminal a step is a spinner (or a bar for counted work) with its name and the
//! time it has taken; elsewhere (CI logs, a pipe) it is plain lines, and with `--quiet`
//! only errors are printed. Every bar belongs to one `MultiProgress`, so [`note`] can print
//! a line without tearing a bar that is being drawn.

use std::{
    io::{BufRead as _, BufReader, IsTerminal as _},
    path::Path,
    sync::{
        LazyLock,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::bail;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cargo;

static QUIET: AtomicBool = AtomicBool::new(false);

static BARS: LazyLock<MultiProgress> =
    LazyLock::new(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));

/// How often a spinner redraws; also what makes it move while a step makes no output.
const TICK: Duration = Duration::from_millis(120);

/// `--quiet`: no progress, no step lines; errors still go to stderr.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Bars only for a person at a terminal; a log file gets plain lines.
fn live() -> bool {
    !quiet() && std::io::stderr().is_terminal()
}

/// Prints one line on stderr (unless `--quiet`), above any bar being drawn.
pub fn note(line: &str) {
    if quiet() {
        return;
    }
    if live() {
        BARS.suspend(|| eprintln!("{line}"));
    } else {
        eprintln!("{line}");
    }
}

/// One named step that takes a while.
pub struct Step {
    name: String,
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Step {
    /// Shows `name` with a spinner on a terminal, else prints it as a line.
    pub fn start(name: impl Into<String>) -> Step {
        let name = name.into();
        let bar = if live() {
            let bar = BARS.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(name.clone());
            bar.enable_steady_tick(TICK);
            Some(bar)
        } else {
            if !quiet() {
                eprintln!("{name}");
            }
            None
        };
        Step {
            name,
            bar,
            started: Instant::now(),
        }
    }

    /// What the step is doing now (the spinner's text; not printed in logs).
    pub fn message(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_owned());
        }
    }

    /// Ends the step with a line saying how long it took.
    pub fn done(self) {
        let elapsed = self.started.elapsed().as_secs_f64();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        note(&format!("{}: done in {elapsed:.0} s", self.name));
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        // A step abandoned by an error must not leave its spinner drawn over the message.
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Counted work (fault runs, interop cells): a bar on a terminal, `name: n/total label`
/// lines elsewhere. Shared between threads.
pub struct Counter {
    name: String,
    total: usize,
    done: AtomicUsize,
    bar: Option<ProgressBar>,
}

impl Counter {
    pub fn new(name: impl Into<String>, total: usize) -> Counter {
        let name = name.into();
        let bar = live().then(|| {
            let bar = BARS.add(ProgressBar::new(total as u64));
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix} {pos}/{len} [{elapsed}] {bar:30} {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(name.clone());
            bar.enable_steady_tick(TICK);
            bar
        });
        Counter {
            name,
            total,
            done: AtomicUsize::new(0),
            bar,
        }
    }

    /// Says that `label` has started (the bar's text; not printed in logs).
    pub fn started(&self, label: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(label.to_owned());
        }
    }

    /// Counts one finished piece of work.
    pub fn finished(&self, label: &str) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                bar.set_message(format!("{label} done"));
            }
            None => note(&format!("{}: {done}/{} {label}", self.name, self.total)),
        }
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// `cargo build` with `args`, described as `what`. On a terminal a spinner shows the crate
/// being compiled; in a log cargo's own lines are shown; with `--quiet` only its errors.
/// A failure carries cargo's output.
pub fn cargo_build(root: &Path, args: &[&str], what: &str) -> anyhow::Result<()> {
    let mut command: Vec<&str> = vec!["build"];
    if quiet() {
        command.push("--quiet");
        command.extend_from_slice(args);
        let status = duct::cmd(cargo(), &command)
            .dir(root)
            .unchecked()
            .run()?
            .status;
        if !status.success() {
            bail!("cargo build ({what}) failed");
        }
        return Ok(());
    }
    command.extend_from_slice(args);
    let step = Step::start(format!("xtask: building {what}"));
    if step.bar.is_none() {
        // A log: cargo's own lines are the progress.
        let status = duct::cmd(cargo(), &command)
            .dir(root)
            .stdout_to_stderr()
            .unchecked()
            .run()?
            .status;
        if !status.success() {
            bail!("cargo build ({what}) failed");
        }
        step.done();
        return Ok(());
    }
    // A terminal: cargo's lines become the spinner's text, and are printed whole only
    // when the build fails.
    let reader = duct::cmd(cargo(), &command)
        .dir(root)
        .env("CARGO_TERM_PROGRESS_WHEN", "never")
        .stderr_to_stdout()
        .unchecked()
        .reader()?;
    let mut lines = Vec::new();
    for line in BufReader::new(&reader).lines() {
        let line = line?;
        let trimmed = line.trim();
        if !trimmed.is_empty() {
            step.message(trimmed);
        }
        lines.push(line);
    }
    let status = reader.try_wait()?.map(|output| output.status);
    if !status.is_some_and(|status| status.success()) {
        drop(step);
        eprintln!("{}", lines.join("\n"));
        bail!("cargo build ({what}) failed");
    }
    step.done();
    Ok(())
}
