//! AUTH-CIMD: client ID metadata documents (MCP 2025-11-25, after
//! draft-ietf-oauth-client-id-metadata-document-00). A client whose `client_id` is an HTTPS
//! URL is described by the JSON document at that URL; the suite serves such documents from its
//! own loopback fixture host ([`crate::oauth::cimd_host`]) and counts the server's fetches.
//!
//! Support is optional ("SHOULD", AUTH-CIMD-01; dynamic registration and pre-registration are
//! the alternatives), so every check but AUTH-CIMD-01 skips when the authorization server
//! metadata does not advertise `client_id_metadata_document_supported`.

use anyhow::anyhow;
use serde_json::Value;
use url::Url;

use super::{Check, Ctx, Findings, LoginOptions, Scope, Verdict, needs};
use crate::body;
use crate::http::{Exchange, Req};
use crate::oauth::browser::{Arrival, Consent};
use crate::oauth::cimd_host::{CIMD_REDIRECT_URI, Canary, ChunkedHost, CimdHost, document};
use crate::oauth::flow::{self, AuthParams, Pkce};
use crate::oauth::registration::Client;

const AS: Scope = Scope::AuthServer;

/// The check that proves a URL `client_id` works at all; the refusal checks are blocked by it
/// when the server never fetched their documents.
const FLOW: &str = "AUTH-CIMD-08";

/// Why the checks do not run live: the server would have to reach the suite's loopback host.
const LIVE_REASON: &str = super::live_reason::CIMD_UNREACHABLE;

pub fn checks() -> Vec<Check> {
    vec![
        Check::new("AUTH-CIMD-01", AS, body!(support_is_advertised)),
        Check::new("AUTH-CIMD-02", AS, body!(mismatched_client_id_is_refused)),
        Check::new("AUTH-CIMD-03", AS, body!(unlisted_redirect_uri_is_refused)),
        Check::new("AUTH-CIMD-04", AS, body!(invalid_documents_are_refused)),
        Check::new("AUTH-CIMD-05", AS, body!(documents_are_cached_per_headers)),
        Check::new(
            "AUTH-CIMD-06",
            AS,
            body!(internal_addresses_are_not_fetched),
        ),
        Check::new("AUTH-CIMD-07", AS, body!(consent_shows_the_redirect_host)),
        Check::new("AUTH-CIMD-08", AS, body!(login_with_a_url_client_id)),
        Check::new("AUTH-CIMD-09", AS, body!(oversized_documents_are_refused)),
    ]
}

/// Whether the metadata advertises support.
fn advertised(cx: &Ctx) -> anyhow::Result<bool> {
    let d = cx.discovery()?;
    Ok(d.metadata
        .as_ref()
        .and_then(|m| m.get("client_id_metadata_document_supported"))
        == Some(&Value::Bool(true)))
}

/// The fixture host, or why the check does not apply.
async fn host(cx: &Ctx) -> anyhow::Result<Result<CimdHost, Verdict>> {
    if !advertised(cx)? {
        return Ok(Err(Verdict::Skip(
            "the authorization server metadata does not advertise \
             client_id_metadata_document_supported: client ID metadata documents are optional \
             (SHOULD, see AUTH-CIMD-01), and dynamic registration or pre-registration are the \
             alternatives"
                .into(),
        )));
    }
    if cx.live() {
        return Err(super::refuse(LIVE_REASON));
    }
    Ok(Ok(CimdHost::start().await))
}

/// The client a document at `client_id` describes, as the flow uses clients.
fn url_client(client_id: &str, redirect_uri: &str) -> Client {
    Client {
        client_id: client_id.to_owned(),
        client_secret: None,
        redirect_uri: redirect_uri.to_owned(),
        auth_method: "none".into(),
        name: "client of a metadata document".into(),
    }
}

/// A complete, valid authorization request for a URL `client_id`, sent without a browser.
async fn request_authorization(
    cx: &Ctx,
    client_id: &str,
    redirect_uri: &str,
) -> anyhow::Result<Exchange> {
    let client = url_client(client_id, redirect_uri);
    let resource = cx.discovery()?.resource();
    let params = AuthParams::for_client(
        &client,
        &Pkce::s256(),
        &flow::random_state(),
        Some(&resource),
        None,
    );
    cx.http()
        .send(Req::get(params.url(&cx.endpoints()?.authorization)))
        .await
}

