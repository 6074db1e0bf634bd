//! End-to-end behaviour of the mock over real loopback HTTP, as a server under test sees it.

use std::time::{Duration, Instant};

use base64::Engine as _;
use mock_github::{
    CLIENT_ID, CLIENT_SECRET, Fault, FaultStage, JOURNAL_PATH, MockGitHub, REVOKE_PATH,
    RecordedRequest, TOKENS_PATH, USERS_PATH,
};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::Value;
use sha2::Digest as _;
use url::Url;

const CALLBACK: &str = "http://127.0.0.1:1/oauth/callback";

/// A client configured like a careful server: no redirects followed (so the test sees the 302),
/// a User-Agent (GitHub requires one), and no proxy (everything is loopback).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("mock-github-tests")
        .no_proxy()
        .build()
        .unwrap()
}

/// The authorize URL a server would redirect to, after the scripted browser picked an account.
fn authorize_url(
    github: &MockGitHub,
    login: &str,
    fault: Option<Fault>,
    state: Option<&str>,
) -> String {
    let mut url = Url::parse(&github.authorize_url()).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("scope", "read:user");
    if let Some(state) = state {
        url.query_pairs_mut().append_pair("state", state);
    }
    mock_github::pick_account(url.as_str(), login, fault).unwrap()
}

