//! Durable jobs (SPEC 3): a task dispatched to an agent name, run by whichever worker serves
//! that name, under a lease and a fencing token.

use serde::{Deserialize, Serialize};

use crate::id::JobId;
use crate::message::Millis;
use crate::string_enum::string_enum;

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

string_enum!(JobState, "job state" {
    Queued => "queued",
    Claimed => "claimed",
    Running => "running",
    Completed => "completed",
    Failed => "failed",
    Cancelled => "cancelled",
    Expired => "expired",
    NeedsRecovery => "needs_recovery",
    Dead => "dead",
});

impl JobState {
    /// True once nothing more happens to the job without a person acting.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Claimed | Self::Running)
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
