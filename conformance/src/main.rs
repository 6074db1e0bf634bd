//! The command-line front end; see the crate documentation for the flags.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use mcp_auth_conformance::baseline::Baseline;
use mcp_auth_conformance::config::{Live, LiveLogin};
use mcp_auth_conformance::connect::cache;
use mcp_auth_conformance::report::{CheckResult, console, html, json, junit, sarif};
use mcp_auth_conformance::{Report, SuiteConfig, Transport, Version, preflight};
use url::Url;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TransportArg {
    Sse,
    StreamableHttp,
    Both,
}

/// How a live run logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LoginArg {
    /// `connect`'s login: its cached tokens for the server, else the system browser.
    Browser,
    /// No login: only the unauthenticated checks run.
    None,
}

/// What the exit status means, for `--help`.
const EXIT_CODES: &str = "Exit status:
  0  conformant: no MUST check failed or errored outside the baseline, no stale baseline entry
  1  a MUST check failed or errored (outside the baseline), or a baseline entry is stale
  2  the run could not happen: the target or the mock GitHub cannot be reached, the target is
     no MCP server (nothing but 404s and no OAuth metadata), or the command line or baseline
     is wrong";

/// Conformance checks for OAuth-protected MCP servers over HTTP+SSE and Streamable HTTP.
///
/// By default the server under test and the mock GitHub must run on this machine: --url and
/// --mock-github take loopback addresses only (localhost, 127.0.0.1, [::1]).
///
/// With --live the suite checks a server where it runs (another machine, https, the real
/// GitHub) without the mock: --url may then be any http(s) URL. Checks that need the mock
/// (a login as a given user, GitHub faults, the upstream journal) are skipped with that reason;
/// the authenticated checks run with the user's login (--login browser, MCP_AUTH_CONFORMANCE_TOKEN,
/// or the tokens `connect` cached for the server), and are skipped without one. Checks that
/// revoke or rotate the user's tokens, and the robustness phase, run only with
/// --allow-destructive.
#[derive(Debug, Parser)]
#[command(about, long_about, version, after_help = EXIT_CODES)]
struct Args {
    /// Base URL of the server under test, on loopback (use the origin the server
    /// advertises as its issuer: http://localhost:8000 for the reference server).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: Url,
    /// Base URL of the mock GitHub the server logs users in with, on loopback.
    #[arg(long, default_value = "http://127.0.0.1:9999", conflicts_with = "live")]
    mock_github: Url,
    /// Check the server where it runs, without the mock GitHub (see above); --url may be any
    /// http(s) URL.
    #[arg(long)]
    live: bool,
    /// Live mode: log in before the run as `connect` does (its cached tokens, refreshed when
    /// expired, else the system browser; BROWSER is honoured), or not at all (`none`).
    #[arg(long, value_enum, requires = "live")]
    login: Option<LoginArg>,
    /// Live mode: the access token for the authenticated checks (better given in the
    /// environment than on the command line; never printed).
    #[arg(long, env = "MCP_AUTH_CONFORMANCE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Live mode: the refresh token that goes with --token (used only by --allow-destructive
    /// checks; never printed).
    #[arg(
        long,
        env = "MCP_AUTH_CONFORMANCE_REFRESH_TOKEN",
        hide_env_values = true
    )]
    refresh_token: Option<String>,
    /// Live mode: also run the checks that revoke or rotate the user's tokens and the
    /// robustness phase (many requests).
    #[arg(long, requires = "live")]
    allow_destructive: bool,
    /// Path of the Streamable HTTP endpoint.
    #[arg(long, default_value = "/mcp")]
    mcp_path: String,
    /// Path of the legacy SSE endpoint.
    #[arg(long, default_value = "/sse")]
    sse_path: String,
    #[arg(long, value_enum, default_value = "both")]
    transport: TransportArg,
    /// Only these checks: an ID such as AUTH-FLOW-04 or a case key such as
    /// AUTH-GEN-05#expired, any case, repeatable or comma separated. A value that names
    /// no check is an error.
    #[arg(long = "id", value_name = "ID")]
    ids: Vec<String>,
    /// Only these areas (AUTH-FLOW, SHTTP, ...), any case, repeatable or comma separated.
    #[arg(long = "area", value_name = "AREA")]
    areas: Vec<String>,
    /// Pin the MCP spec versions (2025-06-18, ...), repeatable or comma separated: only checks
    /// that apply to one of them, each run at those only (without it, the suite runs a
    /// version-dependent check at every version the server negotiates).
    #[arg(long = "spec-version", value_name = "VERSION", value_delimiter = ',')]
    versions: Vec<Version>,
    /// Protocol version a Streamable HTTP check negotiates when it runs at no version of its
    /// own, and the version assumed there when none can be negotiated. Default: the newest
    /// session version among --spec-version, else 2025-11-25.
    #[arg(long)]
    streamable_version: Option<Version>,
    /// Known failures of this target; a listed check that passes fails the run as stale.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Write the report as JSON (with --list: the selected checks as JSON).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the report as JUnit XML.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write the report as SARIF 2.1.0, for GitHub code scanning and other SARIF viewers: a
    /// rule per requirement, a result per failing, erroring or warning check.
    #[arg(long)]
    sarif: Option<PathBuf>,
    /// The repository path SARIF results point at (code scanning needs a file location; a
    /// conformance finding has none of its own). Name your server's entry point to see the
    /// alerts on it.
    #[arg(long, value_name = "PATH", default_value = sarif::DEFAULT_ARTIFACT)]
    sarif_artifact: String,
    /// Write the report as one self-contained HTML page (summary, area × transport grid,
    /// every check with its evidence and requirement, filterable).
    #[arg(long)]
    html: Option<PathBuf>,
    /// Write the normalized transcript per transport (`<transport>.json`).
    #[arg(long)]
    snapshot_dir: Option<PathBuf>,
    /// Wait out expires_in for expired-token checks only when it is at most this many seconds.
    #[arg(long, default_value_t = 3.0)]
    max_expiry_wait: f64,
    /// Seconds to wait for any single response or message.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// How many checks run at once.
    #[arg(long, default_value_t = 16)]
    jobs: usize,
    /// Also run checks that wait for the server's upstream timeout.
    #[arg(long)]
    slow: bool,
    /// Run the robustness phase: generated malformed requests to every endpoint, judged for
    /// 5xx answers, hangs, dropped connections and memory growth.
    #[arg(long)]
    robustness: bool,
    /// How many requests the robustness phase generates.
    #[arg(long, default_value_t = 10_000)]
    robustness_cases: usize,
    /// The seed of the robustness phase's inputs (random when not given; printed to replay).
    #[arg(long)]
    robustness_seed: Option<u64>,
    /// The target's process id, to read its memory around the robustness phase.
    #[arg(long)]
    target_pid: Option<u32>,
    /// How much the target's resident memory may grow during the robustness phase, in MiB.
    #[arg(long, default_value_t = 64)]
    memory_limit_mib: u64,
    /// Run the stateful model-based phase: random interleavings of logins, refreshes,
    /// revocations and MCP calls across two users, checked against a model after each step.
    #[arg(long)]
    model: bool,
    /// The seed of the model phase's sequences (random when not given; printed to replay).
    #[arg(long)]
    model_seed: Option<u64>,
    /// The most operations in one sequence of the model phase.
    #[arg(long, default_value_t = 32)]
    model_steps: usize,
    /// A client registered beforehand, for servers without dynamic client registration.
    // Client ids and secrets are the server's random strings, which may begin with `-`.
    #[arg(long, allow_hyphen_values = true)]
    client_id: Option<String>,
    /// The secret of the --client-id client, if it is confidential.
    #[arg(long, requires = "client_id", allow_hyphen_values = true)]
    client_secret: Option<String>,
    /// The redirect URI registered for the --client-id client (a loopback URL).
    #[arg(long, requires = "client_id")]
    redirect_uri: Option<String>,
    /// The tool contract checked besides the spec's rules: github (get_user_profile) or none.
    #[arg(long, default_value = "github")]
    tool_profile: mcp_auth_conformance::config::ToolProfile,
    /// Show evidence for warnings, notes for passes, and for each failure or error the check's
    /// last requests and responses in full (redacted).
    #[arg(long, short)]
    verbose: bool,
    /// List the selected checks and exit (with --json FILE, also as JSON).
    #[arg(long)]
    list: bool,
}

