//! Messages and their per-recipient delivery records as every front end shows them (SPEC 3, 5).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::MessageId;
use crate::string_enum::string_enum;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Where one recipient's copy of a message stands (SPEC 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Stored; the recipient has not seen it.
    Queued,
    /// Handed to a live session of the recipient (pushed, piggybacked or returned by a tool).
    Delivered,
    /// Acknowledged by the recipient, explicitly or by replying.
    Read,
    /// Its TTL ran out before the recipient saw it.
    Expired,
    /// Undeliverable after the maximum number of attempts.
    Dead,
}

/// An unknown state string read back from storage or input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} '{value}'")]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
}

string_enum!(DeliveryState, "delivery state" {
    Queued => "queued",
    Delivered => "delivered",
    Read => "read",
    Expired => "expired",
    Dead => "dead",
});

impl DeliveryState {
    /// True once nothing more will happen to this delivery.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Read | Self::Expired | Self::Dead)
    }
}

/// Which peers a broadcast reaches, relative to the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every peer in the room (on one machine: every session of this OS user).
    Room,
    /// Peers working in the sender's directory.
    Dir,
    /// Peers working in the sender's git repository.
    Repo,
}

string_enum!(Scope, "scope (room, dir or repo)" {
    Room => "room",
    Dir => "dir",
    Repo => "repo",
});

/// Who a message was addressed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Peer(String),
    Broadcast(Scope),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Peer(name) => f.write_str(name),
            Self::Broadcast(scope) => write!(f, "everyone ({scope})"),
        }
    }
}

/// What an item in an inbox is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    #[default]
    Message,
    /// A question addressed to this peer, to answer or decline.
    Question,
    /// The answer to a question this peer asked (`reply_to` is the question).
    Answer,
    /// A refusal to answer this peer's question, with the reason as text.
    Decline,
    /// Notice that this peer's question expired unanswered.
    Expired,
    /// Notice that a job this peer dispatched reached a final state (id and state only).
    Job,
}

string_enum!(ItemKind, "item kind" {
    Message => "message",
    Question => "question",
    Answer => "answer",
    Decline => "decline",
    Expired => "expired",
    Job => "job",
});

/// The grounding of an answer, carried with it into the asker's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grounding {
    pub basis: crate::question::Basis,
    pub sources: Vec<String>,
}

/// A message as its recipient sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxItem {
    pub id: MessageId,
    #[serde(default)]
    pub kind: ItemKind,
    pub from: String,
    pub to: Target,
    pub text: String,
    pub reply_to: Option<MessageId>,
    pub created_at: Millis,
    /// Already handed to a session of this peer once (e.g. pushed) but not acknowledged.
    pub seen_before: bool,
    /// For a question: what the asker says the answerer should look at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_hint: Option<String>,
    /// For an answer: its basis and sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grounding: Option<Grounding>,
}

/// One recipient's delivery record, as the sender may see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientState {
    pub peer: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub delivered_at: Option<Millis>,
    pub read_at: Option<Millis>,
}

/// A message as its sender sees it, with the honest state of every copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    pub id: MessageId,
    pub to: Target,
    pub text: String,
    pub reply_to: Option<MessageId>,
    pub idempotency_key: Option<String>,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub recipients: Vec<RecipientState>,
    /// True when this answer is the original of an earlier send with the same idempotency key.
    pub duplicate: bool,
}

/// A message as an observer of the room sees it (`switchboard watch`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub id: MessageId,
    #[serde(default)]
    pub kind: ItemKind,
    pub from: String,
    pub to: Target,
    pub text: String,
    pub reply_to: Option<MessageId>,
    pub created_at: Millis,
}
