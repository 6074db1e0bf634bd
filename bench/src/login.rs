//! A scripted OAuth login, done once per server before anything is measured:
//! dynamic registration, the authorization request with PKCE S256, the consent
//! form (its hidden fields posted back with `action=approve` and the cookie the
//! page set), the mock GitHub's authorize URL, the server's GitHub callback, and
//! the code exchange at `/token`.

use std::collections::HashMap;

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use hyper::{
    Method,
    header::{self, HeaderName, HeaderValue},
};
use rand::RngCore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::client::{Conn, Endpoint, Reply};

/// Redirects and pages the walk follows at most before giving up.
const MAX_HOPS: usize = 12;
/// Where the authorization server sends the browser back; never connected to.
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

/// What the login produced.
pub struct Login {
    pub access_token: String,
}

fn random_string() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn request(
    method: Method,
    url: &Url,
    headers: &[(HeaderName, HeaderValue)],
    body: Bytes,
) -> anyhow::Result<Reply> {
    let endpoint = Endpoint::from_url(url)?;
    let mut conn = Conn::open(&endpoint, None).await?;
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let exchange = conn.exchange(method.clone(), &path, headers, body);
    tokio::time::timeout(std::time::Duration::from_secs(20), exchange)
        .await
        .with_context(|| format!("{method} {} timed out", url.path()))?
        .with_context(|| format!("{method} {} failed", url.path()))
}

fn form_body(fields: &[(String, String)]) -> Bytes {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        serializer.append_pair(name, value);
    }
    Bytes::from(serializer.finish())
}

fn form_headers() -> Vec<(HeaderName, HeaderValue)> {
    vec![(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    )]
}

