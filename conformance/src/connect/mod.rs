//! `mcp-auth-conformance connect URL [COMMAND]`: the suite's client role, for a person
//! debugging a server where it runs (https, another machine, the real GitHub).
//!
//! It does what an MCP client does: discovery from the 401 (`resource_metadata`, the
//! well-known PRM paths, authorization server metadata or OIDC, the 2025-03-26 default
//! endpoints), registration (DCR, a client metadata document URL, or a pre-registered
//! `--client-id`), PKCE S256 with `state` and RFC 8707 `resource`, the login in the system
//! browser with a loopback redirect listener, the token exchange; then it lists and calls
//! tools at a prompt or once per invocation. Tokens are cached per MCP URL
//! ([`cache`]) and refreshed when they expire; `--trace` shows every HTTP exchange with the
//! secrets redacted.
//!
//! Unlike the suite, which only ever talks to loopback, `connect` uses [`Http::for_remote`].

pub mod browser_open;
pub mod cache;
pub mod conn;
pub mod listener;
pub mod repl;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::Parser;
use serde_json::{Value, json};
use url::Url;

use crate::http::streamable::{ACCEPT_BOTH, initialize_params};
use crate::http::{Http, Req, is_loopback};
use crate::oauth::discovery::{AsSource, Discovery, discover};
use crate::oauth::flow::{self, AuthParams, Pkce};
use crate::oauth::registration::{self, Client, ClientKind};
use crate::redact::Redactor;
use cache::{Cache, Entry, now_secs};
use conn::{Conn, Failure, TransportChoice, failure_message};
use repl::Command;

/// Connect to an MCP server as a client: log in through the browser, then list and call tools.
#[derive(Debug, Parser)]
#[command(
    name = "mcp-auth-conformance connect",
    after_help = repl::HELP,
    override_usage = "mcp-auth-conformance connect [OPTIONS] URL [COMMAND]..."
)]
pub struct Args {
    /// The MCP endpoint: `https://host/mcp`, or the `/sse` URL of a legacy server.
    pub url: Url,
    /// Run this one command and exit instead of starting the prompt (e.g. `tools`,
    /// `call get_user_profile '{}'`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// `auto` tries Streamable HTTP, then falls back to HTTP+SSE.
    #[arg(long, value_enum, default_value = "auto")]
    pub transport: TransportChoice,
    /// A pre-registered client instead of dynamic registration.
    // Client ids and secrets are the server's random strings, which may begin with `-`.
    #[arg(long, allow_hyphen_values = true)]
    pub client_id: Option<String>,
    /// The pre-registered client's secret (sent with `client_secret_post`).
    #[arg(
        long,
        env = "MCP_CONNECT_CLIENT_SECRET",
        hide_env_values = true,
        requires = "client_id",
        allow_hyphen_values = true
    )]
    pub client_secret: Option<String>,
    /// A client ID metadata document URL, used as the client_id when the authorization server
    /// advertises `client_id_metadata_document_supported`.
    #[arg(long, conflicts_with = "client_id")]
    pub client_metadata_url: Option<Url>,
    /// The scope to ask for (default: the challenge's `scope`, else the PRM's
    /// `scopes_supported`).
    #[arg(long)]
    pub scope: Option<String>,
    /// Print the authorization URL instead of opening a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// The port of the loopback redirect listener (0: one from the OS). A pre-registered
    /// client needs the port its redirect URI names.
    #[arg(long, default_value_t = 0)]
    pub callback_port: u16,
    /// Where to keep tokens (default: the user's cache directory).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Print the access token after a login or refresh, and in whoami.
    #[arg(long)]
    pub show_token: bool,
    /// Print every HTTP exchange (secrets redacted) on stderr.
    #[arg(long)]
    pub trace: bool,
    /// Seconds to wait for any single response.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
    /// Seconds to wait for the browser to come back with the authorization response.
    #[arg(long, default_value_t = 300.0)]
    pub login_timeout: f64,
    /// The protocol version to ask for in `initialize`.
    #[arg(long, default_value = "2025-11-25")]
    pub protocol_version: String,
}