/// What an authorization response did with a client it should have refused: `None` when it
/// was refused on a page of the server (a 4xx answer), the reason otherwise.
fn not_refused(ex: &Exchange, redirect_uri: &str) -> Option<String> {
    if let Some(location) = ex.location().filter(|_| ex.is_redirect()) {
        let to_client = location.as_str().starts_with(redirect_uri)
            || Url::parse(redirect_uri).is_ok_and(|r| location.origin() == r.origin());
        return Some(if to_client {
            if super::issues_code(ex) {
                "it redirected to the redirect URI with an authorization code".into()
            } else {
                "it redirected to the redirect URI, which the document did not vouch for".into()
            }
        } else {
            "it went on with the authorization (redirected onwards)".into()
        });
    }
    match ex.status {
        400..=499 => None,
        200 => Some("it went on with the authorization (answered 200, a consent page)".into()),
        other => Some(format!("it answered {other} rather than a 4xx error")),
    }
}

/// The server must have read the document for a refusal to prove anything; when it never
/// fetched it, the check that proves a URL `client_id` works at all (AUTH-CIMD-08) tells why.
async fn require_fetched(host: &CimdHost, at: &str) -> anyhow::Result<()> {
    if host.fetches(at).await == 0 {
        return Err(needs(
            FLOW,
            anyhow!(
                "the server never fetched the metadata document {} (see AUTH-CIMD-08)",
                host.url(at)
            ),
        ));
    }
    Ok(())
}

/// "MCP clients and authorization servers SHOULD support OAuth Client ID Metadata Documents"
/// (MCP 2025-11-25, Client ID Metadata Documents); support is advertised with
/// `client_id_metadata_document_supported: true` in the authorization server metadata.
async fn support_is_advertised(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let d = cx.discovery()?;
    let value = d
        .metadata
        .as_ref()
        .and_then(|m| m.get("client_id_metadata_document_supported"));
    f.require(
        value == Some(&Value::Bool(true)),
        format!(
            "the authorization server metadata does not advertise \
             client_id_metadata_document_supported: true ({})",
            super::shown_json(value)
        ),
        None,
    );
    Ok(f.verdict())
}

