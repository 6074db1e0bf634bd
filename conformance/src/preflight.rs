//! What the command line checks before a run starts, so that a mistake costs a sentence
//! rather than a whole run: filters that select nothing, a server that is not on this
//! machine, report paths that cannot be written, and a URL that names the server by
//! another loopback name than the one it advertises.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::{Host, Url};

use crate::checks;

/// Splits comma lists (`--id AUTH-FLOW-04,SHTTP-18`) and drops empty pieces.
pub fn split_lists(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|piece| !piece.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One sentence per `--id` or `--area` value that names no check of the catalogue, each
/// with the closest names that exist. Matching is case-insensitive, as in [`crate::plan`].
pub fn unknown_filters(ids: &[String], areas: &[String]) -> Vec<String> {
    let all = checks::all();
    let mut names = BTreeSet::new();
    for check in &all {
        names.insert(check.key());
        names.extend(check.ids().map(str::to_owned));
    }
    let known_areas: BTreeSet<String> = all.iter().map(|c| c.area().to_owned()).collect();
    let mut problems = Vec::new();
    for id in ids {
        if !all.iter().any(|check| crate::id_filter_matches(check, id)) {
            problems.push(format!(
                "--id {id} names no check; closest: {}",
                closest(id, &names, 3).join(", ")
            ));
        }
    }
    for area in areas {
        if !known_areas.iter().any(|a| a.eq_ignore_ascii_case(area)) {
            problems.push(format!(
                "--area {area} names no area; closest: {} (all: {})",
                closest(area, &known_areas, 3).join(", "),
                known_areas.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    problems
}

/// The `count` candidates nearest to `query` by edit distance, ignoring case; ties keep
/// catalogue (alphabetical) order.
pub fn closest<'a>(
    query: &str,
    candidates: impl IntoIterator<Item = &'a String>,
    count: usize,
) -> Vec<String> {
    let query = query.to_ascii_uppercase();
    let mut scored: Vec<(usize, &String)> = candidates
        .into_iter()
        .map(|candidate| {
            (
                crate::catalogue::edit_distance(&query, &candidate.to_ascii_uppercase()),
                candidate,
            )
        })
        .collect();
    scored.sort_by_key(|(distance, _)| *distance);
    scored
        .into_iter()
        .take(count)
        .map(|(_, candidate)| candidate.clone())
        .collect()
}

/// The suite logs in, registers clients and sends deliberately broken requests; it is
/// meant for a server on this machine, and the mock GitHub it reads must be here too.
pub fn require_loopback(option: &str, url: &Url) -> Result<(), String> {
    let loopback = match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if loopback && url.scheme() == "http" {
        return Ok(());
    }
    if !loopback {
        return Err(format!(
            "{option} {url} is not a loopback address: the suite only checks servers on this \
             machine (localhost, 127.0.0.1 or [::1]); run the server locally, or forward a \
             local port to it"
        ));
    }
    Err(format!(
        "{option} {url}: the suite speaks plain http to a local server, not {}",
        url.scheme()
    ))
}

/// Fails, naming the path, unless `path` can be written as a file: its folder exists and
/// takes a new file. Checked before the run, which may take minutes.
pub fn check_output_file(option: &str, path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!(
            "{option} {}: that is a directory, not a file",
            path.display()
        ));
    }
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(format!(
            "{option} {}: the directory {} does not exist",
            path.display(),
            parent.display()
        ));
    }
    probe_writable(&parent).map_err(|e| {
        format!(
            "{option} {}: cannot write in {}: {e}",
            path.display(),
            parent.display()
        )
    })
}

/// Fails, naming the path, unless `dir` is a writable directory or can be created under
/// its nearest existing ancestor.
pub fn check_output_dir(option: &str, dir: &Path) -> Result<(), String> {
    let mut existing = dir.to_path_buf();
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent.to_path_buf(),
            _ => {
                existing = PathBuf::from(".");
                break;
            }
        }
    }
    if !existing.is_dir() {
        return Err(format!(
            "{option} {}: {} is not a directory",
            dir.display(),
            existing.display()
        ));
    }
    probe_writable(&existing).map_err(|e| {
        format!(
            "{option} {}: cannot write in {}: {e}",
            dir.display(),
            existing.display()
        )
    })
}

