//! Closed-loop load: N clients, each with its own connection and session, send one
//! request after another for a warm-up and then a measured window. Every answer is
//! checked; throughput counts the answers that arrived inside the window.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use serde_json::json;
use tokio::sync::Barrier;

use crate::{
    client::Endpoint,
    mcp::{CallError, Client, Op, Transport},
    stats::Summary,
};

/// How many clients connect and initialize at once while a cell is set up.
const SETUP_PARALLELISM: usize = 32;

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub endpoint: Endpoint,
    pub mcp_path: String,
    pub sse_path: String,
    pub token: String,
}

#[derive(Debug, Clone, Copy)]
pub struct Cell {
    pub transport: Transport,
    pub op: Op,
    pub clients: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
}

/// What one client saw inside the window.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

/// Runs one cell against one target and returns its JSON line.
pub async fn run_cell(target: &Target, cell: Cell) -> serde_json::Value {
    let setup_started = Instant::now();
    let mut line = json!({
        "kind": "load",
        "target": target.name,
        "transport": cell.transport.name(),
        "op": cell.op.name(),
        "clients": cell.clients,
    });
    let connected: Vec<anyhow::Result<Client>> = stream::iter(0..cell.clients)
        .map(|_| {
            Client::connect(
                &target.endpoint,
                cell.transport,
                &target.mcp_path,
                &target.sse_path,
                &target.token,
                None,
                cell.timeout,
            )
        })
        .buffer_unordered(SETUP_PARALLELISM)
        .collect()
        .await;
    let mut clients = Vec::with_capacity(cell.clients);
    let mut setup_errors = Vec::new();
    for client in connected {
        match client {
            Ok(client) => clients.push(client),
            Err(error) => setup_errors.push(format!("{error:#}")),
        }
    }
    line["setup_ms"] = json!(setup_started.elapsed().as_millis() as u64);
    if !setup_errors.is_empty() {
        line["errors"] = json!(setup_errors.len());
        line["error"] = json!(format!("setting up a client: {}", setup_errors[0]));
        for client in clients {
            client.close(cell.timeout).await;
        }
        return line;
    }

    // Every client starts at once; the window opens after the warm-up.
    let barrier = Arc::new(Barrier::new(cell.clients + 1));
    let mut tasks = Vec::with_capacity(cell.clients);
    for mut client in clients {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let start = tokio::time::Instant::now();
            let window_start = start + cell.warmup;
            let window_end = window_start + cell.duration;
            let mut tally = Tally::default();
            // False once a request was cut off at the end of the window: the
            // connection is then mid-answer and is dropped rather than reused.
            let mut reusable = true;
            loop {
                let sent = tokio::time::Instant::now();
                if sent >= window_end {
                    break;
                }
                // The window ends for every client at the same moment; an answer still
                // on its way then is abandoned, neither counted nor an error.
                let Ok(result) =
                    tokio::time::timeout_at(window_end, client.call(cell.op, cell.timeout)).await
                else {
                    reusable = false;
                    break;
                };
                let done = tokio::time::Instant::now();
                match result {
                    // Throughput counts the answers that arrived inside the window,
                    // whenever they were asked for.
                    Ok(()) => {
                        if done >= window_start {
                            let micros = (done - sent).as_micros();
                            tally
                                .latencies_us
                                .push(u32::try_from(micros).unwrap_or(u32::MAX));
                        }
                    }
                    Err(error) => {
                        // Errors count wherever they happen: a warm-up failure is a failure too.
                        tally.errors += 1;
                        if tally.first_error.is_none() {
                            tally.first_error = Some(error.message().to_owned());
                        }
                        if matches!(error, CallError::Fatal(_)) {
                            break;
                        }
                    }
                }
            }
            (reusable.then_some(client), tally)
        }));
    }
    barrier.wait().await;
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    let mut finished = Vec::with_capacity(cell.clients);
    for task in tasks {
        match task.await {
            Ok((client, tally)) => {
                latencies.extend(tally.latencies_us);
                errors += tally.errors;
                if first_error.is_none() {
                    first_error = tally.first_error;
                }
                finished.extend(client);
            }
            Err(error) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("a client task failed: {error}"));
            }
        }
    }
    let closing: Vec<_> = finished
        .into_iter()
        .map(|client| client.close(cell.timeout))
        .collect();
    stream::iter(closing)
        .buffer_unordered(SETUP_PARALLELISM)
        .collect::<Vec<()>>()
        .await;

    let summary = Summary::of(&mut latencies);
    line["requests"] = json!(latencies.len());
    line["errors"] = json!(errors);
    line["rps"] = json!(latencies.len() as f64 / cell.duration.as_secs_f64());
    line["p50_us"] = json!(summary.p50_us);
    line["p99_us"] = json!(summary.p99_us);
    line["mean_us"] = json!(summary.mean_us);
    line["window_s"] = json!(cell.duration.as_secs_f64());
    if let Some(error) = first_error {
        line["error"] = json!(error);
    }
    line
}