/// "MUST validate that the fetched document's `client_id` matches the URL exactly" (MCP
/// 2025-11-25, Client ID Metadata Documents, Implementation Requirements).
async fn mismatched_client_id_is_refused(cx: Ctx) -> anyhow::Result<Verdict> {
    let host = match host(&cx).await? {
        Ok(host) => host,
        Err(skip) => return Ok(skip),
    };
    let mut f = Findings::new(&cx);
    let at = "/clients/mismatched.json";
    let other = host.url("/clients/other.json");
    let body = document(&other, "Mismatched Client", &[CIMD_REDIRECT_URI]);
    host.serve(at, body.to_string(), None).await;
    let ex = request_authorization(&cx, &host.url(at), CIMD_REDIRECT_URI).await?;
    require_fetched(&host, at).await?;
    if let Some(problem) = not_refused(&ex, CIMD_REDIRECT_URI) {
        f.require(
            false,
            format!("a document whose client_id is another URL ({other}) was accepted: {problem}"),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

/// "MUST validate redirect URIs presented in an authorization request against those in the
/// metadata document" (MCP 2025-11-25, Client ID Metadata Documents, Implementation
/// Requirements).
async fn unlisted_redirect_uri_is_refused(cx: Ctx) -> anyhow::Result<Verdict> {
    let host = match host(&cx).await? {
        Ok(host) => host,
        Err(skip) => return Ok(skip),
    };
    let mut f = Findings::new(&cx);
    let at = "/clients/redirects.json";
    let client_id = host.serve_valid(at, "Redirect Client", None).await;
    for unlisted in [
        "https://attacker.example/callback",
        "http://localhost:33418/elsewhere",
    ] {
        let ex = request_authorization(&cx, &client_id, unlisted).await?;
        require_fetched(&host, at).await?;
        if let Some(problem) = not_refused(&ex, unlisted) {
            f.require(
                false,
                format!(
                    "the redirect_uri {unlisted}, which the document does not list, was \
                     accepted: {problem}"
                ),
                Some(&ex),
            );
        }
    }
    Ok(f.verdict())
}

/// "MUST validate the document structure is valid JSON and contains required fields" (MCP
/// 2025-11-25, Client ID Metadata Documents, Implementation Requirements), where "The
/// metadata document MUST include at least the following properties: `client_id`,
/// `client_name`, `redirect_uris`".
async fn invalid_documents_are_refused(cx: Ctx) -> anyhow::Result<Verdict> {
    let host = match host(&cx).await? {
        Ok(host) => host,
        Err(skip) => return Ok(skip),
    };
    let mut f = Findings::new(&cx);
    let cases = [
        (
            "/clients/trailing-bytes.json",
            "invalid JSON (bytes after the object)",
        ),
        ("/clients/no-redirect-uris.json", "no redirect_uris"),
        ("/clients/no-client-name.json", "no client_name"),
    ];
    for (at, what) in cases {
        let client_id = host.url(at);
        let mut valid = document(&client_id, "Invalid Document Client", &[CIMD_REDIRECT_URI]);
        let body = match at {
            "/clients/trailing-bytes.json" => format!("{valid}\n}}"),
            "/clients/no-redirect-uris.json" => {
                valid.as_object_mut().map(|o| o.remove("redirect_uris"));
                valid.to_string()
            }
            _ => {
                valid.as_object_mut().map(|o| o.remove("client_name"));
                valid.to_string()
            }
        };
        host.serve(at, body, None).await;
        let ex = request_authorization(&cx, &client_id, CIMD_REDIRECT_URI).await?;
        require_fetched(&host, at).await?;
        if let Some(problem) = not_refused(&ex, CIMD_REDIRECT_URI) {
            f.require(
                false,
                format!("a document with {what} was accepted: {problem}"),
                Some(&ex),
            );
        }
    }
    Ok(f.verdict())
}

/// "SHOULD fetch metadata documents when encountering URL-formatted client_ids" and "SHOULD
/// cache metadata respecting HTTP cache headers" (MCP 2025-11-25, Client ID Metadata
/// Documents, Implementation Requirements).
async fn documents_are_cached_per_headers(cx: Ctx) -> anyhow::Result<Verdict> {
    let host = match host(&cx).await? {
        Ok(host) => host,
        Err(skip) => return Ok(skip),
    };
    let mut f = Findings::new(&cx);
    for (at, cache_control, expected) in [
        ("/clients/cacheable.json", "max-age=300", 1),
        ("/clients/no-store.json", "no-store", 2),
        // RFC 9111 §5.2.2: `no-store` forbids storing the response and `no-cache` reusing it
        // without asking the origin again, whatever lifetime `max-age` gives it.
        ("/clients/no-store-max-age.json", "max-age=300, no-store", 2),
        ("/clients/no-cache-max-age.json", "no-cache, max-age=300", 2),
    ] {
        let client_id = host
            .serve_valid(at, "Cached Client", Some(cache_control))
            .await;
        let mut last = None;
        for _ in 0..2 {
            let ex = request_authorization(&cx, &client_id, CIMD_REDIRECT_URI).await?;
            if not_refused(&ex, CIMD_REDIRECT_URI).is_none() {
                // A valid document's request must go on (to a consent page, or onwards to the
                // login); AUTH-CIMD-08 judges why it did not.
                return Err(needs(
                    FLOW,
                    anyhow!(
                        "the authorization request with a valid document was refused:\n{}",
                        cx.evidence(&ex)
                    ),
                ));
            }
            last = Some(ex);
        }
        let fetches = host.fetches(at).await;
        f.require(
            fetches == expected,
            format!(
                "two authorization requests with a document served with Cache-Control: \
                 {cache_control} made {fetches} fetches, expected {expected}"
            ),
            last.as_ref(),
        );
    }
    Ok(f.verdict())
}

/// The size of the oversized documents: far above the recommended 5 kilobytes, so that a
/// server with any deliberate limit refuses them.
const OVERSIZED_BYTES: usize = 1024 * 1024;

/// A valid document for `client_id`, padded to [`OVERSIZED_BYTES`] with a member the draft
/// lets a document carry ("MAY define additional properties").
fn oversized_document(client_id: &str) -> Vec<u8> {
    let mut document = document(client_id, "Oversized Client", &[CIMD_REDIRECT_URI]);
    document["conformance_padding"] = Value::String("x".repeat(OVERSIZED_BYTES));
    document.to_string().into_bytes()
}

/// "Authorization servers SHOULD limit the response size when fetching the client metadata
/// document [...] The recommended maximum response size for client metadata documents is 5
/// kilobytes" (draft-ietf-oauth-client-id-metadata-document, Maximum Response Size for
/// Client Metadata Documents). Any limit conforms, hence documents of a mebibyte: one whose
/// `Content-Length` says so, and one sent chunked, whose size only reading tells.
async fn oversized_documents_are_refused(cx: Ctx) -> anyhow::Result<Verdict> {
    let host = match host(&cx).await? {
        Ok(host) => host,
        Err(skip) => return Ok(skip),
    };
    let mut f = Findings::new(&cx);
    let at = "/clients/oversized.json";
    let client_id = host.url(at);
    host.serve(at, oversized_document(&client_id), None).await;
    let ex = request_authorization(&cx, &client_id, CIMD_REDIRECT_URI).await?;
    require_fetched(&host, at).await?;
    if let Some(problem) = not_refused(&ex, CIMD_REDIRECT_URI) {
        f.require(
            false,
            format!(
                "a document of {OVERSIZED_BYTES} bytes, announced in Content-Length, was \
                 accepted: {problem}"
            ),
            Some(&ex),
        );
    }
    let chunked = ChunkedHost::start().await?;
    let client_id = chunked.url("/clients/oversized-chunked.json");
    chunked.serve(oversized_document(&client_id));
    let ex = request_authorization(&cx, &client_id, CIMD_REDIRECT_URI).await?;
    if chunked.fetches() == 0 {
        return Err(needs(
            FLOW,
            anyhow!(
                "the server never fetched the metadata document {client_id} (see AUTH-CIMD-08)"
            ),
        ));
    }
    if let Some(problem) = not_refused(&ex, CIMD_REDIRECT_URI) {
        f.require(
            false,
            format!(
                "a document of {OVERSIZED_BYTES} bytes, sent chunked without Content-Length, \
                 was accepted: {problem}"
            ),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

/// "Authorization servers fetching metadata documents SHOULD consider Server-Side Request
/// Forgery (SSRF) risks" (MCP 2025-11-25 and 2026-07-28). The draft's `client_id` must be an
/// `https` URL with a path; a host name that leads to this machine must not be fetched. A
/// canary on loopback counts connections, so a refusal is told from a fetch that failed. The
/// loopback IP literal the fixture host uses is probed only with a user name in the URL: a
/// server under test needs a test setting for the literal, which must not extend to names
/// nor to URLs the draft forbids for other reasons.
async fn internal_addresses_are_not_fetched(cx: Ctx) -> anyhow::Result<Verdict> {
    if let Err(skip) = host(&cx).await? {
        return Ok(skip);
    }
    let mut f = Findings::new(&cx);
    let canary = Canary::start().await?;
    let port = canary.port;
    for (client_id, what) in [
        (
            format!("https://localhost:{port}/client.json"),
            "a host name that resolves to a loopback address",
        ),
        (
            format!("http://localhost:{port}/client.json"),
            "plain http to a loopback host name",
        ),
        (format!("https://localhost:{port}"), "a URL without a path"),
        // The same on the loopback literal, which a test setting may allow: there the missing
        // path is the only reason left to refuse it.
        (
            format!("http://127.0.0.1:{port}/"),
            "a URL without a path, on the loopback literal",
        ),
        // The draft: a client identifier URL "MUST NOT contain a username or password
        // component". On the loopback literal, which a test setting may allow, the user
        // name is the only reason left to refuse it.
        (
            format!("http://conformance@127.0.0.1:{port}/client.json"),
            "a URL with a user name",
        ),
    ] {
        let before = canary.connections();
        let ex = request_authorization(&cx, &client_id, CIMD_REDIRECT_URI).await?;
        let connected = canary.connections() - before;
        f.require(
            connected == 0,
            format!("the server connected to {client_id} ({what}) to fetch a metadata document"),
            Some(&ex),
        );
        if let Some(problem) = not_refused(&ex, CIMD_REDIRECT_URI) {
            f.require(
                false,
                format!("the client_id {client_id} ({what}) was not refused: {problem}"),
                Some(&ex),
            );
        }
    }
    Ok(f.verdict())
}

/// "MUST clearly display the redirect URI hostname during authorization" (MCP 2026-07-28,
/// Security Considerations, Localhost Redirect URI Risks; the 2025-11-25 consent page shows
/// the client of a document and where it sends the user).
async fn consent_shows_the_redirect_host(cx: Ctx) -> anyhow::Result<Verdict> {
    let host = match host(&cx).await? {
        Ok(host) => host,
        Err(skip) => return Ok(skip),
    };
    let mut f = Findings::new(&cx);
    let name = format!("CIMD Conformance Client {}", rand::random::<u32>());
    let at = "/clients/consent.json";
    let client_id = host.serve_valid(at, &name, None).await;
    let mut browser = cx.browser();
    let opts = LoginOptions {
        client: Some(url_client(&client_id, CIMD_REDIRECT_URI)),
        ..LoginOptions::default()
    };
    let authorized = cx.authorize_in(&mut browser, &opts, Consent::Stop).await?;
    let page = match &authorized.outcome.arrival {
        Arrival::Page(ex) if ex.status == 200 => ex.clone(),
        // AUTH-3P-03 judges whether a consent page is shown; without one this check is blocked
        // (by AUTH-CIMD-08 when the document was not even fetched).
        _ => {
            require_fetched(&host, at).await?;
            return Err(needs(
                "AUTH-3P-03",
                anyhow!(
                    "no consent page was shown for the client of a metadata document: {}",
                    authorized.outcome.describe(cx.http())
                ),
            ));
        }
    };
    let redirect_host = Url::parse(CIMD_REDIRECT_URI)?
        .host_str()
        .unwrap_or_default()
        .to_owned();
    let text = visible_text(&page.text());
    f.require(
        text.contains(&redirect_host),
        format!(
            "the consent page for the client of a metadata document does not show the redirect \
             URI's host {redirect_host}"
        ),
        Some(&page),
    );
    if !text.contains(&name) {
        f.note("the consent page does not show the document's client_name");
    }
    Ok(f.verdict())
}

/// The text a person reads on a page: element text, without attributes (a form's `action`
/// names the server's own host, which proves nothing about the redirect URI).
fn visible_text(html: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let body = scraper::Selector::parse("body").expect("a valid selector");
    doc.select(&body)
        .flat_map(|element| element.text())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The whole flow with a URL `client_id` and `token_endpoint_auth_method: none`: the
/// authorization server fetches the document, shows the consent page, issues a code, and the
/// token endpoint accepts `client_id=<URL>` (MCP 2025-11-25, Client ID Metadata Documents
/// Flow: "Exchange code for token client_id=https://app.example.com/oauth/metadata.json").
async fn login_with_a_url_client_id(cx: Ctx) -> anyhow::Result<Verdict> {
    let host = match host(&cx).await? {
        Ok(host) => host,
        Err(skip) => return Ok(skip),
    };
    let mut f = Findings::new(&cx);
    let at = "/clients/flow.json";
    let client_id = host.serve_valid(at, "CIMD Flow Client", None).await;
    let client = url_client(&client_id, CIMD_REDIRECT_URI);
    let mut browser = cx.browser();
    let opts = LoginOptions {
        client: Some(client.clone()),
        ..LoginOptions::default()
    };
    let authorized = cx
        .authorize_in(&mut browser, &opts, Consent::Approve)
        .await?;
    let Ok(code) = authorized.code(cx.http()) else {
        if host.fetches(at).await == 0 {
            return Err(anyhow!(
                "the server never fetched the metadata document {client_id} from the suite's \
                 loopback fixture host, so a URL client_id could not be tried. A server that \
                 refuses loopback addresses (as AUTH-CIMD-06 asks) needs a test setting that \
                 allows the loopback IP literal (the reference server's is \
                 MCP_GITHUB_CIMD_ALLOW_LOOPBACK=1): {}",
                authorized.outcome.describe(cx.http())
            ));
        }
        f.require(
            false,
            format!(
                "the authorization with a valid metadata document did not return a code: {}",
                authorized.outcome.describe(cx.http())
            ),
            None,
        );
        return Ok(f.verdict());
    };
    let ex = flow::exchange_code(
        cx.http(),
        &cx.endpoints()?.token,
        &client,
        &code,
        Some(&authorized.pkce.verifier),
        authorized.resource.as_deref(),
    )
    .await?;
    let tokens = match flow::parse_tokens(cx.http(), ex.clone()) {
        Ok(tokens) if ex.status == 200 => tokens,
        _ => {
            f.require(
                false,
                format!(
                    "the token endpoint refused the code exchange of client_id={client_id} \
                     (answered {})",
                    ex.status
                ),
                Some(&ex),
            );
            return Ok(f.verdict());
        }
    };
    let probe = cx.probe_bearer(&tokens.access_token).await?;
    f.require(
        !matches!(probe.status, 401 | 403),
        format!(
            "the access token issued to the client of a metadata document was refused ({})",
            probe.status
        ),
        Some(&probe),
    );
    Ok(f.verdict())
}