/// Runs `connect` with its arguments (`connect URL ...`, the program name already dropped).
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = match Args::try_parse_from(args) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A usable login for the MCP endpoint `url`, as `connect` makes one: the cached tokens,
/// refreshed when they have expired, else a login in the system browser (honouring `BROWSER`),
/// kept in the cache. The suite's live mode uses it for `--login browser`.
pub async fn login_for(url: &Url, timeout: Duration) -> anyhow::Result<Entry> {
    let args = Args::try_parse_from(["connect", url.as_str()])?;
    let http = Http::for_remote(timeout, Arc::new(Redactor::default()), !is_loopback(url))?;
    let mut session = Session::new(args, http)?;
    session.ensure_token().await?;
    session.finish().await;
    session
        .entry
        .clone()
        .context("the server let the client in without a login, so there is no token to use")
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let redactor = Arc::new(Redactor::default());
    let timeout = Duration::try_from_secs_f64(args.timeout).context("--timeout")?;
    // Proxies are for reaching other machines; a server on this one is reached directly.
    let mut http = Http::for_remote(timeout, redactor.clone(), !is_loopback(&args.url))?;
    if args.trace {
        let redactor = redactor.clone();
        http = http.with_observer(Arc::new(move |exchange| {
            // The observer sees a session's first response before the session is set up, so
            // its id is made known to the redactor here.
            if let Some(session) = exchange.header("mcp-session-id") {
                redactor.add(session, "session-id");
            }
            let text = exchange.evidence(&redactor);
            eprintln!("[trace] {}", text.replace('\n', "\n[trace] "));
        }));
    }
    let command = if args.command.is_empty() {
        None
    } else {
        Some(
            repl::parse(&args.command.join(" "))
                .map_err(|e| anyhow!(e))?
                .context("an empty command")?,
        )
    };
    let mut session = Session::new(args, http)?;
    let ok = match command {
        Some(command) => session.execute(command).await?,
        None => session.interactive().await?,
    };
    session.finish().await;
    Ok(ok)
}

struct Session {
    args: Args,
    http: Http,
    cache: Cache,
    entry: Option<Entry>,
    conn: Option<Conn>,
    /// The server let us in without a token.
    open_server: bool,
    /// Tool names from the last `tools/list`.
    tools: Option<Vec<String>>,
}

impl Session {
    fn new(args: Args, http: Http) -> anyhow::Result<Session> {
        let cache = Cache::new(args.cache_dir.clone())?;
        let entry = cache.load(args.url.as_str())?;
        if let Some(entry) = &entry {
            remember_secrets(&http, entry);
        }
        Ok(Session {
            args,
            http,
            cache,
            entry,
            conn: None,
            open_server: false,
            tools: None,
        })
    }

    fn url(&self) -> &Url {
        &self.args.url
    }

    async fn interactive(&mut self) -> anyhow::Result<bool> {
        self.ensure_conn().await?;
        eprintln!(
            "connected to {} over {}; type help for the commands",
            self.url(),
            self.conn.as_ref().map_or("?", Conn::transport_name)
        );
        let mut lines = repl::stdin_lines();
        loop {
            repl::prompt();
            let Some(line) = lines.recv().await else {
                break;
            };
            match repl::parse(&line) {
                Ok(None) => {}
                Ok(Some(Command::Quit)) => break,
                Ok(Some(command)) => {
                    if let Err(e) = self.execute(command).await {
                        eprintln!("error: {e:#}");
                    }
                }
                Err(message) => eprintln!("error: {message}"),
            }
        }
        Ok(true)
    }

