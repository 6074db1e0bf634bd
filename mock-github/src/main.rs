//! `mock-github`: runs the GitHub mock as a standalone process, for servers under test written in
//! other languages.
//!
//! It prints the environment to give the server under test on stdout (shell lines, or one JSON
//! line with `--json` for programs), human hints on stderr, and then serves until Ctrl-C or
//! SIGTERM.
//!
//! With `--intercept` it also runs an intercepting HTTPS proxy for `github.com` and
//! `api.github.com`, writes the CA it generated to a file, and prints the environment for a
//! server whose GitHub URLs are fixed in its code (the proxy and the CA file, not the URLs).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use mock_github::{Fault, MockGitHub};

/// A deterministic mock of GitHub's OAuth App endpoints and `GET /user`.
///
/// The scripted browser picks the account and the fault by adding `login=<user>` and
/// `fault=<fault>` to the authorize URL. Admin endpoints: GET /_mock/journal, POST /_mock/revoke
/// ({"access_token": "..."}), GET /_mock/users, GET /_mock/tokens.
#[derive(Debug, Parser)]
#[command(name = "mock-github", version)]
struct Args {
    /// Address to listen on. With 0.0.0.0 or :: the printed URLs use the loopback address.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,

    /// Port to listen on; 0 picks a free port (read it from the output).
    #[arg(long, default_value_t = 9999)]
    port: u16,

    /// Print one JSON line `{"base_url": ..., "env": {...}, ...}` instead of shell lines.
    #[arg(long)]
    json: bool,

    /// How long the token_timeout and user_timeout faults hold their answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    slow_delay_ms: u64,

    /// Also be github.com and api.github.com for a server whose GitHub URLs are fixed in its
    /// code: an HTTPS proxy (HTTPS_PROXY) that terminates TLS with a CA generated for this run.
    /// Other hosts are refused, so nothing leaves the machine.
    #[arg(long)]
    intercept: bool,

    /// With --intercept: the proxy's port; 0 picks a free port.
    #[arg(long, default_value_t = 0, requires = "intercept")]
    proxy_port: u16,

    /// With --intercept: where to write the CA certificate (PEM) a server must trust. Default:
    /// mock-github-ca-<proxy port>.pem in the temporary directory, removed on exit.
    #[arg(long, value_name = "PATH", requires = "intercept")]
    ca_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();

