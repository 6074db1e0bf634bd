//! The reference server against an adversary: bounds on what anonymous requests can
//! make it hold, the browser binding of the GitHub leg, no open redirect, refresh
//! reuse detection, slow clients, session caps, streams that end with their token,
//! and JSON-RPC ids reused while in flight. Each test drives a real server on a
//! loopback port against the mock GitHub.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use mock_github::MockGitHub;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every wait in these tests is bounded by this, so a regression fails instead of hanging.
const BOUND: Duration = Duration::from_secs(20);
const REDIRECT_URI: &str = "http://127.0.0.1:33418/callback";
const CONSENT_COOKIE: &str = "__Host-mcp-consent";

struct Server {
    base: String,
    /// Kept alive for as long as the server talks to it.
    _mock: MockGitHub,
    http: reqwest::Client,
}

async fn start_with(mock: MockGitHub, vars: &[(&str, &str)]) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut env: Vec<(String, String)> = mock
        .server_env()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    env.extend(
        vars.iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
    );
    let config = mcp_github_server::Config::from_vars(env, base.parse().unwrap()).unwrap();
    tokio::spawn(mcp_github_server::serve(listener, config));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(BOUND)
        .build()
        .unwrap();
    Server {
        base,
        _mock: mock,
        http,
    }
}

async fn start(vars: &[(&str, &str)]) -> Server {
    start_with(MockGitHub::start().await, vars).await
}

fn location(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("location")
        .map(|value| value.to_str().unwrap().to_owned())
}

fn consent_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|line| line.split(';').next()?.split_once('='))
        .find(|(name, _)| *name == CONSENT_COOKIE)
        .map(|(_, value)| value.to_owned())
}

fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("hidden field") + marker.len();
    html[start..][..html[start..].find('"').unwrap()].to_owned()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// A PKCE verifier and its S256 challenge.
fn pkce() -> (String, String) {
    let verifier = "v".repeat(43);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

impl Server {
    async fn register(&self, redirect_uri: &str) -> String {
        let response = self
            .http
            .post(format!("{}/register", self.base))
            .json(&json!({
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "client_name": "hardening test",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        body["client_id"].as_str().unwrap().to_owned()
    }

    fn authorize_url(&self, client_id: &str, redirect_uri: &str, extra: &[(&str, &str)]) -> String {
        let (_, challenge) = pkce();
        let mut url = url::Url::parse(&format!("{}/authorize", self.base)).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("scope", "user offline_access")
            .extend_pairs(extra);
        url.to_string()
    }

    /// Approves the consent page `html` in the browser that holds `cookie`.
    async fn approve_consent(&self, html: &str, cookie: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/consent", self.base))
            .header("cookie", format!("{CONSENT_COOKIE}={cookie}"))
            .form(&[
                ("request_id", hidden_field(html, "request_id")),
                ("csrf_token", hidden_field(html, "csrf_token")),
                ("action", "approve".into()),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Follows the GitHub callback in the browser that holds `cookie`.
    async fn follow_callback(&self, callback: &str, cookie: &str) -> reqwest::Response {
        self.http
            .get(callback)
            .header("cookie", format!("{CONSENT_COOKIE}={cookie}"))
            .send()
            .await
            .unwrap()
    }

    /// Walks consent and GitHub in one browser and returns the GitHub callback URL
    /// with the browser's consent cookie, before the callback is visited.
    async fn approve(
        &self,
        client_id: &str,
        fault: Option<mock_github::Fault>,
    ) -> (String, String) {
        let page = self
            .http
            .get(self.authorize_url(client_id, REDIRECT_URI, &[("state", "client-state")]))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let cookie = consent_cookie(&page).expect("the consent page sets the cookie");
        let html = page.text().await.unwrap();
        let consent = self.approve_consent(&html, &cookie).await;
        let github = location(&consent).expect("approval goes to GitHub");
        let github = mock_github::pick_account(&github, "octocat", fault).unwrap();
        let back = self.http.get(github).send().await.unwrap();
        (location(&back).expect("GitHub redirects back"), cookie)
    }

    /// A complete login: the tokens of a fresh public client.
    async fn login(&self, fault: Option<mock_github::Fault>) -> (String, Value) {
        let client_id = self.register(REDIRECT_URI).await;
        let (callback, cookie) = self.approve(&client_id, fault).await;
        let back = self.follow_callback(&callback, &cookie).await;
        let to_client = location(&back).expect("the callback redirects to the client");
        let code = query_param(&to_client, "code").expect("a code");
        let tokens = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", &client_id),
                ("code_verifier", &pkce().0),
            ])
            .await;
        assert!(tokens["access_token"].is_string(), "{tokens}");
        (client_id, tokens)
    }

    async fn token(&self, form: &[(&str, &str)]) -> Value {
        self.http
            .post(format!("{}/token", self.base))
            .form(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn mcp_post(&self, token: &str, session: Option<&str>, body: Value) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/mcp", self.base))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&body);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send().await.unwrap()
    }

    /// Opens a Streamable HTTP session and returns its id.
    async fn mcp_session(&self, token: &str) -> String {
        let response = self.mcp_post(token, None, initialize(1)).await;
        assert_eq!(response.status(), 200);
        let session = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let _ = response.bytes().await;
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let response = self.mcp_post(token, Some(&session), initialized).await;
        assert_eq!(response.status(), 202);
        session
    }

    /// Opens an SSE stream; returns it with the message endpoint it announced.
    async fn sse(&self, token: &str) -> (SseReader, String) {
        let response = self
            .http
            .get(format!("{}/sse", self.base))
            .bearer_auth(token)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut reader = SseReader::new(response);
        let (event, data) = reader.next_event().await.expect("the endpoint event");
        assert_eq!(event, "endpoint");
        (reader, format!("{}{data}", self.base))
    }

    async fn sse_post(&self, token: &str, endpoint: &str, body: Value) -> reqwest::Response {
        self.http
            .post(endpoint)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

fn initialize(id: u64) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "hardening", "version": "1"}
        }
    })
}

fn call_profile(id: u64) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "get_user_profile", "arguments": {}}
    })
}

