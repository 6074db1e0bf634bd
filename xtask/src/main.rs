//! Project automation, run as `cargo xtask <task>` (the alias lives in
//! `.cargo/config.toml`). One module per task; this file only dispatches.
//!
//! - `conformance`: launch a target server against the mock GitHub and run the suite.
//! - `bench`: suite speed and server throughput, side by side in one run.
//! - `ci`: everything CI checks: formatting, lints, tests and conformance.
//! - `interop`: real MCP clients, the official conformance suite and a real browser
//!   against the reference server.
//! - `snapshot-diff`: how two targets' normalized transcripts differ.
//! - `faults`: every check fails against a server that breaks its requirement.
//! - `coverage`: the checks and faults measured against the requirement catalogue.
//! - `mutants`: mutation testing of the reference server, with the suite as the test.
//! - `deny`: `cargo deny check` (licenses, advisories, duplicates), installing
//!   cargo-deny first when it is missing.
//!
//! `progress.rs` is what every task shows while it works.

mod bench;
mod ci;
mod conformance;
mod coverage;
mod deny;
mod faults;
mod interop;
mod mutants;
mod process;
mod progress;
mod snapshot_diff;

use std::path::{Path, PathBuf};

const USAGE: &str = "\
usage: cargo xtask <task> [options]
       cargo xtask <task> --help      (conformance: its options, without building)
       cargo xtask --version

Every task takes --quiet: no progress lines or spinners, only results and errors.
Progress is a spinner on a terminal and plain lines in logs.