/// Exit status 2: the run could not happen.
const CANNOT_RUN: u8 = 2;

fn main() -> ExitCode {
    // `explain ID` looks a requirement up in the catalogue; it shares no flags with a run.
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("explain") {
        return ExitCode::from(mcp_auth_conformance::catalogue::explain_command(&argv[1..]));
    }
    // `connect` is a command of its own, with its own flags (see `connect/mod.rs`).
    if std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == "connect")
    {
        return mcp_auth_conformance::connect::main(std::env::args_os().skip(1));
    }
    // clap exits with 2 on usage errors, which is the "could not run" status too.
    let args = Args::parse();
    if let Err(problem) = check_arguments(&args) {
        eprintln!("error: {problem}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(CANNOT_RUN);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(Ended::Passed) => ExitCode::SUCCESS,
        Ok(Ended::Failed) => ExitCode::FAILURE,
        // The shell's convention for a process ended by SIGINT.
        Ok(Ended::Interrupted) => ExitCode::from(130),
        Err(e) => {
            // One line: the cause a user can act on.
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::from(CANNOT_RUN)
        }
    }
}

/// How a run ended, for the exit status.
enum Ended {
    Passed,
    Failed,
    Interrupted,
}

/// Set once stdout's reader has gone (`--list | head`); later output is dropped.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Prints to stdout. A closed pipe is the reader's choice, not an error: the output
/// stops, and the run still finishes and writes its reports.
fn say(text: &str) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Everything that can be judged without the network, so that a typo fails in a
/// moment instead of after a run (or, worse, passes by selecting nothing).
fn check_arguments(args: &Args) -> Result<(), String> {
    if args.live {
        if !matches!(args.url.scheme(), "http" | "https") {
            return Err(format!("--url {} is not an http(s) URL", args.url));
        }
    } else {
        preflight::require_loopback("--url", &args.url)?;
        preflight::require_loopback("--mock-github", &args.mock_github)?;
    }
    let problems = preflight::unknown_filters(
        &preflight::split_lists(&args.ids),
        &preflight::split_lists(&args.areas),
    );
    if !problems.is_empty() {
        return Err(problems.join("\nerror: "));
    }
    if let Some(path) = &args.json {
        preflight::check_output_file("--json", path)?;
    }
    if let Some(path) = &args.junit {
        preflight::check_output_file("--junit", path)?;
    }
    if let Some(path) = &args.sarif {
        preflight::check_output_file("--sarif", path)?;
    }
    if let Some(path) = &args.html {
        preflight::check_output_file("--html", path)?;
    }
    if let Some(dir) = &args.snapshot_dir {
        preflight::check_output_dir("--snapshot-dir", dir)?;
    }
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<Ended> {
    let baseline = args.baseline.as_deref().map(Baseline::load).transpose()?;
    let mut config = if args.live {
        SuiteConfig::live(args.url.clone(), Live::default())
    } else {
        SuiteConfig::new(args.url.clone(), args.mock_github.clone())
    };
    config.mcp_path = args.mcp_path.clone();
    config.sse_path = args.sse_path.clone();
    config.transports = match args.transport {
        TransportArg::Sse => vec![Transport::Sse],
        TransportArg::StreamableHttp => vec![Transport::StreamableHttp],
        TransportArg::Both => Transport::ALL.to_vec(),
    };
    config.ids = preflight::split_lists(&args.ids);
    config.areas = preflight::split_lists(&args.areas);
    config.versions = args.versions.clone();
    config.streamable_version = args
        .streamable_version
        .unwrap_or_else(|| session_version_for(&args.versions));
    config.max_expiry_wait = Duration::try_from_secs_f64(args.max_expiry_wait)?;
    config.request_timeout = Duration::try_from_secs_f64(args.timeout)?;
    config.jobs = args.jobs;
    config.slow = args.slow;
    if args.robustness {
        let seed = args.robustness_seed.unwrap_or_else(rand::random);
        println!(
            "robustness phase: {} cases, seed {seed}",
            args.robustness_cases
        );
        config.robustness = Some(mcp_auth_conformance::robustness::Settings {
            cases: args.robustness_cases,
            seed,
            target_pid: args.target_pid,
            memory_limit_mib: args.memory_limit_mib,
            ..Default::default()
        });
    }
    if args.model {
        let seed = args.model_seed.unwrap_or_else(rand::random);
        println!(
            "model phase: sequences of up to {} steps, seed {seed}",
            args.model_steps
        );
        config.model = Some(mcp_auth_conformance::model::Settings {
            seed,
            steps: args.model_steps,
            ..Default::default()
        });
    }
    config.client =
        args.client_id.clone().map(
            |client_id| mcp_auth_conformance::config::PreRegisteredClient {
                client_id,
                client_secret: args.client_secret.clone(),
                redirect_uri: args
                    .redirect_uri
                    .clone()
                    .unwrap_or_else(|| mcp_auth_conformance::oauth::REDIRECT_URI.to_owned()),
            },
        );
    config.tool_profile = args.tool_profile;

    let planned = mcp_auth_conformance::plan(&config);
    if planned.is_empty() {
        anyhow::bail!(
            "the filters select no check (each --id and --area exists, but not together with \
             the other filters: --transport, --spec-version); --list shows what a filter selects"
        );
    }
    if args.list {
        let mut listing = String::new();
        let mut rows = Vec::new();
        for p in &planned {
            let transport = mcp_auth_conformance::report::transport_label(p.transport);
            listing.push_str(&format!(
                "{:<22} {:<15} {:<6} {:<12} {}\n",
                p.check.key(),
                transport,
                p.check.level.to_string(),
                p.check.versions.to_string(),
                p.check.title
            ));
            rows.push(serde_json::json!({
                "key": p.check.key(),
                "id": p.check.id,
                "also": p.check.also,
                "area": p.check.area(),
                "transport": transport,
                "level": p.check.level.to_string(),
                "versions": p.check.versions.to_string(),
                "title": p.check.title,
            }));
        }
        if let Some(path) = &args.json {
            let text = serde_json::to_string_pretty(&serde_json::json!({ "checks": rows }))?;
            std::fs::write(path, text + "\n")
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        }
        say(&listing);
        return Ok(Ended::Passed);
    }

    if config.live.is_some() {
        let login = live_login(&args, &config).await?;
        config.live = Some(Live {
            login,
            allow_destructive: args.allow_destructive,
        });
    }

    // A target that cannot be tested ends the run here, before the alias hint below would wait
    // on it for metadata it never sends.
    mcp_auth_conformance::preflight(&config).await?;
    if let Some(advertised) =
        preflight::advertised_loopback_alias(&args.url, &args.mcp_path, config.request_timeout)
            .await
    {
        let shown = advertised.as_str().trim_end_matches('/');
        say(&format!(
            "note: the server calls itself {shown}, not {}; run with that URL (--url {shown}), \
             or resource and issuer checks fail for the URL rather than the server\n",
            args.url.as_str().trim_end_matches('/')
        ));
    }

    let verbose = args.verbose;
    // What has finished so far, for the summary and the partial reports of an interrupted run.
    let finished: Arc<Mutex<Vec<CheckResult>>> = Arc::default();
    let collected = finished.clone();
    // Each result is printed once, as it finishes, with its baseline mark; blocked checks are
    // listed under their prerequisite in the summary.
    let marks = baseline.clone();
    config.progress = Some(Arc::new(move |r| {
        if let Ok(mut finished) = collected.lock() {
            finished.push(r.clone());
        }
        let mut r = r.clone();
        if let Some(b) = &marks {
            r.baseline = b.mark(&r);
        }
        say(&format!("{}\n", console::line(&r, verbose)));
    }));
    say(&match &config.live {
        Some(live) => format!(
            "mcp-auth-conformance: {} (live: no mock GitHub; {}; {})\n",
            args.url,
            match &live.login {
                Some(login) => format!("logged in with {}", login.source),
                None => "no login".to_owned(),
            },
            if live.allow_destructive {
                "destructive checks allowed"
            } else {
                "non-destructive"
            }
        ),
        None => format!(
            "mcp-auth-conformance: {} (mock GitHub {})\n",
            args.url, args.mock_github
        ),
    });
    let live = config.live.is_some();
    let started = Instant::now();
    let transports = config.transports.clone();
    let mut report = tokio::select! {
        report = mcp_auth_conformance::run(config) => report?,
        _ = tokio::signal::ctrl_c() => {
            let results = finished.lock().map(|r| r.clone()).unwrap_or_default();
            let partial = Report {
                target: args.url.to_string(),
                transports,
                wall_time_ms: started.elapsed().as_millis() as u64,
                results,
                transcript: Default::default(),
                assessment: None,
            };
            interrupted(&args, &partial, planned.len())?;
            return Ok(Ended::Interrupted);
        }
    };
    if let Some(b) = &baseline {
        b.apply(&mut report);
    }
    say(&console::summary(&report));
    if live {
        say(&live_summary(&report));
    }
    if let Some(path) = &args.json {
        write_report(path, &json::render(&report)?)?;
    }
    if let Some(path) = &args.junit {
        write_report(path, &junit::render(&report)?)?;
    }
    write_other_reports(&args, &report)?;
    if let Some(dir) = &args.snapshot_dir {
        report.transcript.write_dir(dir, &report.transports)?;
    }
    Ok(if report.ok() {
        Ended::Passed
    } else {
        Ended::Failed
    })
}

/// The closing block of a live run: which checks could not run there, counted by reason.
fn live_summary(report: &Report) -> String {
    let skips = mcp_auth_conformance::live_skips(report);
    if skips.is_empty() {
        return "\nLive run: every selected check ran.\n".to_owned();
    }
    let total: usize = skips.iter().map(|(_, n)| n).sum();
    let mut out = format!("\nLive run: {total} checks could not run here:\n");
    for (reason, n) in skips {
        out.push_str(&format!("  {n:>4}  {reason}\n"));
    }
    out
}

/// The user's login for a live run: `--token` (or its environment variable), else `--login
/// browser` (`connect`'s login), else the tokens `connect` cached for the server, unless
/// `--login none`. A cached token that has expired is not refreshed here (a refresh rotates the
/// user's tokens); `--login browser` does that, as `connect` would.
async fn live_login(args: &Args, config: &SuiteConfig) -> anyhow::Result<Option<LiveLogin>> {
    if args.login == Some(LoginArg::None) {
        return Ok(None);
    }
    if let Some(token) = args.token.clone().filter(|t| !t.is_empty()) {
        return Ok(Some(LiveLogin {
            access_token: token,
            refresh_token: args.refresh_token.clone().filter(|t| !t.is_empty()),
            source: "the given token".into(),
            ..LiveLogin::default()
        }));
    }
    let mcp_url = config.endpoint(
        config
            .transports
            .first()
            .copied()
            .unwrap_or(Transport::StreamableHttp),
    );
    let from_entry = |entry: cache::Entry, source: &str| LiveLogin {
        access_token: entry.access_token,
        refresh_token: entry.refresh_token,
        client_id: Some(entry.client_id),
        client_secret: entry.client_secret,
        source: source.to_owned(),
    };
    if args.login == Some(LoginArg::Browser) {
        let entry = mcp_auth_conformance::connect::login_for(
            &mcp_url,
            config.request_timeout.max(Duration::from_secs(30)),
        )
        .await
        .map_err(|e| anyhow::anyhow!("the login for {mcp_url} failed: {e:#}"))?;
        return Ok(Some(from_entry(entry, "a browser login")));
    }
    let cached = cache::Cache::new(None)
        .and_then(|c| c.load(mcp_url.as_str()))
        .unwrap_or_default();
    match cached {
        Some(entry) if !entry.expired() => Ok(Some(from_entry(entry, "the connect cache"))),
        Some(_) => {
            say(&format!(
                "note: the token `connect` cached for {mcp_url} has expired; running without a \
                 login (--login browser refreshes it)\n"
            ));
            Ok(None)
        }
        None => Ok(None),
    }
}

fn write_report(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// Ctrl-C: the summary of the checks that finished, and the reports with what there is.
/// The JSON report says `"incomplete": true` and how many checks were planned, so that no
/// tool mistakes it for a whole run; JUnit gains an error test case, SARIF an unsuccessful
/// invocation and HTML a banner, each with the same sentence.
fn interrupted(args: &Args, partial: &Report, planned: usize) -> anyhow::Result<()> {
    say(&console::summary(partial));
    eprintln!(
        "interrupted: {} of {planned} checks finished; the reports are incomplete",
        partial.results.len()
    );
    if let Some(path) = &args.json {
        let mut value: serde_json::Value = serde_json::from_str(&json::render(partial)?)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("incomplete".into(), true.into());
            object.insert("planned_checks".into(), planned.into());
        }
        write_report(path, &(serde_json::to_string_pretty(&value)? + "\n"))?;
    }
    if let Some(path) = &args.junit {
        write_report(path, &junit::render_interrupted(partial, planned)?)?;
    }
    if let Some(path) = &args.sarif {
        write_report(
            path,
            &sarif::render_interrupted(partial, &args.sarif_artifact, planned)?,
        )?;
    }
    if let Some(path) = &args.html {
        write_report(path, &html::render_interrupted(partial, planned))?;
    }
    Ok(())
}

/// The SARIF and HTML reports, when asked for.
fn write_other_reports(args: &Args, report: &Report) -> anyhow::Result<()> {
    if let Some(path) = &args.sarif {
        write_report(path, &sarif::render(report, &args.sarif_artifact)?)?;
    }
    if let Some(path) = &args.html {
        write_report(path, &html::render(report))?;
    }
    Ok(())
}

/// The version Streamable HTTP sessions negotiate in a run filtered to `versions`: the newest
/// of them that has Streamable HTTP sessions (2025-03-26 to 2025-11-25), so that the checks of
/// a pinned version judge sessions of that version; otherwise the newest session version.
fn session_version_for(versions: &[Version]) -> Version {
    versions
        .iter()
        .copied()
        .filter(|v| (Version::V2025_03_26..=Version::LATEST_SESSION_ERA).contains(v))
        .max()
        .unwrap_or(Version::LATEST_SESSION_ERA)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;
    use mcp_auth_conformance::Version;

    #[test]
    fn a_pinned_spec_version_is_the_negotiated_one() {
        let pick = super::session_version_for;
        assert_eq!(pick(&[]), Version::LATEST_SESSION_ERA);
        assert_eq!(pick(&[Version::V2025_06_18]), Version::V2025_06_18);
        assert_eq!(
            pick(&[Version::V2025_03_26, Version::V2025_11_25]),
            Version::V2025_11_25
        );
        // 2024-11-05 had no Streamable HTTP, and 2026-07-28 no sessions.
        assert_eq!(pick(&[Version::V2024_11_05]), Version::LATEST_SESSION_ERA);
        assert_eq!(pick(&[Version::V2026_07_28]), Version::LATEST_SESSION_ERA);
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Args::command().debug_assert();
    }
}
