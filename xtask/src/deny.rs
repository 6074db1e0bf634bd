//! `cargo xtask deny`: `cargo deny check` against `deny.toml` (licenses, advisories,
//! bans). cargo-deny takes minutes to compile, so it is installed only when missing and
//! is not part of `cargo xtask ci`.

use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::{cargo, progress, project_root};

/// The cargo-deny release `deny.toml` is written for.
const CARGO_DENY_VERSION: &str = "0.20.2";

pub fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let mut offline = false;
    for arg in args {
        match arg.as_str() {
            "-h" | "--help" => {
                println!(
                    "usage: cargo xtask deny [--offline]\n\n\
                     cargo deny check with deny.toml: licenses, bans and sources, then \
                     advisories. Installs cargo-deny {CARGO_DENY_VERSION} with `cargo install \
                     --locked` when it is missing.\n\
                     --offline: no network; advisories are read from the database an earlier \
                     run fetched."
                );
                return Ok(ExitCode::SUCCESS);
            }
            "--offline" => offline = true,
            other => bail!("cargo xtask deny takes --offline only, not {other:?}"),
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
    for checks in [&["licenses", "bans", "sources"][..], &["advisories"][..]] {
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
