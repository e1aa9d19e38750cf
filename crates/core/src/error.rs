//! Errors of the domain core. Each says what was wrong and how to fix it, because the reader is
//! often a model that will retry with whatever the message suggests.

use std::borrow::Cow;

use switchboard_proto::{
    JobId, MessageId, NameError, PeerId, QuestionId, Scope, WrongJobAction, human,
};

use crate::store::StoreError;

/// The request was understood and refused by a rule; nothing was written. It crosses the relay's
/// wire whole (tagged by `code`), so a remote caller can tell one refusal from another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Rejection {
    #[error("no peer named '{name}'; {}", known_peers(.known))]
    UnknownPeer { name: String, known: Vec<String> },
    /// A peer named by its id (a relay call with a room token) that this room does not have.
    #[error(
        "no peer has id {id} in this room (never created here, or removed by gc); take an id from `peers` or `operator`, or leave the peer out when your token names one"
    )]
    UnknownPeerId { id: PeerId },
    #[error(
        "peer '{peer}' already has {cap} unread messages waiting (the pending cap, limits.pending_cap); wait until it reads some"
    )]
    InboxFull { peer: String, cap: u32 },
    #[error(
        "rate limit: at most {limit} messages per {} per sender (limits.rate_limit); try again in {}",
        human::duration(std::time::Duration::from_secs(*.window_secs)),
        human::millis(*.retry_after_ms)
    )]
    RateLimited {
        limit: u32,
        window_secs: u64,
        retry_after_ms: i64,
    },
    #[error("{} not in this peer's inbox: {}", if .ids.len() == 1 { "message is" } else { "messages are" }, join_ids(.ids))]
    NotInInbox { ids: Vec<MessageId> },
    #[error("no message {id} was sent by this peer")]
    UnknownMessage { id: MessageId },
    #[error("reply_to {id} names no message this peer received or sent")]
    UnknownReplyTo { id: MessageId },
    #[error("no question {id}; see `questions` for the ones you asked or received")]
    UnknownQuestion { id: QuestionId },
    #[error("question {id} was asked to '{asked}', not to you; only '{asked}' can answer it")]
    NotYourQuestion { id: QuestionId, asked: String },
    #[error("question {id} is already {state}; a question is answered or declined once")]
    QuestionClosed { id: QuestionId, state: String },
    #[error("no job {id}; see `jobs` for the ones there are")]
    UnknownJob { id: JobId },
    #[error(
        "your claim on job {id} is no longer current (another claim or a person replaced it); stop working on it"
    )]
    StaleClaim { id: JobId },
    #[error("job {id} is {state}; it cannot be {action}")]
    JobState {
        id: JobId,
        state: String,
        action: Cow<'static, str>,
    },
    #[error(
        "reservation {id} of '{globs}' is {} by '{holder}' for {} more ({reason}); wait for it (wait, up to 240 s), ask {holder}, or reserve other paths",
        if *.exclusive { "held exclusively" } else { "shared" },
        human::millis(*.left_ms)
    )]
    Reserved {
        /// The reservation in the way (the first, when several are).
        id: switchboard_proto::ReservationId,
        holder: String,
        /// Its patterns, as written.
        globs: String,
        exclusive: bool,
        reason: String,
        /// How long it still runs, unless released sooner.
        left_ms: i64,
    },
    #[error("the name '{name}' is taken by another peer; choose another")]
    NameTaken { name: String },
    #[error("a broadcast to scope '{scope}' needs a sender with a known {what}; use scope 'room'")]
    NoLocation {
        scope: Scope,
        what: Cow<'static, str>,
    },
}

fn known_peers(known: &[String]) -> String {
    if known.is_empty() {
        "there are no other peers yet".to_owned()
    } else {
        format!("peers are: {}", known.join(", "))
    }
}

fn join_ids(ids: &[MessageId]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field}: {count} given, at most {max} allowed")]
    TooMany {
        field: &'static str,
        count: usize,
        max: usize,
    },
    #[error("{field} is {len} bytes; the limit is {max} bytes")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error(
        "a TTL of {} is longer than the retention window of {}; give a shorter TTL, or raise `retention` in the settings",
        human::duration(std::time::Duration::from_secs(*.asked_secs)),
        human::duration(std::time::Duration::from_secs(*.max_secs))
    )]
    TtlTooLong { asked_secs: u64, max_secs: u64 },
    #[error("nothing to acknowledge: give at least one message id")]
    NoIds,
    #[error("`{field}` is missing; this token names no peer, so say which one")]
    Missing { field: &'static str },
    #[error("{field} contains a NUL character (U+0000), which cannot be stored; remove it")]
    NulChar { field: &'static str },
    /// A person's action on a job that its state does not fit (retry for recover, say).
    #[error(transparent)]
    WrongJobAction(#[from] WrongJobAction),
    /// Bad input, as a relay reported it.
    #[error("{0}")]
    Invalid(String),
    /// The relay refused the credentials or this action for them.
    #[error("{0}")]
    Denied(String),
    /// The relay could not be reached or could not do the work.
    #[error("{0}")]
    Unavailable(String),
    #[error(
        "this session is not live on the relay (it restarted or timed the session out); open a new one"
    )]
    UnknownSession,
    #[error(transparent)]
    Store(StoreError),
    /// A failure a relay reported, of a class no variant above stands for (a store that cannot
    /// be used, an internal error): the class comes back whole, so the exit code is the same.
    #[error("{message}")]
    Reported {
        failure: crate::failure::Failure,
        message: String,
    },
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(r) => Self::Rejected(r),
            other => Self::Store(other),
        }
    }
}
