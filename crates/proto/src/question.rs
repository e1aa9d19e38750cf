//! Grounded questions and answers (SPEC 3): a question to one peer, answered once with its
//! sources and basis, or declined with a reason, or expired unanswered.

use serde::{Deserialize, Serialize};

use crate::id::QuestionId;
use crate::message::Millis;
use crate::string_enum::string_enum;

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

string_enum!(Basis, "basis (verified or from_memory)" {
    Verified => "verified",
    FromMemory => "from_memory",
});

/// Where a question stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionState {
    Open,
    Answered,
    Declined,
    Expired,
}

string_enum!(QuestionState, "question state" {
    Open => "open",
    Answered => "answered",
    Declined => "declined",
    Expired => "expired",
});

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
    pub id: QuestionId,
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
