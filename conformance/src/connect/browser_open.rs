//! Opening the authorization URL in the user's browser.
//!
//! `BROWSER` wins when set, as on most Unix tools: a list of commands separated by `:` (`;` on
//! Windows), each run with the URL as its last argument, or in place of `%s` when the command
//! has one; the first that starts is used. Without it the platform's opener runs: `xdg-open`,
//! `open`, or the URL handler on Windows.

use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

/// The commands to try for `url`, in order: each is a program and its arguments.
pub fn commands(browser_var: Option<&str>, url: &str) -> Vec<Vec<String>> {
    let separator = if cfg!(windows) { ';' } else { ':' };
    if let Some(var) = browser_var.filter(|v| !v.trim().is_empty()) {
        return var
            .split(separator)
            .filter_map(|entry| {
                let mut words: Vec<String> = entry.split_whitespace().map(str::to_owned).collect();
                if words.is_empty() {
                    return None;
                }
                if words.iter().any(|w| w.contains("%s")) {
                    for word in &mut words {
                        *word = word.replace("%s", url);
                    }
                } else {
                    words.push(url.to_owned());
                }
                Some(words)
            })
            .collect();
    }
    let opener: &[&str] = if cfg!(target_os = "macos") {
        &["open"]
    } else if cfg!(windows) {
        // `cmd /C start` would read the `&` between query parameters as a command separator.
        &["rundll32", "url.dll,FileProtocolHandler"]
    } else {
        &["xdg-open"]
    };
    let mut words: Vec<String> = opener.iter().map(|w| (*w).to_owned()).collect();
    words.push(url.to_owned());
    vec![words]
}

/// Starts the browser on `url` without waiting for it; returns the program that was started.
pub fn open(url: &str) -> anyhow::Result<String> {
    let var = std::env::var("BROWSER").ok();
    let mut errors = Vec::new();
    for words in commands(var.as_deref(), url) {
        let spawned = Command::new(&words[0])
            .args(&words[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(mut child) => {
                // A browser may run for as long as the user keeps it open; it is reaped in the
                // background so it never stays a zombie, and never waited for.
                std::thread::spawn(move || child.wait());
                return Ok(words[0].clone());
            }
            Err(e) => errors.push(format!("{}: {e}", words[0])),
        }
    }
    if errors.is_empty() {
        bail!("no browser command to run");
    }
    Err(anyhow::anyhow!(errors.join("; "))).context("no browser could be started")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_entries_get_the_url_appended_or_substituted() {
        let sep = if cfg!(windows) { ';' } else { ':' };
        let var = format!("firefox --new-tab{sep}lynx %s -dump");
        let got = commands(Some(&var), "http://a/b?x=1&y=2");
        assert_eq!(got[0], ["firefox", "--new-tab", "http://a/b?x=1&y=2"]);
        assert_eq!(got[1], ["lynx", "http://a/b?x=1&y=2", "-dump"]);
    }

    #[test]
    fn without_browser_the_platform_opener_is_used() {
        let got = commands(Some("  "), "http://a/");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].last().map(String::as_str), Some("http://a/"));
    }
}