    /// Runs one command; `Ok(false)` when it ran but the server reported a failure (a tool
    /// error).
    async fn execute(&mut self, command: Command) -> anyhow::Result<bool> {
        match command {
            Command::Tools => {
                let tools = self.list_tools().await?;
                if tools.is_empty() {
                    println!("(the server lists no tools)");
                }
                for tool in tools {
                    let name = tool.get("name").and_then(Value::as_str).unwrap_or("?");
                    let description = tool
                        .get("description")
                        .and_then(Value::as_str)
                        .and_then(|d| d.lines().next())
                        .unwrap_or_default();
                    println!("{name}  {description}");
                }
                Ok(true)
            }
            Command::Call { name, arguments } => self.call_tool(&name, arguments).await,
            Command::Whoami => {
                let has_profile = self
                    .tool_names()
                    .await?
                    .iter()
                    .any(|t| t == "get_user_profile");
                let mut ok = true;
                if has_profile {
                    ok = self.call_tool("get_user_profile", json!({})).await?;
                }
                self.print_token_line();
                Ok(ok)
            }
            Command::Refresh => {
                self.ensure_token().await?;
                if self.open_server {
                    bail!(
                        "{} needs no login, so there is nothing to refresh",
                        self.url()
                    );
                }
                self.refresh().await?;
                println!("refreshed the tokens");
                self.print_token_line();
                Ok(true)
            }
            Command::Revoke => self.revoke().await,
            Command::Logout => {
                if let Some(conn) = self.conn.take() {
                    conn.close().await;
                }
                self.entry = None;
                if self.cache.remove(self.url().as_str())? {
                    println!("logged out: forgot the tokens for {}", self.url());
                } else {
                    println!("not logged in to {}", self.url());
                }
                Ok(true)
            }
            Command::Help => {
                println!("{}", repl::HELP);
                Ok(true)
            }
            Command::Quit => Ok(true),
        }
    }

    fn print_token_line(&self) {
        let Some(entry) = &self.entry else {
            println!("token: none (the server asked for no login)");
            return;
        };
        let expiry = match entry.expires_in() {
            Some(secs) if secs > 0 => format!("expires in {secs} s"),
            Some(_) => "expired".to_owned(),
            None => "no expiry given".to_owned(),
        };
        println!(
            "token: scope {}, {expiry}, refresh token {}, client {}, issuer {}",
            entry.scope.as_deref().unwrap_or("(none given)"),
            if entry.refresh_token.is_some() {
                "kept"
            } else {
                "none"
            },
            entry.client_id,
            entry.issuer
        );
        if self.args.show_token {
            println!("access token: {}", entry.access_token);
        }
    }

    async fn list_tools(&mut self) -> anyhow::Result<Vec<Value>> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        // A bound on pages, so a server that always sends a cursor cannot loop us forever.
        for _ in 0..100 {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let result = rpc_result(self.request("tools/list", params).await?)?;
            if let Some(page) = result.get("tools").and_then(Value::as_array) {
                tools.extend(page.iter().cloned());
            }
            cursor = result
                .get("nextCursor")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        self.tools = Some(
            tools
                .iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect(),
        );
        Ok(tools)
    }

    async fn tool_names(&mut self) -> anyhow::Result<Vec<String>> {
        if self.tools.is_none() {
            self.list_tools().await?;
        }
        Ok(self.tools.clone().unwrap_or_default())
    }

    async fn call_tool(&mut self, name: &str, arguments: Value) -> anyhow::Result<bool> {
        let result = rpc_result(
            self.request("tools/call", json!({"name": name, "arguments": arguments}))
                .await?,
        )?;
        let content = result
            .get("content")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut printed = false;
        for item in &content {
            match item.get("text").and_then(Value::as_str) {
                Some(text) if item.get("type").and_then(Value::as_str) == Some("text") => {
                    println!("{text}");
                }
                _ => println!("{item}"),
            }
            printed = true;
        }
        if !printed && let Some(structured) = result.get("structuredContent") {
            println!("{}", serde_json::to_string_pretty(structured)?);
        }
        if result.get("isError").and_then(Value::as_bool) == Some(true) {
            eprintln!("the tool reported an error");
            return Ok(false);
        }
        Ok(true)
    }

    /// A JSON-RPC request over the session, with one retry after a refresh (401) or a new
    /// session (404).
    async fn request(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        for attempt in 0..2 {
            self.ensure_conn().await?;
            let conn = self.conn.as_mut().context("no session")?;
            match conn.request(method, params.clone()).await {
                Ok(response) => return Ok(response),
                Err(Failure::Unauthorized(_)) if attempt == 0 => self.recover_from_401().await?,
                Err(Failure::SessionGone) if attempt == 0 => {
                    eprintln!("the server forgot the session; starting a new one");
                    self.conn = None;
                }
                Err(failure) => return Err(failure_message(failure, &self.http)),
            }
        }
        bail!("{method} failed twice")
    }

