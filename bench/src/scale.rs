//! Many legacy SSE sessions held open at once: each opens `GET /sse`, reads its
//! endpoint event, POSTs `initialize` (then `notifications/initialized`) and reads
//! the answer from its own stream. The streams come from several loopback source
//! addresses so that no one address runs out of ephemeral ports; the POSTs share a
//! small pool of keep-alive connections. While all are open, the server's resident
//! memory is read from `/proc/<pid>/status`.

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use futures::{StreamExt, stream};
use hyper::header::{self, HeaderValue};
use serde_json::json;

use crate::{
    client::{Conn, Endpoint, EventStream},
    mcp::{Client, sse_handshake},
};

pub struct Options {
    pub endpoint: Endpoint,
    pub sse_path: String,
    pub token: String,
    pub sessions: usize,
    pub server_pid: u32,
    pub sources: u8,
    pub parallel: usize,
    pub timeout: Duration,
    pub deadline: Duration,
    /// How many times the sessions are opened, held and closed (at least 2).
    pub rounds: usize,
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
pub fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// The soft limit on open files of this process.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

pub async fn run(options: Options) -> anyhow::Result<serde_json::Value> {
    let needed = options.sessions as u64 + options.parallel as u64 + 64;
    if let Some(limit) = open_files_limit()
        && limit < needed
    {
        bail!(
            "{} sessions need about {needed} open files, and this process may open {limit}: \
             raise the limit (ulimit -n, or prlimit)",
            options.sessions
        );
    }
    let (rss_before, _) = memory_kib(options.server_pid)?;
    let files_before = open_files(options.server_pid)?;
    let options = Arc::new(options);
    let first = open_all(&options).await?;
    // Read once everything is open, and again a moment later, to see it settle.
    let (rss_open, _) = memory_kib(options.server_pid)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_held, hwm) = memory_kib(options.server_pid)?;
    let opened = first.streams.len();
    drop(first.streams);
    // The server ends each session when its stream's connection closes. What it frees
    // need not go back to the system (the allocator keeps it), so the second round shows
    // whether it is reused: the same number of sessions again should take no more.
    let mut still_open = connections_closed(options.server_pid, files_before).await?;
    let rss_closed = settled_rss(options.server_pid).await?;
    let second = open_all(&options).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_reopened, _) = memory_kib(options.server_pid)?;
    let reopened = second.streams.len();
    drop(second.streams);
    still_open = still_open.max(connections_closed(options.server_pid, files_before).await?);
    // Further rounds tell a leak (each round takes more) from memory the allocator keeps
    // in pieces it cannot hand out again (the second round takes more, the rest no more).
    let mut rounds_open_kib = vec![rss_held, rss_reopened];
    let mut rounds_closed_kib = vec![rss_closed];
    let mut later_errors = 0;
    for _ in 2..options.rounds {
        rounds_closed_kib.push(settled_rss(options.server_pid).await?);
        let round = open_all(&options).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        rounds_open_kib.push(memory_kib(options.server_pid)?.0);
        later_errors += round.errors;
        drop(round.streams);
        still_open = still_open.max(connections_closed(options.server_pid, files_before).await?);
    }
    rounds_closed_kib.push(settled_rss(options.server_pid).await?);
    let per_session = if opened > 0 {
        rss_held.saturating_sub(rss_before) as f64 / opened as f64
    } else {
        0.0
    };
    let mut line = json!({
        "kind": "sse-scale",
        "sessions": options.sessions,
        "opened": opened,
        "errors": first.errors,
        "open_s": first.open_time.as_secs_f64(),
        "rss_before_kib": rss_before,
        "rss_open_kib": rss_open,
        "rss_kib": rss_held,
        "hwm_kib": hwm,
        "per_session_kib": per_session,
        "rss_closed_kib": rss_closed,
        "reopened": reopened,
        "reopen_errors": second.errors,
        "rss_reopened_kib": rss_reopened,
        "rounds_open_kib": rounds_open_kib,
        "rounds_closed_kib": rounds_closed_kib,
        "later_round_errors": later_errors,
        // Files the server still held, beyond those it held before, when the driver stopped
        // waiting for a round's connections to close: 0 unless a close took over 30 s.
        "files_left_open": still_open,
    });
    if let Some(error) = first.first_error.or(second.first_error) {
        line["error"] = json!(error);
    }
    Ok(line)
}

