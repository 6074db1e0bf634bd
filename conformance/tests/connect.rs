//! `mcp-auth-conformance connect` end to end against the reference server and the mock GitHub,
//! both in this process on loopback. The "system browser" is `tests/support/browser.sh`
//! (`BROWSER`), which hands the authorization URL to the test; the suite's scripted browser
//! walks the login and delivers the redirect to connect's listener. `cargo xtask interop`
//! does the same login in headless Chromium.

#![cfg(unix)]

mod support;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mcp_auth_conformance::connect::cache::{Cache, Entry};
use mcp_auth_conformance::http::{Http, Req};
use mcp_auth_conformance::oauth::browser::{Arrival, Browser, Consent, Script};
use mcp_auth_conformance::oauth::registration::{ClientKind, register};
use tokio::sync::mpsc;
use url::Url;

/// Bounds every wait of these tests; connect bounds its own waits more tightly.
const WAIT: Duration = Duration::from_secs(60);

struct Setup {
    target: support::Target,
    dir: PathBuf,
    cache: Cache,
}

impl Setup {
    async fn new(name: &str) -> Setup {
        let target = support::start(&[], &[]).await;
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("connect")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("test directory");
        let cache = Cache::new(Some(dir.join("cache"))).expect("cache");
        Setup { target, dir, cache }
    }

    fn url(&self, path: &str) -> Url {
        self.target.url.join(path).expect("endpoint URL")
    }