/// Reads server-sent events from a response body.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    fn new(response: reqwest::Response) -> SseReader {
        SseReader {
            response,
            buffer: String::new(),
        }
    }

    /// The next event as (event name, data), or `None` when the stream ended.
    async fn next_event(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = "message".to_owned();
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event = name.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push(value.trim_start().to_owned());
                    }
                }
                if data.concat().trim().is_empty() {
                    continue; // a comment (keep-alive) or a priming event
                }
                return Some((event, data.join("\n")));
            }
            match tokio::time::timeout(BOUND, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(_) => return None,
                Err(_) => panic!("no event within {BOUND:?}"),
            }
        }
    }

    /// The next JSON-RPC message on the stream, skipping other events.
    async fn next_message(&mut self) -> Option<Value> {
        loop {
            let (event, data) = self.next_event().await?;
            if event == "message" {
                return Some(serde_json::from_str(&data).unwrap());
            }
        }
    }
}

#[tokio::test]
async fn the_github_callback_only_issues_a_code_to_the_browser_that_approved() {
    let server = start(&[]).await;
    let client_id = server.register(REDIRECT_URI).await;
    let victim_page = server
        .http
        .get(server.authorize_url(&client_id, REDIRECT_URI, &[]))
        .send()
        .await
        .unwrap();
    let victim_cookie = consent_cookie(&victim_page).unwrap();
    for cookie in [None, Some(victim_cookie)] {
        // The attacker approves their own consent page and keeps GitHub's answer,
        // which a victim's browser then follows, with or without a consent cookie of
        // its own.
        let (callback, _attacker_cookie) = server.approve(&client_id, None).await;
        let mut request = server.http.get(&callback);
        if let Some(cookie) = &cookie {
            request = request.header("cookie", format!("{CONSENT_COOKIE}={cookie}"));
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403);
        assert!(location(&response).is_none(), "no code may leave");
    }
}

#[tokio::test]
async fn the_consent_cookie_is_always_minted_by_the_server() {
    let server = start(&[]).await;
    let client_id = server.register(REDIRECT_URI).await;
    let planted = "p".repeat(43);
    let page = server
        .http
        .get(server.authorize_url(&client_id, REDIRECT_URI, &[]))
        .header("cookie", format!("{CONSENT_COOKIE}={planted}"))
        .send()
        .await
        .unwrap();
    let minted = consent_cookie(&page).unwrap();
    assert_ne!(minted, planted);
    assert_eq!(minted.len(), 43);
}

