//! AUTH-ASM: the authorization server metadata (RFC 8414) and how clients find it.

use serde_json::Value;

use super::{Check, Ctx, Findings, LoginOptions, Scope, Verdict, json_error};
use crate::body;
use crate::http::Req;
use crate::oauth::discovery::AsSource;
use crate::version::{Version, Versions};

const AS: Scope = Scope::AuthServer;

pub fn checks() -> Vec<Check> {
    vec![
        Check::new(
            "AUTH-ASM-01",
            AS,
            body!(root_metadata_for_2025_03_26_clients),
        ),
        Check::new("AUTH-ASM-02", AS, body!(authorization_base_url_is_the_root))
            .also(&["AUTH-ASM-03"]),
        Check::new("AUTH-ASM-04", AS, body!(metadata_is_found_from_the_issuer))
            .also(&["AUTH-ASM-05"]),
        Check::new("AUTH-ASM-06", AS, body!(issuer_matches)),
        Check::new("AUTH-ASM-07", AS, body!(required_fields)).also(&["AUTH-ASM-12"]),
        Check::new("AUTH-ASM-08", AS, body!(s256_is_advertised)),
        Check::new("AUTH-ASM-09", AS, body!(oidc_document_is_consistent)),
        Check::new("AUTH-ASM-10", AS, body!(cimd_support_is_advertised)),
        Check::new("AUTH-ASM-11", AS, body!(iss_is_advertised)),
        Check::new(
            "AUTH-ASM-13",
            AS,
            body!(metadata_ignores_protocol_version_header),
        )
        .versions(Versions::since(Version::V2025_03_26)),
        Check::new("AUTH-ASM-14", AS, body!(metadata_is_public_json)),
        Check::new("AUTH-ASM-03", AS, body!(default_endpoints_without_metadata)),
        // RFC 8414 section 3: metadata "MUST" be available "at a path formed by
        // inserting a well-known URI string into the authorization server's issuer
        // identifier between the host component and the path component". AUTH-ASM-04's
        // discovery tries exactly that URL first; a server that serves only OpenID
        // discovery fails it where 2025-06-18 requires RFC 8414 metadata.
        Check::new("AUTH-ASM-05", AS, body!(metadata_is_found_from_the_issuer)),
        Check::new("AUTH-ASM-12", AS, body!(registration_is_advertised)),
    ]
}

/// The root document a 2025-03-26 client asks for: the MCP URL's path discarded.
fn root_metadata_url(cx: &Ctx) -> anyhow::Result<url::Url> {
    Ok(cx
        .config()
        .url
        .join("/.well-known/oauth-authorization-server")?)
}

/// AUTH-ASM-01, the SHOULD half: "MCP servers SHOULD ... implement OAuth 2.0 Authorization
/// Server Metadata (RFC8414)" (2025-03-26), found where that version's clients look, with the
/// origin as its issuer. A server without it may use the default endpoints instead, which
/// AUTH-ASM-02 judges at its own level; here it is only a warning.
async fn root_metadata_for_2025_03_26_clients(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let origin = cx.config().url.origin().ascii_serialization();
    let ex = cx.http().send(Req::get(root_metadata_url(&cx)?)).await?;
    if !f.prefer(
        ex.status == 200,
        format!(
            "the root metadata a 2025-03-26 client asks for answered {}; such clients fall back to the default endpoints (AUTH-ASM-02)",
            ex.status
        ),
        Some(&ex),
    ) {
        return Ok(f.verdict());
    }
    match ex.json().filter(Value::is_object) {
        Some(doc) => {
            f.prefer(
                doc.get("issuer").and_then(Value::as_str) == Some(origin.as_str()),
                format!(
                    "the root metadata's issuer is {}, not the origin {origin:?}",
                    super::shown_json(doc.get("issuer"))
                ),
                Some(&ex),
            );
        }
        None => {
            f.prefer(false, "the root metadata is not a JSON object", Some(&ex));
        }
    }
    Ok(f.verdict())
}

