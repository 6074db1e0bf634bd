//! An incremental parser for `text/event-stream`, following the WHATWG HTML "event stream
//! interpretation" rules: lines end in CRLF, LF or a lone CR; lines starting with `:` are
//! comments; `data:` lines accumulate with `\n` between them; an empty line dispatches.
//!
//! The parser is fed arbitrary chunks, so a CRLF may be split across two reads; it keeps a
//! trailing CR until it sees what follows.

use serde::Serialize;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SseEvent {
    /// The `event:` field, or `None` when absent (which means `message`).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last event ID in force when this event was dispatched.
    pub id: Option<String>,
    /// The `retry:` value, if this event carried one.
    pub retry: Option<u64>,
}

impl SseEvent {
    /// The event type as a browser's `EventSource` reports it.
    pub fn kind(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }
}

/// Incremental parser state.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    pending_cr: bool,
    started: bool,
    data: Option<String>,
    event: Option<String>,
    last_id: Option<String>,
    retry: Option<u64>,
    data_lines: usize,
    /// The last `retry:` value seen anywhere in the stream (SHTTP-11 looks for it).
    pub last_retry: Option<u64>,
    /// How many comment lines were seen (keep-alives such as `: ping`).
    pub comments: usize,
    /// Whether some line was longer than [`MAX_LINE`] and was cut.
    pub overlong: bool,
}

/// The longest line (and so the largest `data:` field) the parser keeps: 1 MiB.
pub const MAX_LINE: usize = 1 << 20;
/// The largest event data the parser accumulates over several `data:` lines: 4 MiB.
pub const MAX_DATA: usize = 4 << 20;

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds bytes and returns every event they complete.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for &byte in chunk {
            if self.pending_cr {
                self.pending_cr = false;
                if byte == b'\n' {
                    // The second half of a CRLF that was split or not: the line already ended.
                    continue;
                }
            }
            match byte {
                b'\r' => {
                    self.pending_cr = true;
                    self.end_line(&mut out);
                }
                b'\n' => self.end_line(&mut out),
                // A line longer than the limit keeps only its start: a stream without line
                // breaks cannot grow the buffer without bound.
                _ if self.line.len() >= MAX_LINE => self.overlong = true,
                _ => self.line.push(byte),
            }
        }
        out
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let mut line = std::mem::take(&mut self.line);
        if !self.started {
            self.started = true;
            // A UTF-8 byte order mark may open the stream and is not part of the first line.
            if line.starts_with(&[0xEF, 0xBB, 0xBF]) {
                line.drain(..3);
            }
        }
        let line = String::from_utf8_lossy(&line).into_owned();
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            self.comments += 1;
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                let data = self.data.get_or_insert_with(String::new);
                if data.len() + value.len() + 1 > MAX_DATA {
                    self.overlong = true;
                    return;
                }
                if self.data_lines > 0 {
                    data.push('\n');
                }
                data.push_str(value);
                self.data_lines += 1;
            }
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
                self.last_retry = self.retry;
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let data = self.data.take();
        let event = self.event.take();
        let retry = self.retry.take();
        self.data_lines = 0;
        // A block without any `data:` line dispatches nothing; its `id:` and `retry:` still count.
        if let Some(data) = data {
            out.push(SseEvent {
                event,
                data,
                id: self.last_id.clone(),
                retry,
            });
        }
    }
}
