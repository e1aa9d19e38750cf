//! Grounded questions and answers (SPEC 3): a question to one peer, answered once with its
//! sources and basis, or declined with a reason, or expired unanswered.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::message::{MessageId, Millis, UnknownVariant};

/// Longest `context_hint`, in bytes.
pub const MAX_CONTEXT_HINT_BYTES: usize = 8 * 1024;
/// Most sources one answer may cite.
pub const MAX_SOURCES: usize = 20;
/// Longest single source (a path, `file:line`, a commit hash, a PR number, a doc name).
pub const MAX_SOURCE_BYTES: usize = 256;
/// Longest reason for declining, in bytes.
pub const MAX_DECLINE_BYTES: usize = 4 * 1024;

/// How the answerer knows what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Checked against the sources just now.
    Verified,
    /// Recalled, not checked: the asker should verify.
    FromMemory,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::FromMemory => "from_memory",
        }
    }
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Basis {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "verified" => Ok(Self::Verified),
            "from_memory" | "from-memory" => Ok(Self::FromMemory),
            _ => Err(UnknownVariant {
                kind: "basis (verified or from_memory)",
                value: s.to_owned(),
            }),
        }
    }
}

/// Where a question stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionState {
    Open,
    Answered,
    Declined,
    Expired,
}

impl QuestionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Answered => "answered",
            Self::Declined => "declined",
            Self::Expired => "expired",
        }
    }
}

impl fmt::Display for QuestionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for QuestionState {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Open, Self::Answered, Self::Declined, Self::Expired]
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownVariant {
                kind: "question state",
                value: s.to_owned(),
            })
    }
}

/// An answer as the asker sees it: basis and sources first, then the claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerView {
    pub basis: Basis,
    pub sources: Vec<String>,
    pub text: String,
    pub answered_at: Millis,
}

/// A question with everything known about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionView {
    pub id: MessageId,
    pub from: String,
    pub to: String,
    pub question: String,
    pub context_hint: Option<String>,
    pub state: QuestionState,
    pub asked_at: Millis,
    pub expires_at: Millis,
    pub answer: Option<AnswerView>,
    pub decline_reason: Option<String>,
}
