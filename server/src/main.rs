//! `mcp-github-server`: runs the reference server.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use mcp_github_server::{Config, Transports};
use url::Url;

/// jemalloc rather than the system's allocator: a server holding thousands of SSE sessions
/// needs a quarter less memory with it, and it returns what closed sessions freed to the
/// system (glibc keeps most of it, fragmented, for good). How soon is set where jemalloc is
/// built, in `.cargo/config.toml`.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// An MCP server that is its own OAuth 2.1 authorization server and logs users in
/// with a GitHub OAuth App. Configure the app with MCP_GITHUB_GITHUB_CLIENT_ID and
/// MCP_GITHUB_GITHUB_CLIENT_SECRET.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on. Keep the loopback default when running locally.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on; 0 picks a free one (the advertised URLs follow it).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Which MCP transports to serve.
    #[arg(long, value_enum, default_value_t = Transports::Both)]
    transport: Transports,
    /// Switch on a named defect (repeatable). Only in builds with `fault-injection`.
    #[cfg(feature = "fault-injection")]
    #[arg(long = "fault", value_name = "NAME")]
    faults: Vec<mcp_github_server::Fault>,
    /// Print every fault as one JSON object per line (name, the requirement IDs it
    /// breaks, and how a run must be set up to see it), and exit.
    #[cfg(feature = "fault-injection")]
    #[arg(long)]
    list_faults: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    // Log lines are formatted on the request's thread and written to stderr by a
    // thread of their own, so a request never waits on the terminal or the pipe. The
    // queue blocks rather than drops when full: every request keeps its line. The
    // guard flushes what is queued when `main` returns.
    let (log_writer, _log_flush) = mcp_github_server::log_writer(std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(
            // rmcp logs every session event at info and every error reply at warn;
            // the server's own line per request says what an operator needs.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rmcp=error".into()),
        )
        .with_writer(log_writer)
        .with_ansi(colour_logs(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Colour codes only for a person watching a terminal: a log file or a pipe would keep
/// them as noise, and a set, non-empty `NO_COLOR` turns them off (<https://no-color.org>).
fn colour_logs(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

async fn run(args: Args) -> anyhow::Result<()> {
    #[cfg(feature = "fault-injection")]
    if args.list_faults {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        for fault in mcp_github_server::Fault::ALL {
            // A closed pipe (`| head`) just ends the listing.
            if writeln!(stdout, "{}", fault.to_json()).is_err() {
                break;
            }
        }
        return Ok(());
    }
    // The configuration is checked before binding, so a missing secret fails fast
    // and leaves the port free.
    let provisional = Url::parse(&format!("http://localhost:{}", args.port))?;
    let mut config = Config::from_vars(std::env::vars(), provisional)?;
    config.transports = args.transport;
    #[cfg(feature = "fault-injection")]
    {
        config.faults = args.faults.iter().copied().collect();
        if !config.faults.is_empty() {
            tracing::warn!(faults = ?config.faults, "running with injected faults");
        }
    }

    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let port = listener.local_addr()?.port();
    if port != args.port {
        // Port 0: the advertised URLs must name the port actually bound.
        let base = Url::parse(&format!("http://localhost:{port}"))?;
        let rebased = Config::from_vars(std::env::vars(), base)?;
        config.base_url = rebased.base_url;
        config.github_callback = rebased.github_callback;
    }
    let issuer = config.issuer();
    if config.transports.streamable_http() {
        tracing::info!("Streamable HTTP endpoint: {issuer}/mcp");
    }
    if config.transports.sse() {
        tracing::info!("HTTP+SSE endpoint: {issuer}/sse");
    }
    tracing::info!(
        "GitHub OAuth App callback URL: {}",
        config.github_callback.as_str()
    );
    // A launcher waits for this line on stdout.
    println!("ready {issuer}");
    mcp_github_server::serve(listener, config).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::colour_logs;

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(colour_logs(true, None));
        assert!(colour_logs(true, Some("".into())));
        assert!(!colour_logs(true, Some("1".into())));
        assert!(!colour_logs(false, None));
        assert!(!colour_logs(false, Some("1".into())));
    }
}
