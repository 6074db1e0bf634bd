//! `mcp-bench`: the measuring half of `cargo xtask bench`. The xtask launches the
//! servers; this binary logs in to them, drives load and prints one JSON line per
//! measurement on stdout (progress goes to stderr).
//!
//! - `ceiling --port P`: the bare ceiling server (see `ceiling.rs`); its one valid
//!   token comes from `MCP_BENCH_CEILING_TOKEN`.
//! - `login --url URL`: a scripted OAuth login; prints `{"access_token": ...}`.
//! - `load --url URL --transport T --op O --clients N`: throughput and latency of
//!   one cell, with the token from `MCP_BENCH_TOKEN` (the xtask interleaves targets
//!   cell by cell so that their ratios come from moments close in time).
//! - `sse-scale --url URL --sessions N --pid PID`: N SSE sessions held open at once.

mod ceiling;
mod client;
mod load;
mod login;
mod mcp;
mod scale;
mod stats;

use std::{process::ExitCode, time::Duration};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use url::Url;

use crate::{
    client::Endpoint,
    load::{Cell, Target},
    mcp::{Op, Transport},
};

#[derive(Parser)]
#[command(about = "Load drivers and the ceiling server behind `cargo xtask bench`")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the bare ceiling (bearer check, fixed JSON-RPC answers).
    Ceiling {
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Log in to an MCP server through its OAuth flow and print the access token.
    Login {
        #[arg(long)]
        url: Url,
        /// The RFC 8707 resource the token is for (default: the server's `/mcp`).
        #[arg(long)]
        resource: Option<String>,
    },
    /// Throughput and latency of authenticated requests: one cell, one JSON line.
    /// The access token comes from MCP_BENCH_TOKEN (see `login`).
    Load {
        #[arg(long)]
        url: Url,
        /// The name the JSON line gives the target.
        #[arg(long)]
        name: String,
        /// streamable-http (a session per client), stateless (2026-07-28 requests) or sse.
        #[arg(long)]
        transport: String,
        /// tools/list or tools/call.
        #[arg(long)]
        op: String,
        /// Concurrent clients, each with its own connections.
        #[arg(long)]
        clients: usize,
        /// Warm-up, in milliseconds.
        #[arg(long, default_value_t = 500)]
        warmup_ms: u64,
        /// Measured window, in milliseconds.
        #[arg(long, default_value_t = 2000)]
        duration_ms: u64,
        /// Bound on any one request, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
    },
    /// Hold many SSE sessions open and read the server's resident memory.
    SseScale {
        #[arg(long)]
        url: Url,
        #[arg(long)]
        sessions: usize,
        /// The server's process id, for /proc/PID/status.
        #[arg(long)]
        pid: u32,
        /// How many loopback source addresses (127.0.0.1, .2, ...) the streams use.
        #[arg(long, default_value_t = 4)]
        sources: u8,
        /// How many sessions are being opened at once.
        #[arg(long, default_value_t = 128)]
        parallel: usize,
        /// Bound on any one step, in seconds.
        #[arg(long, default_value_t = 30)]
        timeout_s: u64,
        /// Bound on opening them all, in seconds.
        #[arg(long, default_value_t = 120)]
        deadline_s: u64,
        /// How many times all sessions are opened and closed again (at least 2): the
        /// later rounds show whether closed sessions leave memory behind.
        #[arg(long, default_value_t = 2)]
        rounds: usize,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mcp-bench: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mcp-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where `load` finds the access token.
const TOKEN_VAR: &str = "MCP_BENCH_TOKEN";

fn resource(url: &Url) -> String {
    format!("{}/mcp", url.as_str().trim_end_matches('/'))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Ceiling { port } => ceiling::serve(port).await,
        Command::Login {
            url,
            resource: wanted,
        } => {
            let resource = wanted.unwrap_or_else(|| resource(&url));
            let login = login::login(&url, &resource).await?;
            println!(
                "{}",
                serde_json::json!({"access_token": login.access_token})
            );
            Ok(())
        }
        Command::Load {
            url,
            name,
            transport,
            op,
            clients,
            warmup_ms,
            duration_ms,
            timeout_ms,
        } => {
            if clients == 0 {
                bail!("--clients must be at least 1");
            }
            let target = Target {
                name,
                endpoint: Endpoint::from_url(&url)?,
                mcp_path: "/mcp".into(),
                sse_path: "/sse".into(),
                token: std::env::var(TOKEN_VAR)
                    .with_context(|| format!("{TOKEN_VAR} is not set"))?,
            };
            let cell = Cell {
                transport: Transport::parse(&transport)?,
                op: Op::parse(&op)?,
                clients,
                warmup: Duration::from_millis(warmup_ms),
                duration: Duration::from_millis(duration_ms),
                timeout: Duration::from_millis(timeout_ms),
            };
            println!("{}", load::run_cell(&target, cell).await);
            Ok(())
        }
        Command::SseScale {
            url,
            sessions,
            pid,
            sources,
            parallel,
            timeout_s,
            deadline_s,
            rounds,
        } => {
            // The server takes a token for its SSE endpoint only if it was issued for
            // that endpoint or for the whole server (RFC 8707), not for `/mcp`.
            let sse_resource = format!("{}/sse", url.as_str().trim_end_matches('/'));
            let login = login::login(&url, &sse_resource).await?;
            let line = scale::run(scale::Options {
                endpoint: Endpoint::from_url(&url)?,
                sse_path: "/sse".into(),
                token: login.access_token,
                sessions,
                server_pid: pid,
                sources,
                parallel,
                timeout: Duration::from_secs(timeout_s),
                deadline: Duration::from_secs(deadline_s),
                rounds: rounds.max(2),
            })
            .await?;
            println!("{line}");
            Ok(())
        }
    }
}