/// Creates and removes a file in `dir`: permission bits alone do not tell (read-only
/// mounts, ACLs, running as root).
fn probe_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(
        ".mcp-auth-conformance-probe-{}",
        std::process::id()
    ));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

/// When the server advertises itself (its authorization server `issuer` or its protected
/// resource's `resource`) under another loopback name for the same port than `url` uses,
/// the origin it advertises: `http://localhost:8000` for a run against
/// `http://127.0.0.1:8000`. Resource and issuer checks then fail for the URL, not the
/// server. `None` when they agree, or when the metadata cannot be read (the checks say why).
pub async fn advertised_loopback_alias(
    url: &Url,
    mcp_path: &str,
    timeout: Duration,
) -> Option<Url> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .ok()?;
    let resource_path = format!(
        "/.well-known/oauth-protected-resource/{}",
        mcp_path.trim_start_matches('/')
    );
    let probes = [
        ("/.well-known/oauth-authorization-server", "issuer"),
        (resource_path.as_str(), "resource"),
    ];
    for (path, field) in probes {
        let Ok(address) = url.join(path) else {
            continue;
        };
        let Ok(response) = client.get(address).send().await else {
            continue;
        };
        if !response.status().is_success() {
            continue;
        }
        let Ok(metadata) = response.json::<serde_json::Value>().await else {
            continue;
        };
        let Some(advertised) = metadata[field].as_str().and_then(|s| Url::parse(s).ok()) else {
            continue;
        };
        if is_loopback_alias(url, &advertised) {
            let mut origin = advertised;
            origin.set_path("");
            origin.set_query(None);
            origin.set_fragment(None);
            return Some(origin);
        }
    }
    None
}

/// True when both URLs reach the same port on this machine under different loopback names.
fn is_loopback_alias(used: &Url, advertised: &Url) -> bool {
    fn loopback_name(url: &Url) -> Option<String> {
        match url.host()? {
            Host::Domain(name) if name.eq_ignore_ascii_case("localhost") => {
                Some("localhost".to_owned())
            }
            Host::Domain(_) => None,
            Host::Ipv4(ip) => IpAddr::V4(ip).is_loopback().then(|| ip.to_string()),
            Host::Ipv6(ip) => IpAddr::V6(ip).is_loopback().then(|| ip.to_string()),
        }
    }
    match (loopback_name(used), loopback_name(advertised)) {
        (Some(a), Some(b)) => {
            a != b
                && used.port_or_known_default() == advertised.port_or_known_default()
                && used.scheme() == advertised.scheme()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_lists_split_and_blank_pieces_go() {
        assert_eq!(
            split_lists(&["AUTH-FLOW-04,SHTTP-18".into(), " LIFE-01 ,".into()]),
            ["AUTH-FLOW-04", "SHTTP-18", "LIFE-01"]
        );
    }

    #[test]
    fn a_near_miss_names_the_id_it_missed() {
        let problems = unknown_filters(&["AUTH-FLOW-4".into()], &[]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("AUTH-FLOW-04"), "{}", problems[0]);
        assert!(unknown_filters(&["auth-flow-04".into()], &["shttp".into()]).is_empty());
        let problems = unknown_filters(&[], &["FOO".into()]);
        assert!(problems[0].contains("--area FOO"), "{}", problems[0]);
    }

    #[test]
    fn only_loopback_http_is_accepted() {
        for ok in [
            "http://127.0.0.1:8000",
            "http://localhost:1",
            "http://[::1]:80",
        ] {
            assert!(
                require_loopback("--url", &Url::parse(ok).unwrap()).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "http://example.com",
            "http://10.0.0.1:8000",
            "https://localhost:8000",
        ] {
            assert!(
                require_loopback("--url", &Url::parse(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn loopback_aliases_are_the_same_port_under_another_name() {
        let alias =
            |a: &str, b: &str| is_loopback_alias(&Url::parse(a).unwrap(), &Url::parse(b).unwrap());
        assert!(alias("http://127.0.0.1:8000", "http://localhost:8000/mcp"));
        assert!(alias("http://localhost:8000", "http://[::1]:8000"));
        assert!(!alias("http://127.0.0.1:8000", "http://127.0.0.1:8000"));
        assert!(!alias("http://127.0.0.1:8000", "http://localhost:9000"));
        assert!(!alias("http://127.0.0.1:8000", "http://example.com:8000"));
    }
}
