//! Keeps secrets out of reports and snapshots.
//!
//! Two layers: every secret the suite sees (tokens, codes, client secrets, session ids) is
//! registered and replaced wherever it appears, and values of well-known sensitive fields are
//! blanked by shape (`code=...`, `"access_token":"..."`, `Bearer ...`) even if they were never
//! registered, e.g. a token a server minted in an error path.

use std::sync::Mutex;

/// Names whose values are secret in query strings, form bodies, JSON objects and headers.
pub const SENSITIVE_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "code",
    "code_verifier",
    "client_secret",
    "registration_access_token",
    "state",
    "session_id",
    "sessionId",
    "mcp-session-id",
    "csrf",
    "csrf_token",
    "_csrf",
];

/// The run-wide set of known secrets.
#[derive(Debug, Default)]
pub struct Redactor {
    secrets: Mutex<Vec<(String, &'static str)>>,
}

impl Redactor {
    /// Remembers a secret; short values are ignored because replacing them would garble text.
    pub fn add(&self, secret: &str, label: &'static str) {
        if secret.len() < 6 {
            return;
        }
        let mut secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        if !secrets.iter().any(|(s, _)| s == secret) {
            secrets.push((secret.to_owned(), label));
            // Longest first, so a secret that contains another is replaced whole.
            secrets.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        {
            let secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
            for (secret, label) in secrets.iter() {
                if out.contains(secret.as_str()) {
                    out = out.replace(secret.as_str(), &format!("[{label}]"));
                }
            }
        }
        redact_by_shape(&out)
    }
}

/// Blanks the values of sensitive keys in `k=v`, `"k":"v"` and `k: v` forms, and bearer tokens.
///
/// Where the shape of a value is the finding, the shape stays: a `state` the suite made itself
/// shows its fixed characters with the random part replaced (`state=[redacted: "st a b/[random]
/// ~.-_"]` shows that `+` came back as a space), and a `Bearer` challenge keeps its parameter
/// names and values and prose keeps its words ("no Bearer challenge on the 401").
pub fn redact_by_shape(text: &str) -> String {
    let mut out = text.to_owned();
    for key in SENSITIVE_KEYS {
        out = blank_after(
            &out,
            &format!("{key}="),
            &['&', '"', ' ', '\n', '\r', ',', '#', '\'', '<'],
            Kind::Value {
                state: *key == "state",
            },
        );
        out = blank_json_string(&out, key);
    }
    out = blank_after(&out, "Bearer ", &['"', ' ', '\n', '\r', ','], Kind::Bearer);
    out = blank_after(&out, "bearer ", &['"', ' ', '\n', '\r', ','], Kind::Bearer);
    out
}

/// What follows a marker.
#[derive(Clone, Copy)]
enum Kind {
    /// The value of a key; for `state`, one of the suite's own states keeps its shape.
    Value { state: bool },
    /// What follows the word `Bearer`: a token, a challenge parameter, or a word of prose.
    Bearer,
}

fn blank_after(text: &str, marker: &str, stops: &[char], kind: Kind) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = find_key(rest, marker) {
        let (before, after) = rest.split_at(pos + marker.len());
        out.push_str(before);
        let end = after.find(|c| stops.contains(&c)).unwrap_or(after.len());
        let value = &after[..end];
        // `Bearer resource_metadata="..."` is a challenge parameter, not a token.
        let is_param = value.ends_with('=') && after[end..].starts_with('"');
        // A token is long or carries digits or punctuation; a short plain word is prose.
        let is_word = matches!(kind, Kind::Bearer)
            && value.len() <= 12
            && value.chars().all(|c| c.is_ascii_alphabetic());
        if value.is_empty() || value.starts_with('[') || is_param || is_word {
            out.push_str(value);
        } else if let Some(shape) = matches!(kind, Kind::Value { state: true })
            .then(|| state_shape(&decode_query_value(value)))
            .flatten()
        {
            out.push_str(&format!("[redacted: {shape:?}]"));
        } else {
            out.push_str("[redacted]");
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// A query value as a server reads it: `+` is a space, `%XX` a byte.
fn decode_query_value(value: &str) -> String {
    url::form_urlencoded::parse(format!("v={value}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The shape of a `state` the suite made (`st`, fixed characters, one run of at least 16 hex
/// digits as its only random part), with the random run replaced by `[random]`. Any other value
/// (a server's own state, which is a secret) has no shape to show.
pub fn state_shape(state: &str) -> Option<String> {
    let rest = state.strip_prefix("st")?;
    let bytes = rest.as_bytes();
    let mut start = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_hexdigit() {
            let run_end = bytes[i..]
                .iter()
                .position(|b| !b.is_ascii_hexdigit())
                .map_or(bytes.len(), |n| i + n);
            if run_end - i >= 16 {
                if start.is_some() {
                    return None;
                }
                start = Some((i, run_end));
            }
            i = run_end;
        } else {
            i += 1;
        }
    }
    let (from, to) = start?;
    let fixed = format!("{}{}", &rest[..from], &rest[to..]);
    // Only the suite's fixed characters may stand around the random part.
    if !fixed
        .chars()
        .all(|c| c.is_ascii_lowercase() || " +/~.-_%".contains(c))
        || fixed.len() > 16
    {
        return None;
    }
    Some(format!("st{}[random]{}", &rest[..from], &rest[to..]))
}

/// How a `state` came back, for evidence: the characters that changed are visible, the random
/// part never is. `sent "st a+b/[random]~.-_", came back "st a b/[random]~.-_"`.
pub fn state_diff(sent: &str, got: Option<&str>) -> String {
    let show = |s: &str| state_shape(s).unwrap_or_else(|| "[redacted]".into());
    match got {
        None => format!("sent {:?}, none came back", show(sent)),
        Some(got) if got == sent => format!("sent {:?}, came back unchanged", show(sent)),
        Some(got) => {
            let (a, b) = (show(sent), show(got));
            if a == b {
                // The fixed characters survived; the random part differs.
                format!("sent {a:?}, came back a different state of the same shape")
            } else {
                format!("sent {a:?}, came back {b:?}")
            }
        }
    }
}

/// Finds `marker` where it starts a key (not inside a longer name such as `grant_code=`).
fn find_key(text: &str, marker: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(rel) = text[from..].find(marker) {
        let pos = from + rel;
        let prev = text[..pos].chars().next_back();
        if prev.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')) {
            return Some(pos);
        }
        from = pos + marker.len();
    }
    None
}

fn blank_json_string(text: &str, key: &str) -> String {
    let marker = format!("\"{key}\"");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(&marker) {
        let (before, after) = rest.split_at(pos + marker.len());
        out.push_str(before);
        let trimmed = after.trim_start_matches([' ', ':']);
        if after.len() - trimmed.len() > 0
            && after.trim_start().starts_with(':')
            && trimmed.starts_with('"')
        {
            let skip = after.len() - trimmed.len();
            out.push_str(&after[..skip]);
            // Find the closing quote, honouring backslash escapes.
            let body = &trimmed[1..];
            let mut end = None;
            let mut escaped = false;
            for (i, c) in body.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => {
                        end = Some(i);
                        break;
                    }
                    _ => escaped = false,
                }
            }
            match end {
                Some(end) => {
                    let value = &body[..end];
                    if value.starts_with('[') || value.is_empty() {
                        out.push('"');
                        out.push_str(value);
                        out.push('"');
                    } else {
                        out.push_str("\"[redacted]\"");
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    out.push_str(trimmed);
                    rest = "";
                }
            }
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_are_replaced_by_their_label() {
        let r = Redactor::default();
        r.add("mcp_at_0123456789", "access_token");
        assert_eq!(
            r.redact("token mcp_at_0123456789 x"),
            "token [access_token] x"
        );
    }

    #[test]
    fn sensitive_values_are_blanked_by_shape() {
        let text = r#"GET /cb?code=abc123&state=xyz&iss=http://a {"access_token": "tok", "token_type":"Bearer"} Authorization: Bearer gho_secret"#;
        let out = redact_by_shape(text);
        assert!(!out.contains("abc123"), "{out}");
        assert!(!out.contains("xyz"), "{out}");
        assert!(!out.contains("\"tok\""), "{out}");
        assert!(!out.contains("gho_secret"), "{out}");
        assert!(out.contains("iss=http://a"), "{out}");
        assert!(out.contains("\"token_type\":\"Bearer\""), "{out}");
        let challenge = redact_by_shape(r#"Bearer resource_metadata="http://a/b", scope="user""#);
        assert!(
            challenge.contains("resource_metadata=\"http://a/b\""),
            "{challenge}"
        );
    }

    #[test]
    fn a_changed_suite_state_shows_which_characters_changed() {
        let out = redact_by_shape("GET /cb?code=x1&state=st+a%2Bb%2F0123456789abcdef~.-_&iss=a");
        assert!(
            out.contains(r#"state=[redacted: "st a+b/[random]~.-_"]"#),
            "{out}"
        );
        let mangled = redact_by_shape("GET /cb?state=st+a+b%2F0123456789abcdef~.-_");
        assert!(
            mangled.contains(r#"state=[redacted: "st a b/[random]~.-_"]"#),
            "{mangled}"
        );
        assert!(!mangled.contains("0123456789abcdef"), "{mangled}");
        assert_eq!(
            state_diff(
                "st a+b/0123456789abcdef~.-_",
                Some("st a b/0123456789abcdef~.-_")
            ),
            r#"sent "st a+b/[random]~.-_", came back "st a b/[random]~.-_""#
        );
    }

    #[test]
    fn a_server_state_keeps_no_shape() {
        let out =
            redact_by_shape("GET https://github.test/authorize?state=Zm9vYmFy0123456789abcdefXYZ");
        assert!(out.contains("state=[redacted]"), "{out}");
        assert_eq!(state_shape("stQWERTY"), None);
    }

    #[test]
    fn bearer_challenges_and_prose_keep_their_words() {
        assert_eq!(
            redact_by_shape("no Bearer challenge on the 401"),
            "no Bearer challenge on the 401"
        );
        let challenge = redact_by_shape(
            r#"www-authenticate: Bearer error="invalid_token", resource_metadata="http://a/b""#,
        );
        assert!(
            challenge.contains(r#"Bearer error="invalid_token", resource_metadata="http://a/b""#),
            "{challenge}"
        );
        assert_eq!(
            redact_by_shape("Authorization: Bearer mcp_at_Zx81kQ"),
            "Authorization: Bearer [redacted]"
        );
    }

    #[test]
    fn longer_keys_that_end_in_a_sensitive_name_are_left_alone() {
        assert_eq!(redact_by_shape("grant_code=1"), "grant_code=1");
    }
}
