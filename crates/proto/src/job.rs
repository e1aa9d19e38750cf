//! Durable jobs (SPEC 3): a task dispatched to an agent name, run by whichever worker serves
//! that name, under a lease and a fencing token.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::message::{Millis, UnknownVariant};

pub type JobId = i64;

/// Largest prompt, in bytes.
pub const MAX_PROMPT_BYTES: usize = 256 * 1024;
/// Largest stored result (a worker's stdout) or error, in bytes.
pub const MAX_RESULT_BYTES: usize = 256 * 1024;
/// Largest model name or request id, in bytes.
pub const MAX_JOB_FIELD_BYTES: usize = 128;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    /// A worker holds the lease and is about to run it.
    Claimed,
    Running,
    Completed,
    Failed,
    Cancelled,
    /// Its TTL ran out before any worker took it.
    Expired,
    /// A write job whose worker vanished mid-run: it is never re-run without a person's say.
    NeedsRecovery,
    /// It ran out of attempts.
    Dead,
}

impl JobState {
    pub const ALL: [Self; 9] = [
        Self::Queued,
        Self::Claimed,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
        Self::Expired,
        Self::NeedsRecovery,
        Self::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Claimed => "claimed",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::NeedsRecovery => "needs_recovery",
            Self::Dead => "dead",
        }
    }

    /// True once nothing more happens to the job without a person acting.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Claimed | Self::Running)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownVariant {
                kind: "job state",
                value: s.to_owned(),
            })
    }
}

/// A job as its dispatcher (or a human) sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    pub id: JobId,
    pub agent: String,
    pub dispatcher: String,
    pub prompt: String,
    pub model: Option<String>,
    pub write: bool,
    pub request_id: Option<String>,
    pub state: JobState,
    pub attempts: u32,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub expires_at: Millis,
    pub result: Option<String>,
    pub error: Option<String>,
    /// The branch a write job's worktree was left on.
    pub branch: Option<String>,
    /// True when this answer is the original of an earlier dispatch with the same request id.
    pub duplicate: bool,
}

/// What a worker holds after a claim: the job and the token every change must present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobClaim {
    pub job: JobView,
    pub fence: i64,
    pub lease_until: Millis,
}
