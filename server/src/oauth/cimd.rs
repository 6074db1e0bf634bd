//! OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-00,
//! which MCP 2025-11-25 adopts): a client whose `client_id` is an HTTPS URL is described
//! by the JSON document served at that URL, and needs no registration.
//!
//! Fetching a URL that anyone can name is a server-side request forgery risk (the
//! draft's section 6.5), so a fetch is bounded in every way: only `https`, only public
//! addresses (host names are resolved by [`PublicOnlyResolver`], which refuses a name
//! that leads to a loopback, private or link-local address, so the address checked is
//! the address connected to), no redirects, no proxy, a time limit and a size limit.
//! Documents are cached as their `Cache-Control` header allows, in a bounded cache.
//!
//! The client a document describes is put into the client store, so that the token
//! endpoint knows it like a registered public client.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use reqwest::header::{ACCEPT, AGE, CACHE_CONTROL, CONTENT_LENGTH};
use serde_json::Value;
use tokio::time::Instant;
use url::{Host, Url};

use super::register::{
    MAX_REDIRECT_URI_BYTES, MAX_REDIRECT_URIS, check_redirect_uri, displayable_name,
};
use crate::{
    config::Config,
    store::{self, Client, Store},
};

/// The largest document read. The draft leaves the limit to the server; a document
/// with a name and a few redirect URIs is well under a kilobyte.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// The longest `client_id` URL this server fetches.
const MAX_CLIENT_ID_BYTES: usize = 2048;
/// Documents kept at most; the one that expires first makes room.
const MAX_CACHED_DOCUMENTS: usize = 1_000;
/// However long a document says it may be cached, it is fetched again after this.
const MAX_CACHE_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How long the `cimd-ignores-cache-headers` fault keeps every document.
const IGNORED_HEADERS_LIFETIME: Duration = Duration::from_secs(300);

