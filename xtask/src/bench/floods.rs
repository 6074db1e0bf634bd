//! The anonymous floods of `cargo xtask bench --only floods`: what a stranger without
//! credentials can make the Rust server hold, measured as its resident memory.
//!
//! A fresh server with its default limits gets 20,000 dynamic registrations carrying the
//! largest metadata it accepts, then 20,000 authorization requests with the longest
//! `state` it keeps, every second one approved on its consent page so that both maps of
//! logins in progress (consent pages and upstream states) fill. README promises that
//! this stays within about 35 MiB of clients and 20 MiB of pending logins however many
//! requests arrive, plus about 15 MiB of buffers and allocator slack; the section
//! compares the growth of `VmRSS` with those figures.
//!
//! The load comes from plain threads, each holding one keep-alive HTTP/1.1 connection:
//! the requests are fixed text, and a thread per connection needs no dependency in the
//! xtask.

use std::{
    fmt::Write as _,
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::{Kind, Launcher, met, one_line};

/// Requests per flood, as the issue of record sizes them.
const FLOOD_REQUESTS: usize = 20_000;
/// Connections sending at once.
const FLOOD_CONNECTIONS: usize = 64;
/// Bound on any one request: a server that stops answering is a failed flood, not a hang.
const FLOOD_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on a whole flood.
const FLOOD_DEADLINE: Duration = Duration::from_secs(300);
/// The default caps of `MCP_GITHUB_MAX_CLIENTS` and `MCP_GITHUB_MAX_PENDING_AUTHORIZATIONS`
/// (server/src/config.rs); the bench leaves both at their defaults, which is what README's
/// bound is stated for. They only turn growth into a figure per entry.
const DEFAULT_MAX_CLIENTS: usize = 5_000;
const DEFAULT_MAX_PENDING: usize = 5_000;
/// README: "With the defaults that is at most about 35 MiB of clients ... and 20 MiB of
/// pending logins ..., however many requests arrive; a flood adds at most about 15 MiB of
/// buffers and allocator slack on top." A flood's bound is its entries' figure plus the
/// slack: resident memory counts both.
const DOCUMENTED_CLIENTS_MIB: f64 = 35.0;
const DOCUMENTED_PENDING_MIB: f64 = 20.0;
const DOCUMENTED_SLACK_MIB: f64 = 15.0;

/// The largest registration the server accepts (server/src/oauth/register.rs): 10
/// redirect URIs of 512 bytes, a name of 200 characters (four bytes each in UTF-8), and
/// the longest lists of grant and response types.
const MAX_REDIRECT_URIS: usize = 10;
const MAX_REDIRECT_URI_BYTES: usize = 512;
const MAX_CLIENT_NAME_CHARS: usize = 200;
const MAX_LIST_ITEMS: usize = 8;
/// The longest `state` kept (server/src/oauth/authorize.rs) and the longest PKCE
/// verifier's challenge form RFC 7636 allows.
const MAX_STATE_BYTES: usize = 1024;
const MAX_CODE_CHALLENGE_CHARS: usize = 128;

/// One flood: how it went and the server's memory around it.
pub(super) struct Flood {
    pub requests: usize,
    /// Answered as a well-behaved server answers these requests.
    pub accepted: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    pub seconds: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub peak_kib: u64,
    /// Entries the server keeps at most from this flood, with the default caps.
    pub retained: usize,
    pub documented_mib: f64,
}

impl Flood {
    fn growth_bytes(&self) -> f64 {
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 * 1024.0
    }

    fn growth_mib(&self) -> f64 {
        self.growth_bytes() / (1024.0 * 1024.0)
    }

    fn per_entry_bytes(&self) -> f64 {
        self.growth_bytes() / self.retained.max(1) as f64
    }

    fn within_bound(&self) -> bool {
        self.errors == 0 && self.growth_mib() <= self.documented_mib
    }
}

pub(super) struct Floods {
    pub fresh_kib: u64,
    pub registrations: Flood,
    pub authorizations: Flood,
}

impl Floods {
    /// Both floods, each with the word the tables name it by.
    fn each(&self) -> [(&'static str, &Flood); 2] {
        [
            ("registrations", &self.registrations),
            ("authorizations", &self.authorizations),
        ]
    }
}

pub(super) fn measure_floods(launcher: &Launcher) -> anyhow::Result<Floods> {
    let rust = launcher.start_ready(Kind::Rust, "floods-rust", None)?;
    let pid = rust.server.pid().context("the server has no process id")?;
    let address = format!("127.0.0.1:{}", rust.port);
    let fresh_kib = memory_kib(pid)?.0;

    let registrations = flood(
        &address,
        pid,
        FLOOD_REQUESTS,
        FLOOD_REQUESTS.min(DEFAULT_MAX_CLIENTS),
        DOCUMENTED_CLIENTS_MIB + DOCUMENTED_SLACK_MIB,
        |connection, index| {
            let response = connection.send(&registration_request(&address, index))?;
            expect_status(&response, 201, "registration")
        },
    )?;
    progress_note("registrations", &registrations);

    // One more client, the one every authorization request names. It is registered after
    // the registration flood, so the oldest-first eviction leaves it in place.
    let mut connection = Connection::open(&address)?;
    let response = connection.send(&registration_request(&address, FLOOD_REQUESTS))?;
    expect_status(&response, 201, "the authorizations' client registration")?;
    let client_id = json_string_field(&response.body, "client_id")
        .context("the registration answer has no client_id")?;
    drop(connection);

    // Half the requests end on the consent page (a pending authorization), half are
    // approved there (an upstream state): each map gets twice its cap.
    let authorizations = flood(
        &address,
        pid,
        FLOOD_REQUESTS,
        FLOOD_REQUESTS.min(2 * DEFAULT_MAX_PENDING),
        DOCUMENTED_PENDING_MIB + DOCUMENTED_SLACK_MIB,
        |connection, index| {
            let page = connection.send(&authorization_request(&address, &client_id, index))?;
            expect_status(&page, 200, "authorization request")?;
            if index % 2 == 1 {
                let approval = consent_approval(&address, &page)?;
                let answer = connection.send(&approval)?;
                expect_status(&answer, 302, "consent approval")?;
            }
            Ok(())
        },
    )?;
    progress_note("authorizations", &authorizations);
    drop(rust);
    Ok(Floods {
        fresh_kib,
        registrations,
        authorizations,
    })
}

fn progress_note(name: &str, flood: &Flood) {
    crate::progress::note(&format!(
        "xtask bench: {} {name}: {} accepted, {} errors, {:.1} s, resident {} -> {} KiB",
        flood.requests,
        flood.accepted,
        flood.errors,
        flood.seconds,
        flood.rss_before_kib,
        flood.rss_after_kib
    ));
}

/// Sends `requests` requests over [`FLOOD_CONNECTIONS`] connections; `send` makes request
/// number `index` and judges its answer.
fn flood(
    address: &str,
    pid: u32,
    requests: usize,
    retained: usize,
    documented_mib: f64,
    send: impl Fn(&mut Connection, usize) -> anyhow::Result<()> + Sync,
) -> anyhow::Result<Flood> {
    let rss_before_kib = memory_kib(pid)?.0;
    let next = AtomicUsize::new(0);
    let accepted = AtomicUsize::new(0);
    let errors = AtomicUsize::new(0);
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    let started = Instant::now();
    thread::scope(|scope| {
        for _ in 0..FLOOD_CONNECTIONS {
            scope.spawn(|| {
                let mut connection = None;
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= requests || started.elapsed() > FLOOD_DEADLINE {
                        break;
                    }
                    let outcome = match &mut connection {
                        Some(open) => send(open, index),
                        None => Connection::open(address).and_then(|mut open| {
                            let outcome = send(&mut open, index);
                            connection = Some(open);
                            outcome
                        }),
                    };
                    match outcome {
                        Ok(()) => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            // The connection may be half-way through an answer: start afresh.
                            connection = None;
                            let mut first = first_error.lock().unwrap_or_else(|p| p.into_inner());
                            first.get_or_insert_with(|| format!("{error:#}"));
                        }
                    }
                }
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let (rss_after_kib, peak_kib) = settled_memory_kib(pid)?;
    let accepted = accepted.into_inner();
    let mut errors = errors.into_inner();
    let mut first_error = first_error.into_inner().unwrap_or_else(|p| p.into_inner());
    if accepted + errors < requests {
        errors += requests - accepted - errors;
        first_error.get_or_insert_with(|| {
            format!("the flood was stopped after {} s", FLOOD_DEADLINE.as_secs())
        });
    }
    Ok(Flood {
        requests,
        accepted,
        errors,
        first_error,
        seconds,
        rss_before_kib,
        rss_after_kib,
        peak_kib,
        retained,
        documented_mib,
    })
}

/// `VmRSS` and `VmHWM` of a process once its allocator has given back what the flood
/// freed (the caps evict entries as new ones come): the server's jemalloc returns unused
/// pages after a second, so the reading is repeated until it stops falling, for at most
/// [`SETTLE_LIMIT`]. What the server keeps is the bound's subject; the peak is reported
/// beside it.
fn settled_memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let started = Instant::now();
    let mut last = memory_kib(pid)?;
    while started.elapsed() < SETTLE_LIMIT {
        thread::sleep(SETTLE_STEP);
        let now = memory_kib(pid)?;
        if now.0 >= last.0 && started.elapsed() > SETTLE_MIN {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// How long a flood's memory reading waits at least and at most for the allocator.
const SETTLE_MIN: Duration = Duration::from_millis(1_500);
const SETTLE_LIMIT: Duration = Duration::from_secs(5);
const SETTLE_STEP: Duration = Duration::from_millis(250);

/// `VmRSS` and `VmHWM` of a process, in KiB.
fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
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

// ---------------------------------------------------------------- the requests

/// `https://flood.example/<index>/aaaa…`, exactly [`MAX_REDIRECT_URI_BYTES`] long and
/// different for every client and position, so nothing could be shared between them.
fn redirect_uri(index: usize, position: usize) -> String {
    let mut uri = format!("https://flood.example/{index}/{position}/");
    let padding = MAX_REDIRECT_URI_BYTES.saturating_sub(uri.len());
    uri.extend(std::iter::repeat_n('a', padding));
    uri
}

fn registration_request(address: &str, index: usize) -> Vec<u8> {
    let redirect_uris: Vec<String> = (0..MAX_REDIRECT_URIS)
        .map(|position| format!("\"{}\"", redirect_uri(index, position)))
        .collect();
    // U+1D510 is four bytes in UTF-8: the longest name in bytes that 200 characters make.
    let name: String = std::iter::repeat_n('\u{1D510}', MAX_CLIENT_NAME_CHARS).collect();
    let grant_types = ["\"authorization_code\""; MAX_LIST_ITEMS].join(",");
    let response_types = ["\"code\""; MAX_LIST_ITEMS].join(",");
    let body = format!(
        "{{\"client_name\":\"{name}\",\"redirect_uris\":[{}],\
         \"grant_types\":[{grant_types}],\"response_types\":[{response_types}],\
         \"token_endpoint_auth_method\":\"none\"}}",
        redirect_uris.join(",")
    );
    format!(
        "POST /register HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn authorization_request(address: &str, client_id: &str, index: usize) -> Vec<u8> {
    // Unreserved characters only, so the values need no percent-encoding.
    let mut state = format!("{index}-");
    state.extend(std::iter::repeat_n('s', MAX_STATE_BYTES - state.len()));
    let challenge: String = std::iter::repeat_n('c', MAX_CODE_CHALLENGE_CHARS).collect();
    let redirect = percent_encode(&redirect_uri(FLOOD_REQUESTS, 0));
    format!(
        "GET /authorize?response_type=code&client_id={client_id}&redirect_uri={redirect}\
         &code_challenge={challenge}&code_challenge_method=S256&state={state} HTTP/1.1\r\n\
         Host: {address}\r\n\r\n"
    )
    .into_bytes()
}

/// The consent page's form posted back with `action=approve` and the page's cookie, as a
/// browser would.
fn consent_approval(address: &str, page: &Response) -> anyhow::Result<Vec<u8>> {
    let html = String::from_utf8_lossy(&page.body);
    let hidden = |name: &str| -> anyhow::Result<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html
            .find(&marker)
            .with_context(|| format!("the consent page has no {name} field"))?
            + marker.len();
        let end = html[start..]
            .find('"')
            .context("the consent page's field is not closed")?;
        Ok(html[start..start + end].to_owned())
    };
    let body = format!(
        "request_id={}&csrf_token={}&action=approve",
        percent_encode(&hidden("request_id")?),
        percent_encode(&hidden("csrf_token")?)
    );
    let cookie = page
        .set_cookie
        .as_deref()
        .and_then(|cookie| cookie.split(';').next())
        .context("the consent page set no cookie")?;
    Ok(format!(
        "POST /consent HTTP/1.1\r\nHost: {address}\r\nCookie: {cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes())
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn expect_status(response: &Response, status: u16, what: &str) -> anyhow::Result<()> {
    if response.status != status {
        bail!(
            "{what}: status {} where {status} was expected: {}",
            response.status,
            String::from_utf8_lossy(&response.body[..response.body.len().min(300)])
        );
    }
    Ok(())
}

/// The string value of a top-level field in a small JSON answer.
fn json_string_field(body: &[u8], field: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get(field)?.as_str().map(str::to_owned)
}

// ---------------------------------------------------------------- a minimal HTTP/1.1 client

struct Response {
    status: u16,
    set_cookie: Option<String>,
    body: Vec<u8>,
}

/// One keep-alive connection, every read and write bounded by [`FLOOD_REQUEST_TIMEOUT`].
struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    fn open(address: &str) -> anyhow::Result<Connection> {
        let stream =
            TcpStream::connect(address).with_context(|| format!("cannot connect to {address}"))?;
        stream.set_read_timeout(Some(FLOOD_REQUEST_TIMEOUT))?;
        stream.set_write_timeout(Some(FLOOD_REQUEST_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            reader: BufReader::new(stream),
        })
    }

    fn send(&mut self, request: &[u8]) -> anyhow::Result<Response> {
        self.reader.get_mut().write_all(request)?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("not an HTTP status line: {line:?}"))?;
        let mut content_length = None;
        let mut chunked = false;
        let mut set_cookie = None;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("the connection closed inside the headers");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                bail!("not a header line: {header:?}");
            };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => content_length = value.parse::<usize>().ok(),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "set-cookie" => set_cookie = Some(value.to_owned()),
                _ => {}
            }
        }
        let body = if chunked {
            self.read_chunked()?
        } else {
            let mut body = vec![0; content_length.unwrap_or(0)];
            self.reader.read_exact(&mut body)?;
            body
        };
        Ok(Response {
            status,
            set_cookie,
            body,
        })
    }

    fn read_chunked(&mut self) -> anyhow::Result<Vec<u8>> {
        let mut body = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .with_context(|| format!("not a chunk size: {line:?}"))?;
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk)?;
            if size == 0 {
                return Ok(body);
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
}

// ---------------------------------------------------------------- the table

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The rows of the Targets table.
pub(super) fn render_targets(floods: Option<&Result<Floods, String>>, out: &mut String) {
    let target = |what: &str, documented: f64| {
        format!(
            "{FLOOD_REQUESTS} anonymous {what} leave the Rust server within its documented bound (≤ {documented:.0} MiB more resident)"
        )
    };
    match floods {
        Some(Ok(floods)) => {
            for (what, flood) in floods.each() {
                let _ = writeln!(
                    out,
                    "| {} | +{:.1} MiB ({:.0} bytes per retained entry), {} errors | {} |",
                    target(what, flood.documented_mib),
                    flood.growth_mib(),
                    flood.per_entry_bytes(),
                    flood.errors,
                    met(flood.within_bound())
                );
            }
        }
        Some(Err(error)) => {
            let _ = writeln!(
                out,
                "| {} | failed: {} | **no** |",
                target(
                    "registrations or authorizations",
                    DOCUMENTED_CLIENTS_MIB + DOCUMENTED_SLACK_MIB
                ),
                one_line(error)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "| {} | not run (--only) | – |",
                target(
                    "registrations or authorizations",
                    DOCUMENTED_CLIENTS_MIB + DOCUMENTED_SLACK_MIB
                )
            );
        }
    }
}

/// The section of its own.
pub(super) fn render_section(floods: Option<&Result<Floods, String>>, out: &mut String) {
    let _ = writeln!(out, "## 5. Anonymous floods against the Rust server\n");
    let floods = match floods {
        None => {
            let _ = writeln!(out, "Not measured in this run (`--only`).\n");
            return;
        }
        Some(Err(error)) => {
            let _ = writeln!(out, "Failed: {}\n", one_line(error));
            return;
        }
        Some(Ok(floods)) => floods,
    };
    let _ = writeln!(
        out,
        "One fresh server with its default limits ({DEFAULT_MAX_CLIENTS} clients, \
         {DEFAULT_MAX_PENDING} consent pages and {DEFAULT_MAX_PENDING} upstream states), \
         {FLOOD_CONNECTIONS} keep-alive connections sending at once, no credentials. \
         First {FLOOD_REQUESTS} dynamic registrations with the largest metadata accepted \
         ({MAX_REDIRECT_URIS} redirect URIs of {MAX_REDIRECT_URI_BYTES} bytes, a name of \
         {MAX_CLIENT_NAME_CHARS} four-byte characters, {MAX_LIST_ITEMS} grant and response \
         types); then {FLOOD_REQUESTS} authorization requests for one client with a \
         {MAX_STATE_BYTES}-byte `state`, every second one approved on its consent page, so \
         that both maps of logins in progress pass their caps. Resident memory is the \
         server's `VmRSS` from `/proc/<pid>/status` before and after each flood (fresh: \
         {:.1} MiB), after once it stops falling (its allocator gives back freed pages \
         after a second; read every 250 ms from 1.5 s on, at most 5 s); per entry is the growth divided by the entries the caps let the \
         server keep, so it includes the buffers and the allocator's slack. The bound is \
         README's: about {DOCUMENTED_CLIENTS_MIB:.0} MiB of clients and \
         {DOCUMENTED_PENDING_MIB:.0} MiB of pending logins, each plus about \
         {DOCUMENTED_SLACK_MIB:.0} MiB of buffers and allocator slack. 1 MiB = 2²⁰ bytes.\n",
        mib(floods.fresh_kib)
    );
    let _ = writeln!(
        out,
        "| flood | requests | accepted | errors | time | requests/s | RSS before | RSS after | peak RSS | growth | entries kept | per entry | bound | met? |"
    );
    let _ = writeln!(
        out,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (what, flood) in floods.each() {
        let _ = writeln!(
            out,
            "| {what} | {} | {} | {} | {:.1} s | {:.0} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {} | {:.0} bytes | ≤ {:.0} MiB | {} |",
            flood.requests,
            flood.accepted,
            flood.errors,
            flood.seconds,
            flood.requests as f64 / flood.seconds.max(1e-9),
            mib(flood.rss_before_kib),
            mib(flood.rss_after_kib),
            mib(flood.peak_kib),
            flood.growth_mib(),
            flood.retained,
            flood.per_entry_bytes(),
            flood.documented_mib,
            met(flood.within_bound())
        );
    }
    for (what, flood) in floods.each() {
        if let Some(error) = &flood.first_error {
            let _ = writeln!(out, "\nFirst error of the {what}: {}", one_line(error));
        }
    }
    let _ = writeln!(out);
}

#[cfg(test)]
mod tests {
    use std::{
        io::{BufRead, BufReader, Write},
        net::TcpListener,
        thread,
    };

    use super::{
        Connection, MAX_REDIRECT_URI_BYTES, Response, consent_approval, percent_encode,
        redirect_uri, registration_request,
    };

    #[test]
    fn registrations_are_the_largest_the_server_accepts() {
        assert_eq!(redirect_uri(19_999, 9).len(), MAX_REDIRECT_URI_BYTES);
        let request = String::from_utf8(registration_request("127.0.0.1:1", 19_999)).unwrap();
        let (_, body) = request.split_once("\r\n\r\n").unwrap();
        // The server refuses bodies over 16 KiB.
        assert!(body.len() <= 16 * 1024, "{} bytes", body.len());
        let metadata: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(metadata["redirect_uris"].as_array().unwrap().len(), 10);
        assert_eq!(
            metadata["client_name"].as_str().unwrap().chars().count(),
            200
        );
    }

    #[test]
    fn the_consent_form_goes_back_with_its_cookie() {
        let page = Response {
            status: 200,
            set_cookie: Some("__Host-mcp-consent=abc; Path=/; Secure".into()),
            body: b"<input type=\"hidden\" name=\"request_id\" value=\"r+1\">\
                    <input type=\"hidden\" name=\"csrf_token\" value=\"c/2\">"
                .to_vec(),
        };
        let request = String::from_utf8(consent_approval("h:1", &page).unwrap()).unwrap();
        assert!(request.contains("\r\nCookie: __Host-mcp-consent=abc\r\n"));
        assert!(request.ends_with("request_id=r%2B1&csrf_token=c%2F2&action=approve"));
        assert_eq!(percent_encode("a b~"), "a%20b~");
    }

    #[test]
    fn answers_with_a_length_or_in_chunks_keep_the_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let answers: [&[u8]; 2] = [
                b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=b; Path=/\r\n\r\n\
                  3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            ];
            for answer in answers {
                // Each request is read whole before its answer, as a server would.
                let mut line = String::new();
                while line != "\r\n" {
                    line.clear();
                    reader.read_line(&mut line).unwrap();
                }
                reader.get_mut().write_all(answer).unwrap();
            }
        });
        let mut connection = Connection::open(&address).unwrap();
        let first = connection.send(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((first.status, first.body.as_slice()), (201, &b"ok"[..]));
        let second = connection.send(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(
            (second.status, second.body.as_slice()),
            (200, &b"abcde"[..])
        );
        assert_eq!(second.set_cookie.as_deref(), Some("a=b; Path=/"));
        server.join().unwrap();
    }
}
