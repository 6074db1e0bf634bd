//! `cargo xtask ci`: the same gates CI applies, in the order that fails fastest.

use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::{cargo, project_root};

/// A stage after the cargo steps: it reports its own failures and answers with an exit code.
type Stage = fn() -> anyhow::Result<ExitCode>;

pub fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    if !args.is_empty() {
        bail!("ci takes no options");
    }
    let root = project_root();
    let steps: [(&str, Vec<&str>); 4] = [
        ("format", vec!["fmt", "--all", "--check"]),
        (
            "lint",
            vec![
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        (
            "lint (fault injection)",
            vec![
                "clippy",
                "-p",
                "mcp-github-server",
                "--features",
                "fault-injection",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        // Every test binary runs even when one fails, so one CI run shows every failure.
        ("tests", vec!["test", "--workspace", "--no-fail-fast"]),
    ];
    for (name, step) in steps {
        eprintln!("xtask ci: {name}: cargo {}", step.join(" "));
        duct::cmd(cargo(), &step)
            .dir(&root)
            .run()
            .with_context(|| format!("{name} failed"))?;
    }
    // Each stage runs even when an earlier one failed, so one CI run shows every
    // problem; the run fails if any stage did.
    let stages: [(&str, Stage); 7] = [
        // Cheap: docs/coverage.md and conformance/faults.toml are current, and every
        // ID a check names is in the catalogue.
        ("the coverage file", || {
            crate::coverage::run(&["--check".into()])
        }),
        // Licenses, bans and sources of every dependency (deny.toml). The advisory
        // database is not reachable from CI; `cargo xtask deny` checks it where it is.
        ("dependency policy", || {
            crate::deny::run(&["--no-advisories".into()])
        }),
        // With the robustness phase: generated malformed requests to every endpoint.
        ("conformance against the Rust server", || {
            crate::conformance::run(&["--robustness".into()])
        }),
        // Its known failures are in fixtures/baselines/python.toml.
        ("conformance against the Python SDK target", || {
            crate::conformance::run(&["--server".into(), "python".into()])
        }),
        // GitHub's URLs fixed in its code, reached through the mock's intercepting proxy;
        // its known failures are in fixtures/baselines/typescript.toml.
        ("conformance against the TypeScript SDK target", || {
            crate::conformance::run(&["--server".into(), "typescript".into()])
        }),
        // The whole table takes about half an hour on two cores; CI runs an
        // eighth of it, a fault from every stretch of the table. The other shards and
        // the coverage of every check are `cargo xtask faults`'s.
        ("a slice of the fault matrix", || {
            crate::faults::run(&["--shard".into(), "1/8".into()])
        }),
        ("interop with real clients", || crate::interop::run(&[])),
    ];
    let mut failed = Vec::new();
    for (name, stage) in stages {
        eprintln!("xtask ci: {name}");
        match stage() {
            Ok(code) if code == ExitCode::SUCCESS => {}
            Ok(_) => failed.push(name),
            Err(error) => {
                eprintln!("xtask ci: {name}: {error:#}");
                failed.push(name);
            }
        }
    }
    if failed.is_empty() {
        eprintln!("xtask ci: every stage passed");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("xtask ci: failed: {}", failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}