/// AUTH-ASM-02 (with AUTH-ASM-03), the MUST half for 2025-03-26: "The authorization base URL
/// MUST be determined from the MCP server URL by discarding any existing path component"
/// and "The metadata endpoint MUST be at https://api.example.com/.well-known/oauth-authorization-server";
/// a server without that document must serve the defaults: "clients MUST use the following
/// default endpoint paths relative to the authorization base URL" (`/authorize`, `/token`,
/// `/register`). A server that claims 2025-03-26 and offers neither leaves those clients
/// nowhere to log in. Registration is a SHOULD in that version, so only `/authorize` and
/// `/token` are required of the defaults; an empty token request may get 400 or, from a
/// server that authenticates the client first, 401 `invalid_client` (RFC 6749 §5.2).
async fn authorization_base_url_is_the_root(cx: Ctx) -> anyhow::Result<Verdict> {
    let mut f = Findings::new(&cx);
    let root = root_metadata_url(&cx)?;
    let ex = cx
        .http()
        .send(Req::get(root.clone()).header("Accept", "application/json"))
        .await?;
    if ex.status == 200 {
        let doc = ex.json().filter(Value::is_object);
        let endpoints = ["authorization_endpoint", "token_endpoint"];
        let missing: Vec<&str> = endpoints
            .into_iter()
            .filter(|key| {
                doc.as_ref()
                    .and_then(|d| d.get(*key))
                    .and_then(Value::as_str)
                    .is_none_or(|u| url::Url::parse(u).is_err())
            })
            .collect();
        f.require(
            missing.is_empty(),
            format!(
                "the root metadata at {root} is no usable metadata document: it lacks {}",
                missing.join(" and ")
            ),
            Some(&ex),
        );
        return Ok(f.verdict());
    }
    f.note(format!(
        "no root metadata ({}); judged the default endpoints instead",
        ex.status
    ));
    judge_default_endpoints(&cx, &mut f, &root, ex.status).await?;
    Ok(f.verdict())
}

/// AUTH-ASM-03 (2025-03-26, Fallbacks for Servers without Metadata Discovery): "For
/// servers that do not implement OAuth 2.0 Authorization Server Metadata, clients MUST
/// use the following default endpoint paths relative to the authorization base URL:
/// /authorize, /token, /register". A server without root metadata is therefore only
/// reachable by 2025-03-26 clients when its endpoints answer at those paths. `/register`
/// is left out: registration is optional, and AUTH-REG-01 judges it.
async fn default_endpoints_without_metadata(cx: Ctx) -> anyhow::Result<Verdict> {
    let root = root_metadata_url(&cx)?;
    let ex = cx
        .http()
        .send(Req::get(root.clone()).header("Accept", "application/json"))
        .await?;
    if ex.status == 200 {
        return Ok(Verdict::Skip(format!(
            "metadata is served at {root}: the default endpoints apply only without it (see AUTH-ASM-02)"
        )));
    }
    let mut f = Findings::new(&cx);
    judge_default_endpoints(&cx, &mut f, &root, ex.status).await?;
    Ok(f.verdict())
}

/// Probes the 2025-03-26 default endpoints at the host root, for a server whose root
/// metadata answered `metadata_status`.
async fn judge_default_endpoints(
    cx: &Ctx,
    f: &mut Findings,
    root: &url::Url,
    metadata_status: u16,
) -> anyhow::Result<()> {
    let base = url::Url::parse(&cx.config().url.origin().ascii_serialization())?;
    let token = cx
        .http()
        .send(Req::post(base.join("/token")?).form([]))
        .await?;
    f.require(
        (400..500).contains(&token.status)
            && !matches!(token.status, 404 | 405)
            && json_error(&token).is_some(),
        format!(
            "no metadata at {root} ({metadata_status}), and the default POST /token answered {}, not an OAuth error",
            token.status
        ),
        Some(&token),
    );
    let authorize = cx.http().send(Req::get(base.join("/authorize")?)).await?;
    f.require(
        authorize.status != 404 && authorize.status != 405,
        format!(
            "no metadata at {root} ({metadata_status}), and the default GET /authorize answered {}",
            authorize.status
        ),
        Some(&authorize),
    );
    Ok(())
}

