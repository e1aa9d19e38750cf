//! Peers as every front end shows them (SPEC 3).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::message::{Millis, UnknownVariant};

/// What kind of participant a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerKind {
    /// An AI agent session (through `switchboard mcp`).
    Agent,
    /// A human at the CLI.
    Operator,
}

impl PeerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Operator => "operator",
        }
    }
}

impl fmt::Display for PeerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PeerKind {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "agent" => Ok(Self::Agent),
            "operator" => Ok(Self::Operator),
            _ => Err(UnknownVariant {
                kind: "peer kind",
                value: s.to_owned(),
            }),
        }
    }
}

/// The declared, self-reported facts about a peer's working place (SPEC 3, 7).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub client_kind: Option<String>,
    pub client_version: Option<String>,
    pub host: Option<String>,
    pub cwd: Option<String>,
    pub git_root: Option<String>,
    pub git_branch: Option<String>,
}

/// A peer as `peers` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    pub name: String,
    pub kind: PeerKind,
    pub online: bool,
    #[serde(flatten)]
    pub info: PeerInfo,
    pub summary: String,
    pub created_at: Millis,
    pub last_seen_at: Millis,
}
