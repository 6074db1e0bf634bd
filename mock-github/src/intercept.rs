//! The intercepting proxy: the mock as `github.com` and `api.github.com` for a server whose
//! GitHub URLs are fixed in its code.
//!
//! A server under test is started with `HTTPS_PROXY` naming this proxy and with the CA generated
//! here as a trusted root (`SSL_CERT_FILE`, `NODE_EXTRA_CA_CERTS`, ...). Its HTTP client then
//! sends `CONNECT api.github.com:443`; the proxy answers 200, terminates TLS with a leaf
//! certificate for that host signed by the per-run CA, and forwards each request inside the
//! tunnel to the mock's own loopback listener, where it is journaled and answered exactly like a
//! request sent there directly. The API host's paths gain the mock's `/api` prefix, so
//! `https://api.github.com/user` is the mock's `/api/user`; `github.com`'s OAuth paths are the
//! mock's paths as they are. Plain-HTTP absolute-form requests (`GET http://api.github.com/user`)
//! are forwarded the same way.
//!
//! Nothing leaves the machine: a CONNECT to, or a request for, any other host gets 403.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::journal::RecordedRequest;
use crate::state::State;
use crate::{ADMIN_PREFIX, API_PREFIX};

/// GitHub's web host: the browser-facing authorize page and the code exchange.
pub const GITHUB_HOST: &str = "github.com";
/// GitHub's REST API host.
pub const API_HOST: &str = "api.github.com";
/// Every host the proxy answers for; anything else is refused.
pub const INTERCEPTED_HOSTS: [&str; 2] = [GITHUB_HOST, API_HOST];

/// `NO_PROXY` for a server under test: its own loopback traffic (the suite, the mock's admin
/// endpoints) must not go through the proxy.
pub const NO_PROXY: &str = "localhost,127.0.0.1,::1";

/// The variables through which common HTTP stacks learn of an extra trusted CA file: OpenSSL and
/// Python's `ssl` and httpx, requests, curl, Node.js, git.
pub const CA_FILE_VARIABLES: [&str; 5] = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
];

/// The proxy variables, in both spellings: curl reads only lower-case `http_proxy`, and most
/// other stacks read either.
pub const PROXY_VARIABLES: [&str; 4] = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"];

/// A request body larger than this is refused: GitHub's OAuth and user endpoints take a few
/// hundred bytes.
const MAX_BODY: usize = 1024 * 1024;
/// Bound on reading a request head and on the TLS handshake, so a silent client cannot hold a
/// connection task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Added to the mock's slow-fault delay to bound a forwarded request: the mock always answers
/// within its own delay, so this only matters if the mock is gone.
const FORWARD_MARGIN: Duration = Duration::from_secs(30);

/// The per-run CA and the server configuration that presents its leaf certificate.
pub(crate) struct Authority {
    ca_pem: String,
    tls: Arc<rustls::ServerConfig>,
}

impl Authority {
    /// A fresh CA and one leaf certificate valid for both intercepted hosts, signed by it.
    pub(crate) fn generate() -> Result<Authority, InterceptError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = DistinguishedName::new();
        ca_params.distinguished_name.push(
            DnType::CommonName,
            "mock-github interception CA (this run only)",
        );
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;

        let leaf_key = KeyPair::generate()?;
        let mut leaf_params = CertificateParams::new(
            INTERCEPTED_HOSTS
                .iter()
                .map(|host| (*host).to_owned())
                .collect::<Vec<_>>(),
        )?;
        leaf_params.distinguished_name = DistinguishedName::new();
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, GITHUB_HOST);
        // OpenSSL's strict verification (Python 3.13's default) wants the authority key
        // identifier on every certificate that a CA issued.
        leaf_params.use_authority_key_identifier_extension = true;
        leaf_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = leaf_params.signed_by(&leaf_key, &ca)?;

        let chain = vec![leaf.der().clone(), CertificateDer::from(ca.der().to_vec())];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        // The mock speaks HTTP/1.1 only; offering h2 would make clients choose it.
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Authority {
            ca_pem: ca.pem(),
            tls: Arc::new(tls),
        })
    }
}

/// Why the proxy could not start.
#[derive(Debug)]
pub enum InterceptError {
    /// Generating the CA or the leaf certificate failed.
    Certificate(rcgen::Error),
    /// rustls refused the generated certificate or key.
    Tls(rustls::Error),
    /// Binding or configuring the proxy's listener failed.
    Io(std::io::Error),
}

impl std::fmt::Display for InterceptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InterceptError::Certificate(err) => write!(f, "cannot generate the CA: {err}"),
            InterceptError::Tls(err) => write!(f, "cannot configure TLS: {err}"),
            InterceptError::Io(err) => write!(f, "cannot listen for proxy connections: {err}"),
        }
    }
}