    /// Starts connect with the test's cache directory and the given `BROWSER`.
    fn spawn(&self, browser: &str, args: &[&str], stdin: &str) -> Running {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mcp-auth-conformance"));
        command
            .arg("connect")
            .arg("--cache-dir")
            .arg(&self.cache.dir)
            .args(["--timeout", "10", "--login-timeout", "30"])
            .args(args)
            .env("BROWSER", browser)
            .env("CONNECT_TEST_BROWSER_FIFO", self.dir.join("browser.fifo"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start connect");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("write stdin");
        drop(input);
        let mut stdout = child.stdout.take().expect("stdout");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Running {
            child,
            stdout,
            lines,
            stderr: Vec::new(),
        }
    }

    /// Runs connect to its end with a `BROWSER` that must not be needed.
    async fn run(&self, args: &[&str]) -> Finished {
        self.spawn("false", args, "").finish().await
    }

    /// Runs connect with the test's browser, which logs `login` in.
    async fn run_with_login(&self, login: &str, args: &[&str]) -> Finished {
        let fifo = self.dir.join("browser.fifo");
        let _ = std::fs::remove_file(&fifo);
        let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(made.success());
        let browser = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/browser.sh");
        let mut running = self.spawn(browser.to_str().expect("path"), args, "");
        // Opening the FIFO for reading meets the script's write: no polling. If connect ends
        // or stalls before it opens the browser, the reader is let go (a writer that closes
        // at once) and the test fails with what connect said, instead of waiting forever.
        let path = fifo.clone();
        let mut reader = tokio::task::spawn_blocking(move || std::fs::read_to_string(path));
        let release = |fifo: &Path| {
            let _ = std::fs::OpenOptions::new().write(true).open(fifo);
        };
        let deadline = tokio::time::sleep(WAIT);
        tokio::pin!(deadline);
        let url = loop {
            tokio::select! {
                read = &mut reader => break read.expect("reader").expect("read the FIFO"),
                line = running.lines.recv() => match line {
                    Some(line) => running.stderr.push(line),
                    None => {
                        release(&fifo);
                        panic!("connect ended before it opened the browser: {:?}", running.stderr);
                    }
                },
                () = &mut deadline => {
                    release(&fifo);
                    panic!("connect did not open the browser within {WAIT:?}: {:?}", running.stderr);
                }
            }
        };
        self.walk_and_deliver(url.trim(), login).await;
        running.finish().await
    }

    /// What a browser does with the authorization URL: logs in, approves, and follows the
    /// redirect to connect's listener.
    async fn walk_and_deliver(&self, authorization_url: &str, login: &str) {
        let http = Http::new(Duration::from_secs(10), Arc::default()).expect("client");
        let url = Url::parse(authorization_url).expect("the printed URL parses");
        let redirect_uri = url
            .query_pairs()
            .find(|(k, _)| k == "redirect_uri")
            .map(|(_, v)| Url::parse(&v).expect("redirect_uri"))
            .expect("the URL has a redirect_uri");
        assert_eq!(redirect_uri.host_str(), Some("127.0.0.1"));
        assert_eq!(redirect_uri.path(), "/callback");
        for (param, value) in [
            ("code_challenge_method", Some("S256")),
            ("response_type", Some("code")),
            ("resource", None),
            ("state", None),
        ] {
            let found = url.query_pairs().find(|(k, _)| k == param);
            assert!(found.is_some(), "no {param} in {url}");
            if let Some(value) = value {
                assert_eq!(found.unwrap().1, value);
            }
        }
        let mock = Url::parse(&self.target.mock.base_url()).expect("mock URL");
        let mut browser = Browser::new(http.clone(), &mock);
        let script = Script {
            login: login.to_owned(),
            fault: None,
            consent: Consent::Approve,
            redirect_uri,
        };
        let arrival = browser.walk(url, &script).await.expect("the walk");
        let Arrival::Callback(callback) = arrival else {
            panic!("the login did not come back to connect: {arrival:?}");
        };
        let page = http
            .send(Req::get(callback))
            .await
            .expect("connect's listener answers");
        assert_eq!(page.status, 200, "{}", page.text());
        assert!(page.text().contains("close this tab"), "{}", page.text());
    }

    fn entry(&self, url: &Url) -> Option<Entry> {
        self.cache.load(url.as_str()).expect("readable cache")
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Running {
    child: Child,
    stdout: std::thread::JoinHandle<String>,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Vec<String>,
}

struct Finished {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn ok(self) -> Finished {
        assert!(
            self.success,
            "connect failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Running {
    /// The next stderr line that starts with `prefix`.
    async fn stderr_line(&mut self, prefix: &str) -> String {
        loop {
            let line = tokio::time::timeout(WAIT, self.lines.recv())
                .await
                .expect("connect keeps talking")
                .unwrap_or_else(|| panic!("no line starting {prefix:?}: {:?}", self.stderr));
            self.stderr.push(line.clone());
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    async fn finish(mut self) -> Finished {
        let mut child = self.child;
        let status = tokio::time::timeout(WAIT, tokio::task::spawn_blocking(move || child.wait()))
            .await
            .expect("connect ends")
            .expect("waiter")
            .expect("wait");
        let stdout = self.stdout.join().expect("stdout reader");
        while let Some(line) = self.lines.recv().await {
            self.stderr.push(line);
        }
        // Shown when a test fails (the harness keeps a passing test's output to itself).
        println!(
            "--- connect ({status})\n{stdout}--- its stderr\n{}",
            self.stderr.join("\n")
        );
        Finished {
            success: status.success(),
            stdout,
            stderr: self.stderr.join("\n"),
        }
    }
}

/// Neither output holds a token, and traced session ids are redacted.
fn assert_no_secrets(run: &Finished, entry: &Entry) {
    for secret in [Some(&entry.access_token), entry.refresh_token.as_ref()]
        .into_iter()
        .flatten()
    {
        assert!(!run.stderr.contains(secret.as_str()), "{}", run.stderr);
        assert!(!run.stdout.contains(secret.as_str()), "{}", run.stdout);
    }
    for line in run.stderr.lines() {
        if let Some(value) = line.strip_prefix("[trace] mcp-session-id: ") {
            assert_eq!(value, "[session-id]", "a session id in the trace");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_shot_commands_log_in_once_then_reuse_refresh_and_revoke_the_tokens() {
    let setup = Setup::new("one-shot").await;
    let mcp = setup.url("/mcp");

    // The first command logs in through the browser and caches the tokens.
    let first = setup
        .run_with_login("mona", &["--trace", mcp.as_str(), "tools"])
        .await
        .ok();
    assert!(
        first.stdout.contains("get_user_profile"),
        "{}",
        first.stdout
    );
    let entry = setup.entry(&mcp).expect("the tokens are cached");
    // `--trace` shows the whole login (registration, token exchange) and no secret.
    for exchange in ["POST /register", "POST /token", "POST /mcp"] {
        let (method, path) = exchange.split_once(' ').unwrap();
        let line = format!("[trace] {method} {}", setup.url(path));
        assert!(
            first.stderr.contains(&line),
            "no {line:?} in\n{}",
            first.stderr
        );
    }
    assert_no_secrets(&first, &entry);
    let path = setup.cache.path(mcp.as_str());
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path)
            .expect("cache file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }

    // The next ones reuse them: `BROWSER=false` would fail a login.
    let call = setup
        .run(&[mcp.as_str(), "call", "get_user_profile", "{}"])
        .await
        .ok();
    assert!(call.stdout.contains(r#""login":"mona""#), "{}", call.stdout);
    assert!(!call.stderr.contains("log in"), "{}", call.stderr);
    let whoami = setup.run(&[mcp.as_str(), "whoami"]).await.ok();
    assert!(
        whoami.stdout.contains(r#""login":"mona""#),
        "{}",
        whoami.stdout
    );
    assert!(
        whoami.stdout.contains("token: scope user"),
        "{}",
        whoami.stdout
    );
    assert_eq!(
        setup.entry(&mcp),
        Some(entry.clone()),
        "nothing was refreshed"
    );

    // An expired access token is refreshed before use.
    let mut expired = entry.clone();
    expired.expires_at = Some(1);
    setup.cache.store(&expired).expect("rewrite the cache");
    let after_expiry = setup.run(&[mcp.as_str(), "tools"]).await.ok();
    assert!(after_expiry.stdout.contains("get_user_profile"));
    let refreshed = setup.entry(&mcp).expect("still cached");
    assert_ne!(refreshed.access_token, entry.access_token);
    assert_ne!(refreshed.refresh_token, entry.refresh_token, "rotated");
    assert!(!refreshed.expired());

    // An access token the server refuses (401) is refreshed, and the request sent again.
    let mut refused = refreshed.clone();
    refused.access_token = "not-a-token-the-server-issued".into();
    setup.cache.store(&refused).expect("rewrite the cache");
    let after_401 = setup.run(&[mcp.as_str(), "tools"]).await.ok();
    assert!(after_401.stdout.contains("get_user_profile"));
    assert!(
        after_401
            .stderr
            .contains("refused the access token; refreshing"),
        "{}",
        after_401.stderr
    );
    let refreshed = setup.entry(&mcp).expect("still cached");
    assert_ne!(refreshed.access_token, refused.access_token);

    // `refresh` on demand.
    let refresh = setup.run(&[mcp.as_str(), "refresh"]).await.ok();
    assert!(refresh.stdout.contains("refreshed"), "{}", refresh.stdout);
    let again = setup.entry(&mcp).expect("still cached");
    assert_ne!(again.access_token, refreshed.access_token);

    // `--trace` shows every exchange, and no secret.
    let traced = setup
        .run(&["--trace", mcp.as_str(), "call", "get_user_profile", "{}"])
        .await
        .ok();
    assert!(traced.stderr.contains("[trace] POST"), "{}", traced.stderr);
    assert!(traced.stderr.contains("-> 200"), "{}", traced.stderr);
    assert_no_secrets(&traced, &again);
    // ... unless asked.
    let shown = setup
        .run(&["--show-token", mcp.as_str(), "whoami"])
        .await
        .ok();
    assert!(shown.stdout.contains(&again.access_token));

    // `revoke` ends the grant at the server and forgets it here.
    let revoke = setup.run(&[mcp.as_str(), "revoke"]).await.ok();
    assert!(revoke.stdout.contains("revoked"), "{}", revoke.stdout);
    assert_eq!(setup.entry(&mcp), None);
    assert!(!path.exists());
    let http = Http::new(Duration::from_secs(10), Arc::default()).expect("client");
    let refused = http
        .send(
            Req::post(mcp.clone())
                .bearer(Some(&again.access_token))
                .header("Accept", "application/json, text/event-stream")
                .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})),
        )
        .await
        .expect("the server answers");
    assert_eq!(refused.status, 401, "the revoked token still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_prompt_logs_in_with_a_printed_url_and_falls_back_to_sse() {
    let setup = Setup::new("prompt").await;
    let sse = setup.url("/sse");
    let script = "help\ntools\ncall get_user_profile {}\nwhoami\nrefresh\nbogus\nlogout\nquit\n";
    let mut running = setup.spawn("false", &["--no-browser", sse.as_str()], script);
    assert_eq!(
        running.stderr_line("Open this URL").await,
        "Open this URL in a browser to log in:"
    );
    let url = running.stderr_line("http").await;
    setup.walk_and_deliver(&url, "hubot").await;
    let done = running.finish().await.ok();
    assert!(
        done.stderr.contains("; falling back to HTTP+SSE"),
        "{}",
        done.stderr
    );
    assert!(done.stdout.contains("call NAME [JSON]"), "{}", done.stdout);
    assert!(done.stdout.contains("get_user_profile"), "{}", done.stdout);
    assert!(
        done.stdout.contains(r#""login":"hubot""#),
        "{}",
        done.stdout
    );
    assert!(done.stdout.contains("token: scope user"), "{}", done.stdout);
    assert!(
        done.stdout.contains("refreshed the tokens"),
        "{}",
        done.stdout
    );
    assert!(
        done.stderr.contains("unknown command \"bogus\""),
        "{}",
        done.stderr
    );
    assert!(done.stdout.contains("logged out"), "{}", done.stdout);
    assert_eq!(setup.entry(&sse), None, "logout forgets the tokens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pre_registered_confidential_client_logs_in_with_its_id_and_secret() {
    let setup = Setup::new("client-id").await;
    let mcp = setup.url("/mcp");
    // Registered beforehand, with a loopback redirect URI whose port the server lets vary.
    let http = Http::new(Duration::from_secs(10), Arc::default()).expect("client");
    let client = register(
        &http,
        &setup.url("/register"),
        ClientKind::Confidential,
        "pre-registered",
        "http://127.0.0.1:9/callback",
    )
    .await
    .expect("registration");
    let secret = client.client_secret.clone().expect("a secret");
    let done = setup
        .run_with_login(
            "octocat",
            &[
                "--trace",
                "--client-id",
                &client.client_id,
                "--client-secret",
                &secret,
                mcp.as_str(),
                "whoami",
            ],
        )
        .await
        .ok();
    assert!(
        done.stdout.contains(r#""login":"octocat""#),
        "{}",
        done.stdout
    );
    assert!(!done.stderr.contains(&secret), "{}", done.stderr);
    let entry = setup.entry(&mcp).expect("cached");
    assert_eq!(entry.client_id, client.client_id);
    assert_no_secrets(&done, &entry);
    // The cached secret authenticates the refresh.
    let refresh = setup.run(&[mcp.as_str(), "refresh"]).await.ok();
    assert!(refresh.stdout.contains("refreshed"), "{}", refresh.stdout);
}
