//! The loopback redirect listener (RFC 8252 §7.3): it binds `127.0.0.1` on a port from the OS,
//! receives the browser's redirect to `/callback`, answers it with a small page, and hands the
//! authorization response back after checking `state` and `iss`.

use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use crate::oauth::flow::Callback;

/// The most a browser's request head may take; a redirect carries a code and a few parameters.
const MAX_HEAD: usize = 16 * 1024;
/// How long one connection may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the authorization response must match.
#[derive(Debug, Clone)]
pub struct Expected {
    pub state: String,
    /// The issuer from the authorization server metadata, to compare `iss` with (RFC 9207).
    pub issuer: Option<String>,
    /// The metadata's `authorization_response_iss_parameter_supported`: `iss` must then be sent.
    pub iss_required: bool,
}

pub struct CallbackListener {
    listener: TcpListener,
    pub redirect_uri: Url,
}

impl CallbackListener {
    /// Binds `127.0.0.1:port` (port 0: any free port).
    pub async fn bind(port: u16) -> anyhow::Result<CallbackListener> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port} for the redirect"))?;
        let port = listener.local_addr()?.port();
        let redirect_uri = Url::parse(&format!("http://127.0.0.1:{port}/callback"))?;
        Ok(CallbackListener {
            listener,
            redirect_uri,
        })
    }

    /// Waits up to `wait` for the redirect and returns the authorization code. Requests for other
    /// paths (a browser's `/favicon.ico`) get 404 and the wait goes on.
    pub async fn wait(&self, expected: &Expected, wait: Duration) -> anyhow::Result<String> {
        tokio::time::timeout(wait, self.accept_callback(expected))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "no redirect to {} within {} s: was the login finished in the browser?",
                    self.redirect_uri,
                    wait.as_secs()
                )
            })?
    }

    async fn accept_callback(&self, expected: &Expected) -> anyhow::Result<String> {
        loop {
            let (mut stream, _) = self.listener.accept().await?;
            let target = match tokio::time::timeout(READ_TIMEOUT, read_target(&mut stream)).await {
                Ok(Ok(target)) => target,
                _ => {
                    let _ = respond(&mut stream, 400, "Bad request", "Bad request.").await;
                    continue;
                }
            };
            let Ok(url) = self.redirect_uri.join(&target) else {
                let _ = respond(&mut stream, 400, "Bad request", "Bad request.").await;
                continue;
            };
            if url.path() != self.redirect_uri.path() {
                let _ = respond(&mut stream, 404, "Not found", "Not found.").await;
                continue;
            }
            let outcome = judge(&Callback::from_url(&url), expected);
            let (status, title, text) = match &outcome {
                Ok(_) => (
                    200,
                    "Logged in",
                    "You are logged in. You can close this tab and go back to the terminal."
                        .to_owned(),
                ),
                Err(e) => (400, "Login failed", format!("The login failed: {e}")),
            };
            let _ = respond(&mut stream, status, title, &text).await;
            return outcome;
        }
    }
}

/// Checks an authorization response: an error, a `state` that is not ours, or an `iss` that is
/// not the issuer's ends the login.
pub fn judge(callback: &Callback, expected: &Expected) -> anyhow::Result<String> {
    if let Some(error) = &callback.error {
        bail!(
            "the authorization server answered {error}{}",
            callback
                .error_description
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        );
    }
    // RFC 6749 §10.12: a redirect without our `state` may be a forged one (CSRF).
    if callback.state.as_deref() != Some(expected.state.as_str()) {
        bail!("the redirect does not carry the state this login sent; it was not answered");
    }
    // RFC 9207 §2.4: "clients MUST compare the value of the iss parameter to the issuer".
    match (&callback.iss, &expected.issuer) {
        (Some(iss), Some(issuer)) if iss != issuer => {
            bail!("the redirect names the issuer {iss:?}, but the metadata says {issuer:?}")
        }
        (None, _) if expected.iss_required => {
            bail!(
                "the authorization server advertises authorization_response_iss_parameter_supported \
                 but sent no iss"
            )
        }
        _ => {}
    }
    callback
        .code
        .clone()
        .context("the redirect carries neither a code nor an error")
}

/// Reads the request head and returns its request target (`/callback?code=...`).
async fn read_target(stream: &mut TcpStream) -> anyhow::Result<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            bail!("request head too large");
        }
    }
    let text = String::from_utf8_lossy(&head);
    let line = text.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) if target.starts_with('/') => Ok(target.to_owned()),
        _ => bail!("not a GET request: {line:?}"),
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    title: &str,
    text: &str,
) -> std::io::Result<()> {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body><h1>{}</h1><p>{}</p></body></html>",
        escape(title),
        escape(title),
        escape(text)
    );
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected() -> Expected {
        Expected {
            state: "s1".into(),
            issuer: Some("http://127.0.0.1:1".into()),
            iss_required: true,
        }
    }

    fn callback(query: &str) -> Callback {
        Callback::from_url(&Url::parse(&format!("http://127.0.0.1:2/callback?{query}")).unwrap())
    }

    #[test]
    fn a_matching_state_and_issuer_give_the_code() {
        let got = judge(
            &callback("code=c1&state=s1&iss=http%3A%2F%2F127.0.0.1%3A1"),
            &expected(),
        );
        assert_eq!(got.unwrap(), "c1");
    }

    #[test]
    fn a_foreign_state_a_wrong_issuer_or_a_missing_required_iss_is_refused() {
        let wrong_state = judge(
            &callback("code=c1&state=s2&iss=http%3A%2F%2F127.0.0.1%3A1"),
            &expected(),
        );
        assert!(wrong_state.unwrap_err().to_string().contains("state"));
        let wrong_iss = judge(
            &callback("code=c1&state=s1&iss=http%3A%2F%2Fevil"),
            &expected(),
        );
        assert!(wrong_iss.unwrap_err().to_string().contains("issuer"));
        let no_iss = judge(&callback("code=c1&state=s1"), &expected());
        assert!(no_iss.unwrap_err().to_string().contains("iss"));
        let denied = judge(&callback("error=access_denied&state=s1"), &expected());
        assert!(denied.unwrap_err().to_string().contains("access_denied"));
    }

    #[tokio::test]
    async fn the_listener_answers_the_browser_and_returns_the_code() {
        let listener = CallbackListener::bind(0).await.unwrap();
        let addr = format!("127.0.0.1:{}", listener.redirect_uri.port().unwrap());
        let browser = tokio::spawn(async move {
            let mut favicon = TcpStream::connect(&addr).await.unwrap();
            favicon
                .write_all(b"GET /favicon.ico HTTP/1.1\r\n\r\n")
                .await
                .unwrap();
            let mut answer = String::new();
            favicon.read_to_string(&mut answer).await.unwrap();
            assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
            let mut stream = TcpStream::connect(&addr).await.unwrap();
            stream
                .write_all(b"GET /callback?code=c1&state=s1&iss=http%3A%2F%2F127.0.0.1%3A1 HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            answer
        });
        let code = listener
            .wait(&expected(), Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(code, "c1");
        let page = browser.await.unwrap();
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(page.contains("close this tab"), "{page}");
    }
}
