//! `cargo xtask deny`: `cargo deny check` against `deny.toml` (licenses, advisories,
//! bans). cargo-deny takes minutes to compile, so it is installed only when missing and
//! is reused when present. `cargo xtask ci` runs it with `--no-advisories`: CI reaches the
//! package registries only, not the advisory database.

use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::{cargo, progress, project_root};

/// The cargo-deny release `deny.toml` is written for.
const CARGO_DENY_VERSION: &str = "0.20.2";

pub fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let mut offline = false;
    let mut advisories = true;
    for arg in args {
        match arg.as_str() {
            "-h" | "--help" => {
                println!(
                    "usage: cargo xtask deny [--offline] [--no-advisories]\n\n\
                     cargo deny check with deny.toml: licenses, bans and sources, then \
                     advisories. Installs cargo-deny {CARGO_DENY_VERSION} with `cargo install \
                     --locked` when it is missing.\n\
                     --offline: no network; advisories are read from the database an earlier \
                     run fetched.\n\
                     --no-advisories: licenses, bans and sources only (what `cargo xtask ci` \
                     runs, since CI cannot reach the advisory database)."
                );
                return Ok(ExitCode::SUCCESS);
            }
            "--offline" => offline = true,
            "--no-advisories" => advisories = false,
            other => bail!("cargo xtask deny takes --offline and --no-advisories, not {other:?}"),
        }
    }
    let root = project_root();
    let installed = duct::cmd(cargo(), ["deny", "--version"])
        .stdout_null()
        .stderr_null()
        .unchecked()
        .run()
        .is_ok_and(|output| output.status.success());
    if !installed {
        if offline {
            bail!(
                "cargo-deny is not installed and --offline forbids installing it: \
                 cargo install --locked cargo-deny@{CARGO_DENY_VERSION}"
            );
        }
        // cargo's own output is the progress here.
        progress::note(&format!(
            "xtask deny: installing cargo-deny {CARGO_DENY_VERSION} (cargo install --locked)"
        ));
        duct::cmd(
            cargo(),
            [
                "install",
                "--locked",
                &format!("cargo-deny@{CARGO_DENY_VERSION}"),
            ],
        )
        .run()
        .context("cargo install cargo-deny failed")?;
    }
    // The checks that need no network first, so that a failed advisory fetch cannot hide
    // their verdict.
    let global: &[&str] = if offline { &["--offline"] } else { &[] };
    let mut failed = Vec::new();
    let mut groups: Vec<&[&str]> = vec![&["licenses", "bans", "sources"]];
    if advisories {
        groups.push(&["advisories"]);
    }
    for checks in groups {
        let command: Vec<&str> = ["deny"]
            .iter()
            .chain(global)
            .chain(&["check"])
            .chain(checks)
            .copied()
            .collect();
        let status = duct::cmd(cargo(), &command)
            .dir(&root)
            .unchecked()
            .run()
            .context("cannot run cargo deny")?
            .status;
        if !status.success() {
            failed.push(checks.join(", "));
        }
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("xtask deny: failed: {}", failed.join("; "));
        Ok(ExitCode::FAILURE)
    }
}