    async fn ensure_conn(&mut self) -> anyhow::Result<()> {
        self.ensure_token().await?;
        if self.conn.is_some() {
            return Ok(());
        }
        for attempt in 0..2 {
            let token = self.entry.as_ref().map(|e| e.access_token.clone());
            match conn::open(
                &self.http,
                &self.args.url,
                token.as_deref(),
                self.args.transport,
                &self.args.protocol_version,
            )
            .await
            {
                Ok((conn, note)) => {
                    if let Some(note) = note {
                        eprintln!("{note}");
                    }
                    self.conn = Some(conn);
                    return Ok(());
                }
                Err(Failure::Unauthorized(_)) if attempt == 0 => self.recover_from_401().await?,
                Err(failure) => return Err(failure_message(failure, &self.http)),
            }
        }
        bail!("the server refused the new token too")
    }

    /// A usable access token: from the cache, refreshed when it has expired, else a new login.
    async fn ensure_token(&mut self) -> anyhow::Result<()> {
        if self.open_server {
            return Ok(());
        }
        if let Some(entry) = &self.entry {
            if !entry.expired() {
                return Ok(());
            }
            if entry.refresh_token.is_some() {
                match self.refresh().await {
                    Ok(()) => return Ok(()),
                    Err(e) => eprintln!("the refresh failed, so logging in again: {e:#}"),
                }
            }
        }
        self.login().await
    }

    /// After a 401: a refresh, else a new login.
    async fn recover_from_401(&mut self) -> anyhow::Result<()> {
        if self.open_server {
            self.open_server = false;
        } else if self
            .entry
            .as_ref()
            .is_some_and(|e| e.refresh_token.is_some())
        {
            eprintln!("the server refused the access token; refreshing it");
            match self.refresh().await {
                Ok(()) => return Ok(()),
                Err(e) => eprintln!("the refresh failed, so logging in again: {e:#}"),
            }
        }
        self.entry = None;
        self.cache.remove(self.url().as_str())?;
        self.login().await?;
        if let (Some(conn), Some(entry)) = (self.conn.as_mut(), &self.entry) {
            conn.set_token(&entry.access_token);
        }
        Ok(())
    }

    async fn refresh(&mut self) -> anyhow::Result<()> {
        let entry = self.entry.clone().context("not logged in")?;
        let refresh_token = entry
            .refresh_token
            .clone()
            .context("the server gave no refresh token; log in again (logout, then any command)")?;
        let client = cached_client(&entry);
        let endpoint = Url::parse(&entry.token_endpoint)?;
        let exchange = flow::refresh(
            &self.http,
            &endpoint,
            &client,
            &refresh_token,
            entry.resource.as_deref(),
        )
        .await?;
        let tokens = flow::parse_tokens(&self.http, exchange)?;
        let updated = Entry {
            access_token: tokens.access_token,
            // Without a new refresh token the old one stays valid (RFC 6749 §6).
            refresh_token: tokens.refresh_token.or(entry.refresh_token.clone()),
            expires_at: tokens.expires_in.map(|s| now_secs() + s),
            scope: tokens.scope.or(entry.scope.clone()),
            ..entry
        };
        self.cache.store(&updated)?;
        if let Some(conn) = self.conn.as_mut() {
            conn.set_token(&updated.access_token);
        }
        if self.args.show_token {
            println!("access token: {}", updated.access_token);
        }
        self.entry = Some(updated);
        Ok(())
    }

