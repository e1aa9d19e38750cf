//! Peers as every front end shows them (SPEC 3).

use serde::{Deserialize, Serialize};

use crate::message::Millis;
use crate::string_enum::string_enum;

/// What kind of participant a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerKind {
    /// An AI agent session (through `switchboard mcp`).
    Agent,
    /// A human at the CLI.
    Operator,
}

string_enum!(PeerKind, "peer kind" {
    Agent => "agent",
    Operator => "operator",
});

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
