//! The storage seam. A backend (embedded SQLite, Postgres) implements [`Store`]; the core and
//! the conformance suite use nothing else.
//!
//! Every method is one atomic transaction: it either commits whole or changes nothing, and it
//! returns only after its commit is durable. Checks that must hold against concurrent writers —
//! idempotency keys, pending caps, rate limits, lease ownership — run inside that transaction, so
//! the core passes their numbers in and the backend enforces them.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use switchboard_proto::{
    Basis, InboxItem, ItemKind, JobClaim, JobId, JobState, JobView, LogEntry, MessageId, Millis,
    PeerInfo, PeerKind, PeerName, PeerView, QuestionId, QuestionView, Reservation, Scope,
    SentMessage,
};

use crate::error::Rejection;
use crate::wake::Wake;

pub use switchboard_proto::{PeerId, SessionId};

/// A peer as stored, with its liveness at the time of reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    pub id: PeerId,
    pub name: String,
    pub kind: PeerKind,
    pub info: PeerInfo,
    pub summary: String,
    pub created_at: Millis,
    pub last_seen_at: Millis,
    pub online: bool,
}

impl From<PeerRecord> for PeerView {
    fn from(p: PeerRecord) -> Self {
        PeerView {
            name: p.name,
            kind: p.kind,
            online: p.online,
            info: p.info,
            summary: p.summary,
            created_at: p.created_at,
            last_seen_at: p.last_seen_at,
        }
    }
}

/// What to do when the wanted name is held by a live session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamePolicy {
    /// Join that peer anyway (the human operator is one identity however many CLIs run).
    Join,
    /// Take the first free `name-N` instead (two agent sessions never share an identity).
    Suffix,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSession {
    pub name: PeerName,
    pub kind: PeerKind,
    pub info: PeerInfo,
    pub policy: NamePolicy,
    /// The process of the client that spawned this session (the agent's own process, e.g.
    /// Claude Code), so its hooks — other children of that process — can find this peer.
    pub client_pid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: SessionId,
    pub peer: PeerRecord,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewTarget {
    Peer(PeerId),
    /// The peer of this name, looked up inside the send's own transaction (one trip to the
    /// store instead of a read before the write).
    Name(PeerName),
    /// Every peer with a live session in the scope, except the sender.
    Broadcast(Scope),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub kind: ItemKind,
    pub sender: PeerId,
    pub target: NewTarget,
    pub text: String,
    pub reply_to: Option<MessageId>,
    pub idempotency_key: Option<String>,
    pub expires_at: Millis,
}

/// A question to store, with its delivery to the one peer asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQuestion {
    pub asker: PeerId,
    pub to: PeerId,
    pub question: String,
    pub context_hint: Option<String>,
    pub expires_at: Millis,
}

/// How a question is closed by the peer it was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Answer {
        text: String,
        basis: Basis,
        sources: Vec<String>,
    },
    Decline {
        reason: String,
    },
}

/// Which questions of a peer to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionQuery {
    pub asked: bool,
    pub received: bool,
    pub open_only: bool,
    pub limit: u32,
}

/// A reservation to take: `peer`'s claim on `globs` of `repo`, held until released, until its
/// TTL, or (when `session` is given, as for an agent) until that session ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReservation {
    pub peer: PeerId,
    pub session: Option<SessionId>,
    pub repo: String,
    pub globs: Vec<switchboard_proto::Glob>,
    pub mode: switchboard_proto::ReservationMode,
    pub reason: String,
    pub expires_at: Millis,
    /// The job it is taken for: its dispatcher's own reservations do not stand in its way
    /// (whoever dispatches a job to change paths they hold means the job to change them).
    pub job: Option<switchboard_proto::JobId>,
}

/// Which of its reservations a peer gives back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Releasing {
    /// These, by id.
    Ids(Vec<switchboard_proto::ReservationId>),
    /// Every one it holds in this repository.
    Repo(String),
    /// Every one it holds.
    All,
}

/// A job to store, addressed to whatever worker serves `agent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub dispatcher: PeerId,
    pub agent: String,
    pub prompt: String,
    pub model: Option<String>,
    pub write: bool,
    pub request_id: Option<String>,
    pub expires_at: Millis,
    /// Paths its worker holds while it runs.
    pub reserve: Option<switchboard_proto::JobReservation>,
}