async fn metadata_is_found_from_the_issuer(cx: Ctx) -> anyhow::Result<Verdict> {
    let d = cx.discovery()?;
    let mut f = Findings::new(&cx);
    let tried: Vec<String> = d.tried.iter().map(|(u, s)| format!("{u} -> {s}")).collect();
    if d.prm.is_none() {
        f.require(
            false,
            "no protected resource metadata, so no authorization_servers to start from",
            None,
        );
        return Ok(f.verdict());
    }
    f.require(
        d.source == AsSource::Metadata,
        format!(
            "no metadata document at the URLs MCP clients try: {}",
            tried.join(", ")
        ),
        None,
    );
    // 2025-06-18 requires the RFC 8414 document specifically; OIDC alone is enough from 2025-11-25.
    if d.source == AsSource::Metadata
        && cx.version_selected(Version::V2025_06_18)
        && d.metadata_url
            .as_ref()
            .is_some_and(|u| u.path().contains("openid-configuration"))
    {
        f.require(
            false,
            "only an OpenID configuration was found; 2025-06-18 clients need RFC 8414 metadata",
            None,
        );
    }
    if let Some(doc) = &d.metadata {
        cx.record(
            "authorization server metadata",
            crate::snapshot::normalize_json(cx.config(), doc),
        );
    }
    f.note(format!("tried: {}", tried.join(", ")));
    Ok(f.verdict())
}

fn metadata(cx: &Ctx) -> anyhow::Result<Value> {
    let d = cx.discovery()?;
    d.metadata.clone().ok_or_else(|| {
        anyhow::anyhow!("no authorization server metadata was found (see AUTH-ASM-04)")
    })
}

async fn issuer_matches(cx: Ctx) -> anyhow::Result<Verdict> {
    let d = cx.discovery()?;
    let doc = metadata(&cx)?;
    let mut f = Findings::new(&cx);
    let issuer = doc.get("issuer").and_then(Value::as_str);
    f.require(
        issuer == Some(d.issuer.as_str()),
        format!(
            "metadata at {} has issuer {}; it was looked up for {:?} (compared byte for byte)",
            d.metadata_url
                .as_ref()
                .map(|u| u.as_str())
                .unwrap_or_default(),
            super::shown(issuer),
            d.issuer
        ),
        None,
    );
    if let Some(i) = issuer.and_then(|i| url::Url::parse(i).ok()) {
        f.require(
            i.query().is_none() && i.fragment().is_none(),
            "the issuer has a query or fragment",
            None,
        );
    }
    Ok(f.verdict())
}

/// Every metadata document the authorization server serves at the URLs clients try
/// (RFC 8414 and OpenID Connect discovery), with the URL it came from. The one discovery
/// found comes first.
async fn served_documents(cx: &Ctx) -> anyhow::Result<Vec<(url::Url, Value)>> {
    let d = cx.discovery()?;
    let mut out: Vec<(url::Url, Value)> = d
        .metadata_url
        .clone()
        .zip(d.metadata.clone())
        .into_iter()
        .collect();
    let Ok(issuer) = url::Url::parse(&d.issuer) else {
        return Ok(out);
    };
    for url in crate::oauth::discovery::as_metadata_urls(&issuer) {
        if out.iter().any(|(u, _)| *u == url) {
            continue;
        }
        let ex = cx
            .http()
            .send(Req::get(url.clone()).header("Accept", "application/json"))
            .await?;
        if ex.status == 200
            && let Some(doc) = ex.json().filter(Value::is_object)
        {
            out.push((url, doc));
        }
    }
    Ok(out)
}

fn strings(doc: &Value, key: &str) -> Option<Vec<String>> {
    doc.get(key)?.as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
}