    async fn revoke(&mut self) -> anyhow::Result<bool> {
        let Some(entry) = self.entry.clone() else {
            println!("not logged in to {}", self.url());
            return Ok(true);
        };
        let Some(endpoint) = &entry.revocation_endpoint else {
            bail!(
                "the authorization server advertises no revocation_endpoint; \
                 `logout` forgets the tokens here"
            );
        };
        let endpoint = Url::parse(endpoint)?;
        let client = cached_client(&entry);
        let mut tokens = Vec::new();
        // The refresh token first: revoking it ends the grant at many servers (RFC 7009 §2.1).
        if let Some(refresh) = &entry.refresh_token {
            tokens.push((refresh.clone(), "refresh_token"));
        }
        tokens.push((entry.access_token.clone(), "access_token"));
        for (token, hint) in tokens {
            let fields = flow::with_client_auth(
                &client,
                vec![
                    ("token".to_owned(), token),
                    ("token_type_hint".to_owned(), hint.to_owned()),
                ],
            );
            let exchange = flow::token_request(&self.http, &endpoint, &fields).await?;
            // RFC 7009 §2.2: "The authorization server responds with HTTP status code 200 if the
            // token has been revoked successfully or if the client submitted an invalid token."
            if exchange.status != 200 {
                bail!(
                    "the revocation of the {hint} was refused:\n{}",
                    exchange.evidence(&self.http.redactor)
                );
            }
        }
        if let Some(conn) = self.conn.take() {
            conn.close().await;
        }
        self.entry = None;
        self.cache.remove(self.url().as_str())?;
        println!("revoked the tokens at {endpoint} and forgot them");
        Ok(true)
    }