/// Why a URL `client_id` was refused. Each is shown to the user on an error page and
/// never sent to the client's redirect URI, which is not trusted before the document
/// vouched for it.
#[derive(Debug, thiserror::Error)]
pub enum CimdError {
    #[error("the client_id URL is not acceptable: {0}")]
    BadUrl(&'static str),
    #[error("the client_id URL leads to an address this server does not fetch from ({0})")]
    Forbidden(String),
    #[error("the client's metadata document could not be fetched: {0}")]
    Fetch(String),
    #[error("the client's metadata document is not acceptable: {0}")]
    Invalid(String),
    #[error("too many clients are in use; try again later")]
    ClientsFull,
}

/// A refusal of the resolver, recognised again in reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error("{0} is not a public address")]
struct ForbiddenAddress(IpAddr);

struct Cached {
    client: Arc<Client>,
    expires_at: Instant,
}

/// The fetcher and its cache, one per server.
pub struct Cimd {
    http: reqwest::Client,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Cimd {
    pub fn new(config: &Config) -> Cimd {
        let resolver = PublicOnlyResolver {
            any_address: crate::injected!(config, CimdFetchAnyAddress),
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.upstream_timeout)
            .connect_timeout(config.upstream_timeout)
            .dns_resolver(resolver)
            .user_agent(concat!("mcp-github-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Cimd {
            http,
            cache: Mutex::default(),
        }
    }

    /// Whether `client_id` names a metadata document, to be handled here rather than
    /// looked up among registered clients. Registered clients get random ids, never URLs.
    pub fn handles(config: &Config, client_id: &str) -> bool {
        supported(config) && (client_id.starts_with("https://") || client_id.starts_with("http://"))
    }

    /// The client the document at `client_id` describes, from the cache or fetched,
    /// and known to the client store from now on.
    pub async fn client(
        &self,
        config: &Config,
        store: &Store,
        client_id: &str,
    ) -> Result<Arc<Client>, CimdError> {
        let url = check_client_id_url(config, client_id)?;
        if let Some(client) = self.cached(client_id) {
            return remember(config, store, client);
        }
        let (document, lifetime) = self.fetch(config, url).await?;
        let client = Arc::new(client_from_document(config, client_id, &document)?);
        if !lifetime.is_zero() {
            self.cache(client_id, client.clone(), lifetime);
        }
        remember(config, store, client)
    }

    fn cached(&self, client_id: &str) -> Option<Arc<Client>> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache
            .get(client_id)
            .filter(|cached| cached.expires_at > store::now())
            .map(|cached| cached.client.clone())
    }

    fn cache(&self, client_id: &str, client: Arc<Client>, lifetime: Duration) {
        let now = store::now();
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // A full cache gives up the entry that expires first, which is an expired one whenever
        // there is any; `cached` never answers with an expired entry, so they need no sweep.
        if cache.len() >= MAX_CACHED_DOCUMENTS && !cache.contains_key(client_id) {
            let first_to_expire = cache
                .iter()
                .min_by_key(|(_, cached)| cached.expires_at)
                .map(|(id, _)| id.clone());
            if let Some(id) = first_to_expire {
                cache.remove(&id);
            }
        }
        cache.insert(
            client_id.to_owned(),
            Cached {
                client,
                expires_at: store::deadline(now, lifetime),
            },
        );
    }

    /// GETs the document: 200 only, at most [`MAX_DOCUMENT_BYTES`], within the upstream
    /// timeout. Returns the body and how long it may be cached.
    async fn fetch(&self, config: &Config, url: Url) -> Result<(Vec<u8>, Duration), CimdError> {
        let request = self.http.get(url).header(ACCEPT, "application/json").send();
        let mut response = match tokio::time::timeout(config.upstream_timeout, request).await {
            Err(_) => {
                return Err(CimdError::Fetch(
                    "the client's server did not answer in time".into(),
                ));
            }
            Ok(Err(error)) => return Err(fetch_error(&error)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_redirection() {
            return Err(CimdError::Fetch(format!(
                "it answered HTTP {status} and redirects are not followed: the document \
                 must be served at the client_id URL itself"
            )));
        }
        if status != reqwest::StatusCode::OK {
            return Err(CimdError::Fetch(format!("it answered HTTP {status}")));
        }
        let too_large =
            || CimdError::Invalid(format!("it is larger than {MAX_DOCUMENT_BYTES} bytes"));
        let announced = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        let unbounded = crate::injected!(config, CimdUnboundedDocument);
        if announced.is_some_and(|length| length > MAX_DOCUMENT_BYTES as u64) && !unbounded {
            return Err(too_large());
        }
        let lifetime = cache_lifetime(config, response.headers());
        let mut body = Vec::new();
        let deadline = store::deadline(store::now(), config.upstream_timeout);
        loop {
            let chunk = tokio::time::timeout_at(deadline, response.chunk()).await;
            match chunk {
                Err(_) => {
                    return Err(CimdError::Fetch(
                        "the document did not arrive in time".into(),
                    ));
                }
                Ok(Err(error)) => return Err(fetch_error(&error)),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => {
                    if body.len() + chunk.len() > MAX_DOCUMENT_BYTES && !unbounded {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
            }
        }
        Ok((body, lifetime))
    }
}

/// Whether this server supports metadata documents (and says so in its metadata).
pub fn supported(config: &Config) -> bool {
    !crate::injected!(config, NoCimd)
}

/// Puts the document's client into the client store, so that the token endpoint knows
/// it, unless the store already holds the same client (replacing it would make a client
/// with a grant look unused again).
fn remember(config: &Config, store: &Store, client: Arc<Client>) -> Result<Arc<Client>, CimdError> {
    if crate::injected!(config, CimdClientForgotten) {
        return Ok(client);
    }
    let known = store.client(&client.client_id).is_some_and(|known| {
        known.client_name == client.client_name
            && known.redirect_uris == client.redirect_uris
            && known.grant_types == client.grant_types
            && known.secret_digest.is_none()
    });
    if !known {
        store
            .register_client(Client::clone(&client))
            .map_err(|_| CimdError::ClientsFull)?;
    }
    Ok(client)
}

/// The draft's rules for a `client_id` URL (section 3): https, a path, no fragment, no
/// user information, no dot segments. Only the canonical form is accepted (the form
/// [`Url`] serializes to), since the document must name exactly this string.
fn check_client_id_url(config: &Config, client_id: &str) -> Result<Url, CimdError> {
    if client_id.len() > MAX_CLIENT_ID_BYTES {
        return Err(CimdError::BadUrl("it is too long"));
    }
    let url = Url::parse(client_id).map_err(|_| CimdError::BadUrl("it is not a URL"))?;
    if crate::injected!(config, CimdFetchAnyAddress) {
        return Ok(url);
    }
    let loopback_literal = match url.host() {
        Some(Host::Ipv4(address)) => address.is_loopback(),
        Some(Host::Ipv6(address)) => canonical_ip(IpAddr::V6(address)).is_loopback(),
        _ => false,
    };
    let test_loopback = config.cimd_allow_loopback && loopback_literal;
    match url.scheme() {
        "https" => {}
        "http" if test_loopback => {}
        _ => return Err(CimdError::BadUrl("it must use the https scheme")),
    }
    if (!url.username().is_empty() || url.password().is_some())
        && !crate::injected!(config, CimdUserInfoAllowed)
    {
        return Err(CimdError::BadUrl(
            "it must not contain a user name or password",
        ));
    }
    if url.fragment().is_some() {
        return Err(CimdError::BadUrl("it must not contain a fragment"));
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err(CimdError::BadUrl("it must contain a path"));
    }
    if url.as_str() != client_id {
        return Err(CimdError::BadUrl(
            "it is not in canonical form (dot segments, letter case, escapes or a default port)",
        ));
    }
    let literal = match url.host() {
        Some(Host::Ipv4(address)) => Some(IpAddr::V4(address)),
        Some(Host::Ipv6(address)) => Some(IpAddr::V6(address)),
        Some(Host::Domain(_)) => None,
        None => return Err(CimdError::BadUrl("it has no host")),
    };
    // Host names are checked when they are resolved; literals never reach the resolver.
    if let Some(address) = literal
        && !is_public(address)
        && !test_loopback
    {
        return Err(CimdError::Forbidden(format!(
            "{address} is not a public address"
        )));
    }
    Ok(url)
}

/// Validates the document (the MCP 2025-11-25 requirements: "MUST validate that the
/// fetched document's `client_id` matches the URL exactly", "MUST validate the document
/// structure is valid JSON and contains required fields": `client_id`, `client_name`,
/// `redirect_uris`) and makes the public client it describes.
fn client_from_document(
    config: &Config,
    client_id: &str,
    body: &[u8],
) -> Result<Client, CimdError> {
    let document: Value = if crate::injected!(config, CimdFirstJsonValue) {
        serde_json::Deserializer::from_slice(body)
            .into_iter::<Value>()
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| CimdError::Invalid("it is not valid JSON".into()))?
    } else {
        serde_json::from_slice(body)
            .map_err(|error| CimdError::Invalid(format!("it is not valid JSON ({error})")))?
    };
    let Value::Object(fields) = document else {
        return Err(CimdError::Invalid("it is not a JSON object".into()));
    };
    let invalid = |message: &str| CimdError::Invalid(message.to_owned());
    match fields.get("client_id") {
        Some(Value::String(named)) if named == client_id => {}
        Some(Value::String(_)) if crate::injected!(config, CimdSkipClientIdCheck) => {}
        Some(Value::String(named)) => {
            return Err(CimdError::Invalid(format!(
                "its client_id {named:?} is not the URL it was fetched from"
            )));
        }
        _ => return Err(invalid("it has no client_id")),
    }
    let client_name = match fields.get("client_name") {
        Some(Value::String(name)) if !displayable_name(name).trim().is_empty() => {
            displayable_name(name).trim().to_owned()
        }
        _ => return Err(invalid("it has no client_name")),
    };
    let redirect_uris: Vec<String> = match fields.get("redirect_uris") {
        Some(Value::Array(uris)) if !uris.is_empty() => uris
            .iter()
            .map(|uri| uri.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| invalid("its redirect_uris are not all strings"))?,
        _ => return Err(invalid("it has no redirect_uris")),
    };
    if redirect_uris.len() > MAX_REDIRECT_URIS
        || redirect_uris
            .iter()
            .any(|uri| uri.len() > MAX_REDIRECT_URI_BYTES)
    {
        return Err(CimdError::Invalid(format!(
            "it lists more than {MAX_REDIRECT_URIS} redirect URIs or one longer than \
             {MAX_REDIRECT_URI_BYTES} bytes"
        )));
    }
    for uri in &redirect_uris {
        check_redirect_uri(uri, false)
            .map_err(|reason| CimdError::Invalid(format!("redirect URI {uri:?}: {reason}")))?;
    }
    // "the client MUST NOT use a shared secret" (the draft's section 4.1): this server
    // takes metadata-document clients as public clients only.
    if fields.contains_key("client_secret") || fields.contains_key("client_secret_expires_at") {
        return Err(invalid(
            "it contains a client_secret, which a metadata document must not",
        ));
    }
    match fields.get("token_endpoint_auth_method") {
        None => {}
        Some(Value::String(method)) if method == "none" => {}
        Some(_) => {
            return Err(invalid(
                "this server takes only public clients by metadata document \
                 (token_endpoint_auth_method none)",
            ));
        }
    }
    let grant_types: Vec<String> = match fields.get("grant_types") {
        None => vec!["authorization_code".into()],
        Some(Value::Array(grants)) => grants
            .iter()
            .map(|grant| grant.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| invalid("its grant_types are not all strings"))?,
        Some(_) => return Err(invalid("its grant_types is not a list")),
    };
    if let Some(unsupported) = grant_types
        .iter()
        .find(|grant| !["authorization_code", "refresh_token"].contains(&grant.as_str()))
    {
        return Err(CimdError::Invalid(format!(
            "grant type {unsupported:?} is not supported"
        )));
    }
    match fields.get("response_types") {
        None => {}
        Some(Value::Array(types)) if types.iter().all(|kind| kind == "code") => {}
        Some(_) => return Err(invalid("only the response type \"code\" is supported")),
    }
    Ok(Client {
        client_id: client_id.to_owned(),
        secret_digest: None,
        client_name: Some(client_name),
        redirect_uris,
        grant_types,
    })
}

/// How long a document may be reused, from its `Cache-Control` (`max-age` less `Age`;
/// nothing with `no-store` or `no-cache`). Without explicit freshness it is not kept:
/// the flow reads the document once per authorization request, and the token endpoint
/// uses the stored client.
fn cache_lifetime(config: &Config, headers: &reqwest::header::HeaderMap) -> Duration {
    if crate::injected!(config, CimdIgnoresCacheHeaders) {
        return IGNORED_HEADERS_LIFETIME;
    }
    let directives: Vec<String> = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|directive| directive.trim().to_ascii_lowercase())
        .collect();
    if directives
        .iter()
        .any(|directive| directive == "no-store" || directive == "no-cache")
    {
        return Duration::ZERO;
    }
    let Some(max_age) = directives
        .iter()
        .find_map(|directive| directive.strip_prefix("max-age="))
        .and_then(|seconds| seconds.trim_matches('"').parse::<u64>().ok())
    else {
        return Duration::ZERO;
    };
    let age = headers
        .get(AGE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_secs(max_age.saturating_sub(age)).min(MAX_CACHE_LIFETIME)
}

fn fetch_error(error: &reqwest::Error) -> CimdError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(forbidden) = cause.downcast_ref::<ForbiddenAddress>() {
            return CimdError::Forbidden(forbidden.to_string());
        }
        source = cause.source();
    }
    if error.is_timeout() {
        CimdError::Fetch("the client's server did not answer in time".into())
    } else if error.is_connect() {
        CimdError::Fetch("the client's server could not be reached".into())
    } else {
        CimdError::Fetch("the request failed".into())
    }
}

/// Resolves host names and refuses those that lead to an address that is not public,
/// so that a name cannot smuggle a fetch to this machine or its network. The check is
/// made on the addresses the connection will use, which a second lookup (DNS
/// rebinding) cannot change.
struct PublicOnlyResolver {
    /// Only with the `cimd-fetch-any-address` fault.
    any_address: bool,
}

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let any_address = self.any_address;
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !any_address
                && let Some(forbidden) = addresses.iter().find(|address| !is_public(address.ip()))
            {
                return Err(Box::new(ForbiddenAddress(forbidden.ip())) as _);
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical_ip(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether an address is on the public internet: not loopback, private, link-local
/// (cloud metadata services live at 169.254.169.254), shared, documentation,
/// benchmarking, multicast, reserved or unspecified.
pub fn is_public(address: IpAddr) -> bool {
    match canonical_ip(address) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(address: Ipv4Addr) -> bool {
    let [a, b, c, _] = address.octets();
    !(address.is_unspecified()
        || address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_broadcast()
        || address.is_documentation()
        || address.is_multicast()
        || a == 0
        // Shared address space (RFC 6598).
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments (RFC 6890).
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking (RFC 2544).
        || (a == 198 && (b == 18 || b == 19))
        // Reserved (RFC 1112).
        || a >= 240)
}

fn is_public_v6(address: Ipv6Addr) -> bool {
    let segments = address.segments();
    !(address.is_unspecified()
        || address.is_loopback()
        || address.is_multicast()
        // Unique local (RFC 4193).
        || (segments[0] & 0xfe00) == 0xfc00
        // Link-local and the deprecated site-local.
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] & 0xffc0) == 0xfec0
        // Documentation (RFC 3849).
        || (segments[0] == 0x2001 && segments[1] == 0x0db8)
        // NAT64 (RFC 6052) and IPv4-compatible addresses embed an IPv4 address that
        // may be private; neither is needed to reach a client's document.
        || (segments[0] == 0x0064 && segments[1] == 0xff9b)
        || segments[..6].iter().all(|segment| *segment == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(allow_loopback: bool) -> Config {
        let mut config = Config::from_vars(
            [
                ("MCP_GITHUB_GITHUB_CLIENT_ID", "id"),
                ("MCP_GITHUB_GITHUB_CLIENT_SECRET", "secret"),
            ],
            Url::parse("http://localhost:8000").unwrap(),
        )
        .unwrap();
        config.cimd_allow_loopback = allow_loopback;
        config
    }

    #[test]
    fn private_loopback_and_link_local_addresses_are_not_public() {
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(address.parse().unwrap()), "{address}");
        }
        for address in ["93.184.215.14", "2606:4700::6810:84e5", "::ffff:8.8.8.8"] {
            assert!(is_public(address.parse().unwrap()), "{address}");
        }
    }

    #[test]
    fn client_id_urls_follow_the_draft() {
        let strict = config(false);
        assert!(check_client_id_url(&strict, "https://client.example/c.json").is_ok());
        for refused in [
            "http://client.example/c.json",
            "https://client.example",
            "https://client.example/",
            "https://client.example/c.json#x",
            "https://user:pw@client.example/c.json",
            "https://client.example/a/../c.json",
            "https://Client.example/c.json",
            "https://client.example:443/c.json",
            "https://127.0.0.1/c.json",
            "https://169.254.169.254/latest",
            "https://[::ffff:127.0.0.1]/c.json",
            "http://127.0.0.1:9000/c.json",
        ] {
            assert!(check_client_id_url(&strict, refused).is_err(), "{refused}");
        }
        // The test setting admits loopback IP literals only, over http too.
        let testing = config(true);
        assert!(check_client_id_url(&testing, "http://127.0.0.1:9000/c.json").is_ok());
        assert!(check_client_id_url(&testing, "http://localhost:9000/c.json").is_err());
        assert!(check_client_id_url(&testing, "http://10.0.0.1:9000/c.json").is_err());
        assert!(check_client_id_url(&testing, "http://127.0.0.1:9000").is_err());
    }

    #[test]
    fn documents_must_name_their_url_and_list_redirect_uris() {
        let config = config(false);
        let id = "https://client.example/c.json";
        let good = serde_json::json!({
            "client_id": id,
            "client_name": "Example",
            "redirect_uris": ["http://127.0.0.1:3000/callback"],
        });
        let client = client_from_document(&config, id, good.to_string().as_bytes()).unwrap();
        assert_eq!(client.client_name.as_deref(), Some("Example"));
        assert_eq!(client.grant_types, ["authorization_code"]);
        let with = |key: &str, value: Value| {
            let mut document = good.clone();
            document[key] = value;
            document.to_string()
        };
        let without = |key: &str| {
            let mut document = good.clone();
            document.as_object_mut().unwrap().remove(key);
            document.to_string()
        };
        for bad in [
            with("client_id", "https://client.example/other.json".into()),
            without("client_id"),
            without("client_name"),
            without("redirect_uris"),
            with("redirect_uris", serde_json::json!([])),
            with(
                "redirect_uris",
                serde_json::json!(["http://evil.example/cb"]),
            ),
            with("token_endpoint_auth_method", "client_secret_basic".into()),
            with("client_secret", "s3cret".into()),
            format!("{good}}}"),
            "[]".to_owned(),
        ] {
            assert!(
                client_from_document(&config, id, bad.as_bytes()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn cache_lifetimes_follow_cache_control() {
        let config = config(false);
        let headers = |pairs: &[(&str, &str)]| {
            let mut map = reqwest::header::HeaderMap::new();
            for (name, value) in pairs {
                map.append(
                    reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    value.parse().unwrap(),
                );
            }
            map
        };
        let lifetime = |pairs: &[(&str, &str)]| cache_lifetime(&config, &headers(pairs));
        assert_eq!(
            lifetime(&[("cache-control", "max-age=300")]),
            Duration::from_secs(300)
        );
        assert_eq!(
            lifetime(&[("cache-control", "public, max-age=300"), ("age", "100")]),
            Duration::from_secs(200)
        );
        assert_eq!(lifetime(&[("cache-control", "no-store")]), Duration::ZERO);
        assert_eq!(
            lifetime(&[("cache-control", "max-age=300, no-cache")]),
            Duration::ZERO
        );
        assert_eq!(lifetime(&[]), Duration::ZERO);
        assert_eq!(
            lifetime(&[("cache-control", "max-age=99999999")]),
            MAX_CACHE_LIFETIME
        );
    }
}
