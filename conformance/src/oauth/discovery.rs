//! Discovery, as an MCP client does it: an unauthenticated request, the 401 challenge and its
//! `resource_metadata`, the protected resource metadata (RFC 9728), `authorization_servers[0]`,
//! then the authorization server metadata in the order MCP clients probe (RFC 8414 path
//! insertion, then OpenID Connect), and for 2025-03-26 servers the root document or the default
//! `/authorize` `/token` `/register` endpoints.

use anyhow::{Context as _, anyhow};
use serde_json::Value;
use url::Url;

use crate::http::challenge::{Challenge, bearer};
use crate::http::{Exchange, Http, Req};

/// Endpoints the flow uses.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorization: Url,
    pub token: Url,
    pub registration: Option<Url>,
    pub revocation: Option<Url>,
}

/// How the authorization server was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsSource {
    /// A metadata document (RFC 8414 or OIDC).
    Metadata,
    /// No document: the 2025-03-26 default paths.
    Defaults,
}

/// Everything discovery learned for one MCP endpoint.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The MCP endpoint discovery started from.
    pub mcp_url: Url,
    /// The unauthenticated probe and its challenge.
    pub probe: Exchange,
    pub challenge: Option<Challenge>,
    /// Where the PRM document came from and what it says.
    pub prm_url: Option<Url>,
    pub prm: Option<Value>,
    /// `authorization_servers[0]`, or the origin for 2025-03-26 servers.
    pub issuer: String,
    /// The metadata URL that answered, and the document.
    pub metadata_url: Option<Url>,
    pub metadata: Option<Value>,
    /// Every metadata URL tried, with its status (`0` when the request failed).
    pub tried: Vec<(Url, u16)>,
    pub source: AsSource,
    pub endpoints: Endpoints,
}

impl Discovery {
    /// The `resource` to ask tokens for: the PRM's `resource`, else the MCP URL.
    pub fn resource(&self) -> String {
        self.prm
            .as_ref()
            .and_then(|p| p.get("resource"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| self.mcp_url.to_string())
    }

    /// Whether the metadata promises `iss` in authorization responses (RFC 9207 §3).
    pub fn iss_advertised(&self) -> bool {
        self.metadata
            .as_ref()
            .and_then(|m| m.get("authorization_response_iss_parameter_supported"))
            .and_then(serde_json::Value::as_bool)
            == Some(true)
    }

    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata.as_ref()?.get(key)?.as_str()
    }
}

/// The PRM URLs to try for a resource URL: path-suffixed first, then the root (RFC 9728 §3.1).
pub fn prm_urls(resource: &Url) -> Vec<Url> {
    let mut out = Vec::new();
    let path = resource.path().trim_end_matches('/');
    let mut root = resource.clone();
    root.set_query(None);
    root.set_fragment(None);
    root.set_path("/.well-known/oauth-protected-resource");
    if !path.is_empty() {
        let mut suffixed = root.clone();
        suffixed.set_path(&format!("/.well-known/oauth-protected-resource{path}"));
        out.push(suffixed);
    }
    out.push(root);
    out
}

/// The authorization server metadata URLs in the order MCP clients try them (2025-11-25
/// authorization spec): RFC 8414 with path insertion, then OIDC with path insertion, then OIDC
/// with the path appended; for an issuer without a path, RFC 8414 then OIDC at the root.
pub fn as_metadata_urls(issuer: &Url) -> Vec<Url> {
    let path = issuer.path().trim_end_matches('/');
    let at = |p: String| {
        let mut u = issuer.clone();
        u.set_query(None);
        u.set_fragment(None);
        u.set_path(&p);
        u
    };
    if path.is_empty() {
        vec![
            at("/.well-known/oauth-authorization-server".into()),
            at("/.well-known/openid-configuration".into()),
        ]
    } else {
        vec![
            at(format!("/.well-known/oauth-authorization-server{path}")),
            at(format!("/.well-known/openid-configuration{path}")),
            at(format!("{path}/.well-known/openid-configuration")),
        ]
    }
}