    let listener = match TcpListener::bind((args.host.as_str(), args.port)) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!(
                "mock-github: cannot listen on {}:{}: {err}",
                args.host, args.port
            );
            return ExitCode::FAILURE;
        }
    };
    let address = match listener.local_addr() {
        Ok(address) => address,
        Err(err) => {
            eprintln!("mock-github: cannot read the bound address: {err}");
            return ExitCode::FAILURE;
        }
    };

    let mut builder = MockGitHub::builder()
        .listener(listener)
        .slow_delay(Duration::from_millis(args.slow_delay_ms));
    if args.intercept {
        match TcpListener::bind((args.host.as_str(), args.proxy_port)) {
            Ok(proxy) => builder = builder.intercept(proxy),
            Err(err) => {
                eprintln!(
                    "mock-github: cannot listen for proxy connections on {}:{}: {err}",
                    args.host, args.proxy_port
                );
                return ExitCode::FAILURE;
            }
        }
    }
    let github = match builder.try_start().await {
        Ok(github) => github,
        Err(err) => {
            eprintln!("mock-github: {err}");
            return ExitCode::FAILURE;
        }
    };

    // A wildcard address is where the mock listens, not somewhere a client can connect to, so
    // the URLs handed out name the loopback address on the same port instead.
    let listening = github.base_url();
    let advertised = format!("http://{}", advertised_address(address));
    let advertise = |url: String| url.replacen(&listening, &advertised, 1);
    let mut env: Vec<(&str, String)> = github
        .server_env()
        .into_iter()
        .map(|(name, value)| (name, advertise(value)))
        .collect();

    // The proxy URL and the CA file, with the file written before anything is printed: a
    // launcher may start the server as soon as it reads the environment.
    let mut interception = None;
    if let (Some(proxy), Some(pem)) = (github.proxy_address(), github.ca_certificate_pem()) {
        let proxy_url = format!("http://{}", advertised_address(proxy));
        let (ca_file, remove_on_exit) = match &args.ca_file {
            Some(path) => (path.clone(), false),
            None => (
                std::env::temp_dir().join(format!("mock-github-ca-{}.pem", proxy.port())),
                true,
            ),
        };
        if let Err(err) = std::fs::write(&ca_file, pem) {
            eprintln!(
                "mock-github: cannot write the CA to {}: {err}",
                ca_file.display()
            );
            return ExitCode::FAILURE;
        }
        let listening = format!("http://{proxy}");
        env = github
            .intercept_env(&ca_file.display().to_string())
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| (name, value.replacen(&listening, &proxy_url, 1)))
            .collect();
        interception = Some((proxy_url, ca_file, remove_on_exit));
    }

    if args.json {
        let mut line = serde_json::json!({
            "base_url": advertised,
            "authorize_url": advertise(github.authorize_url()),
            "token_url": advertise(github.token_url()),
            "api_base_url": advertise(github.api_base_url()),
            "journal_url": advertise(github.journal_url()),
            "env": env
                .iter()
                .map(|(name, value)| ((*name).to_owned(), serde_json::Value::from(value.as_str())))
                .collect::<serde_json::Map<_, _>>(),
        });
        if let Some((proxy_url, ca_file, _)) = &interception {
            line["proxy_url"] = proxy_url.as_str().into();
            line["ca_file"] = ca_file.display().to_string().into();
            line["intercepted_hosts"] = mock_github::INTERCEPTED_HOSTS.as_slice().into();
        }
        println!("{line}");
    } else {
        if let Some((proxy_url, ca_file, _)) = &interception {
            println!(
                "# intercepting {} through the proxy {proxy_url}",
                mock_github::INTERCEPTED_HOSTS.join(" and ")
            );
            println!("# CA certificate: {}", ca_file.display());
        }
        print_shell_env(&advertised, &env);
    }
    print_hints(&advertised);
    if interception.is_some() {
        eprintln!(
            "mock-github: the environment above names no GitHub URL: the server keeps its own \
             https://github.com and https://api.github.com, which the proxy answers"
        );
    }

    wait_for_shutdown().await;
    eprintln!("mock-github: stopping");
    drop(github);
    if let Some((_, ca_file, true)) = &interception {
        let _ = std::fs::remove_file(ca_file);
    }
    ExitCode::SUCCESS
}

fn advertised_address(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), address.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), address.port())
        }
        _ => address,
    }
}

/// Prints the environment for bash/zsh, PowerShell and cmd.exe, quoted for each shell.
fn print_shell_env(base_url: &str, env: &[(&str, String)]) {
    println!("# mock-github listening on {base_url}");
    println!("# bash / zsh:");
    for (name, value) in env {
        println!("export {name}='{}'", value.replace('\'', r"'\''"));
    }
    println!("# PowerShell:");
    for (name, value) in env {
        println!("$env:{name} = '{}'", value.replace('\'', "''"));
    }
    println!("# cmd.exe:");
    for (name, value) in env {
        // The quoted `set "NAME=value"` form keeps `&` and friends in URLs from being parsed.
        println!("set \"{name}={value}\"");
    }
}

fn print_hints(base_url: &str) {
    let logins: Vec<String> = mock_github::users().into_iter().map(|u| u.login).collect();
    let faults: Vec<&str> = Fault::ALL.iter().map(|fault| fault.as_str()).collect();
    eprintln!("mock-github: serving {base_url} until Ctrl-C or SIGTERM");
    eprintln!(
        "mock-github: add login=<{}> (default {}) and fault=<{}> to the authorize URL",
        logins.join("|"),
        mock_github::DEFAULT_LOGIN,
        faults.join("|"),
    );
    eprintln!(
        "mock-github: journal at {base_url}{}, revoke with POST {base_url}{}",
        mock_github::JOURNAL_PATH,
        mock_github::REVOKE_PATH,
    );
}

/// Resolves on Ctrl-C, or on SIGTERM on Unix (what `kill` and process supervisors send).
async fn wait_for_shutdown() {
    let ctrl_c = async {
        // Without a working Ctrl-C handler the process must keep serving rather than exit at
        // once; SIGTERM (or SIGKILL) still stops it.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    () = ctrl_c => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => ctrl_c.await,
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}
