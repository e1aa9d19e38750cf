//! The operations: the one list of everything a front end can ask of switchboard, each as a
//! request struct with a typed answer. [`Call`] holds any one of them and [`Answer`] any one
//! answer; both are generated from the table at the bottom of this file, so the list is written
//! once. The relay speaks them as JSON (`POST /v1/<op>` with the struct as the body, see
//! [`crate::wire`]), the mailbox answers them from a store, the relay's guard authorizes them.
//!
//! Adding an operation: its struct and its line in the table here (and a convenience method on
//! [`crate::Exchange`] when front ends call it often), how the mailbox answers it
//! (`mailbox.rs`), and what a token may do with it (the relay's `guard.rs`).
//!
//! A peer argument (`from`, `by`, `peer`, `sender`) may be left out over the relay: the caller's
//! token names its peer. Everywhere else it is given.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use switchboard_proto::{
    Glob, InboxItem, JobClaim, JobId, JobState, JobView, LogEntry, MessageId, QuestionId,
    QuestionView, Reservation, ReservationMode, SentMessage,
};

use crate::error::Error;
use crate::exchange::{Outgoing, Session};
use crate::store::{
    GcReport, JobOutcome, JobQuery, LogQuery, PeerId, PeerRecord, QuestionQuery, Releasing,
    SentQuery, SessionId, StoreStats,
};

/// One operation: what it is called on the wire comes from [`Call`], what it answers is typed.
pub trait Op: Into<Call> + std::marker::Send + 'static {
    type Answer: std::marker::Send + 'static;

    /// Takes this operation's answer out of an [`Answer`].
    fn answer(answer: Answer) -> Result<Self::Answer, Error>;
}

/// The human's peer, created on first use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operator {
    pub name: String,
}

/// Starts a session for a peer (see [`crate::store::Store::open_session`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenSession {
    pub session: crate::store::OpenSession,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseSession {
    pub session: SessionId,
}

/// Every peer with its liveness; with `online_only`, only those with a live session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peers {
    #[serde(default)]
    pub online_only: bool,
}

/// The peer with this name, or an error listing the peers there are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    pub name: String,
}

/// The peer whose live session was spawned by one of these processes (nearest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerOfClient {
    pub pids: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    #[serde(default)]
    pub peer: Option<PeerId>,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSummary {
    #[serde(default)]
    pub peer: Option<PeerId>,
    pub summary: String,
}

/// Validates and stores a message; answers once it is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Send {
    #[serde(default)]
    pub from: Option<PeerId>,
    pub message: Outgoing,
}

/// Validates and stores a question to one peer; answers once it is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    #[serde(default)]
    pub from: Option<PeerId>,
    pub ask: crate::exchange::Ask,
}

/// Answers or declines a question asked to `by`, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    #[serde(default)]
    pub by: Option<PeerId>,
    pub question: QuestionId,
    pub reply: crate::store::Reply,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Questions {
    #[serde(default)]
    pub peer: Option<PeerId>,
    pub query: QuestionQuery,
}

/// One question the peer asked or received: once it is no longer open, or as it stands after
/// `wait`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    #[serde(default)]
    pub peer: Option<PeerId>,
    pub id: QuestionId,
    #[serde(default, rename = "wait_secs", with = "crate::wire::wait")]
    pub wait: Duration,
}

/// Validates and stores a job; answers once it is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dispatch {
    #[serde(default)]
    pub from: Option<PeerId>,
    pub job: crate::exchange::Dispatch,
}

/// The next job for a worker of `agent`, waiting up to `wait` for one to be dispatched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub agent: String,
    /// Who claims, for humans reading `jobs show` (host and pid).
    pub worker: String,
    /// Whether this worker takes jobs that may write to the repository.
    #[serde(default)]
    pub allow_writes: bool,
    #[serde(default, rename = "wait_secs", with = "crate::wire::wait")]
    pub wait: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartJob {
    pub claim: JobClaim,
}

/// Extends a claim's lease; answers the job's state, so a worker learns of a cancel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub claim: JobClaim,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishJob {
    pub claim: JobClaim,
    pub outcome: JobOutcome,
}

/// Gives a claim back unrun: the job is queued again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseJob {
    pub claim: JobClaim,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelJob {
    pub id: JobId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequeueJob {
    pub id: JobId,
}

/// The job once it reaches a final state, or as it stands after `wait`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub id: JobId,
    #[serde(default, rename = "wait_secs", with = "crate::wire::wait")]
    pub wait: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jobs {
    pub query: JobQuery,
}

/// Leases up to `limit` unread items to the session, waiting up to `wait` for one to arrive.
/// With `include_seen`, items handed over before but never acknowledged are listed again (an
/// explicit pull). [`crate::delivery`] is the one user that shows what it leases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lease {
    pub session: Session,
    pub limit: u32,
    #[serde(default)]
    pub include_seen: bool,
    #[serde(default, rename = "wait_secs", with = "crate::wire::wait")]
    pub wait: Duration,
}

