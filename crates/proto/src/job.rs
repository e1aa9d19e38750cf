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

    /// True while a worker holds the job (claimed, or running): the only states in which it
    /// has a worker.
    pub fn is_held(self) -> bool {
        matches!(self, Self::Claimed | Self::Running)
    }

    /// What a person may do to a job in this state, if anything: the one rule the CLI, the
    /// dashboard and the store's own checks follow. A job on its way can be cancelled; one that
    /// ended without completing can be retried; a write job parked after its worker vanished
    /// can be recovered (a separate verb, so nobody re-runs a write job by a reflex); a
    /// completed job is done.
    pub fn action(self) -> Option<JobAction> {
        match self {
            Self::Queued | Self::Claimed | Self::Running => Some(JobAction::Cancel),
            Self::Failed | Self::Dead | Self::Expired | Self::Cancelled => Some(JobAction::Retry),
            Self::NeedsRecovery => Some(JobAction::Recover),
            Self::Completed => None,
        }
    }
}

/// What a person can do to a job; which one fits is [`JobState::action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobAction {
    /// Stop a job that is queued or running.
    Cancel,
    /// Queue again, as a fresh start, a job that failed, died, expired or was cancelled.
    Retry,
    /// Queue again a write job whose worker vanished mid-run, once a person has looked.
    Recover,
}

string_enum!(JobAction, "job action" {
    Cancel => "cancel",
    Retry => "retry",
    Recover => "recover",
});

impl JobAction {
    /// Passes when `action` fits a job in `state`; otherwise says what would.
    pub fn check(self, id: JobId, state: JobState) -> Result<(), WrongJobAction> {
        if state.action() == Some(self) {
            Ok(())
        } else {
            Err(WrongJobAction {
                id,
                state,
                action: self,
            })
        }
    }

    /// The past participle, for messages ("cannot be retried").
    pub fn done(self) -> &'static str {
        match self {
            Self::Cancel => "cancelled",
            Self::Retry => "retried",
            Self::Recover => "recovered",
        }
    }
}

/// An action asked of a job whose state it does not fit (see [`JobState::action`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("job {id} is {state}, so it cannot be {}; {}", .action.done(), fitting(*.state))]
pub struct WrongJobAction {
    pub id: JobId,
    pub state: JobState,
    pub action: JobAction,
}

fn fitting(state: JobState) -> String {
    match state.action() {
        Some(fits) => format!("a {state} job can be {}", fits.done()),
        None => format!("a {state} job is done; dispatch a new one to run it again"),
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
    /// The worker holding the job (the name it claimed with), while it is claimed or running;
    /// absent otherwise. Absent in the JSON of older relays, hence the default.
    #[serde(default)]
    pub worker: Option<String>,
    /// The paths a write job reserves while it runs: its worker holds them from start to end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve: Option<JobReservation>,
}

/// Paths of one repository a job holds while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobReservation {
    /// The repository's key (its root commit).
    pub repo: String,
    pub paths: Vec<crate::Glob>,
}

/// What a worker holds after a claim: the job and the token every change must present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobClaim {
    pub job: JobView,
    pub fence: i64,
    pub lease_until: Millis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_allows_at_most_one_action_and_says_what_fits() {
        for state in JobState::ALL {
            // Cancel exactly while the job is on its way; nothing once it completed.
            assert_eq!(
                state.action() == Some(JobAction::Cancel),
                !state.is_final(),
                "{state}"
            );
        }
        assert_eq!(JobState::Completed.action(), None);
        assert_eq!(JobState::NeedsRecovery.action(), Some(JobAction::Recover));
        assert_eq!(JobState::Expired.action(), Some(JobAction::Retry));
        assert!(JobAction::Retry.check(JobId(7), JobState::Dead).is_ok());
        let wrong = JobAction::Retry
            .check(JobId(7), JobState::Running)
            .unwrap_err();
        assert_eq!(
            wrong.to_string(),
            "job 7 is running, so it cannot be retried; a running job can be cancelled"
        );
        let done = JobAction::Cancel
            .check(JobId(7), JobState::Completed)
            .unwrap_err();
        assert!(done.to_string().contains("dispatch a new one"), "{done}");
    }

    #[test]
    fn a_job_view_without_a_worker_field_still_reads() {
        let json = r#"{"id":1,"agent":"codex","dispatcher":"alice","prompt":"p","model":null,
            "write":false,"request_id":null,"state":"queued","attempts":0,"created_at":1,
            "updated_at":1,"expires_at":2,"result":null,"error":null,"branch":null,
            "duplicate":false}"#;
        let view: JobView = serde_json::from_str(json).unwrap();
        assert_eq!(view.worker, None);
    }
}
