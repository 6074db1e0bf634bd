//! The intercepting proxy, as a server with GitHub's URLs fixed in its code meets it: an HTTP
//! client that sends `https://github.com/...` and `https://api.github.com/...` through
//! `HTTPS_PROXY` and trusts the mock's CA.

use std::net::TcpListener;
use std::time::Duration;

use mock_github::{CLIENT_ID, CLIENT_SECRET, MockGitHub};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

async fn intercepting_mock() -> MockGitHub {
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    MockGitHub::builder()
        .intercept(proxy)
        .try_start()
        .await
        .unwrap()
}

/// A client as a server under test configures one from `HTTPS_PROXY` and `SSL_CERT_FILE`:
/// every request through the proxy, and only the mock's CA trusted.
fn proxied_client(github: &MockGitHub) -> reqwest::Client {
    let ca =
        reqwest::Certificate::from_pem(github.ca_certificate_pem().unwrap().as_bytes()).unwrap();
    reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(github.proxy_url().unwrap()).unwrap())
        .tls_certs_only([ca])
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("intercept-test")
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The browser leg goes to the mock directly, as the scripted browser does; it returns a code.
async fn authorize(github: &MockGitHub, login: &str) -> String {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(github.authorize_url())
        .query(&[
            ("client_id", CLIENT_ID),
            ("redirect_uri", "http://127.0.0.1:1/github/callback"),
            ("state", "s"),
            ("login", login),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(name, _)| name == "code")
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test]
async fn github_com_and_api_github_com_are_answered_by_the_mock_through_the_tunnel() {
    let github = intercepting_mock().await;
    let client = proxied_client(&github);
    let code = authorize(&github, "octocat").await;

    let token: Value = client
        .post("https://github.com/login/oauth/access_token")
        .header("accept", "application/json")
        .form(&[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .expect("CONNECT github.com:443 and a TLS handshake with the mock's leaf certificate")
        .json()
        .await
        .unwrap();
    let access_token = token["access_token"].as_str().expect("an access token");

    let user = client
        .get("https://api.github.com/user")
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(user.status(), 200);
    let user: Value = user.json().await.unwrap();
    assert_eq!(user["login"], "octocat");

    // Intercepted requests are journaled like direct ones, under the mock's own paths, with the
    // Host the server thought it was talking to.
    let journal = github.journal().await;
    let api_call = journal
        .iter()
        .find(|request| request.path == mock_github::USER_PATH)
        .expect("GET /user journaled");
    assert_eq!(api_call.header("host"), Some("api.github.com"));
    assert!(api_call.mentions(access_token));
    let exchange = journal
        .iter()
        .find(|request| request.path == mock_github::TOKEN_PATH)
        .expect("the code exchange journaled");
    assert_eq!(exchange.header("host"), Some("github.com"));
    assert!(exchange.mentions(&code));
}

#[tokio::test]
async fn plain_http_absolute_form_requests_to_github_are_answered_too() {
    let github = intercepting_mock().await;
    let client = proxied_client(&github);
    let response = client
        .get("http://api.github.com/user")
        .send()
        .await
        .unwrap();
    // The mock's own answer to a request without a token, not the proxy's.
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "Bad credentials");
}

#[tokio::test]
async fn other_hosts_are_refused_and_nothing_leaves_the_machine() {
    let github = intercepting_mock().await;
    let proxy = github.proxy_address().unwrap();
    for target in ["example.com:443", "uploads.github.com:443", "github.com:22"] {
        let mut stream = tokio::net::TcpStream::connect(proxy).await.unwrap();
        stream
            .write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut head = [0_u8; 12];
        tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut head))
            .await
            .expect("the proxy answers at once")
            .unwrap();
        assert_eq!(&head, b"HTTP/1.1 403", "CONNECT {target}");
    }

    let client = proxied_client(&github);
    let plain = client.get("http://example.com/").send().await.unwrap();
    assert_eq!(plain.status(), 403);
    let tunnelled = client.get("https://example.com/").send().await;
    assert!(
        tunnelled.is_err(),
        "a refused CONNECT is an error for the client"
    );
    assert!(
        github.journal().await.is_empty(),
        "nothing reached the mock"
    );
}

#[tokio::test]
async fn the_mocks_admin_and_api_paths_are_not_github_com_pages() {
    let github = intercepting_mock().await;
    let client = proxied_client(&github);
    for path in ["/_mock/journal", "/_mock/tokens", "/api/user"] {
        let response = client
            .get(format!("https://github.com{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    // Even so, the server under test sent them, and the journal says so.
    assert_eq!(github.journal().await.len(), 3);
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_runs_ca_gets_no_answer() {
    let github = intercepting_mock().await;
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(github.proxy_url().unwrap()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let result = client.get("https://api.github.com/user").send().await;
    assert!(result.is_err(), "the leaf is signed by this run's CA only");
    assert!(github.journal().await.is_empty());
}

#[tokio::test]
async fn each_mock_has_its_own_ca_and_says_whether_it_intercepts() {
    let first = intercepting_mock().await;
    let second = intercepting_mock().await;
    let pem = first.ca_certificate_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert_ne!(pem, second.ca_certificate_pem().unwrap());

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let info: Value = client
        .get(format!(
            "{}{}",
            first.base_url(),
            mock_github::INTERCEPT_PATH
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["proxy_url"], first.proxy_url().unwrap());
    assert_eq!(info["hosts"][0], "github.com");

    let plain = MockGitHub::start().await;
    assert!(plain.proxy_url().is_none());
    let status = client
        .get(format!(
            "{}{}",
            plain.base_url(),
            mock_github::INTERCEPT_PATH
        ))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_environment_names_the_proxy_and_the_ca_but_no_github_url() {
    let github = intercepting_mock().await;
    let env = github.intercept_env("/tmp/ca.pem").unwrap();
    let value = |name: &str| {
        env.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
    };
    let proxy = github.proxy_url().unwrap();
    assert_eq!(value("HTTPS_PROXY"), Some(proxy.clone()));
    assert_eq!(value("https_proxy"), Some(proxy));
    assert_eq!(
        value("NO_PROXY").as_deref(),
        Some("localhost,127.0.0.1,::1")
    );
    for name in mock_github::CA_FILE_VARIABLES {
        assert_eq!(value(name).as_deref(), Some("/tmp/ca.pem"), "{name}");
    }
    assert_eq!(value("NODE_USE_ENV_PROXY").as_deref(), Some("1"));
    assert_eq!(
        value(mock_github::ENV_CLIENT_ID).as_deref(),
        Some(CLIENT_ID)
    );
    for name in [
        mock_github::ENV_AUTH_URL,
        mock_github::ENV_TOKEN_URL,
        mock_github::ENV_API_URL,
    ] {
        assert_eq!(value(name), None, "{name} must keep the server's default");
    }
}