/// The query parameters of a redirect's `Location`.
fn location_params(response: &reqwest::Response) -> Vec<(String, String)> {
    let location = response
        .headers()
        .get(LOCATION)
        .expect("a redirect")
        .to_str()
        .unwrap();
    Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Runs the browser leg and returns the code.
async fn code_for(github: &MockGitHub, login: &str, fault: Option<Fault>) -> String {
    let response = client()
        .get(authorize_url(github, login, fault, Some("xyz")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let params = location_params(&response);
    assert_eq!(param(&params, "state"), Some("xyz"));
    param(&params, "code").expect("a code").to_owned()
}

/// Exchanges a code the way most servers do: form body, credentials in the body, JSON answer.
async fn exchange(github: &MockGitHub, code: &str) -> reqwest::Response {
    client()
        .post(github.token_url())
        .header("accept", "application/json")
        .form(&[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", code),
            ("redirect_uri", CALLBACK),
        ])
        .send()
        .await
        .unwrap()
}

async fn exchange_json(github: &MockGitHub, code: &str) -> Value {
    let response = exchange(github, code).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn access_token(github: &MockGitHub, login: &str, fault: Option<Fault>) -> String {
    let code = code_for(github, login, fault).await;
    let body = exchange_json(github, &code).await;
    body["access_token"].as_str().expect("a token").to_owned()
}

async fn get_user(github: &MockGitHub, token: &str) -> reqwest::Response {
    client()
        .get(format!("{}/user", github.api_base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn full_login(github: &MockGitHub, login: &str) -> Value {
    let token = access_token(github, login, None).await;
    assert!(token.starts_with(&format!("gho_{login}_none_")), "{token}");
    let response = get_user(github, &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["x-oauth-scopes"].to_str().unwrap(),
        "read:user"
    );
    response.json().await.unwrap()
}

fn assert_token_error(body: &Value, error: &str) {
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string());
    assert!(
        body["error_uri"]
            .as_str()
            .unwrap()
            .starts_with("https://docs.github.com/")
    );
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn two_users_log_in_in_parallel() {
    let github = MockGitHub::start().await;
    let (octocat, mona) = tokio::join!(full_login(&github, "octocat"), full_login(&github, "mona"));
    assert_eq!(octocat, mock_github::user("octocat").unwrap().profile);
    assert_eq!(mona, mock_github::user("mona").unwrap().profile);
    // The non-ASCII text must survive the trip byte for byte.
    assert_eq!(mona["name"], "Mona Lisa Ōctocat 🐙");
    assert!(mona["bio"].as_str().unwrap().contains("日本語"));
    assert_ne!(octocat["id"], mona["id"]);
}

#[tokio::test]
async fn default_login_is_octocat() {
    let github = MockGitHub::start().await;
    let response = client()
        .get(github.authorize_url())
        .query(&[("client_id", CLIENT_ID), ("redirect_uri", CALLBACK)])
        .send()
        .await
        .unwrap();
    let params = location_params(&response);
    assert!(
        param(&params, "code")
            .unwrap()
            .starts_with("ghc_octocat_none_")
    );
}

#[tokio::test]
async fn redirect_keeps_the_callback_query_and_omits_an_absent_state() {
    let github = MockGitHub::start().await;
    let response = client()
        .get(github.authorize_url())
        .query(&[
            ("client_id", CLIENT_ID),
            ("redirect_uri", "http://127.0.0.1:1/cb?tenant=a%26b&x=1"),
            ("login", "hubot"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()[LOCATION].to_str().unwrap();
    assert!(
        location.starts_with("http://127.0.0.1:1/cb?tenant=a%26b&x=1&code=ghc_hubot_none_"),
        "{location}"
    );
    assert!(!location.contains("state"));
}

#[tokio::test]
async fn codes_are_single_use() {
    let github = MockGitHub::start().await;
    let code = code_for(&github, "octocat", None).await;
    assert!(exchange_json(&github, &code).await["access_token"].is_string());
    assert_token_error(
        &exchange_json(&github, &code).await,
        "bad_verification_code",
    );
}

#[tokio::test]
async fn unknown_and_expired_codes_are_bad_verification_codes() {
    let github = MockGitHub::builder().code_ttl(Duration::ZERO).start().await;
    let code = code_for(&github, "octocat", None).await;
    assert_token_error(
        &exchange_json(&github, &code).await,
        "bad_verification_code",
    );
    assert_token_error(
        &exchange_json(&github, "ghc_octocat_none_999").await,
        "bad_verification_code",
    );
}

#[tokio::test]
async fn wrong_secret_is_a_github_style_error_and_leaves_the_code_usable() {
    let github = MockGitHub::start().await;
    let code = code_for(&github, "octocat", None).await;
    let response = client()
        .post(github.token_url())
        .header("accept", "application/json")
        .form(&[
            ("client_id", CLIENT_ID),
            ("client_secret", "wrong"),
            ("code", &code),
        ])
        .send()
        .await
        .unwrap();
    // GitHub reports token failures with HTTP 200.
    assert_eq!(response.status(), StatusCode::OK);
    assert_token_error(
        &response.json().await.unwrap(),
        "incorrect_client_credentials",
    );
    assert!(exchange_json(&github, &code).await["access_token"].is_string());
}

#[tokio::test]
async fn http_basic_credentials_and_form_encoded_answers() {
    let github = MockGitHub::start().await;
    let code = code_for(&github, "mona", None).await;
    // No Accept: application/json, so GitHub (and the mock) answer form-encoded.
    let response = client()
        .post(github.token_url())
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "authorization_code"), ("code", &code)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    let body = response.text().await.unwrap();
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    assert!(
        param(&fields, "access_token")
            .unwrap()
            .starts_with("gho_mona_")
    );
    assert_eq!(param(&fields, "token_type"), Some("bearer"));
    assert_eq!(param(&fields, "scope"), Some("read:user"));

    let code = code_for(&github, "mona", None).await;
    let response = client()
        .post(github.token_url())
        .header("accept", "application/json")
        .basic_auth(CLIENT_ID, Some("wrong"))
        .form(&[("code", &code)])
        .send()
        .await
        .unwrap();
    assert_token_error(
        &response.json().await.unwrap(),
        "incorrect_client_credentials",
    );
}

#[tokio::test]
async fn json_bodies_are_accepted_and_bad_bodies_do_not_break_the_mock() {
    let github = MockGitHub::start().await;
    let code = code_for(&github, "hubot", None).await;
    let response = client()
        .post(github.token_url())
        .header("accept", "application/json")
        .json(&serde_json::json!({
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "code": code,
        }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert!(
        body["access_token"]
            .as_str()
            .unwrap()
            .starts_with("gho_hubot_")
    );

    let response = client()
        .post(github.token_url())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let response = client()
        .post(github.token_url())
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, b'=', b'%', 0x00, b'&', b'&'])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_token_error(
        &response.json().await.unwrap(),
        "incorrect_client_credentials",
    );

    let response = client()
        .post(github.token_url())
        .header("authorization", "Basic !!!not-base64")
        .form(&[("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)])
        .send()
        .await
        .unwrap();
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("incorrect_client_credentials")
    );

    // The mock still works after all of that.
    full_login(&github, "octocat").await;
}

#[tokio::test]
async fn redirect_uri_must_match_the_one_used_at_authorize() {
    let github = MockGitHub::start().await;
    let code = code_for(&github, "octocat", None).await;
    let response = client()
        .post(github.token_url())
        .header("accept", "application/json")
        .form(&[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:1/elsewhere"),
        ])
        .send()
        .await
        .unwrap();
    assert_token_error(&response.json().await.unwrap(), "redirect_uri_mismatch");
}

#[tokio::test]
async fn pkce_verifier_is_checked_when_a_challenge_was_sent() {
    let github = MockGitHub::start().await;
    let verifier = "a-verifier-that-is-long-enough-to-be-realistic-0123456789";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let authorize = |state: &'static str| {
        let challenge = challenge.clone();
        let github = &github;
        async move {
            let response = client()
                .get(github.authorize_url())
                .query(&[
                    ("client_id", CLIENT_ID),
                    ("redirect_uri", CALLBACK),
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                    ("state", state),
                ])
                .send()
                .await
                .unwrap();
            param(&location_params(&response), "code")
                .unwrap()
                .to_owned()
        }
    };
    let exchange_with = |code: String, verifier: Option<&'static str>| {
        let github = &github;
        async move {
            let mut form = vec![
                ("client_id", CLIENT_ID.to_owned()),
                ("client_secret", CLIENT_SECRET.to_owned()),
                ("code", code),
            ];
            if let Some(verifier) = verifier {
                form.push(("code_verifier", verifier.to_owned()));
            }
            client()
                .post(github.token_url())
                .header("accept", "application/json")
                .form(&form)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let good = exchange_with(authorize("a").await, Some(verifier)).await;
    assert!(good["access_token"].is_string(), "{good}");
    let wrong = exchange_with(authorize("b").await, Some("some-other-verifier")).await;
    assert_token_error(&wrong, "bad_verification_code");
    let missing = exchange_with(authorize("c").await, None).await;
    assert_token_error(&missing, "bad_verification_code");
}

#[tokio::test]
async fn authorize_refuses_to_redirect_for_unknown_clients_logins_and_faults() {
    let github = MockGitHub::start().await;
    let cases: [(&[(&str, &str)], StatusCode); 5] = [
        (
            &[("client_id", "someone-else"), ("redirect_uri", CALLBACK)],
            StatusCode::NOT_FOUND,
        ),
        (&[("client_id", CLIENT_ID)], StatusCode::NOT_FOUND),
        (
            &[("client_id", CLIENT_ID), ("redirect_uri", "not a url")],
            StatusCode::NOT_FOUND,
        ),
        (
            &[
                ("client_id", CLIENT_ID),
                ("redirect_uri", CALLBACK),
                ("login", "nobody"),
            ],
            StatusCode::NOT_FOUND,
        ),
        (
            &[
                ("client_id", CLIENT_ID),
                ("redirect_uri", CALLBACK),
                ("fault", "token_slow"),
            ],
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (query, status) in cases {
        let response = client()
            .get(github.authorize_url())
            .query(query)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{query:?}");
        assert!(response.headers().get(LOCATION).is_none(), "{query:?}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
}

#[tokio::test]
async fn access_denied_redirects_with_an_error_and_the_state() {
    let github = MockGitHub::start().await;
    let response = client()
        .get(authorize_url(
            &github,
            "octocat",
            Some(Fault::AccessDenied),
            Some("s1"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let params = location_params(&response);
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert!(param(&params, "error_description").is_some());
    assert!(param(&params, "error_uri").is_some());
    assert_eq!(param(&params, "state"), Some("s1"));
    assert_eq!(param(&params, "code"), None);
}

/// Drives one flow with `fault` and checks it shows up where documented, and only there.
///
/// The match is exhaustive on purpose: adding a fault without a test here fails to compile.
async fn check_fault(github: &MockGitHub, fault: Fault) {
    // Far shorter than the mock's default 30 s slow delay, so a timeout fault shows as a client
    // timeout; other faults get no client timeout, so a busy machine cannot make them flaky.
    let timeout_for = |expected: Fault| {
        if fault == expected {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(60)
        }
    };
    if fault.stage() == FaultStage::Authorize {
        assert_eq!(fault, Fault::AccessDenied);
        let response = client()
            .get(authorize_url(github, "hubot", Some(fault), None))
            .send()
            .await
            .unwrap();
        assert_eq!(
            param(&location_params(&response), "error"),
            Some("access_denied")
        );
        return;
    }
    let code = code_for(github, "hubot", Some(fault)).await;
    assert!(code.starts_with(&format!("ghc_hubot_{fault}_")), "{code}");
    let token_request = client()
        .post(github.token_url())
        .header("accept", "application/json")
        .timeout(timeout_for(Fault::TokenTimeout))
        .form(&[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", &code),
        ]);
    match fault {
        Fault::AccessDenied => unreachable!("handled above"),
        Fault::Token5xx => {
            let response = token_request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
            assert!(response.text().await.unwrap().contains("<html>"));
        }
        Fault::TokenTimeout => {
            let err = token_request.send().await.unwrap_err();
            assert!(err.is_timeout(), "{err}");
        }
        Fault::TokenMalformed => {
            let response = token_request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let text = response.text().await.unwrap();
            assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
        }
        Fault::TokenError => {
            let response = token_request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_token_error(&response.json().await.unwrap(), "bad_verification_code");
        }
        Fault::User401
        | Fault::User5xx
        | Fault::User5xxAfterLogin
        | Fault::User403RateLimitAfterLogin
        | Fault::User429AfterLogin
        | Fault::UserTimeout
        | Fault::UserMalformed => {
            let body: Value = token_request.send().await.unwrap().json().await.unwrap();
            let token = body["access_token"].as_str().unwrap();
            assert!(token.starts_with(&format!("gho_hubot_{fault}_")), "{token}");
            let user_request = client()
                .get(format!("{}/user", github.api_base_url()))
                .bearer_auth(token)
                .timeout(timeout_for(Fault::UserTimeout));
            match fault {
                Fault::User401 => {
                    let response = user_request.send().await.unwrap();
                    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
                    let body: Value = response.json().await.unwrap();
                    assert_eq!(body["message"], "Bad credentials");
                }
                Fault::User5xx => {
                    let response = user_request.send().await.unwrap();
                    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
                }
                Fault::User5xxAfterLogin => {
                    // The login's profile read works; the next one fails.
                    let retry = user_request.try_clone().unwrap();
                    assert_eq!(user_request.send().await.unwrap().status(), StatusCode::OK);
                    assert_eq!(
                        retry.send().await.unwrap().status(),
                        StatusCode::BAD_GATEWAY
                    );
                }
                Fault::User403RateLimitAfterLogin => {
                    let retry = user_request.try_clone().unwrap();
                    assert_eq!(user_request.send().await.unwrap().status(), StatusCode::OK);
                    let limited = retry.send().await.unwrap();
                    assert_eq!(limited.status(), StatusCode::FORBIDDEN);
                    assert_eq!(limited.headers()["x-ratelimit-remaining"], "0");
                    assert!(limited.headers().contains_key("x-ratelimit-reset"));
                }
                Fault::User429AfterLogin => {
                    let retry = user_request.try_clone().unwrap();
                    assert_eq!(user_request.send().await.unwrap().status(), StatusCode::OK);
                    let limited = retry.send().await.unwrap();
                    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
                    assert_eq!(limited.headers()["retry-after"], "60");
                }
                Fault::UserTimeout => {
                    let err = user_request.send().await.unwrap_err();
                    assert!(err.is_timeout(), "{err}");
                }
                Fault::UserMalformed => {
                    let response = user_request.send().await.unwrap();
                    assert_eq!(response.status(), StatusCode::OK);
                    let text = response.text().await.unwrap();
                    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
                }
                _ => unreachable!("outer match arm"),
            }
        }
    }
}

#[tokio::test]
async fn every_fault_behaves_as_documented_while_a_clean_flow_runs_alongside() {
    let github = MockGitHub::start().await;
    for &fault in Fault::ALL {
        // A clean flow interleaved with each faulty one must be unaffected by it.
        let (_, profile) = tokio::join!(check_fault(&github, fault), full_login(&github, "mona"));
        assert_eq!(profile["login"], "mona", "alongside {fault}");
    }
}

#[tokio::test]
async fn timeout_faults_do_answer_after_the_slow_delay() {
    let delay = Duration::from_millis(400);
    let github = MockGitHub::builder().slow_delay(delay).start().await;

    let code = code_for(&github, "octocat", Some(Fault::TokenTimeout)).await;
    let started = Instant::now();
    let body = exchange_json(&github, &code).await;
    assert!(started.elapsed() >= delay);
    assert!(body["access_token"].is_string());

    let token = access_token(&github, "octocat", Some(Fault::UserTimeout)).await;
    let started = Instant::now();
    let response = get_user(&github, &token).await;
    assert!(started.elapsed() >= delay);
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoked_tokens_get_401_through_the_api_and_over_http() {
    let github = MockGitHub::start().await;
    let first = access_token(&github, "octocat", None).await;
    let second = access_token(&github, "octocat", None).await;
    assert_eq!(get_user(&github, &first).await.status(), StatusCode::OK);

    github.revoke_token(&first);
    let response = get_user(&github, &first).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "Bad credentials");
    assert!(body["documentation_url"].is_string());
    // Revoking one token leaves the user's other tokens alone.
    assert_eq!(get_user(&github, &second).await.status(), StatusCode::OK);

    let revoke = |token: String| {
        client()
            .post(format!("{}{REVOKE_PATH}", github.base_url()))
            .json(&serde_json::json!({ "access_token": token }))
            .send()
    };
    let answer: Value = revoke(second.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(answer["revoked"], true);
    assert_eq!(
        get_user(&github, &second).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let answer: Value = revoke("gho_never_issued".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["revoked"], false);
    let response = client()
        .post(format!("{}{REVOKE_PATH}", github.base_url()))
        .body("nonsense")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let issued: Vec<mock_github::IssuedToken> = client()
        .get(format!("{}{TOKENS_PATH}", github.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(issued, github.issued_tokens());
    assert_eq!(issued.len(), 2);
    assert!(issued.iter().all(|token| token.revoked));
}

#[tokio::test]
async fn user_endpoint_authentication() {
    let github = MockGitHub::start().await;
    let token = access_token(&github, "hubot", None).await;
    let user_url = format!("{}/user", github.api_base_url());

    // GitHub's older `token` scheme works too.
    let response = client()
        .get(&user_url)
        .header("authorization", format!("token {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    for authorization in [None, Some("Bearer gho_unknown"), Some("Basic Zm9vOmJhcg==")] {
        let mut request = client().get(&user_url);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{authorization:?}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["message"], "Bad credentials");
    }
}

#[tokio::test]
async fn user_agent_is_required_like_on_real_github() {
    let github = MockGitHub::start().await;
    let token = access_token(&github, "octocat", None).await;
    // reqwest sends no User-Agent unless asked to, which is exactly the mistake to catch.
    let bare = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = bare
        .get(format!("{}/user", github.api_base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("User-Agent"));
}

#[tokio::test]
async fn journal_records_everything_but_admin_requests_and_is_served_over_http() {
    let github = MockGitHub::start().await;
    let token = access_token(&github, "octocat", None).await;
    get_user(&github, &token).await;
    let unknown = client()
        .get(format!("{}/no/such/page", github.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let api_unknown = client()
        .get(format!("{}/repos/x/y", github.api_base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(api_unknown.status(), StatusCode::NOT_FOUND);

    let over_http: Vec<RecordedRequest> = client()
        .get(github.journal_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let users: Value = client()
        .get(format!("{}{USERS_PATH}", github.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users.as_array().unwrap().len(), mock_github::users().len());

    let journal = github.journal().await;
    assert_eq!(over_http, journal);
    let summary: Vec<(&str, &str)> = journal
        .iter()
        .map(|request| (request.method.as_str(), request.path.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("GET", "/login/oauth/authorize"),
            ("POST", "/login/oauth/access_token"),
            ("GET", "/api/user"),
            ("GET", "/no/such/page"),
            ("GET", "/api/repos/x/y"),
        ]
    );
    assert!(
        journal[0]
            .query
            .as_deref()
            .unwrap()
            .contains("login=octocat")
    );
    assert!(journal[1].body.contains("client_secret="));
    assert_eq!(
        journal[2].header("Authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert!(journal[2].mentions(&token));
    assert!(!journal.iter().any(|request| request.path == JOURNAL_PATH));
    assert!(
        !journal
            .iter()
            .any(|request| request.mentions("mcp-token-never-sent"))
    );
}

#[tokio::test]
async fn server_env_points_at_this_mock() {
    let github = MockGitHub::start().await;
    let base = github.base_url();
    assert!(base.starts_with("http://127.0.0.1:") && !base.ends_with('/'));
    assert_eq!(
        github.server_env(),
        vec![
            ("MCP_GITHUB_GITHUB_CLIENT_ID", CLIENT_ID.to_owned()),
            ("MCP_GITHUB_GITHUB_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
            (
                "MCP_GITHUB_GITHUB_AUTH_URL",
                format!("{base}/login/oauth/authorize")
            ),
            (
                "MCP_GITHUB_GITHUB_TOKEN_URL",
                format!("{base}/login/oauth/access_token")
            ),
            ("MCP_GITHUB_GITHUB_API_URL", format!("{base}/api")),
        ]
    );
}

#[tokio::test]
async fn start_on_serves_on_the_given_listener() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let github = MockGitHub::start_on(listener).await;
    assert_eq!(github.base_url(), format!("http://{address}"));
    full_login(&github, "octocat").await;
}

#[test]
fn pick_account_replaces_login_and_fault_and_keeps_the_rest() {
    let url = mock_github::pick_account(
        "http://h/login/oauth/authorize?client_id=c&login=old&fault=user_401&state=s%20t",
        "mona",
        Some(Fault::Token5xx),
    )
    .unwrap();
    assert_eq!(
        url,
        "http://h/login/oauth/authorize?client_id=c&state=s+t&login=mona&fault=token_5xx"
    );
    let url = mock_github::pick_account("http://h/a", "hubot", None).unwrap();
    assert_eq!(url, "http://h/a?login=hubot");
}

/// Suites share one mock between tasks, so it and its futures must be thread-safe.
#[test]
fn the_mock_can_be_shared_across_tasks() {
    fn shareable<T: Send + Sync>() {}
    fn sendable<T: Send>(_: &T) {}
    shareable::<MockGitHub>();
    shareable::<RecordedRequest>();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let github = runtime.block_on(MockGitHub::start());
    sendable(&github.journal());
}

#[tokio::test]
async fn a_matching_etag_gets_304_which_does_not_count_against_the_rate_limit() {
    let github = MockGitHub::start().await;
    let token = access_token(&github, "octocat", None).await;
    let first = get_user(&github, &token).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["x-ratelimit-remaining"], "4999");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let conditional = || {
        client()
            .get(format!("{}/user", github.api_base_url()))
            .bearer_auth(&token)
            .header("if-none-match", &etag)
    };
    let revalidated = conditional().send().await.unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(revalidated.headers()["x-ratelimit-remaining"], "4999");
    assert!(revalidated.text().await.unwrap().is_empty());
    // Another user's validator does not match this user's profile.
    let other = access_token(&github, "mona", None).await;
    let other_etag = get_user(&github, &other).await.headers()["etag"].clone();
    assert_ne!(other_etag.to_str().unwrap(), etag);
    // A revoked token gets 401 even with a matching validator: a 304 proves the token.
    github.revoke_token(&token);
    assert_eq!(
        conditional().send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}
