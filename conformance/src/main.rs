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
    /// A client registered beforehand, for servers without dynamic client registration.
    #[arg(long)]
    client_id: Option<String>,
    /// The secret of the --client-id client, if it is confidential.
    #[arg(long, requires = "client_id")]
    client_secret: Option<String>,
    /// The redirect URI registered for the --client-id client (a loopback URL).
    #[arg(long, requires = "client_id")]
    redirect_uri: Option<String>,
    /// The tool contract checked besides the spec's rules: github (get_user_profile) or none.
    #[arg(long, default_value = "github")]
    tool_profile: mcp_auth_conformance::config::ToolProfile,
    /// Show evidence for warnings and notes for passes.
    #[arg(long, short)]
    verbose: bool,
    /// List the selected checks and exit.
    #[arg(long)]
    list: bool,
}

fn main() -> ExitCode {
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
    config.client =
        args.client_id.clone().map(
            |client_id| mcp_auth_conformance::config::PreRegisteredClient {
                client_id,
                client_secret: args.client_secret.clone(),
                redirect_uri: args
                    .redirect_uri
                    .clone()
                    .unwrap_or_else(|| mcp_auth_conformance::oauth::REDIRECT_URI.to_owned()),
            },
        );
    config.tool_profile = args.tool_profile;

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
