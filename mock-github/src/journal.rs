//! The request journal: evidence of everything a server under test sent to "GitHub".

use serde::{Deserialize, Serialize};

/// One request the mock received, recorded before it was answered.
///
/// Header names are lower-case (HTTP/1 and HTTP/2 treat them case-insensitively and the mock sees
/// them normalised). Header values and the body are decoded as UTF-8 lossily, so a request with
/// binary content is still recorded rather than dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// The HTTP method, e.g. `GET`.
    pub method: String,
    /// The path, without the query, e.g. `/api/user`.
    pub path: String,
    /// The raw query string without the leading `?`, if the URL had one.
    pub query: Option<String>,
    /// Every header, in the order the mock saw them, as `(lower-case name, value)`.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl RecordedRequest {
    /// The first value of a header, looked up case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether `needle` occurs anywhere in the request: path, query, any header value, or body.
    ///
    /// This is the check behind "the MCP server never sent its own MCP tokens to GitHub": search
    /// every journal entry for each token the MCP server issued. The query and body are also
    /// searched in percent-decoded form, because a token sent as a form field may be encoded.
    pub fn mentions(&self, needle: &str) -> bool {
        if needle.is_empty() {
            return false;
        }
        let decoded = |text: &str| -> String {
            url::form_urlencoded::parse(text.as_bytes())
                .map(|(key, value)| format!("{key}={value}"))
                .collect::<Vec<_>>()
                .join("&")
        };
        self.path.contains(needle)
            || self
                .query
                .as_deref()
                .is_some_and(|query| query.contains(needle) || decoded(query).contains(needle))
            || self.headers.iter().any(|(_, value)| value.contains(needle))
            || self.body.contains(needle)
            || decoded(&self.body).contains(needle)
    }

    /// Builds the record from wiremock's view of the request.
    pub(crate) fn from_wiremock(request: &wiremock::Request) -> RecordedRequest {
        RecordedRequest {
            method: request.method.as_str().to_owned(),
            path: request.url.path().to_owned(),
            query: request.url.query().map(str::to_owned),
            headers: request
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: String::from_utf8_lossy(&request.body).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RecordedRequest {
        RecordedRequest {
            method: "POST".into(),
            path: "/login/oauth/access_token".into(),
            query: Some("a=b%2Fc".into()),
            headers: vec![("user-agent".into(), "test".into())],
            body: "code=abc%2Bdef&x=1".into(),
        }
    }

    #[test]
    fn mentions_finds_raw_and_percent_encoded_text() {
        let request = sample();
        assert!(request.mentions("abc+def"));
        assert!(request.mentions("b/c"));
        assert!(request.mentions("test"));
        assert!(!request.mentions("secret"));
        assert!(!request.mentions(""));
    }

    #[test]
    fn header_lookup_ignores_case() {
        assert_eq!(sample().header("User-Agent"), Some("test"));
        assert_eq!(sample().header("accept"), None);
    }
}