#[tokio::test]
async fn registration_metadata_is_bounded() {
    let server = start(&[]).await;
    let register = |body: Vec<u8>| {
        server
            .http
            .post(format!("{}/register", server.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let huge = json!({"redirect_uris": [REDIRECT_URI], "client_name": "x".repeat(20_000)});
    let response = register(huge.to_string().into_bytes()).await.unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client_metadata");

    let many: Vec<String> = (0..11)
        .map(|port| format!("http://127.0.0.1:{port}/cb"))
        .collect();
    let long = format!("https://app.example/{}", "a".repeat(600));
    let repeated = vec!["authorization_code"; 9];
    for (metadata, error) in [
        (json!({"redirect_uris": many}), "invalid_redirect_uri"),
        (json!({"redirect_uris": [long]}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": [REDIRECT_URI], "grant_types": repeated}),
            "invalid_client_metadata",
        ),
    ] {
        let response = register(metadata.to_string().into_bytes()).await.unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], error);
    }
}

#[tokio::test]
async fn registration_evicts_unused_clients_at_the_cap() {
    let server = start(&[("MCP_GITHUB_MAX_CLIENTS", "2")]).await;
    let first = server.register(REDIRECT_URI).await;
    let _second = server.register(REDIRECT_URI).await;
    let third = server.register(REDIRECT_URI).await;
    let unknown = server
        .http
        .get(server.authorize_url(&first, REDIRECT_URI, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown.status(),
        400,
        "the oldest unused client was forgotten"
    );
    let known = server
        .http
        .get(server.authorize_url(&third, REDIRECT_URI, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(known.status(), 200);
}

/// A flood three times the cap of `MCP_GITHUB_MAX_PENDING_AUTHORIZATIONS` leaves exactly
/// the newest logins in progress, in both of their maps: the consent pages shown and the
/// upstream states of approved ones. The memory this bounds is measured by
/// `cargo xtask bench --only floods`; this holds the count.
#[tokio::test]
async fn a_flood_of_authorizations_keeps_only_the_newest_at_the_cap() {
    const CAP: usize = 3;
    let cap = CAP.to_string();
    let server = start(&[("MCP_GITHUB_MAX_PENDING_AUTHORIZATIONS", cap.as_str())]).await;
    let client_id = server.register(REDIRECT_URI).await;

    // Consent pages: every one is shown, only the newest CAP can still be approved.
    let mut pages = Vec::new();
    for index in 0..3 * CAP {
        let state = format!("flood-{index}");
        let page = server
            .http
            .get(server.authorize_url(&client_id, REDIRECT_URI, &[("state", &state)]))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200, "consent page {index}");
        let cookie = consent_cookie(&page).unwrap();
        pages.push((cookie, page.text().await.unwrap()));
    }
    for (index, (cookie, html)) in pages.iter().enumerate() {
        let answer = server.approve_consent(html, cookie).await;
        let kept = index >= 2 * CAP;
        assert_eq!(
            answer.status(),
            if kept { 302 } else { 400 },
            "consent page {index} of {}: only the newest {CAP} are kept",
            3 * CAP
        );
    }

    // Upstream states: every approval goes to GitHub, only the newest CAP come back.
    let mut callbacks = Vec::new();
    for _ in 0..3 * CAP {
        callbacks.push(server.approve(&client_id, None).await);
    }
    for (index, (callback, cookie)) in callbacks.iter().enumerate() {
        let back = server.follow_callback(callback, cookie).await;
        let code = location(&back).and_then(|to_client| query_param(&to_client, "code"));
        if index >= 2 * CAP {
            assert!(code.is_some(), "callback {index} is among the newest {CAP}");
        } else {
            assert_eq!(back.status(), 400, "callback {index} was evicted");
            assert!(code.is_none(), "callback {index} was evicted");
        }
    }
}

#[tokio::test]
async fn an_oversized_state_gets_an_error_page_not_a_redirect() {
    let server = start(&[]).await;
    let client_id = server.register(REDIRECT_URI).await;
    let state = "s".repeat(2_000);
    let response = server
        .http
        .get(server.authorize_url(&client_id, REDIRECT_URI, &[("state", &state)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(location(&response).is_none());
}

#[tokio::test]
async fn errors_before_consent_never_redirect_to_an_unapproved_web_uri() {
    let server = start(&[]).await;
    let web = "https://attacker.example/landing";
    let web_client = server.register(web).await;
    let mut url = url::Url::parse(&server.authorize_url(&web_client, web, &[])).unwrap();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| name != "code_challenge")
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(kept);
    let response = server.http.get(url.as_str()).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(location(&response).is_none(), "no automatic redirect");

    // A loopback redirect URI is the user's own machine: the error goes back there.
    let native = server.register(REDIRECT_URI).await;
    let response = server
        .http
        .get(server.authorize_url(&native, REDIRECT_URI, &[("response_type", "token")]))
        .send()
        .await
        .unwrap();
    let back = location(&response).expect("an error redirect");
    assert!(back.starts_with(REDIRECT_URI));
    assert!(query_param(&back, "error").is_some());
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_grant() {
    let server = start(&[]).await;
    let (client_id, first) = server.login(None).await;
    let old = first["refresh_token"].as_str().unwrap();
    let second = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", old),
            ("client_id", &client_id),
        ])
        .await;
    let new_access = second["access_token"].as_str().unwrap();
    let new_refresh = second["refresh_token"].as_str().unwrap();
    assert_eq!(
        server
            .mcp_post(new_access, None, initialize(1))
            .await
            .status(),
        200
    );
    let reuse = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", old),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(reuse["error"], "invalid_grant");
    assert_eq!(
        server
            .mcp_post(new_access, None, initialize(1))
            .await
            .status(),
        401
    );
    let after = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", new_refresh),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(after["error"], "invalid_grant");
}

#[tokio::test]
async fn a_narrower_refresh_scope_is_honoured() {
    let server = start(&[]).await;
    let (client_id, first) = server.login(None).await;
    let narrowed = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
            ("scope", "offline_access"),
        ])
        .await;
    assert_eq!(narrowed["scope"], "offline_access");
    // Without the MCP scope, the new token may not use the MCP endpoint.
    let response = server
        .mcp_post(
            narrowed["access_token"].as_str().unwrap(),
            None,
            initialize(1),
        )
        .await;
    assert_eq!(response.status(), 403);
}

/// A connection that sends half a request is cut at the header timeout, and with one
/// connection allowed, the next client is only served once it is.
#[tokio::test]
async fn slow_headers_are_cut_and_connections_are_capped() {
    let server = start(&[
        ("MCP_GITHUB_HEADER_TIMEOUT_SECS", "1"),
        ("MCP_GITHUB_MAX_CONNECTIONS", "1"),
    ])
    .await;
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: 127")
        .await
        .unwrap();
    // Make sure the slow connection holds the only slot before the next one comes.
    let mut probe = [0u8; 1];
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let next = {
        let order = order.clone();
        let address = address.clone();
        tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
            stream
                .write_all(
                    b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\n\
                      Host: 127.0.0.1\r\nConnection: close\r\n\r\n",
                )
                .await
                .unwrap();
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await.unwrap();
            order.lock().unwrap().push("served");
            String::from_utf8_lossy(&response).into_owned()
        })
    };
    let read = tokio::time::timeout(BOUND, slow.read(&mut probe))
        .await
        .expect("the slow connection is cut");
    order.lock().unwrap().push("cut");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let response = tokio::time::timeout(BOUND, next).await.unwrap().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(*order.lock().unwrap(), ["cut", "served"]);
}

/// A body that stops arriving is given up on at the body timeout: the client gets an
/// answer and the connection is freed, instead of both waiting forever.
#[tokio::test]
async fn a_trickled_body_is_cut_at_the_body_timeout() {
    let server = start(&[("MCP_GITHUB_BODY_TIMEOUT_SECS", "1")]).await;
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(
            b"POST /register HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"redirect_uris\"",
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(BOUND, stream.read_to_end(&mut response))
        .await
        .expect("the server gives up on the body");
    assert!(read.is_ok() || !response.is_empty());
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 4"), "{response}");
}

/// The header timeout doubles as the idle timeout, but never cuts a response that is
/// still being streamed.
#[tokio::test]
async fn an_sse_stream_outlives_the_idle_timeout() {
    let server = start(&[("MCP_GITHUB_HEADER_TIMEOUT_SECS", "1")]).await;
    let (_, tokens) = server.login(None).await;
    let token = tokens["access_token"].as_str().unwrap();
    let (mut stream, endpoint) = server.sse(token).await;
    // An idle connection being cut shows the timeout has passed on the server.
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut probe = [0u8; 1];
    let read = tokio::time::timeout(BOUND, idle.read(&mut probe))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)));
    let posted = server.sse_post(token, &endpoint, initialize(1)).await;
    assert_eq!(posted.status(), 202);
    let reply = stream
        .next_message()
        .await
        .expect("the stream is still open");
    assert_eq!(reply["id"], 1);
}