    async fn login(&mut self) -> anyhow::Result<()> {
        let url = self.args.url.clone();
        let choice = self.args.transport;
        let mut found = discover(
            &self.http,
            &url,
            probe(
                &url,
                choice == TransportChoice::Sse,
                &self.args.protocol_version,
            ),
        )
        .await?;
        if choice == TransportChoice::Auto && [400, 404, 405].contains(&found.probe.status) {
            // A legacy server's SSE URL does not take POSTs; its GET is where it challenges.
            found = discover(
                &self.http,
                &url,
                probe(&url, true, &self.args.protocol_version),
            )
            .await?;
        }
        if (200..300).contains(&found.probe.status) && found.challenge.is_none() {
            eprintln!("{url} answered without asking for a login");
            self.open_server = true;
            return Ok(());
        }
        if found.source == AsSource::Defaults {
            eprintln!(
                "no authorization server metadata found (tried {}); using the 2025-03-26 default endpoints",
                found
                    .tried
                    .iter()
                    .map(|(u, s)| format!("{u} -> {s}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        // 2025-11-25 authorization: "If code_challenge_methods_supported is absent, the
        // authorization server does not support PKCE and MCP clients MUST refuse to proceed."
        if let Some(metadata) = &found.metadata {
            let s256 = metadata
                .get("code_challenge_methods_supported")
                .and_then(Value::as_array)
                .is_some_and(|m| m.iter().any(|v| v == "S256"));
            if !s256 {
                bail!(
                    "the authorization server metadata does not list S256 in \
                     code_challenge_methods_supported, so a client must not log in there"
                );
            }
        }

        let listener = listener::CallbackListener::bind(self.args.callback_port).await?;
        let redirect_uri = listener.redirect_uri.to_string();
        let client = self.client_for(&found, &redirect_uri).await?;
        let pkce = Pkce::s256();
        let state = random_state();
        // RFC 8707 `resource` when the server published protected resource metadata, as the
        // 2025-06-18 authorization spec asks; servers of 2025-03-26 may not know the parameter.
        let resource = found.prm.is_some().then(|| found.resource());
        let scope = self.args.scope.clone().or_else(|| default_scope(&found));
        let auth_url = AuthParams::for_client(
            &client,
            &pkce,
            &state,
            resource.as_deref(),
            scope.as_deref(),
        )
        .url(&found.endpoints.authorization);

        if self.args.no_browser {
            eprintln!("Open this URL in a browser to log in:\n{auth_url}");
        } else {
            match browser_open::open(auth_url.as_str()) {
                Ok(program) => eprintln!(
                    "Opened the login page with {program}; waiting for the browser to come back to {redirect_uri}"
                ),
                Err(e) => {
                    eprintln!("{e:#}\nOpen this URL in a browser to log in:\n{auth_url}")
                }
            }
        }
        let issuer = match found.source {
            AsSource::Metadata => Some(
                found
                    .metadata_str("issuer")
                    .map(str::to_owned)
                    .unwrap_or_else(|| found.issuer.clone()),
            ),
            AsSource::Defaults => None,
        };
        let expected = listener::Expected {
            state,
            issuer,
            iss_required: found.iss_advertised(),
        };
        let login_timeout =
            Duration::try_from_secs_f64(self.args.login_timeout).context("--login-timeout")?;
        let code = listener.wait(&expected, login_timeout).await?;
        self.http.redactor.add(&code, "code");
        let exchange = flow::exchange_code(
            &self.http,
            &found.endpoints.token,
            &client,
            &code,
            Some(&pkce.verifier),
            resource.as_deref(),
        )
        .await?;
        let tokens = flow::parse_tokens(&self.http, exchange)?;
        let entry = Entry {
            mcp_url: url.to_string(),
            resource,
            issuer: expected.issuer.unwrap_or_else(|| found.issuer.clone()),
            token_endpoint: found.endpoints.token.to_string(),
            revocation_endpoint: found.endpoints.revocation.as_ref().map(Url::to_string),
            client_id: client.client_id,
            client_secret: client.client_secret,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_at: tokens.expires_in.map(|s| now_secs() + s),
            scope: tokens.scope.or(scope),
        };
        let path = self.cache.store(&entry)?;
        eprintln!("logged in; the tokens are cached in {}", path.display());
        if self.args.show_token {
            println!("access token: {}", entry.access_token);
        }
        self.entry = Some(entry);
        Ok(())
    }

    /// The client to log in with: pre-registered, a metadata document URL, or registered now.
    async fn client_for(&self, found: &Discovery, redirect_uri: &str) -> anyhow::Result<Client> {
        let name = "mcp-auth-conformance connect".to_owned();
        let public = |client_id: String| Client {
            client_id,
            client_secret: None,
            redirect_uri: redirect_uri.to_owned(),
            auth_method: "none".into(),
            name: name.clone(),
        };
        let (source, note) = client_source(
            self.args.client_id.is_some(),
            self.args.client_metadata_url.as_ref(),
            found.metadata.as_ref(),
            found.endpoints.registration.as_ref(),
        )?;
        if let Some(note) = note {
            eprintln!("{note}");
        }
        match source {
            ClientSource::PreRegistered => {
                let client_id = self.args.client_id.clone().unwrap_or_default();
                match &self.args.client_secret {
                    Some(secret) => {
                        self.http.redactor.add(secret, "client_secret");
                        Ok(Client {
                            client_secret: Some(secret.clone()),
                            auth_method: "client_secret_post".into(),
                            ..public(client_id)
                        })
                    }
                    None => Ok(public(client_id)),
                }
            }
            ClientSource::MetadataDocument(url) => Ok(public(url.to_string())),
            ClientSource::Register(endpoint) => {
                registration::register(
                    &self.http,
                    &endpoint,
                    ClientKind::Public,
                    &name,
                    redirect_uri,
                )
                .await
            }
        }
    }

    async fn finish(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.close().await;
        }
    }
}

/// Where the client of a login comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ClientSource {
    /// `--client-id` (and `--client-secret`).
    PreRegistered,
    /// `--client-metadata-url`: the URL is the client_id.
    MetadataDocument(Url),
    /// Dynamic registration at this endpoint.
    Register(Url),
}

/// Picks the client source in the order a user would expect: what they named, then the
/// metadata document when the authorization server takes one, then registration. The note
/// says why a named metadata document was not used.
fn client_source(
    pre_registered: bool,
    metadata_document: Option<&Url>,
    metadata: Option<&Value>,
    registration: Option<&Url>,
) -> anyhow::Result<(ClientSource, Option<String>)> {
    if pre_registered {
        return Ok((ClientSource::PreRegistered, None));
    }
    let mut note = None;
    if let Some(document) = metadata_document {
        let supported = metadata
            .and_then(|m| m.get("client_id_metadata_document_supported"))
            .and_then(Value::as_bool)
            == Some(true);
        if supported {
            return Ok((ClientSource::MetadataDocument(document.clone()), None));
        }
        note = Some(
            "the authorization server does not advertise client_id_metadata_document_supported; \
             registering a client instead"
                .to_owned(),
        );
    }
    match registration {
        Some(endpoint) => Ok((ClientSource::Register(endpoint.clone()), note)),
        None => bail!(
            "the authorization server offers no dynamic registration (no registration_endpoint); \
             pass --client-id of a client registered with the redirect URI \
             http://127.0.0.1:PORT/callback and --callback-port PORT"
        ),
    }
}

/// The unauthenticated request discovery starts from: what the transport sends first.
fn probe(url: &Url, sse: bool, version: &str) -> Req {
    if sse {
        Req::get(url.clone()).header("Accept", "text/event-stream")
    } else {
        Req::post(url.clone())
            .header("Accept", ACCEPT_BOTH)
            .json(&json!({
                "jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": initialize_params(version)
            }))
    }
}

/// The scope to ask for when none is given: the challenge's `scope`, else the PRM's
/// `scopes_supported` (the 2025-11-25 scope selection strategy).
fn default_scope(found: &Discovery) -> Option<String> {
    if let Some(scope) = found.challenge.as_ref().and_then(|c| c.param("scope")) {
        return Some(scope.to_owned());
    }
    let scopes: Vec<&str> = found
        .prm
        .as_ref()?
        .get("scopes_supported")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    (!scopes.is_empty()).then(|| scopes.join(" "))
}

fn cached_client(entry: &Entry) -> Client {
    Client {
        client_id: entry.client_id.clone(),
        client_secret: entry.client_secret.clone(),
        redirect_uri: String::new(),
        auth_method: if entry.client_secret.is_some() {
            "client_secret_post".into()
        } else {
            "none".into()
        },
        name: "mcp-auth-conformance connect".into(),
    }
}

fn remember_secrets(http: &Http, entry: &Entry) {
    http.redactor.add(&entry.access_token, "access_token");
    if let Some(refresh) = &entry.refresh_token {
        http.redactor.add(refresh, "refresh_token");
    }
    if let Some(secret) = &entry.client_secret {
        http.redactor.add(secret, "client_secret");
    }
}

/// 128 random bits, hex: unguessable, and safe in any URL.
fn random_state() -> String {
    use rand::Rng as _;
    let bits: u128 = rand::rng().random();
    format!("{bits:032x}")
}

/// The `result` of a JSON-RPC response, or its error as an error.
fn rpc_result(response: Value) -> anyhow::Result<Value> {
    if let Some(error) = response.get("error") {
        bail!(
            "the server answered with error {}: {}",
            error.get("code").unwrap_or(&Value::Null),
            error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)")
        );
    }
    response
        .get("result")
        .cloned()
        .context("a JSON-RPC response with neither result nor error")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Args::command().debug_assert();
    }

