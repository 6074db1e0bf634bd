//! The fixture users the mock can log in as.
//!
//! The profiles live in `fixtures/github/users/<login>.json` at the workspace root, in the exact shape
//! GitHub returns from `GET /user` for the authenticated user. They are embedded at compile time so
//! that the mock behaves the same from any working directory and from an installed binary.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

/// The account the mock logs in as when the scripted browser does not pick one.
pub const DEFAULT_LOGIN: &str = "octocat";

/// The embedded fixture files, as `(login, JSON text)`, in the order [`users`] returns them.
const FIXTURES: &[(&str, &str)] = &[
    (
        "octocat",
        include_str!("../../fixtures/github/users/octocat.json"),
    ),
    (
        "hubot",
        include_str!("../../fixtures/github/users/hubot.json"),
    ),
    (
        "mona",
        include_str!("../../fixtures/github/users/mona.json"),
    ),
];

/// One fixture account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GitHubUser {
    /// The GitHub login (unique, no `_`, which is what makes codes and tokens parseable).
    pub login: String,
    /// GitHub's numeric user id, the stable identifier a server should key accounts by.
    pub id: u64,
    /// The complete `GET /user` body, exactly as the mock serves it.
    pub profile: serde_json::Value,
}

/// Parses the embedded fixtures once.
///
/// The fixtures are part of the source tree rather than input, and a unit test parses every one of
/// them, so a failure here is a build defect; skipping a broken fixture would instead make tests
/// fail later with a confusing "unknown login".
static USERS: LazyLock<Vec<GitHubUser>> = LazyLock::new(|| {
    FIXTURES
        .iter()
        .map(|(login, text)| {
            let profile: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|err| {
                panic!("embedded fixture for {login} is not valid JSON: {err}")
            });
            let id = profile
                .get("id")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or_else(|| panic!("embedded fixture for {login} has no numeric id"));
            GitHubUser {
                login: (*login).to_owned(),
                id,
                profile,
            }
        })
        .collect()
});

/// All fixture users, in a stable order (`octocat` first).
pub fn users() -> Vec<GitHubUser> {
    USERS.clone()
}

/// The fixture user with this login, if there is one.
pub fn user(login: &str) -> Option<GitHubUser> {
    find(login).cloned()
}

/// Borrowing lookup used on the request path, so serving a profile does not clone the whole list.
pub(crate) fn find(login: &str) -> Option<&'static GitHubUser> {
    USERS.iter().find(|user| user.login == login)
}

/// The profiles as one JSON array, for the `/_mock/users` admin endpoint.
pub(crate) fn profiles_json() -> serde_json::Value {
    serde_json::Value::Array(USERS.iter().map(|user| user.profile.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_parses_and_its_file_name_matches_its_login() {
        let users = users();
        assert_eq!(users.len(), FIXTURES.len());
        for user in &users {
            assert_eq!(user.profile["login"], user.login.as_str());
            assert!(
                !user.login.contains('_'),
                "codes rely on logins without '_'"
            );
            for field in [
                "login",
                "id",
                "node_id",
                "avatar_url",
                "html_url",
                "name",
                "company",
                "blog",
                "location",
                "email",
                "bio",
                "public_repos",
                "followers",
                "following",
                "created_at",
                "updated_at",
                "type",
            ] {
                assert!(
                    user.profile.get(field).is_some(),
                    "{} lacks {field}",
                    user.login
                );
            }
        }
        assert_eq!(users[0].login, DEFAULT_LOGIN);
    }

    #[test]
    fn ids_are_unique() {
        let mut ids: Vec<u64> = users().iter().map(|user| user.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), FIXTURES.len());
    }

    #[test]
    fn every_file_in_the_fixture_folder_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/github/users");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|entry| {
                let name = entry.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(".json").map(str::to_owned)
            })
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = FIXTURES.iter().map(|(l, _)| (*l).to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn mona_carries_non_ascii_text() {
        let mona = user("mona").unwrap();
        assert!(!mona.profile["name"].as_str().unwrap().is_ascii());
        assert!(!mona.profile["bio"].as_str().unwrap().is_ascii());
    }
}
