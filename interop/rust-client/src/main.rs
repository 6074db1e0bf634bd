//! The official Rust SDK's client against the reference server, over Streamable HTTP.
//!
//! rmcp does the OAuth client work: discovery from the 401 challenge, dynamic client
//! registration, PKCE and the token exchange (with the `state` and RFC 9207 `iss`
//! checks). The browser part, consent page and mock GitHub login, is walked here with
//! plain HTTP requests. Then an rmcp client session lists the tools and calls
//! `get_user_profile`, and the result must be the mock user's profile.
//!
//! Reads `INTEROP_SERVER_URL`, `INTEROP_MOCK_GITHUB_URL` and `INTEROP_LOGIN`; prints a
//! one-line summary and exits 0, or prints the error and exits 1.

use std::{process::ExitCode, time::Duration};

use anyhow::{Context, bail};
use rmcp::{
    ServiceExt,
    model::CallToolRequestParams,
    transport::{
        AuthClient, AuthorizationRequest, StreamableHttpClientTransport, auth::OAuthState,
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use url::Url;

/// The whole test, so a hung server fails it rather than the run.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Nothing listens here: the walk stops at this URL and hands it to rmcp directly.
const REDIRECT_URI: &str = "http://127.0.0.1:33419/callback";
/// Enough for the five hops of a login; more means a redirect loop.
const MAX_HOPS: usize = 12;

#[tokio::main]
async fn main() -> ExitCode {
    match tokio::time::timeout(TEST_TIMEOUT, run()).await {
        Ok(Ok(summary)) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Ok(Err(error)) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("error: timed out after {} s", TEST_TIMEOUT.as_secs());
            ExitCode::FAILURE
        }
    }
}

fn setting(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set (run `cargo xtask interop`)"))
}

async fn run() -> anyhow::Result<String> {
    let server = setting("INTEROP_SERVER_URL")?;
    let mock = Url::parse(&setting("INTEROP_MOCK_GITHUB_URL")?)?;
    let login = std::env::var("INTEROP_LOGIN").unwrap_or_else(|_| "octocat".into());
    let mcp_url = format!("{server}/mcp");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()?;

    // A client learns that it must log in, and where, from the 401 challenge.
    let probe = http
        .post(&mcp_url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(initialize_request().to_string())
        .send()
        .await?;
    if probe.status() != reqwest::StatusCode::UNAUTHORIZED {
        bail!(
            "an initialize without a token got {}, not 401",
            probe.status()
        );
    }
    let challenge = probe
        .headers()
        .get("www-authenticate")
        .context("the 401 carries no WWW-Authenticate challenge")?
        .to_str()?
        .to_owned();

    let mut oauth = OAuthState::new(mcp_url.as_str(), None)
        .await
        .context("rmcp refused the server URL")?;
    oauth
        .start_authorization(
            AuthorizationRequest::new(REDIRECT_URI)
                .with_client_name("Interop: Rust SDK (rmcp)")
                .with_challenge(challenge),
        )
        .await
        .context("rmcp's discovery or registration failed")?;
    let authorization_url = oauth.get_authorization_url().await?;
    let redirect = walk(&http, &authorization_url, &mock, &login).await?;
    oauth
        .handle_callback_url(redirect.as_str())
        .await
        .context("rmcp's token exchange failed")?;
    let OAuthState::Authorized(manager) = oauth else {
        bail!("rmcp is not authorized after the callback");
    };

    let transport = StreamableHttpClientTransport::with_client(
        AuthClient::new(reqwest::Client::new(), manager),
        StreamableHttpClientTransportConfig::with_uri(mcp_url),
    );
    let client = ().serve(transport).await.context("initialize failed")?;
    let tools = client.list_all_tools().await.context("tools/list failed")?;
    if !tools.iter().any(|tool| tool.name == "get_user_profile") {
        bail!("tools/list lacks get_user_profile");
    }
    let result = client
        .call_tool(CallToolRequestParams::new("get_user_profile"))
        .await
        .context("tools/call failed")?;
    let result = serde_json::to_value(&result)?;
    let _ = client.cancel().await;

    let expected = expected_profile(&http, &mock, &login).await?;
    let text = result["content"][0]["text"]
        .as_str()
        .with_context(|| format!("no text content in {result}"))?;
    let profile: Value = serde_json::from_str(text)?;
    if result["isError"] == json!(true) || profile != expected {
        bail!("the tool returned {text}, expected {login}'s profile");
    }
    Ok(format!(
        "{login}'s profile (id {}) after discovery, DCR, PKCE and consent",
        expected["id"]
    ))
}

fn initialize_request() -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "interop-rust-client", "version": "0.1.0"}
        }
    })
}