tasks:
  conformance [--server rust|python|typescript|python-example=DIR|cmd=\"COMMAND\"] [--ready-timeout SECS]
              [--update-baseline] [--update-snapshots] [--example-mcp-version V] [SUITE OPTIONS]
      Starts the mock GitHub, launches the target with its environment pointed at
      the mock, waits until it is ready, runs the suite, tears it all down. The
      baseline fixtures/baselines/<target>.toml applies when it exists.
      python: fixtures/python on the Python SDK, in target/python-venv (python3 3.10+;
      XTASK_PYTHON names another interpreter).
      python-example=DIR: an unmodified checkout of the SDK's GitHub-era
      examples/servers/simple-auth (DIR is it or the SDK root), on mcp V (default
      1.9.4) in target/python-example-venv/, once per transport; a start-up shim sends
      its fixed https://api.github.com calls to the mock.
      COMMAND may use {port}; it also gets PORT in its environment.
      --update-baseline rewrites the baseline from the run (kept reasons stay, new
      entries get reason \"TODO\", which the run then refuses until written).
      --update-snapshots writes the run's transcripts to fixtures/snapshots/<target>/
      (non-Rust targets; a run without it says whether they still match).
      Every other option goes to the suite (see `cargo run -p mcp-auth-conformance -- --help`),
      for example --transport sse|streamable-http|both, --json FILE, --junit FILE, --id ID;
      it is checked against the suite's options before anything is launched.
  bench [--quick] [--with-sessions] [--window SECS | --window-ms MS] [--clients LIST]
        [--sessions LIST] [--only PARTS] [--no-python] [--bin-dir DIR] [--out FILE]
      Release builds of every target; suite wall time, authenticated tools/call and
      tools/list throughput and latency at 16, 64 and 256 clients (Rust, Python, a
      bare axum ceiling), 1,000 and 10,000 SSE sessions, memory under anonymous
      floods, time to ready. Writes the table to docs/benchmarks.md (or FILE) and
      prints it. `cargo xtask bench --help` explains each option.
  ci  What CI runs: cargo fmt --check, clippy -D warnings, the tests, the coverage
      file, the dependency policy, `conformance` against the Rust, Python and
      TypeScript targets, a slice of the fault matrix (--shard 1/8) and interop.
  interop [--only WORD]
      Runs the reference server against the mock GitHub with real clients: the
      TypeScript SDK (Streamable HTTP, SSE), the Rust SDK, MCP Inspector's CLI,
      the official conformance suite and headless Chromium on the consent page.
      Installs Node 22 and the npm packages (cached), needs `chromium` on the PATH
      (apt-get install chromium). Prints a table; fails if any test fails.
      --only WORD runs the tests whose id contains WORD: ts-sdk, rust-sdk,
      inspector, conformance-suite, browser, sse, streamable-http, ...
  snapshot-diff A B [--latest]
      The behavioural differences between two targets' normalized transcripts, one
      row per differing path, grouped by section, with requirement IDs. A and B are
      target names (fixtures/snapshots/<name>, else the last run's
      target/conformance/<name>/snapshots; --latest prefers the last run) or
      directories. Exits 0 when they differ; non-zero only when one cannot be read.
  faults [--markdown] [--jobs N] [--fault NAME]... [--shard K/N]
      Builds the reference server with fault-injection and, for each fault in
      server/src/fault.rs, runs the suite (both transports, --slow) against it and
      against a clean server, then prints the detection matrix: one row per fault
      with the checks it tripped, ✓ when exactly the ones it names. Fails when a
      fault trips a check it does not name or misses one it names, or when a check
      is tripped by no fault. A problem is first rerun alone (the clean run and the
      fault, at most four faults): one that goes away is printed as flaky under load
      and does not fail. --jobs: runs at once (default 3); --fault: only these
      faults; --shard K/N: every Nth fault of the table from the Kth, a slice of every
      area (the N shards are the whole table; with either, coverage is not judged);
      --markdown: the matrix as a table.
  coverage [--check]
      Writes docs/coverage.md: per requirement of conformance/requirements.toml the
      checks, the faults that prove them and the latest status per target (from
      target/conformance/<target>/), per-area and overall coverage, the exclusions.
      Also rewrites conformance/faults.toml from server/src/fault.rs. --check fails
      when either file is stale (the status section aside) or when a check names an
      ID the catalogue lacks.
  mutants [--shard K/N] [--file GLOB]... [--timeout SECS] [--jobs N] [--list]
          [--no-warnings-pass] [--in-place] [--write-doc]
      Mutation testing (cargo-mutants, installed when missing) of server/src with the
      suite as the test: a mutant is caught when a MUST fails or errors; survivors are
      tested again with warnings denied and counted apart. Exclusions with their reasons
      in .cargo/mutants.toml; --write-doc keeps the run's results in docs/mutants/ and
      writes docs/mutants.md from every shard kept there.
  deny
      cargo deny check with deny.toml: licenses, advisories, duplicate crates.
      Installs cargo-deny (cargo install --locked, a few minutes) when it is missing.
";

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let mut rest: Vec<String> = args.collect();
    // `--quiet` means the same to every task, so it is taken here.
    let quiet = rest.len();
    rest.retain(|arg| arg != "--quiet");
    progress::set_quiet(rest.len() != quiet);
    let result = match task.as_deref() {
        Some("-V" | "--version") => {
            println!("xtask {}", env!("CARGO_PKG_VERSION"));
            return std::process::ExitCode::SUCCESS;
        }
        Some("deny") => deny::run(&rest),
        Some("conformance") => conformance::run(&rest),
        Some("ci") => ci::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("interop") => interop::run(&rest),
        Some("snapshot-diff") => snapshot_diff::run(&rest),
        Some("faults") => faults::run(&rest),
        Some("coverage") => coverage::run(&rest),
        Some("mutants") => mutants::run(&rest),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            return std::process::ExitCode::SUCCESS;
        }
        Some(other) => Err(anyhow::anyhow!("unknown task {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The workspace root, whatever directory cargo was run from.
/// The workspace this run belongs to, resolved when xtask runs rather than when it was
/// built: clones that share a `CARGO_TARGET_DIR` share one `target/debug/xtask` binary, and
/// each must still test its own tree. `cargo run` (and so `cargo xtask`) sets
/// `CARGO_MANIFEST_DIR` for the process it starts; the compile-time value is the fallback
/// for a binary started by hand.
fn project_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The cargo that runs us, so that a toolchain override applies to the tasks too.
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}