/// One round of sessions: the open streams, and how opening went.
struct Round {
    streams: Vec<EventStream>,
    errors: usize,
    first_error: Option<String>,
    open_time: Duration,
}

/// Opens `options.sessions` sessions, `options.parallel` at a time.
async fn open_all(options: &Arc<Options>) -> anyhow::Result<Round> {
    let pool: Arc<Mutex<Vec<Conn>>> = Arc::default();
    let auth = HeaderValue::from_str(&format!("Bearer {}", options.token))?;
    let headers = vec![
        (header::AUTHORIZATION, auth),
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
    ];
    let started = Instant::now();
    let opening = stream::iter(0..options.sessions)
        .map(|index| {
            let options = options.clone();
            let pool = pool.clone();
            let headers = headers.clone();
            async move {
                let source = IpAddr::V4(Ipv4Addr::new(
                    127,
                    0,
                    0,
                    1 + (index % usize::from(options.sources.max(1))) as u8,
                ));
                let (mut stream, post_path): (EventStream, String) = Client::open_sse_stream(
                    &options.endpoint,
                    &options.sse_path,
                    &options.token,
                    Some(source),
                    options.timeout,
                )
                .await?;
                let reused = {
                    let mut pool = pool.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    pool.pop()
                };
                let mut conn = match reused {
                    Some(conn) if !conn.is_closed() => conn,
                    _ => Conn::open(&options.endpoint, None).await?,
                };
                sse_handshake(
                    &mut conn,
                    &mut stream,
                    &headers,
                    &post_path,
                    options.timeout,
                )
                .await?;
                pool.lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(conn);
                anyhow::Ok(stream)
            }
        })
        .buffer_unordered(options.parallel)
        .collect::<Vec<_>>();
    let results = tokio::time::timeout(options.deadline, opening)
        .await
        .with_context(|| {
            format!(
                "opening {} sessions took longer than {} s",
                options.sessions,
                options.deadline.as_secs()
            )
        })?;
    let open_time = started.elapsed();
    let mut streams = Vec::with_capacity(results.len());
    let mut errors = 0usize;
    let mut first_error = None;
    for result in results {
        match result {
            Ok(stream) => streams.push(stream),
            Err(error) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }
    drop(pool);
    Ok(Round {
        streams,
        errors,
        first_error,
        open_time,
    })
}

/// How many files the process holds open: its sockets among them.
fn open_files(pid: u32) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("reading /proc/{pid}/fd"))?
        .count())
}

/// Waits until the server has closed the connections of the sessions the driver dropped: a
/// server notices a closed stream only when it next reads or writes on it, so its memory is
/// read once its open files are back to what they were before the round (a few more are
/// allowed for the connections of other work), for at most 30 s.
async fn connections_closed(pid: u32, files_before: usize) -> anyhow::Result<usize> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let open = open_files(pid)?;
        if open <= files_before + 16 || Instant::now() >= deadline {
            return Ok(open.saturating_sub(files_before));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The server's resident memory once it stops falling after the sessions closed: read every
/// 200 ms until it has not fallen for 2 s (an allocator gives freed memory back over a second
/// or so, not at once), for at most 10 s.
async fn settled_rss(pid: u32) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut lowest, _) = memory_kib(pid)?;
    let mut lowest_at = Instant::now();
    while Instant::now() < deadline && lowest_at.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (now, _) = memory_kib(pid)?;
        if now < lowest {
            lowest = now;
            lowest_at = Instant::now();
        }
    }
    Ok(lowest)
}
