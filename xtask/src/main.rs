//! Project automation, run as `cargo xtask <task>` (the alias lives in
//! `.cargo/config.toml`). One module per task; this file only dispatches.
//!
//! - `conformance`: launch a target server against the mock GitHub and run the suite.
//! - `ci`: everything CI checks: formatting, lints, tests and conformance.
//! - `interop`: real MCP clients, the official conformance suite and a real browser
//!   against the reference server.

mod ci;
mod conformance;
mod interop;
mod process;

use std::path::{Path, PathBuf};

const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  conformance [--server rust|python|cmd=\"COMMAND\"] [--ready-timeout SECS] [SUITE OPTIONS]
      Starts the mock GitHub, launches the target with its environment pointed at
      the mock, waits until it accepts connections, runs the suite, tears it all
      down. COMMAND may use {port}; it also gets PORT in its environment. Every
      other option goes to the suite (see `cargo run -p mcp-auth-conformance -- --help`),
      for example --transport sse|streamable-http|both, --json FILE, --junit FILE, --id ID.
  ci  Runs cargo fmt --check, clippy -D warnings, the tests and `conformance`.
  interop [--only WORD]
      Runs the reference server against the mock GitHub with real clients: the
      TypeScript SDK (Streamable HTTP, SSE), the Rust SDK, MCP Inspector's CLI,
      the official conformance suite and headless Chromium on the consent page.
      Installs Node 22 and the npm packages (cached), needs `chromium` on the PATH
      (apt-get install chromium). Prints a table; fails if any test fails.
      --only WORD runs the tests whose id contains WORD: ts-sdk, rust-sdk,
      inspector, conformance-suite, browser, sse, streamable-http, ...
";

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    let result = match task.as_deref() {
        Some("conformance") => conformance::run(&rest),
        Some("ci") => ci::run(&rest),
        Some("interop") => interop::run(&rest),
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
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The cargo that runs us, so that a toolchain override applies to the tasks too.
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}