async fn expected_profile(
    http: &reqwest::Client,
    mock: &Url,
    login: &str,
) -> anyhow::Result<Value> {
    let users: Vec<Value> = http
        .get(mock.join("/_mock/users")?)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    users
        .into_iter()
        .find(|user| user["login"] == login)
        .with_context(|| format!("the mock GitHub has no user {login}"))
}

/// The browser's part: follows redirects from the authorization URL, keeps the consent
/// cookie, approves the consent form, logs in at the mock GitHub as `login`, and
/// returns the URL that would have taken the browser back to `REDIRECT_URI`.
async fn walk(
    http: &reqwest::Client,
    authorization_url: &str,
    mock: &Url,
    login: &str,
) -> anyhow::Result<Url> {
    let target = Url::parse(REDIRECT_URI)?;
    let mut url = Url::parse(authorization_url)?;
    let mut form: Option<Vec<(String, String)>> = None;
    let mut cookie: Option<String> = None;
    for _ in 0..MAX_HOPS {
        if url.origin() == target.origin() && url.path() == target.path() {
            return Ok(url);
        }
        if url.origin() == mock.origin() && url.path() == "/login/oauth/authorize" {
            url.query_pairs_mut().append_pair("login", login);
        }
        let mut request = match form.take() {
            Some(fields) => http
                .post(url.clone())
                .header("origin", url.origin().ascii_serialization())
                .form(&fields),
            None => http.get(url.clone()),
        };
        if let Some(cookie) = &cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await?;
        if let Some(set) = response.headers().get("set-cookie") {
            // Only the name=value pair goes back, as a browser sends it.
            cookie = set.to_str()?.split(';').next().map(str::to_owned);
        }
        if response.status().is_redirection() {
            let location = response
                .headers()
                .get("location")
                .context("a redirect without Location")?
                .to_str()?;
            url = url.join(location)?;
            continue;
        }
        let status = response.status();
        let page = response.text().await?;
        let (Some(action), Some(fields)) = (form_action(&page), hidden_fields(&page)) else {
            bail!("{url} answered {status}: {}", page_text(&page));
        };
        url = url.join(&action)?;
        form = Some(
            fields
                .into_iter()
                .chain([("action".to_owned(), "approve".to_owned())])
                .collect(),
        );
    }
    bail!("no redirect to {REDIRECT_URI} after {MAX_HOPS} hops")
}

/// The value of `name="..."` in one HTML tag, unescaped.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let value = &tag[start..start + tag[start..].find('"')?];
    Some(
        value
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// Every start tag of one element type in the page.
fn tags<'a>(page: &'a str, element: &str) -> Vec<&'a str> {
    let opening = format!("<{element} ");
    page.match_indices(&opening)
        .filter_map(|(start, _)| {
            page[start..]
                .find('>')
                .map(|end| &page[start..=start + end])
        })
        .collect()
}

fn form_action(page: &str) -> Option<String> {
    tags(page, "form")
        .first()
        .and_then(|tag| attribute(tag, "action"))
}

/// The consent form's hidden fields, if the page has an Approve button.
fn hidden_fields(page: &str) -> Option<Vec<(String, String)>> {
    tags(page, "button")
        .into_iter()
        .find(|tag| attribute(tag, "value").as_deref() == Some("approve"))?;
    Some(
        tags(page, "input")
            .into_iter()
            .filter(|tag| attribute(tag, "type").as_deref() == Some("hidden"))
            .filter_map(|tag| Some((attribute(tag, "name")?, attribute(tag, "value")?)))
            .collect(),
    )
}

/// A page's text without markup, shortened for an error message.
fn page_text(page: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for character in page.chars() {
        match character {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(character),
            _ => {}
        }
    }
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect()
}