impl std::error::Error for InterceptError {}

impl From<rcgen::Error> for InterceptError {
    fn from(err: rcgen::Error) -> Self {
        InterceptError::Certificate(err)
    }
}

impl From<rustls::Error> for InterceptError {
    fn from(err: rustls::Error) -> Self {
        InterceptError::Tls(err)
    }
}

impl From<std::io::Error> for InterceptError {
    fn from(err: std::io::Error) -> Self {
        InterceptError::Io(err)
    }
}

/// A running proxy. Dropping it stops the accept loop and every tunnel it opened.
pub(crate) struct Interception {
    address: SocketAddr,
    ca_pem: String,
    /// Dropped with the proxy; every task waits on its receiver and ends then.
    _stop: watch::Sender<()>,
}

impl Interception {
    /// Starts the proxy on `listener`, forwarding to the mock at `mock` whose state is `state`.
    pub(crate) fn start(
        listener: std::net::TcpListener,
        authority: Authority,
        mock: SocketAddr,
        state: Arc<State>,
    ) -> Result<Interception, InterceptError> {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let address = listener.local_addr()?;
        let (stop, stopped) = watch::channel(());
        let proxy = Arc::new(Proxy {
            acceptor: TlsAcceptor::from(authority.tls),
            mock,
            forward_timeout: state.config.slow_delay + FORWARD_MARGIN,
            state,
            stopped: stopped.clone(),
        });
        tokio::spawn(until_stopped(stopped, accept_loop(listener, proxy)));
        Ok(Interception {
            address,
            ca_pem: authority.ca_pem,
            _stop: stop,
        })
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    pub(crate) fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

struct Proxy {
    acceptor: TlsAcceptor,
    mock: SocketAddr,
    forward_timeout: Duration,
    state: Arc<State>,
    stopped: watch::Receiver<()>,
}

/// Runs `work` until it ends or the proxy is dropped, whichever comes first.
async fn until_stopped(mut stopped: watch::Receiver<()>, work: impl Future<Output = ()>) {
    tokio::select! {
        () = work => {}
        // `changed` fails once the sender is dropped: the proxy is gone.
        _ = stopped.changed() => {}
    }
}

async fn accept_loop(listener: TcpListener, proxy: Arc<Proxy>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Accept errors (out of file descriptors, a reset before accept) concern one
            // connection; the next one may well succeed.
            continue;
        };
        let proxy = Arc::clone(&proxy);
        tokio::spawn(until_stopped(
            proxy.stopped.clone(),
            serve_proxy_connection(stream, proxy),
        ));
    }
}