#[tokio::test]
async fn a_reused_in_flight_id_gets_an_error_on_both_transports() {
    let mock = MockGitHub::builder()
        .slow_delay(Duration::from_secs(2))
        .start()
        .await;
    let server = start_with(mock, &[]).await;
    // Every call to GitHub's /user takes two seconds, so a tool call stays in flight.
    let (_, tokens) = server.login(Some(mock_github::Fault::UserTimeout)).await;
    let token = tokens["access_token"].as_str().unwrap();

    let session = server.mcp_session(token).await;
    let first = server
        .mcp_post(token, Some(&session), call_profile(7))
        .await;
    assert_eq!(first.status(), 200);
    let second = server
        .mcp_post(token, Some(&session), call_profile(7))
        .await;
    assert_eq!(second.status(), 400);
    let error: Value = second.json().await.unwrap();
    assert_eq!(error["id"], 7);
    assert_eq!(error["error"]["code"], -32600);
    // The first request still gets its answer, and the id is free again after it.
    let body = tokio::time::timeout(BOUND, first.text())
        .await
        .unwrap()
        .unwrap();
    assert!(body.contains("\"id\":7"), "{body}");
    let again = server
        .mcp_post(token, Some(&session), call_profile(7))
        .await;
    assert_eq!(again.status(), 200);

    let (mut stream, endpoint) = server.sse(token).await;
    assert_eq!(
        server
            .sse_post(token, &endpoint, initialize(1))
            .await
            .status(),
        202
    );
    assert_eq!(stream.next_message().await.unwrap()["id"], 1);
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(
        server
            .sse_post(token, &endpoint, initialized)
            .await
            .status(),
        202
    );
    assert_eq!(
        server
            .sse_post(token, &endpoint, call_profile(7))
            .await
            .status(),
        202
    );
    let second = server.sse_post(token, &endpoint, call_profile(7)).await;
    assert_eq!(second.status(), 400);
    let error: Value = second.json().await.unwrap();
    assert_eq!(error["id"], 7);
    assert_eq!(stream.next_message().await.unwrap()["id"], 7);
    assert_eq!(
        server
            .sse_post(token, &endpoint, call_profile(7))
            .await
            .status(),
        202
    );
}