    #[test]
    fn the_client_is_the_named_one_then_a_metadata_document_the_server_takes_then_a_registration() {
        use super::{ClientSource, client_source};
        use serde_json::json;
        use url::Url;
        let register = Url::parse("https://as.example/register").unwrap();
        let document = Url::parse("https://app.example/client.json").unwrap();
        let takes_documents = json!({"client_id_metadata_document_supported": true});
        let (source, _) =
            client_source(true, Some(&document), Some(&takes_documents), None).unwrap();
        assert_eq!(source, ClientSource::PreRegistered);
        let (source, note) = client_source(
            false,
            Some(&document),
            Some(&takes_documents),
            Some(&register),
        )
        .unwrap();
        assert_eq!(source, ClientSource::MetadataDocument(document.clone()));
        assert_eq!(note, None);
        let (source, note) =
            client_source(false, Some(&document), Some(&json!({})), Some(&register)).unwrap();
        assert_eq!(source, ClientSource::Register(register.clone()));
        assert!(
            note.unwrap()
                .contains("client_id_metadata_document_supported")
        );
        let refused = client_source(false, None, Some(&json!({})), None).unwrap_err();
        assert!(refused.to_string().contains("--client-id"), "{refused}");
    }

    #[test]
    fn a_one_shot_command_follows_the_url() {
        let args = <super::Args as clap::Parser>::try_parse_from([
            "connect",
            "--no-browser",
            "http://127.0.0.1:1/mcp",
            "call",
            "get_user_profile",
            "{}",
        ])
        .unwrap();
        assert!(args.no_browser);
        assert_eq!(args.command, ["call", "get_user_profile", "{}"]);
    }
}