/// Runs discovery for one MCP endpoint. `probe` is the unauthenticated request to start from.
pub async fn discover(http: &Http, mcp_url: &Url, probe: Req) -> anyhow::Result<Discovery> {
    let probe = http.send(probe).await?;
    let challenge = bearer(probe.header_all("www-authenticate"));
    let header_url = challenge
        .as_ref()
        .and_then(|c| c.param("resource_metadata"))
        .and_then(|u| mcp_url.join(u).ok());

    let mut candidates: Vec<Url> = header_url.into_iter().collect();
    candidates.extend(prm_urls(mcp_url));
    let mut prm = None;
    for url in candidates {
        let Ok(ex) = http
            .send(Req::get(url.clone()).header("Accept", "application/json"))
            .await
        else {
            continue;
        };
        if ex.status == 200
            && let Some(doc) = ex.json().filter(Value::is_object)
        {
            prm = Some((url, doc));
            break;
        }
    }

    let origin = mcp_url.origin().ascii_serialization();
    let (issuer, urls) = match prm.as_ref().and_then(|(_, doc)| {
        doc.get("authorization_servers")?
            .as_array()?
            .first()?
            .as_str()
            .map(str::to_owned)
    }) {
        Some(issuer) => {
            let parsed = Url::parse(&issuer)
                .with_context(|| format!("authorization server {issuer:?} is not a URL"))?;
            let urls = as_metadata_urls(&parsed);
            (issuer, urls)
        }
        None => {
            // 2025-03-26: the authorization base URL is the MCP URL with its path discarded.
            let root = Url::parse(&origin)?;
            (
                origin.clone(),
                vec![root.join("/.well-known/oauth-authorization-server")?],
            )
        }
    };

    let mut tried = Vec::new();
    let mut found = None;
    for url in urls {
        match http
            .send(Req::get(url.clone()).header("Accept", "application/json"))
            .await
        {
            Ok(ex) => {
                tried.push((url.clone(), ex.status));
                if ex.status == 200
                    && let Some(doc) = ex.json().filter(Value::is_object)
                {
                    found = Some((url, doc));
                    break;
                }
            }
            Err(_) => tried.push((url, 0)),
        }
    }

    let (metadata_url, metadata, source, endpoints) = match found {
        Some((url, doc)) => {
            let endpoint = |key: &str| -> anyhow::Result<Option<Url>> {
                doc.get(key)
                    .and_then(Value::as_str)
                    .map(|s| Url::parse(s).with_context(|| format!("{key} {s:?} is not a URL")))
                    .transpose()
            };
            let endpoints = Endpoints {
                authorization: endpoint("authorization_endpoint")?.ok_or_else(|| {
                    anyhow!("the metadata at {url} has no authorization_endpoint")
                })?,
                token: endpoint("token_endpoint")?
                    .ok_or_else(|| anyhow!("the metadata at {url} has no token_endpoint"))?,
                registration: endpoint("registration_endpoint")?,
                revocation: endpoint("revocation_endpoint")?,
            };
            (Some(url), Some(doc), AsSource::Metadata, endpoints)
        }
        None => {
            let base = Url::parse(&origin)?;
            let endpoints = Endpoints {
                authorization: base.join("/authorize")?,
                token: base.join("/token")?,
                registration: Some(base.join("/register")?),
                revocation: None,
            };
            (None, None, AsSource::Defaults, endpoints)
        }
    };
    let (prm_url, prm) = match prm {
        Some((u, d)) => (Some(u), Some(d)),
        None => (None, None),
    };
    Ok(Discovery {
        mcp_url: mcp_url.clone(),
        probe,
        challenge,
        prm_url,
        prm,
        issuer,
        metadata_url,
        metadata,
        tried,
        source,
        endpoints,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_insert_the_issuer_path_after_the_well_known_prefix() {
        let urls = as_metadata_urls(&Url::parse("https://auth.example.com/tenant1").unwrap());
        let urls: Vec<_> = urls.iter().map(Url::as_str).collect();
        assert_eq!(
            urls,
            [
                "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
                "https://auth.example.com/.well-known/openid-configuration/tenant1",
                "https://auth.example.com/tenant1/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn an_issuer_without_a_path_uses_the_root_documents() {
        let urls = as_metadata_urls(&Url::parse("http://127.0.0.1:8000").unwrap());
        assert_eq!(
            urls[0].as_str(),
            "http://127.0.0.1:8000/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            urls[1].as_str(),
            "http://127.0.0.1:8000/.well-known/openid-configuration"
        );
    }

    #[test]
    fn protected_resource_metadata_is_tried_path_first_then_root() {
        let urls = prm_urls(&Url::parse("http://127.0.0.1:8000/mcp").unwrap());
        assert_eq!(
            urls[0].as_str(),
            "http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            urls[1].as_str(),
            "http://127.0.0.1:8000/.well-known/oauth-protected-resource"
        );
    }
}