async fn required_fields(cx: Ctx) -> anyhow::Result<Verdict> {
    let doc = metadata(&cx)?;
    let mut f = Findings::new(&cx);
    // What the server does, to compare the lists with: a public client's login (the suite's
    // default) and whether its token response carried a refresh token.
    // A login that fails is another check's finding; the lists are then judged without it.
    let (public_accepted, refresh_issued) = match cx.login(LoginOptions::default()).await {
        Ok(login) => (
            login.client().auth_method == "none",
            login.tokens.refresh_token.is_some(),
        ),
        Err(e) => {
            f.note(format!(
                "the lists were not compared with a login, which failed: {e:#}"
            ));
            (false, false)
        }
    };
    for (url, doc) in served_documents(&cx).await? {
        judge_required_fields(&mut f, &url, &doc, public_accepted, refresh_issued);
    }
    f.prefer(
        doc.get("scopes_supported").is_some(),
        "scopes_supported (RECOMMENDED) is missing",
        None,
    );
    if let Some(endpoint) = doc.get("registration_endpoint").and_then(Value::as_str) {
        // AUTH-ASM-12: an advertised registration endpoint works.
        let reg = crate::oauth::registration::post(
            cx.http(),
            &url::Url::parse(endpoint)?,
            &crate::oauth::registration::metadata(
                crate::oauth::registration::ClientKind::Public,
                "conformance metadata",
                &[crate::oauth::REDIRECT_URI],
            ),
        )
        .await?;
        f.prefer(
            reg.status == 201,
            format!(
                "the advertised registration endpoint answered {}",
                reg.status
            ),
            Some(&reg),
        );
    }
    Ok(f.verdict())
}

/// RFC 8414 §2's REQUIRED fields, and lists that agree with what the server does:
/// `grant_types_supported` names `refresh_token` when refresh tokens are issued, and
/// `token_endpoint_auth_methods_supported` names `none` when public clients are accepted
/// (the catalogue's consistency checks). A list that is absent is not judged.
fn judge_required_fields(
    f: &mut Findings,
    url: &url::Url,
    doc: &Value,
    public_accepted: bool,
    refresh_issued: bool,
) {
    for key in ["issuer", "authorization_endpoint", "token_endpoint"] {
        f.require(
            doc.get(key).and_then(Value::as_str).is_some(),
            format!("{key} is missing from {url}"),
            None,
        );
    }
    match strings(doc, "response_types_supported") {
        Some(types) => f.require(
            types.iter().any(|t| t == "code"),
            format!("response_types_supported of {url} lacks \"code\""),
            None,
        ),
        None => f.require(
            false,
            format!("response_types_supported is missing from {url}"),
            None,
        ),
    };
    if let Some(grants) = strings(doc, "grant_types_supported") {
        f.require(
            grants.iter().any(|g| g == "authorization_code"),
            format!("grant_types_supported of {url} lacks authorization_code"),
            None,
        );
        f.require(
            !refresh_issued || grants.iter().any(|g| g == "refresh_token"),
            format!(
                "the server issues refresh tokens, but grant_types_supported of {url} is {}",
                super::shown_json(doc.get("grant_types_supported"))
            ),
            None,
        );
    }
    if let Some(methods) = strings(doc, "token_endpoint_auth_methods_supported") {
        f.require(
            !public_accepted || methods.iter().any(|m| m == "none"),
            format!(
                "the server accepts public clients, but token_endpoint_auth_methods_supported of {url} is {}",
                super::shown_json(doc.get("token_endpoint_auth_methods_supported"))
            ),
            None,
        );
    }
}

async fn s256_is_advertised(cx: Ctx) -> anyhow::Result<Verdict> {
    metadata(&cx)?;
    let mut f = Findings::new(&cx);
    // "Authorization servers providing OpenID Connect Discovery 1.0 MUST include
    // code_challenge_methods_supported in their metadata" (2025-11-25), and PKCE is required
    // of every client: so every served document, OAuth and OIDC, lists S256.
    for (url, doc) in served_documents(&cx).await? {
        let methods: Vec<&str> = doc
            .get("code_challenge_methods_supported")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        f.require(
            methods.contains(&"S256"),
            format!(
                "code_challenge_methods_supported of {url} is {}",
                super::shown_json(doc.get("code_challenge_methods_supported"))
            ),
            None,
        );
    }
    Ok(f.verdict())
}

