//! The command-line front end; see the crate documentation for the flags.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use mcp_auth_conformance::baseline::Baseline;
use mcp_auth_conformance::report::{console, json, junit};
use mcp_auth_conformance::{SuiteConfig, Transport, Version};
use url::Url;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TransportArg {
    Sse,
    StreamableHttp,
    Both,
}

/// Conformance checks for OAuth-protected MCP servers over HTTP+SSE and Streamable HTTP.
#[derive(Debug, Parser)]
// `--version` selects spec versions here, so clap's own version flag is left out.
#[command(about)]
struct Args {
    /// Base URL of the server under test.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: Url,
    /// Base URL of the mock GitHub the server logs users in with.
    #[arg(long, default_value = "http://127.0.0.1:9999")]
    mock_github: Url,
    /// Path of the Streamable HTTP endpoint.
    #[arg(long, default_value = "/mcp")]
    mcp_path: String,
    /// Path of the legacy SSE endpoint.
    #[arg(long, default_value = "/sse")]
    sse_path: String,
    #[arg(long, value_enum, default_value = "both")]
    transport: TransportArg,
    /// Only these checks (an ID such as AUTH-FLOW-04, or a case key such as AUTH-GEN-05#expired).
    #[arg(long = "id")]
    ids: Vec<String>,
    /// Only these areas (AUTH-FLOW, SHTTP, ...).
    #[arg(long = "area")]
    areas: Vec<String>,
    /// Only checks that apply to these spec versions.
    #[arg(long = "version")]
    versions: Vec<Version>,
    /// Protocol version to negotiate on Streamable HTTP sessions.
    #[arg(long, default_value = "2025-11-25")]
    streamable_version: Version,
    /// Known failures of this target; a listed check that passes fails the run as stale.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Write the report as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the report as JUnit XML.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write the normalized transcript per transport (`<transport>.json`).
    #[arg(long)]
    snapshot_dir: Option<PathBuf>,
    /// Wait out expires_in for expired-token checks only when it is at most this many seconds.
    #[arg(long, default_value_t = 3.0)]
    max_expiry_wait: f64,
    /// Seconds to wait for any single response or message.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// How many checks run at once.
    #[arg(long, default_value_t = 16)]
    jobs: usize,
    /// Also run checks that wait for the server's upstream timeout.
    #[arg(long)]
    slow: bool,
    /// Run the robustness phase: generated malformed requests to every endpoint, judged for
    /// 5xx answers, hangs, dropped connections and memory growth.
    #[arg(long)]
    robustness: bool,
    /// How many requests the robustness phase generates.
    #[arg(long, default_value_t = 10_000)]
    robustness_cases: usize,
    /// The seed of the robustness phase's inputs (random when not given; printed to replay).
    #[arg(long)]
    robustness_seed: Option<u64>,
    /// The target's process id, to read its memory around the robustness phase.
    #[arg(long)]
    target_pid: Option<u32>,
    /// How much the target's resident memory may grow during the robustness phase, in MiB.
    #[arg(long, default_value_t = 256)]
    memory_limit_mib: u64,
    /// Show evidence for warnings and notes for passes.
    #[arg(long, short)]
    verbose: bool,
    /// List the selected checks and exit.
    #[arg(long)]
    list: bool,
}

fn main() -> ExitCode {
    // `explain ID` looks a requirement up in the catalogue; it shares no flags with a run.
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("explain") {
        return ExitCode::from(mcp_auth_conformance::catalogue::explain_command(&argv[1..]));
    }
    // `connect` is a command of its own, with its own flags (see `connect/mod.rs`).
    if std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == "connect")
    {
        return mcp_auth_conformance::connect::main(std::env::args_os().skip(1));
    }
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let baseline = args.baseline.as_deref().map(Baseline::load).transpose()?;
    let mut config = SuiteConfig::new(args.url.clone(), args.mock_github.clone());
    config.mcp_path = args.mcp_path.clone();
    config.sse_path = args.sse_path.clone();
    config.transports = match args.transport {
        TransportArg::Sse => vec![Transport::Sse],
        TransportArg::StreamableHttp => vec![Transport::StreamableHttp],
        TransportArg::Both => Transport::ALL.to_vec(),
    };
    config.ids = args.ids.clone();
    config.areas = args.areas.clone();
    config.versions = args.versions.clone();
    config.streamable_version = args.streamable_version;
    config.max_expiry_wait = Duration::try_from_secs_f64(args.max_expiry_wait)?;
    config.request_timeout = Duration::try_from_secs_f64(args.timeout)?;
    config.jobs = args.jobs;
    config.slow = args.slow;
    if args.robustness {
        let seed = args.robustness_seed.unwrap_or_else(rand::random);
        println!(
            "robustness phase: {} cases, seed {seed}",
            args.robustness_cases
        );
        config.robustness = Some(mcp_auth_conformance::robustness::Settings {
            cases: args.robustness_cases,
            seed,
            target_pid: args.target_pid,
            memory_limit_mib: args.memory_limit_mib,
            ..Default::default()
        });
    }

    if args.list {
        for p in mcp_auth_conformance::plan(&config) {
            println!(
                "{:<22} {:<15} {:<6} {:<12} {}",
                p.check.key(),
                mcp_auth_conformance::report::transport_label(p.transport),
                p.check.level.to_string(),
                p.check.versions.to_string(),
                p.check.title
            );
        }
        return Ok(true);
    }

    let verbose = args.verbose;
    // Progress lines are printed without the baseline marks, which are known only at the end.
    config.progress = Some(Arc::new(move |r| println!("{}", console::line(r, verbose))));
    println!(
        "mcp-auth-conformance: {} (mock GitHub {})",
        args.url, args.mock_github
    );
    let mut report = mcp_auth_conformance::run(config).await?;
    if let Some(b) = &baseline {
        b.apply(&mut report);
        for r in report.results.iter().filter(|r| r.baseline.is_some()) {
            println!("{}", console::line(r, false));
        }
    }
    print!("{}", console::summary(&report));
    if let Some(path) = &args.json {
        std::fs::write(path, json::render(&report)?)?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, junit::render(&report)?)?;
    }
    if let Some(dir) = &args.snapshot_dir {
        report.transcript.write_dir(dir, &report.transports)?;
    }
    Ok(report.ok())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Args::command().debug_assert();
    }
}
