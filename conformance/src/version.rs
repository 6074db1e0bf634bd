//! MCP protocol versions and the version ranges a requirement applies to.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A dated MCP specification release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Version {
    #[serde(rename = "2024-11-05")]
    V2024_11_05,
    #[serde(rename = "2025-03-26")]
    V2025_03_26,
    #[serde(rename = "2025-06-18")]
    V2025_06_18,
    #[serde(rename = "2025-11-25")]
    V2025_11_25,
    #[serde(rename = "2026-07-28")]
    V2026_07_28,
}

impl Version {
    /// Every release, oldest first.
    pub const ALL: [Version; 5] = [
        Version::V2024_11_05,
        Version::V2025_03_26,
        Version::V2025_06_18,
        Version::V2025_11_25,
        Version::V2026_07_28,
    ];

    /// The newest release that still has `initialize` and sessions; the suite negotiates it on
    /// Streamable HTTP unless told otherwise.
    pub const LATEST_SESSION_ERA: Version = Version::V2025_11_25;

    pub const fn as_str(self) -> &'static str {
        match self {
            Version::V2024_11_05 => "2024-11-05",
            Version::V2025_03_26 => "2025-03-26",
            Version::V2025_06_18 => "2025-06-18",
            Version::V2025_11_25 => "2025-11-25",
            Version::V2026_07_28 => "2026-07-28",
        }
    }

    /// The short tag of a version (`25-06`).
    pub fn tag(self) -> &'static str {
        &self.as_str()[2..7]
    }

    /// The releases that open a session with `initialize`, oldest first: what the suite
    /// offers a server to find out which versions it negotiates.
    pub const SESSION_ERA: [Version; 4] = [
        Version::V2024_11_05,
        Version::V2025_03_26,
        Version::V2025_06_18,
        Version::V2025_11_25,
    ];

    /// The first release with an authorization section (2025-03-26): a server that asks for
    /// a token is judged at least by it.
    pub const FIRST_WITH_AUTHORIZATION: Version = Version::V2025_03_26;

    /// The versions a client may speak on a transport. HTTP+SSE is the 2024-11-05 transport,
    /// kept by later servers for older clients, and gone with the sessions in 2026-07-28;
    /// Streamable HTTP came in 2025-03-26.
    pub fn on(transport: crate::config::Transport) -> &'static [Version] {
        match transport {
            crate::config::Transport::Sse => &Version::SESSION_ERA,
            crate::config::Transport::StreamableHttp => &[
                Version::V2025_03_26,
                Version::V2025_06_18,
                Version::V2025_11_25,
                Version::V2026_07_28,
            ],
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Version {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<_> = Version::ALL.iter().map(|v| v.as_str()).collect();
                format!("unknown MCP version {s:?}; known: {}", known.join(", "))
            })
    }
}

/// An inclusive range of versions, written (`25-06+`, `25-03..25-11`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub from: Version,
    pub to: Version,
}

impl Versions {
    pub const ALL: Versions = Versions::since(Version::V2024_11_05);

    pub const fn since(from: Version) -> Versions {
        Versions {
            from,
            to: Version::V2026_07_28,
        }
    }

    pub const fn range(from: Version, to: Version) -> Versions {
        Versions { from, to }
    }

    pub const fn only(v: Version) -> Versions {
        Versions { from: v, to: v }
    }

    pub fn contains(self, v: Version) -> bool {
        self.from <= v && v <= self.to
    }

    /// Whether the range holds more than one release.
    pub fn spans_several(self) -> bool {
        self.from != self.to
    }
}

impl fmt::Display for Versions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "{}", self.from.tag())
        } else if self.to == Version::V2026_07_28 {
            write!(f, "{}+", self.from.tag())
        } else {
            write!(f, "{}..{}", self.from.tag(), self.to.tag())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_print_the_way_the_checklist_writes_them() {
        assert_eq!(Versions::since(Version::V2025_06_18).to_string(), "25-06+");
        assert_eq!(
            Versions::range(Version::V2025_03_26, Version::V2025_11_25).to_string(),
            "25-03..25-11"
        );
        assert_eq!(Versions::only(Version::V2024_11_05).to_string(), "24-11");
    }
}