/// Records that leased items were handed to the session; answers how many changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkDelivered {
    pub session: Session,
    pub ids: Vec<MessageId>,
}

/// Marks items of the peer's inbox read; answers how many changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    #[serde(default)]
    pub peer: Option<PeerId>,
    pub ids: Vec<MessageId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sent {
    #[serde(default)]
    pub sender: Option<PeerId>,
    pub query: SentQuery,
}

/// The room's log after `query.after`, waiting up to `wait` for the first entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    pub query: LogQuery,
    #[serde(default, rename = "wait_secs", with = "crate::wire::wait")]
    pub wait: Duration,
}

/// The newest message id in the room (0 when there is none): where a live tail starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastMessageId {}

/// Expires what outlived its TTL and deletes what outlived retention.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gc {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {}

impl Claim {
    /// A claim by `worker` for a job of `agent` that writes nothing, answered at once.
    pub fn new(agent: impl Into<String>, worker: impl Into<String>) -> Self {
        Self {
            agent: agent.into(),
            worker: worker.into(),
            allow_writes: false,
            wait: Duration::ZERO,
        }
    }

    /// The same claim, also taking jobs that may write to the repository.
    pub fn allowing_writes(self) -> Self {
        Self {
            allow_writes: true,
            ..self
        }
    }
}

impl Lease {
    /// A lease of up to `limit` unread items, answered at once.
    pub fn new(session: &Session, limit: u32) -> Self {
        Self {
            session: session.clone(),
            limit,
            include_seen: false,
            wait: Duration::ZERO,
        }
    }
}

/// Takes a reservation of paths in one repository for `peer`; bound to `session` when given
/// (an agent's: it ends with the session). While another peer's live reservation conflicts,
/// waits up to `wait` for it to end, then refuses with who holds what and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reserve {
    #[serde(default)]
    pub peer: Option<PeerId>,
    #[serde(default)]
    pub session: Option<SessionId>,
    /// The repository's key: its root commit (see `switchboard_proto::reservation`).
    pub repo: String,
    pub globs: Vec<Glob>,
    #[serde(default)]
    pub mode: ReservationMode,
    pub reason: String,
    /// How long it holds unless released sooner [default: the reservation TTL of the limits].
    #[serde(default, rename = "ttl_secs", with = "crate::wire::secs")]
    pub ttl: Option<Duration>,
    #[serde(default, rename = "wait_secs", with = "crate::wire::wait")]
    pub wait: Duration,
    /// The job it is taken for, by the worker running it.
    #[serde(default)]
    pub job: Option<JobId>,
}

/// Gives back reservations the peer holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    #[serde(default)]
    pub peer: Option<PeerId>,
    pub which: Releasing,
}

/// The live reservations, of one repository or every one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reservations {
    #[serde(default)]
    pub repo: Option<String>,
}

/// Builds [`Call`], [`Answer`] and each operation's [`Op`] from one table of
/// `Operation "its name on the wire" => its answer`.
macro_rules! operations {
    ($($op:ident $name:literal => $answer:ty,)*) => {
        /// Any one operation. Serialized with its name in `op`; over HTTP the name is the last
        /// path segment and the rest is the body.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "op")]
        pub enum Call {
            $(#[serde(rename = $name)] $op($op),)*
        }

        /// The answer to any one operation. Serialized as the bare answer, as the relay
        /// sends it.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Answer {
            $($op($answer),)*
        }

        $(
            impl From<$op> for Call {
                fn from(op: $op) -> Self {
                    Call::$op(op)
                }
            }

            impl Op for $op {
                type Answer = $answer;

                fn answer(answer: Answer) -> Result<$answer, Error> {
                    match answer {
                        Answer::$op(answer) => Ok(answer),
                        other => Err(mismatch(stringify!($op), &other)),
                    }
                }
            }
        )*

        impl Call {
            /// Every operation's name on the wire, in the table's order.
            pub const NAMES: &[&str] = &[$($name,)*];

            /// Every operation's type name, in the table's order (for the test that each wire
            /// name is its type's name in snake case, as the relay's API has always named them).
            #[cfg(test)]
            const TYPES: &[&str] = &[$(stringify!($op),)*];

            /// This operation's name on the wire (`POST /v1/<name>`).
            pub fn name(&self) -> &'static str {
                match self {
                    $(Call::$op(_) => $name,)*
                }
            }

            /// The operation's own fields as a JSON object, without its name: the body of
            /// `POST /v1/<name>`. Written straight from the operation's type.
            pub fn body(&self) -> serde_json::Result<Vec<u8>> {
                match self {
                    $(Call::$op(op) => serde_json::to_vec(op),)*
                }
            }

            /// Reads the operation named `name` straight from its JSON body into its type, or
            /// `None` when no operation has that name.
            pub(crate) fn read_named(name: &str, body: &[u8]) -> Option<serde_json::Result<Call>> {
                match name {
                    $($name => Some(serde_json::from_slice::<$op>(body).map(Call::$op)),)*
                    _ => None,
                }
            }

            /// Reads this call's answer from the JSON the relay sent back.
            pub fn read_answer(&self, json: &[u8]) -> serde_json::Result<Answer> {
                match self {
                    $(Call::$op(_) => serde_json::from_slice(json).map(Answer::$op),)*
                }
            }
        }

        impl Serialize for Answer {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Answer::$op(answer) => answer.serialize(s),)*
                }
            }
        }
    };
}