/// Logs in at the MCP server at `base` and returns an access token for `resource`.
pub async fn login(base: &Url, resource: &str) -> anyhow::Result<Login> {
    // Endpoints from the authorization server metadata, with the MCP spec's defaults.
    let metadata_url = base.join("/.well-known/oauth-authorization-server")?;
    let metadata = request(Method::GET, &metadata_url, &[], Bytes::new()).await?;
    let metadata: Value = if metadata.status.is_success() {
        serde_json::from_slice(&metadata.body).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let endpoint = |name: &str, default: &str| -> anyhow::Result<Url> {
        match metadata.get(name).and_then(Value::as_str) {
            Some(url) => Ok(Url::parse(url)?),
            None => Ok(base.join(default)?),
        }
    };
    let registration = endpoint("registration_endpoint", "/register")?;
    let authorization = endpoint("authorization_endpoint", "/authorize")?;
    let token_endpoint = endpoint("token_endpoint", "/token")?;

    let registered = request(
        Method::POST,
        &registration,
        &[(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Bytes::from(
            json!({
                "client_name": "mcp-bench",
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
                "scope": "user",
            })
            .to_string(),
        ),
    )
    .await?;
    if !registered.status.is_success() {
        bail!(
            "registration: HTTP {}: {:.300}",
            registered.status,
            registered.text()
        );
    }
    let registered: Value = serde_json::from_slice(&registered.body)?;
    let client_id = registered["client_id"]
        .as_str()
        .context("registration returned no client_id")?
        .to_owned();
    let client_secret = registered["client_secret"].as_str().map(str::to_owned);

    let verifier = random_string();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let state = random_string();
    let mut url = authorization.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", &state)
        .append_pair("scope", "user")
        .append_pair("resource", resource);

    let code = walk(url, &state).await?;

    let mut fields = vec![
        ("grant_type".to_owned(), "authorization_code".to_owned()),
        ("code".to_owned(), code),
        ("redirect_uri".to_owned(), REDIRECT_URI.to_owned()),
        ("code_verifier".to_owned(), verifier),
        ("client_id".to_owned(), client_id),
        ("resource".to_owned(), resource.to_owned()),
    ];
    if let Some(secret) = client_secret {
        fields.push(("client_secret".to_owned(), secret));
    }
    let token = request(
        Method::POST,
        &token_endpoint,
        &form_headers(),
        form_body(&fields),
    )
    .await?;
    if !token.status.is_success() {
        bail!("/token: HTTP {}: {:.300}", token.status, token.text());
    }
    let token: Value = serde_json::from_slice(&token.body)?;
    let access_token = token["access_token"]
        .as_str()
        .context("/token returned no access_token")?
        .to_owned();
    Ok(Login { access_token })
}

/// Follows the browser's path from the authorization request to the redirect back
/// to the client, approving the consent form on the way, and returns the code.
async fn walk(start: Url, state: &str) -> anyhow::Result<String> {
    // Cookies per host, name to value; enough for the consent page's cookie.
    let mut jar: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut next = (Method::GET, start, Bytes::new());
    for _ in 0..MAX_HOPS {
        let (method, url, body) = next;
        let host = url.host_str().unwrap_or_default().to_owned();
        let mut headers = if method == Method::POST {
            form_headers()
        } else {
            Vec::new()
        };
        if let Some(cookies) = jar.get(&host).filter(|cookies| !cookies.is_empty()) {
            let line: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            headers.push((header::COOKIE, HeaderValue::from_str(&line.join("; "))?));
        }
        let reply = request(method, &url, &headers, body).await?;
        for set_cookie in reply.headers.get_all(header::SET_COOKIE) {
            let Ok(set_cookie) = set_cookie.to_str() else {
                continue;
            };
            let first = set_cookie.split(';').next().unwrap_or_default();
            if let Some((name, value)) = first.split_once('=') {
                let cookies = jar.entry(host.clone()).or_default();
                let expired = set_cookie.to_ascii_lowercase().contains("max-age=0");
                if expired || value.trim().trim_matches('"').is_empty() {
                    cookies.remove(name.trim());
                } else {
                    cookies.insert(name.trim().to_owned(), value.trim().to_owned());
                }
            }
        }
        if reply.status.is_redirection() {
            let location = reply
                .header("location")
                .context("a redirect without Location")?;
            let target = url.join(location)?;
            if target.as_str().starts_with(REDIRECT_URI) {
                let pairs: HashMap<String, String> = target.query_pairs().into_owned().collect();
                if let Some(error) = pairs.get("error") {
                    bail!(
                        "the authorization failed: {error}: {}",
                        pairs.get("error_description").map_or("", String::as_str)
                    );
                }
                if pairs.get("state").map(String::as_str) != Some(state) {
                    bail!("the redirect back carried another state");
                }
                return pairs
                    .get("code")
                    .cloned()
                    .context("the redirect back carried no code");
            }
            next = (Method::GET, target, Bytes::new());
            continue;
        }
        let html = reply.text();
        if reply.status.is_success()
            && let Some(form) = parse_form(&html)
        {
            let mut fields = form.hidden;
            fields.push(("action".to_owned(), "approve".to_owned()));
            let action = url.join(&form.action)?;
            next = (Method::POST, action, form_body(&fields));
            continue;
        }
        bail!(
            "{} {}: HTTP {} is neither a redirect nor a consent form: {:.300}",
            "the login",
            url.path(),
            reply.status,
            html
        );
    }
    bail!("the login did not come back within {MAX_HOPS} steps")
}

struct Form {
    action: String,
    hidden: Vec<(String, String)>,
}

/// The first POST form of a page: its action and hidden inputs. A tolerant scan,
/// enough for the two consent pages this project serves.
fn parse_form(html: &str) -> Option<Form> {
    let start = html.find("<form")?;
    let end = html[start..]
        .find("</form>")
        .map_or(html.len(), |end| start + end);
    let form = &html[start..end];
    let tag_end = form.find('>')?;
    let action = attribute(&form[..tag_end], "action").unwrap_or_default();
    let mut hidden = Vec::new();
    let mut rest = form;
    while let Some(position) = rest.find("<input") {
        let after = &rest[position..];
        let close = after.find('>').unwrap_or(after.len());
        let tag = &after[..close];
        if attribute(tag, "type").is_some_and(|kind| kind.eq_ignore_ascii_case("hidden"))
            && let Some(name) = attribute(tag, "name")
        {
            hidden.push((name, attribute(tag, "value").unwrap_or_default()));
        }
        rest = &after[close..];
    }
    Some(Form { action, hidden })
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=");
    let start = tag.find(&needle)? + needle.len();
    let rest = &tag[start..];
    let value = match rest.chars().next()? {
        quote @ ('"' | '\'') => rest[1..].split(quote).next()?,
        _ => rest.split([' ', '>']).next()?,
    };
    Some(unescape(value))
}

fn unescape(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::parse_form;

    #[test]
    fn the_consent_forms_hidden_fields_are_found() {
        let html = "<p>x</p><form method=\"post\" action=\"http://127.0.0.1:1/consent\">\n\
            <input type=\"hidden\" name=\"request_id\" value=\"a&amp;b\">\n\
            <input type=\"hidden\" name=\"csrf_token\" value=\"c\">\n\
            <button type=\"submit\" name=\"action\" value=\"approve\">Approve</button></form>";
        let form = parse_form(html).unwrap();
        assert_eq!(form.action, "http://127.0.0.1:1/consent");
        assert_eq!(
            form.hidden,
            vec![
                ("request_id".to_owned(), "a&b".to_owned()),
                ("csrf_token".to_owned(), "c".to_owned())
            ]
        );
    }
}
