//! What one check did, collected while it runs: its last exchanges in full (shown for a failure
//! or error with `--verbose`) and notes about how the suite worked around a problem (a retried
//! request, a fallback login, a body cut at the size limit), which end up in the check's
//! evidence so that a reader knows the verdict was reached another way.
//!
//! The collector lives in a tokio task-local set around each check body, so the HTTP client and
//! the login helpers can add to it without every check passing it along. Outside a check (in
//! discovery, in tests) nothing is collected.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::{Arc, Mutex};

use super::Exchange;
use crate::redact::Redactor;

/// How many exchanges a trace keeps: the last ones are where a check stopped.
const KEPT_EXCHANGES: usize = 8;
/// How much of each body the full rendering shows.
const SHOWN_BODY: usize = 4096;

tokio::task_local! {
    static TRACE: Arc<Trace>;
}

/// The collector of one check.
#[derive(Debug, Default)]
pub struct Trace {
    /// The ID of the check that runs (login helpers do not fall back to another way of logging
    /// in inside the check that judges the way that failed).
    check: Option<&'static str>,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    exchanges: VecDeque<Exchange>,
    notes: Vec<String>,
}

impl Trace {
    /// A collector for the check with this ID.
    pub fn for_check(id: &'static str) -> Trace {
        Trace {
            check: Some(id),
            ..Trace::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The notes, each once, in the order they were made.
    pub fn notes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for note in &self.lock().notes {
            if !out.contains(note) {
                out.push(note.clone());
            }
        }
        out
    }

    /// The kept exchanges rendered in full and redacted.
    pub fn exchanges(&self, redactor: &Redactor) -> Vec<String> {
        self.lock()
            .exchanges
            .iter()
            .map(|ex| ex.full(redactor))
            .collect()
    }
}

/// Runs `f` with `trace` collecting for it.
pub async fn scope<F: Future>(trace: Arc<Trace>, f: F) -> F::Output {
    TRACE.scope(trace, f).await
}

/// The ID of the running check, if any.
pub fn current_check() -> Option<&'static str> {
    TRACE.try_with(|t| t.check).ok().flatten()
}

/// Adds a note to the running check's evidence (nothing outside a check).
pub fn note(message: impl Into<String>) {
    let message = message.into();
    let _ = TRACE.try_with(|t| t.lock().notes.push(message));
}

/// Keeps an exchange for the running check's `--verbose` evidence.
pub fn exchange(ex: &Exchange) {
    let _ = TRACE.try_with(|t| {
        let mut inner = t.lock();
        if inner.exchanges.len() == KEPT_EXCHANGES {
            inner.exchanges.pop_front();
        }
        let mut kept = ex.clone();
        kept.body.truncate(SHOWN_BODY + 1);
        inner.exchanges.push_back(kept);
    });
}

impl Exchange {
    /// The whole exchange: request line, request headers and body, status, every response
    /// header, and the body (cut at 4 KiB), with secrets and cookie values removed.
    pub fn full(&self, redactor: &Redactor) -> String {
        let mut out = format!("> {}", self.request.line());
        for (name, value) in &self.request.headers {
            let value = if name.eq_ignore_ascii_case("cookie") {
                blank_cookie_values(value)
            } else {
                value.clone()
            };
            let _ = write!(out, "\n> {name}: {value}");
        }
        if let Some(body) = &self.request.body {
            let _ = write!(out, "\n>\n> {}", excerpt(body).replace('\n', "\n> "));
        }
        let _ = write!(out, "\n< {}", self.status);
        for (name, value) in &self.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            let value = if name.as_str() == "set-cookie" {
                blank_cookie_values(&value)
            } else {
                value.into_owned()
            };
            let _ = write!(out, "\n< {name}: {value}");
        }
        if !self.body.is_empty() {
            let _ = write!(out, "\n<\n< {}", excerpt(&self.body).replace('\n', "\n< "));
        }
        redactor.redact(&out)
    }
}

fn excerpt(body: &[u8]) -> String {
    let cut = body.len() > SHOWN_BODY;
    let mut text = String::from_utf8_lossy(&body[..body.len().min(SHOWN_BODY)]).into_owned();
    if cut {
        text.push_str(" [...]");
    }
    text
}

/// `a=1; b=2` becomes `a=[redacted]; b=[redacted]`; attributes of a `Set-Cookie` (`Path=/`)
/// stay, since they are what a check judges.
fn blank_cookie_values(value: &str) -> String {
    value
        .split(';')
        .enumerate()
        .map(|(i, part)| {
            let attribute = i > 0
                && (!part.contains('=')
                    || part.trim().split('=').next().is_some_and(|name| {
                        matches!(
                            name.to_ascii_lowercase().as_str(),
                            "path" | "domain" | "max-age" | "expires" | "samesite"
                        )
                    }));
            match part.split_once('=') {
                Some((name, _)) if !attribute => format!("{name}=[redacted]"),
                _ => part.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_values_are_blanked_and_attributes_kept() {
        assert_eq!(
            blank_cookie_values("__Host-c=abc; Path=/; Secure; HttpOnly; SameSite=Lax"),
            "__Host-c=[redacted]; Path=/; Secure; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            blank_cookie_values("a=1; b=2"),
            "a=[redacted]; b=[redacted]"
        );
    }
}