operations! {
    Operator "operator" => PeerRecord,
    OpenSession "open_session" => Session,
    CloseSession "close_session" => (),
    Peers "peers" => Vec<PeerRecord>,
    Peer "peer" => PeerRecord,
    PeerOfClient "peer_of_client" => Option<PeerRecord>,
    Rename "rename" => PeerRecord,
    SetSummary "set_summary" => PeerRecord,
    Send "send" => SentMessage,
    Ask "ask" => QuestionView,
    Reply "reply" => QuestionView,
    Questions "questions" => Vec<QuestionView>,
    Question "question" => QuestionView,
    Dispatch "dispatch" => JobView,
    Claim "claim" => Option<JobClaim>,
    StartJob "start_job" => (),
    Heartbeat "heartbeat" => JobState,
    FinishJob "finish_job" => JobView,
    ReleaseJob "release_job" => (),
    CancelJob "cancel_job" => JobView,
    RequeueJob "requeue_job" => JobView,
    Job "job" => JobView,
    Jobs "jobs" => Vec<JobView>,
    Reserve "reserve" => Reservation,
    Release "release" => u64,
    Reservations "reservations" => Vec<Reservation>,
    Lease "lease" => Vec<InboxItem>,
    MarkDelivered "mark_delivered" => u64,
    Ack "ack" => u64,
    Sent "sent" => Vec<SentMessage>,
    Log "log" => Vec<LogEntry>,
    LastMessageId "last_message_id" => MessageId,
    Gc "gc" => GcReport,
    Stats "stats" => StoreStats,
}

impl Call {
    /// How long the call may wait for something to happen before it answers, if it waits.
    pub fn wait_mut(&mut self) -> Option<&mut Duration> {
        match self {
            Call::Question(Question { wait, .. })
            | Call::Claim(Claim { wait, .. })
            | Call::Job(Job { wait, .. })
            | Call::Lease(Lease { wait, .. })
            | Call::Log(Log { wait, .. })
            | Call::Reserve(Reserve { wait, .. }) => Some(wait),
            _ => None,
        }
    }
}

/// An answer of another operation than the one asked: an exchange's bug, never the caller's.
fn mismatch(asked: &str, got: &Answer) -> Error {
    let got = format!("{got:?}");
    let got = got.split('(').next().unwrap_or_default();
    Error::Reported {
        failure: crate::Failure::Internal,
        message: format!("asked {asked} and was answered for {got}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire names were serde's `snake_case` of each type until they were written in the
    /// table; a name that drifted from it would break every client built before.
    #[test]
    fn each_wire_name_is_its_type_in_snake_case() {
        assert_eq!(Call::NAMES.len(), Call::TYPES.len());
        for (name, ty) in Call::NAMES.iter().zip(Call::TYPES) {
            let mut snake = String::new();
            for (i, c) in ty.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    snake.push('_');
                }
                snake.push(c.to_ascii_lowercase());
            }
            assert_eq!(*name, snake, "the wire name of {ty}");
        }
    }

    #[test]
    fn a_wait_left_out_or_null_is_no_wait() {
        for body in [&br#"{"id": 3}"#[..], br#"{"id": 3, "wait_secs": null}"#] {
            let call = Call::from_parts("job", body).unwrap();
            assert_eq!(
                call,
                Call::Job(Job {
                    id: JobId(3),
                    wait: Duration::ZERO
                })
            );
        }
        let call = Call::from_parts("job", br#"{"id": 3, "wait_secs": 1.5}"#);
        assert_eq!(
            call.unwrap().wait_mut(),
            Some(&mut Duration::from_millis(1500))
        );
    }

    #[test]
    fn an_answer_travels_bare_and_is_read_as_its_operations() {
        let call = Call::from(LastMessageId {});
        let json = serde_json::to_vec(&Answer::LastMessageId(MessageId(41))).unwrap();
        assert_eq!(json, b"41");
        let back = call.read_answer(&json).unwrap();
        assert_eq!(LastMessageId::answer(back).unwrap(), MessageId(41));
    }

    #[test]
    fn another_operations_answer_is_an_internal_error_not_a_panic() {
        let err = Peers::answer(Answer::Gc(GcReport::default())).unwrap_err();
        assert_eq!(err.failure(), crate::Failure::Internal);
        assert!(err.to_string().contains("Peers"), "{err}");
    }
}