/// One client connection to the proxy: CONNECT requests and plain absolute-form requests.
async fn serve_proxy_connection(stream: TcpStream, proxy: Arc<Proxy>) {
    let service = hyper::service::service_fn(move |request| {
        let proxy = Arc::clone(&proxy);
        async move { Ok::<_, Infallible>(proxy_request(proxy, request).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
}

/// Which intercepted host a request is for, from a CONNECT target or an absolute URI.
fn intercepted_host(uri: &Uri) -> Option<&'static str> {
    let host = uri.host()?;
    INTERCEPTED_HOSTS
        .iter()
        .find(|known| host.eq_ignore_ascii_case(known))
        .copied()
}

async fn proxy_request(proxy: Arc<Proxy>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() == Method::CONNECT {
        let host = intercepted_host(request.uri())
            .filter(|_| request.uri().port_u16().is_none_or(|port| port == 443));
        let Some(host) = host else {
            return refused(request.uri());
        };
        let tunnel = Arc::clone(&proxy);
        tokio::spawn(until_stopped(proxy.stopped.clone(), async move {
            if let Ok(upgraded) = hyper::upgrade::on(request).await {
                serve_tunnel(TokioIo::new(upgraded), host, tunnel).await;
            }
        }));
        return Response::new(Full::new(Bytes::new()));
    }
    // A plain-HTTP request through a proxy names its target in absolute form.
    let is_http = request.uri().scheme_str() == Some("http");
    match intercepted_host(request.uri()).filter(|_| is_http) {
        Some(host) => forward(&proxy, host, request).await,
        None if request.uri().authority().is_none() => text(
            StatusCode::BAD_REQUEST,
            "mock-github's proxy takes CONNECT or absolute-form requests; the mock itself \
             listens elsewhere\n",
        ),
        None => refused(request.uri()),
    }
}

/// 403 for every host the proxy does not play: nothing is sent off this machine.
fn refused(target: &Uri) -> Response<Full<Bytes>> {
    text(
        StatusCode::FORBIDDEN,
        &format!(
            "mock-github intercepts only {} over port 443 (and plain http); {target} is refused \
             so that nothing leaves this machine\n",
            INTERCEPTED_HOSTS.join(" and ")
        ),
    )
}

/// The TLS side of a tunnel: the leaf certificate for `host`, then HTTP/1.1 requests forwarded
/// to the mock one by one.
async fn serve_tunnel(
    io: TokioIo<hyper::upgrade::Upgraded>,
    host: &'static str,
    proxy: Arc<Proxy>,
) {
    let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, proxy.acceptor.accept(io)).await
    else {
        // A client that does not trust the CA aborts the handshake; that is its answer.
        return;
    };
    let service = hyper::service::service_fn(move |request| {
        let proxy = Arc::clone(&proxy);
        async move { Ok::<_, Infallible>(forward(&proxy, host, request).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

/// The mock's path for a path on an intercepted host, or `None` where GitHub's host has no such
/// page but the mock would answer (its API and admin paths on `github.com`).
fn mock_path(host: &str, path: &str) -> Option<String> {
    if host == API_HOST {
        return Some(format!("{API_PREFIX}{path}"));
    }
    let under = |prefix: &str| {
        path == prefix.trim_end_matches('/')
            || path.starts_with(&format!("{}/", prefix.trim_end_matches('/')))
    };
    (!under(API_PREFIX) && !under(ADMIN_PREFIX)).then(|| path.to_owned())
}

/// Forwards one request for `host` to the mock's loopback listener and hands back its answer.
async fn forward(
    proxy: &Proxy,
    host: &'static str,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (mut parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, MAX_BODY).collect().await else {
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large or cut short\n",
        );
    };
    let body = body.to_bytes();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);

    let Some(mock_path) = mock_path(host, &path) else {
        // Journaled like any request to the mock's web host, which answers it with 404.
        proxy.state.record(RecordedRequest {
            method: parts.method.as_str().to_owned(),
            path: path.clone(),
            query: query.clone(),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        return text(StatusCode::NOT_FOUND, "Not Found\n");
    };
    let target = match &query {
        Some(query) => format!("{mock_path}?{query}"),
        None => mock_path,
    };
    let Ok(uri) = target.parse::<Uri>() else {
        return text(StatusCode::BAD_REQUEST, "unusable request target\n");
    };
    parts.uri = uri;
    // The Host header keeps naming GitHub's host, so the journal shows where the server
    // believed it was sending the request; hop-by-hop proxy headers end here.
    if !parts.headers.contains_key(header::HOST) {
        parts
            .headers
            .insert(header::HOST, HeaderValue::from_static(host));
    }
    for name in ["proxy-authorization", "proxy-connection"] {
        parts.headers.remove(name);
    }
    let upstream = Request::from_parts(parts, Full::new(body));
    match tokio::time::timeout(proxy.forward_timeout, send_to_mock(proxy.mock, upstream)).await {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => text(
            StatusCode::BAD_GATEWAY,
            &format!("mock-github's proxy cannot reach the mock: {err}\n"),
        ),
        Err(_) => text(
            StatusCode::GATEWAY_TIMEOUT,
            "the mock did not answer in time\n",
        ),
    }
}

async fn send_to_mock(
    mock: SocketAddr,
    request: Request<Full<Bytes>>,
) -> Result<Response<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(mock).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await;
    let response = match response {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Response::from_parts(parts, Full::new(body))
        }
        Err(err) => {
            driver.abort();
            return Err(err.into());
        }
    };
    driver.abort();
    Ok(response)
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_gain_the_api_prefix_and_github_com_keeps_its_oauth_paths() {
        assert_eq!(mock_path(API_HOST, "/user").as_deref(), Some("/api/user"));
        assert_eq!(
            mock_path(GITHUB_HOST, "/login/oauth/access_token").as_deref(),
            Some("/login/oauth/access_token")
        );
        // github.com has no REST API and no admin endpoints; the mock's must stay out of reach.
        assert_eq!(mock_path(GITHUB_HOST, "/api/user"), None);
        assert_eq!(mock_path(GITHUB_HOST, "/api"), None);
        assert_eq!(mock_path(GITHUB_HOST, "/_mock/journal"), None);
        assert_eq!(
            mock_path(GITHUB_HOST, "/apis").as_deref(),
            Some("/apis"),
            "only the /api segment itself is the mock's"
        );
    }

    #[test]
    fn only_the_two_github_hosts_are_intercepted() {
        let host = |uri: &str| intercepted_host(&uri.parse::<Uri>().unwrap());
        assert_eq!(host("api.github.com:443"), Some(API_HOST));
        assert_eq!(host("GitHub.com:443"), Some(GITHUB_HOST));
        assert_eq!(host("http://api.github.com/user"), Some(API_HOST));
        assert_eq!(host("example.com:443"), None);
        assert_eq!(host("evil-github.com:443"), None);
        assert_eq!(host("uploads.github.com:443"), None);
    }
}
