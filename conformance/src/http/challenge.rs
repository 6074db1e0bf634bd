//! A parser for `WWW-Authenticate` (RFC 9110 §11.6.1): one or more challenges, each a scheme
//! followed by either a token68 or comma-separated `name=value` parameters whose values are
//! tokens or quoted strings. Several challenges may share one header line, separated by commas,
//! which is why the parser has to look ahead to tell a new scheme from the next parameter.

use std::collections::BTreeMap;

use serde::Serialize;

/// One challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Challenge {
    /// The auth scheme as sent (compare case-insensitively).
    pub scheme: String,
    /// Parameters with lower-cased names; values unquoted.
    pub params: BTreeMap<String, String>,
    pub token68: Option<String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn is_bearer(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("bearer")
    }
}

/// Parses every challenge from all `WWW-Authenticate` header values.
pub fn parse_challenges<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Challenge>, String> {
    let mut out = Vec::new();
    for value in values {
        out.extend(parse_one(value)?);
    }
    Ok(out)
}

/// The first `Bearer` challenge, if any.
pub fn bearer<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
    parse_challenges(values)
        .ok()?
        .into_iter()
        .find(Challenge::is_bearer)
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && (self.s[self.i] == b' ' || self.s[self.i] == b'\t') {
            self.i += 1;
        }
    }

    fn skip_ws_and_commas(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b',') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn token(&mut self) -> String {
        let start = self.i;
        while self.i < self.s.len() && is_tchar(self.s[self.i] as char) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn quoted(&mut self) -> Result<String, String> {
        // The caller saw the opening quote.
        self.i += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => return Ok(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.i += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        Err("unterminated quoted-string".into())
    }
}

fn parse_one(value: &str) -> Result<Vec<Challenge>, String> {
    let mut c = Cursor {
        s: value.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        c.skip_ws_and_commas();
        if c.peek().is_none() {
            break;
        }
        let scheme = c.token();
        if scheme.is_empty() {
            return Err(format!(
                "expected an auth scheme at byte {} of {value:?}",
                c.i
            ));
        }
        let mut challenge = Challenge {
            scheme,
            params: BTreeMap::new(),
            token68: None,
        };
        c.skip_ws();
        // Parameters until the next scheme (a token followed by space or end, not by `=`).
        loop {
            c.skip_ws_and_commas();
            let save = c.i;
            let name = c.token();
            if name.is_empty() {
                if c.peek().is_some() {
                    return Err(format!("unexpected character at byte {} of {value:?}", c.i));
                }
                break;
            }
            c.skip_ws();
            if c.peek() == Some(b'=') {
                // token68 ends in `=` padding: `abc==` followed by end or comma.
                let mut j = c.i;
                while j < c.s.len() && c.s[j] == b'=' {
                    j += 1;
                }
                let after = c.s[j..].iter().find(|b| **b != b' ' && **b != b'\t');
                let padding = j - c.i;
                if challenge.params.is_empty()
                    && challenge.token68.is_none()
                    && (after.is_none() || after == Some(&b','))
                {
                    challenge.token68 = Some(format!("{name}{}", "=".repeat(padding)));
                    c.i = j;
                    continue;
                }
                c.i += 1;
                c.skip_ws();
                let v = if c.peek() == Some(b'"') {
                    c.quoted()?
                } else {
                    c.token()
                };
                challenge.params.insert(name.to_ascii_lowercase(), v);
            } else {
                // A bare token: the next challenge's scheme.
                c.i = save;
                break;
            }
        }
        out.push(challenge);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_challenge_with_quoted_parameters_is_parsed() {
        let v = r#"Bearer resource_metadata="http://127.0.0.1:1/.well-known/oauth-protected-resource/mcp", scope="user", error="invalid_token""#;
        let c = bearer([v]).unwrap();
        assert_eq!(
            c.param("resource_metadata"),
            Some("http://127.0.0.1:1/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(c.param("scope"), Some("user"));
        assert_eq!(c.param("ERROR"), Some("invalid_token"));
    }

    #[test]
    fn several_challenges_in_one_header_are_split() {
        let v = r#"Basic realm="a, b", Bearer realm="x",error=invalid_token, Newauth abc=="#;
        let all = parse_challenges([v]).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].param("realm"), Some("a, b"));
        assert_eq!(all[1].param("error"), Some("invalid_token"));
        assert_eq!(all[2].token68.as_deref(), Some("abc=="));
    }

    #[test]
    fn escaped_quotes_and_lowercase_schemes_are_understood() {
        let c = bearer([r#"bearer error_description="say \"hi\"""#]).unwrap();
        assert_eq!(c.param("error_description"), Some(r#"say "hi""#));
    }

    #[test]
    fn an_unterminated_quote_is_an_error() {
        assert!(parse_challenges([r#"Bearer realm="oops"#]).is_err());
    }
}