/// A worker asking for the next job of an agent name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    pub agent: String,
    /// Who claims, for humans reading `jobs show` (host and pid).
    pub worker: String,
    pub allow_writes: bool,
    pub lease_ms: i64,
    pub max_attempts: u32,
}

/// How a run ended, as its worker reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobOutcome {
    Completed {
        result: String,
        branch: Option<String>,
    },
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobQuery {
    pub dispatcher: Option<PeerId>,
    pub agent: Option<String>,
    /// Only jobs not yet in a final state.
    pub active_only: bool,
    pub limit: u32,
}

/// The limits a send must pass, checked inside its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub pending_cap: u32,
    pub rate_limit: u32,
    pub rate_window_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRequest {
    pub peer: PeerId,
    pub session: SessionId,
    pub limit: u32,
    pub lease_ms: i64,
    /// Also list items already handed over but not acknowledged (an explicit pull).
    pub include_seen: bool,
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SentQuery {
    /// The sender's most recent messages, newest first.
    Recent(u32),
    One(MessageId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogQuery {
    /// Entries with an id greater than this.
    pub after: MessageId,
    /// Only messages addressed to this peer (directly or by a broadcast that reached it).
    pub peer: Option<PeerId>,
    pub limit: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcPolicy {
    /// Records created before this instant are deleted.
    pub delete_before: Millis,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    pub expired: u64,
    pub dead_sessions: u64,
    pub messages_deleted: u64,
    pub sessions_deleted: u64,
    pub peers_deleted: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    pub backend: String,
    pub schema_version: u32,
    pub peers: u64,
    pub peers_online: u64,
    pub messages: u64,
    pub queued: u64,
    pub delivered: u64,
    pub read: u64,
    pub expired: u64,
    pub dead: u64,
    /// How many jobs are in each state (absent from older relays' answers: all zero).
    #[serde(default)]
    pub jobs: JobCounts,
}

/// How many jobs are in each state: one field per [`JobState`], so a reader never looks a
/// state up by its text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobCounts {
    pub queued: u64,
    pub claimed: u64,
    pub running: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub expired: u64,
    pub needs_recovery: u64,
    pub dead: u64,
}

impl JobCounts {
    fn slot(&mut self, state: JobState) -> &mut u64 {
        match state {
            JobState::Queued => &mut self.queued,
            JobState::Claimed => &mut self.claimed,
            JobState::Running => &mut self.running,
            JobState::Completed => &mut self.completed,
            JobState::Failed => &mut self.failed,
            JobState::Cancelled => &mut self.cancelled,
            JobState::Expired => &mut self.expired,
            JobState::NeedsRecovery => &mut self.needs_recovery,
            JobState::Dead => &mut self.dead,
        }
    }

    /// How many jobs are in `state`.
    pub fn get(&self, state: JobState) -> u64 {
        let mut copy = *self;
        *copy.slot(state)
    }

    /// Records the count of jobs in one state as stored; a state this build does not know
    /// (a newer store's) is left out rather than miscounted.
    pub fn count_stored(&mut self, state: &str, n: u64) {
        if let Ok(state) = state.parse::<JobState>() {
            *self.slot(state) = n;
        }
    }

    /// Each state with its count, in [`JobState::ALL`]'s order.
    pub fn each(&self) -> impl Iterator<Item = (JobState, u64)> + '_ {
        JobState::ALL.iter().map(|s| (*s, self.get(*s)))
    }

    /// The counts of both, state by state (a relay's sum over its rooms).
    pub fn add(&mut self, other: &Self) {
        for (state, n) in other.each() {
            *self.slot(state) += n;
        }
    }
}

impl StoreStats {
    /// Adds the count of deliveries in one state (as stored) to the matching field.
    pub fn count_deliveries(&mut self, state: &str, n: u64) {
        match state {
            "queued" => self.queued = n,
            "delivered" => self.delivered = n,
            "read" => self.read = n,
            "expired" => self.expired = n,
            "dead" => self.dead = n,
            _ => {}
        }
    }
}

/// A storage failure that is not the caller's input: the store cannot do the work.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error(
        "the store at {path} is not a valid switchboard database ({detail}); move it aside to start afresh"
    )]
    Corrupt { path: String, detail: String },
    #[error(
        "the store at {path} is read-only; check the permissions of the file and its directory"
    )]
    ReadOnly { path: String },
    #[error("the store at {path} stayed locked by another process; try again")]
    Busy { path: String },
    /// Out of disk space where the store lives; `remedy` says what to do for this backend.
    #[error("the disk holding the store at {path} is full; {remedy}")]
    Full { path: String, remedy: String },
    /// The connection to a networked store dropped or was refused mid-way (a restart, a
    /// failover, too many connections); the same request may succeed shortly.
    #[error("lost the connection to the store at {path} ({detail}); try again")]
    Unreachable { path: String, detail: String },
    #[error(
        "the store at {path} has schema version {found}, newer than this switchboard knows ({known}); upgrade switchboard"
    )]
    TooNew {
        path: String,
        found: u32,
        known: u32,
    },
    #[error("cannot open the store at {path}: {detail}")]
    Open { path: String, detail: String },
    #[error("the store is shut down")]
    Closed,
    #[error("storage backend error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The storage contract every backend meets; see the module docs for its transaction rules.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Where the data lives, for humans (a path or a redacted URL).
    fn describe(&self) -> String;

    /// Wakes for changes committed by this process or any other process sharing the store.
    /// Subscribe before reading, then re-read after every wake: wakes carry no data.
    fn subscribe(&self) -> broadcast::Receiver<Wake>;

    /// Finds or creates a peer without a session (the operator sending from the CLI).
    async fn ensure_peer(
        &self,
        name: &PeerName,
        kind: PeerKind,
        now: Millis,
    ) -> StoreResult<PeerRecord>;

    /// Starts a session for the named peer, reclaiming the peer if it exists and applying the
    /// name policy if a live session holds it. Reaps dead sessions first.
    async fn open_session(&self, req: OpenSession, now: Millis) -> StoreResult<SessionRecord>;

    /// Ends a session at once and releases its leases.
    async fn close_session(&self, session: SessionId, now: Millis) -> StoreResult<()>;

    async fn rename_peer(
        &self,
        peer: PeerId,
        name: &PeerName,
        now: Millis,
    ) -> StoreResult<PeerRecord>;

    async fn set_summary(
        &self,
        peer: PeerId,
        summary: &str,
        now: Millis,
    ) -> StoreResult<PeerRecord>;

    /// Every peer with its liveness, after reaping dead sessions.
    async fn list_peers(&self, now: Millis) -> StoreResult<Vec<PeerRecord>>;

    async fn find_peer(&self, name: &str) -> StoreResult<Option<PeerRecord>>;

    /// The peer of the newest live session whose client process is one of `pids`, after
    /// reaping dead sessions.
    async fn peer_by_client_pid(
        &self,
        pids: &[u32],
        now: Millis,
    ) -> StoreResult<Option<PeerRecord>>;

    /// Stores a message and one delivery record per recipient, or returns the original with
    /// `duplicate: true` when the sender reuses an idempotency key.
    async fn send(
        &self,
        msg: NewMessage,
        admission: Admission,
        now: Millis,
    ) -> StoreResult<SentMessage>;

    /// Stores a question as a message of kind `question` to one peer, with its record.
    async fn ask(
        &self,
        q: NewQuestion,
        admission: Admission,
        now: Millis,
    ) -> StoreResult<QuestionView>;

    /// Answers or declines a question once, as the peer it was asked; the reply is delivered
    /// to the asker like any message. A second reply, a reply to an unknown question, or one
    /// from another peer is rejected and changes nothing.
    async fn reply(
        &self,
        question: QuestionId,
        by: PeerId,
        reply: Reply,
        expires_at: Millis,
        admission: Admission,
        now: Millis,
    ) -> StoreResult<QuestionView>;

    /// Questions the peer asked and/or received, newest first; with no peer, every question of
    /// the room (`asked` and `received` then say nothing).
    async fn questions(
        &self,
        peer: Option<PeerId>,
        query: QuestionQuery,
        now: Millis,
    ) -> StoreResult<Vec<QuestionView>>;

    /// One question the peer asked or received.
    async fn question(
        &self,
        peer: PeerId,
        id: QuestionId,
        now: Millis,
    ) -> StoreResult<QuestionView>;

    /// Stores a job, or returns the original with `duplicate: true` when the dispatcher reuses
    /// a request id within the retention window.
    async fn dispatch(&self, job: NewJob, now: Millis) -> StoreResult<JobView>;

    /// Takes the oldest queued job of the agent under a lease and a new fencing token, after
    /// sweeping expired leases and TTLs. Write jobs are skipped unless `allow_writes`.
    async fn claim(&self, req: ClaimRequest, now: Millis) -> StoreResult<Option<JobClaim>>;

    /// Claimed → running. Every worker-side change presents the claim's fence.
    async fn start_job(&self, id: JobId, fence: i64, now: Millis) -> StoreResult<()>;

    /// Extends the lease; returns the job's state, so a worker learns of a cancel.
    async fn heartbeat(
        &self,
        id: JobId,
        fence: i64,
        lease_ms: i64,
        now: Millis,
    ) -> StoreResult<JobState>;

    /// Records how the run ended and tells the dispatcher (id and state only).
    async fn finish_job(
        &self,
        id: JobId,
        fence: i64,
        outcome: JobOutcome,
        now: Millis,
    ) -> StoreResult<JobView>;

    /// Gives a claim back unrun (a worker shutting down gracefully): the job is queued again.
    async fn release_job(&self, id: JobId, fence: i64, now: Millis) -> StoreResult<()>;

    /// Cancels a job that has not finished; a running worker learns it at its next heartbeat.
    async fn cancel_job(&self, id: JobId, now: Millis) -> StoreResult<JobView>;

    /// Queues again a job parked in `needs_recovery`, or one that failed, died or expired.
    async fn requeue_job(&self, id: JobId, now: Millis) -> StoreResult<JobView>;

    async fn job(&self, id: JobId, now: Millis) -> StoreResult<JobView>;

    async fn jobs(&self, query: JobQuery, now: Millis) -> StoreResult<Vec<JobView>>;

    /// Takes a reservation unless a live one of another peer conflicts with it (overlapping
    /// paths, either exclusive), after ending the sessions of dead processes (whose
    /// reservations end with them); refuses with the first conflict otherwise.
    async fn reserve(&self, r: NewReservation, now: Millis) -> StoreResult<Reservation>;

    /// Gives back reservations `peer` holds; returns how many ended.
    async fn release(&self, peer: PeerId, which: Releasing, now: Millis) -> StoreResult<u64>;

    /// Live reservations, of one repository or all, after ending dead processes' sessions.
    async fn reservations(
        &self,
        repo: Option<String>,
        now: Millis,
    ) -> StoreResult<Vec<Reservation>>;

    /// Leases unread items of a peer to one of its sessions, oldest first. Questions this peer
    /// asked that expired unanswered first become expiry notices in its inbox.
    async fn lease(&self, req: LeaseRequest, now: Millis) -> StoreResult<Vec<InboxItem>>;

    /// Records that leased items were handed to the session, one of `peer`'s; items it does
    /// not hold a lease on are left alone. Returns how many changed.
    async fn mark_delivered(
        &self,
        peer: PeerId,
        session: SessionId,
        ids: &[MessageId],
        now: Millis,
    ) -> StoreResult<u64>;

    /// Marks items of the peer's inbox read. Ids not in that inbox reject the whole call.
    async fn ack(&self, peer: PeerId, ids: &[MessageId], now: Millis) -> StoreResult<u64>;

    /// What the sender sent, with every recipient's state.
    async fn sent(
        &self,
        sender: PeerId,
        query: SentQuery,
        now: Millis,
    ) -> StoreResult<Vec<SentMessage>>;

    /// The room's message log after a cursor, oldest first.
    async fn log(&self, query: LogQuery) -> StoreResult<Vec<LogEntry>>;

    /// The newest message id in the room (0 when there is none): where a live tail starts.
    async fn last_message_id(&self) -> StoreResult<MessageId>;

    /// Expires what outlived its TTL and deletes what outlived retention.
    async fn gc(&self, policy: GcPolicy, now: Millis) -> StoreResult<GcReport>;

    async fn stats(&self, now: Millis) -> StoreResult<StoreStats>;
}