#[tokio::test]
async fn revocation_ends_open_streams() {
    let server = start(&[]).await;
    let (client_id, tokens) = server.login(None).await;
    let token = tokens["access_token"].as_str().unwrap();
    let (mut sse, _) = server.sse(token).await;
    let session = server.mcp_session(token).await;
    let get = server
        .http
        .get(format!("{}/mcp", server.base))
        .bearer_auth(token)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    let mut standalone = SseReader::new(get);

    let revoked = server
        .http
        .post(format!("{}/revoke", server.base))
        .form(&[
            ("token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert!(sse.next_event().await.is_none(), "the SSE stream ended");
    assert!(
        standalone.next_message().await.is_none(),
        "the GET stream ended"
    );
}

#[tokio::test]
async fn each_user_has_a_bounded_number_of_sessions() {
    let server = start(&[("MCP_GITHUB_MAX_SESSIONS_PER_USER", "2")]).await;
    let (_, tokens) = server.login(None).await;
    let token = tokens["access_token"].as_str().unwrap();

    let (mut oldest, _) = server.sse(token).await;
    let (_second, _) = server.sse(token).await;
    let (_third, endpoint) = server.sse(token).await;
    assert!(
        oldest.next_event().await.is_none(),
        "the oldest stream made room"
    );
    assert_eq!(
        server
            .sse_post(token, &endpoint, initialize(1))
            .await
            .status(),
        202
    );

    let first = server.mcp_session(token).await;
    let second = server.mcp_session(token).await;
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    // Using the first keeps it; the second is now the least recently used.
    assert_eq!(
        server
            .mcp_post(token, Some(&first), ping.clone())
            .await
            .status(),
        200
    );
    let _third = server.mcp_session(token).await;
    assert_eq!(
        server
            .mcp_post(token, Some(&second), ping.clone())
            .await
            .status(),
        404
    );
    assert_eq!(
        server.mcp_post(token, Some(&first), ping).await.status(),
        200
    );
}

/// HTTP/1.1 goes to hyper's HTTP/1 directly and only a connection that opens with HTTP/2's
/// preface goes through the version-detecting builder: both must still be served.
#[tokio::test]
async fn http1_and_http2_with_prior_knowledge_are_both_served() {
    let server = start(&[]).await;
    let metadata = format!("{}/.well-known/oauth-protected-resource/mcp", server.base);
    let http1 = server.http.get(&metadata).send().await.unwrap();
    assert_eq!(http1.status(), 200);
    assert_eq!(http1.version(), reqwest::Version::HTTP_11);
    // A POST starts with the same letter as the preface's "PRI".
    let post = server
        .http
        .post(format!("{}/token", server.base))
        .form(&[("grant_type", "authorization_code")])
        .send()
        .await
        .unwrap();
    // No client authentication: invalid_client.
    assert_eq!(post.status(), 401);

    let address = server.base.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get(&metadata)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = tokio::time::timeout(BOUND, sender.send_request(request))
        .await
        .expect("an HTTP/2 answer within the bound")
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
}