/// "Authorization servers that include the iss parameter MUST advertise this by setting
/// authorization_response_iss_parameter_supported to true in their metadata" (2026-07-28),
/// and RFC 9207 §3: a server that advertises it "MUST" include `iss` in every authorization
/// response, success and error.
async fn iss_is_advertised(cx: Ctx) -> anyhow::Result<Verdict> {
    let d = cx.discovery()?;
    let advertised = d.iss_advertised();
    let (ok, denied) = futures::try_join!(
        cx.authorize(LoginOptions::default()),
        cx.authorize(LoginOptions {
            fault: Some("access_denied".into()),
            ..LoginOptions::default()
        })
    )?;
    let mut f = Findings::new(&cx);
    for (what, a) in [
        ("the success redirect", &ok),
        ("the error redirect", &denied),
    ] {
        let Some(callback) = a.callback.as_ref() else {
            anyhow::bail!(
                "{what} never reached the client: {}",
                a.outcome.describe(cx.http())
            );
        };
        match (&callback.iss, advertised) {
            (Some(_), false) => {
                f.require(
                    false,
                    format!(
                        "{what} carries iss, but the metadata does not set authorization_response_iss_parameter_supported to true"
                    ),
                    None,
                );
            }
            (None, true) => {
                f.require(
                    false,
                    format!(
                        "the metadata sets authorization_response_iss_parameter_supported, but {what} has no iss"
                    ),
                    None,
                );
            }
            _ => {}
        }
    }
    Ok(f.verdict())
}

async fn metadata_ignores_protocol_version_header(cx: Ctx) -> anyhow::Result<Verdict> {
    let d = cx.discovery()?;
    let Some(url) = d.metadata_url.clone() else {
        return Ok(Verdict::Skip("no metadata document".into()));
    };
    let mut f = Findings::new(&cx);
    for v in ["2024-11-05", "2025-03-26", "garbage"] {
        let ex = cx
            .http()
            .send(Req::get(url.clone()).header("MCP-Protocol-Version", v))
            .await?;
        f.prefer(
            ex.status == 200 && ex.json() == d.metadata,
            format!(
                "with MCP-Protocol-Version: {v} the metadata answered {} or differed",
                ex.status
            ),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

async fn metadata_is_public_json(cx: Ctx) -> anyhow::Result<Verdict> {
    let d = cx.discovery()?;
    let mut f = Findings::new(&cx);
    let urls: Vec<url::Url> = d
        .metadata_url
        .iter()
        .chain(d.prm_url.iter())
        .cloned()
        .collect();
    if urls.is_empty() {
        return Ok(Verdict::Skip("no metadata document was found".into()));
    }
    for url in urls {
        let ex = cx.http().send(Req::get(url.clone())).await?;
        f.require(
            ex.status == 200,
            format!("{url} answered {}", ex.status),
            Some(&ex),
        );
        f.require(
            ex.content_type().as_deref() == Some("application/json"),
            format!(
                "{url} has Content-Type {}",
                super::shown(ex.header("content-type"))
            ),
            Some(&ex),
        );
        f.require(
            ex.json().is_some_and(|v| v.is_object()),
            format!("{url} is not a JSON object"),
            Some(&ex),
        );
    }
    Ok(f.verdict())
}

/// AUTH-ASM-09: "Authorization servers providing OpenID Connect Discovery 1.0 MUST include
/// `code_challenge_methods_supported` in their metadata to ensure MCP compatibility"
/// (2025-11-25), and OpenID Connect Discovery 1.0 section 4.3: "The issuer value returned
/// MUST be identical to the Issuer URL that was used as the prefix to
/// /.well-known/openid-configuration". The fields OpenID Connect itself requires of a
/// provider (`jwks_uri`, ...) are noted, not judged: an OAuth server that publishes its
/// metadata at the OIDC location need not issue ID tokens for MCP.
async fn oidc_document_is_consistent(cx: Ctx) -> anyhow::Result<Verdict> {
    let d = cx.discovery()?;
    let oidc: Vec<(url::Url, Value)> = served_documents(&cx)
        .await?
        .into_iter()
        .filter(|(url, _)| url.path().contains("openid-configuration"))
        .collect();
    if oidc.is_empty() {
        return Ok(Verdict::Skip(
            "no OpenID Connect discovery document is served (RFC 8414 metadata is enough)".into(),
        ));
    }
    let mut f = Findings::new(&cx);
    for (url, doc) in &oidc {
        let issuer = doc.get("issuer").and_then(Value::as_str);
        f.require(
            issuer == Some(d.issuer.as_str()),
            format!(
                "{url} has issuer {}; it was looked up for {:?} (compared byte for byte)",
                super::shown_json(doc.get("issuer")),
                d.issuer
            ),
            None,
        );
        let methods = strings(doc, "code_challenge_methods_supported").unwrap_or_default();
        f.require(
            methods.iter().any(|m| m == "S256"),
            format!(
                "{url}: code_challenge_methods_supported is {}, without S256",
                super::shown_json(doc.get("code_challenge_methods_supported"))
            ),
            None,
        );
        let missing: Vec<&str> = [
            "jwks_uri",
            "subject_types_supported",
            "id_token_signing_alg_values_supported",
        ]
        .into_iter()
        .filter(|field| doc.get(*field).is_none())
        .collect();
        if !missing.is_empty() {
            f.note(format!(
                "{url} lacks what OpenID Connect requires of a provider: {}",
                missing.join(", ")
            ));
        }
    }
    Ok(f.verdict())
}

/// AUTH-ASM-10: "Authorization servers advertise that they support clients using Client
/// ID Metadata Documents by including the following property in their OAuth
/// Authorization Server metadata: `\"client_id_metadata_document_supported\": true`"
/// (2025-11-25). Clients test the flag for `true`, so anything but a boolean leaves a
/// server's support unseen. A server without the flag does not offer CIMD, which is
/// AUTH-CIMD-01's to judge.
async fn cimd_support_is_advertised(cx: Ctx) -> anyhow::Result<Verdict> {
    let doc = metadata(&cx)?;
    let mut f = Findings::new(&cx);
    match doc.get("client_id_metadata_document_supported") {
        None => {
            return Ok(Verdict::Skip(
                "the metadata does not advertise client ID metadata documents (see AUTH-CIMD-01)"
                    .into(),
            ));
        }
        Some(Value::Bool(flag)) => f.note(format!("client_id_metadata_document_supported: {flag}")),
        Some(other) => {
            f.require(
                false,
                format!("client_id_metadata_document_supported is {other}, not a boolean"),
                None,
            );
        }
    }
    Ok(f.verdict())
}

/// AUTH-ASM-12 (2025-11-25, Client Registration Approaches): clients "Use Dynamic Client
/// Registration as a fallback if the Authorization Server supports it (via
/// `registration_endpoint` in OAuth Authorization Server Metadata)". Clients learn of the
/// support only from the metadata, so a server that registers clients must advertise
/// where. An advertised endpoint must register a client; without one, a 201 with a
/// `client_id` from `/register` under the issuer (the path 2025-03-26 made the default)
/// shows registration that clients cannot find. Any other answer there proves nothing,
/// since registration is optional.
async fn registration_is_advertised(cx: Ctx) -> anyhow::Result<Verdict> {
    let doc = metadata(&cx)?;
    let metadata_body = crate::oauth::registration::metadata(
        crate::oauth::registration::ClientKind::Public,
        "conformance registration discovery",
        &[crate::oauth::REDIRECT_URI],
    );
    let mut f = Findings::new(&cx);
    if let Some(endpoint) = doc.get("registration_endpoint").and_then(Value::as_str) {
        let reg = crate::oauth::registration::post(
            cx.http(),
            &url::Url::parse(endpoint)?,
            &metadata_body,
        )
        .await?;
        f.prefer(
            reg.status == 201,
            format!(
                "the advertised registration endpoint answered {}",
                reg.status
            ),
            Some(&reg),
        );
        return Ok(f.verdict());
    }
    let Some(issuer) = doc.get("issuer").and_then(Value::as_str) else {
        return Ok(Verdict::Skip(
            "the metadata has no issuer to find /register under (see AUTH-ASM-07)".into(),
        ));
    };
    let guess = url::Url::parse(&format!("{}/register", issuer.trim_end_matches('/')))?;
    let reg = crate::oauth::registration::post(cx.http(), &guess, &metadata_body).await?;
    let client_id = reg.json().and_then(|d| {
        d.get("client_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    if let Some(id) = &client_id {
        cx.http().redactor.add(id, "client_id");
    }
    f.prefer(
        !(reg.status == 201 && client_id.is_some()),
        format!(
            "POST {guess} registered a client, but the metadata has no registration_endpoint, \
             so clients cannot know that dynamic registration is supported"
        ),
        Some(&reg),
    );
    Ok(f.verdict())
}
