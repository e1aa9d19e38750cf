//! The exchange: every operation a front end (MCP server, CLI, worker, hooks, HTTP API) can ask
//! of switchboard. [`crate::Mailbox`] answers it from a store on this machine; a relay client
//! answers it over HTTP. Front ends hold an `Arc<dyn Exchange>` and never know which.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use switchboard_proto::{
    InboxItem, JobClaim, JobId, JobState, JobView, LogEntry, MessageId, QuestionView, SentMessage,
    Target,
};

use crate::error::Error;
use crate::policy::Limits;
use crate::store::{
    GcReport, JobOutcome, JobQuery, LogQuery, OpenSession, PeerId, PeerRecord, QuestionQuery,
    Reply, SentQuery, SessionId, SessionRecord, StoreStats,
};
use crate::wake::Wake;

pub type Result<T> = std::result::Result<T, Error>;

/// A live session of a peer, as handed out by [`Mailbox::open_session`].
pub type Session = SessionRecord;

/// A message a peer wants to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    pub to: Target,
    pub text: String,
    #[serde(default)]
    pub reply_to: Option<MessageId>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default, rename = "ttl_secs", with = "crate::wire::secs")]
    pub ttl: Option<Duration>,
}

impl Outgoing {
    pub fn to_peer(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            to: Target::Peer(name.into()),
            text: text.into(),
            reply_to: None,
            idempotency_key: None,
            ttl: None,
        }
    }
}

/// A question a peer wants to ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ask {
    pub to: String,
    pub question: String,
    #[serde(default)]
    pub context_hint: Option<String>,
    #[serde(default, rename = "ttl_secs", with = "crate::wire::secs")]
    pub ttl: Option<Duration>,
}

/// A job a peer wants done by whatever worker serves `agent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatch {
    pub agent: String,
    pub prompt: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub write: bool,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default, rename = "ttl_secs", with = "crate::wire::secs")]
    pub ttl: Option<Duration>,
}

/// See the module docs. Every method that writes returns only once the change is durable.
#[async_trait]
pub trait Exchange: Send + Sync + 'static {
    /// Where the data lives, for humans: a store path or a relay URL.
    fn describe(&self) -> String;

    /// The limits in force (a relay's own, when remote).
    fn limits(&self) -> &Limits;

    /// Wakes for changes that may concern this exchange's callers; hints, never data.
    fn subscribe(&self) -> broadcast::Receiver<Wake>;

    /// The human's peer, created on first use.
    async fn operator(&self, name: &str) -> Result<PeerRecord>;

    async fn open_session(&self, req: OpenSession) -> Result<Session>;

    async fn close_session(&self, session: SessionId) -> Result<()>;

    async fn peers(&self) -> Result<Vec<PeerRecord>>;

    /// The peer whose live session was spawned by one of these processes (nearest first).
    async fn peer_of_client(&self, pids: &[u32]) -> Result<Option<PeerRecord>>;

    async fn rename(&self, peer: PeerId, name: &str) -> Result<PeerRecord>;

    async fn set_summary(&self, peer: PeerId, summary: &str) -> Result<PeerRecord>;

    /// Validates and stores a message; returns once it is durable.
    async fn send(&self, from: PeerId, out: Outgoing) -> Result<SentMessage>;

    /// Validates and stores a question to one peer; returns once it is durable.
    async fn ask(&self, from: PeerId, ask: Ask) -> Result<QuestionView>;

    /// Answers or declines a question asked to `by`, once.
    async fn reply(&self, by: PeerId, question: MessageId, reply: Reply) -> Result<QuestionView>;

    async fn questions(&self, peer: PeerId, query: QuestionQuery) -> Result<Vec<QuestionView>>;

    async fn question(&self, peer: PeerId, id: MessageId) -> Result<QuestionView>;

    /// The question once it is no longer open, or as it stands after `wait`.
    async fn question_wait(
        &self,
        peer: PeerId,
        id: MessageId,
        wait: Duration,
    ) -> Result<QuestionView>;

    /// Validates and stores a job; returns once it is durable.
    async fn dispatch(&self, from: PeerId, d: Dispatch) -> Result<JobView>;

    /// The next job for a worker of `agent`, if any.
    async fn claim(
        &self,
        agent: &str,
        worker: &str,
        allow_writes: bool,
    ) -> Result<Option<JobClaim>>;

    /// Like [`Self::claim`], waiting up to `wait` for a job to be dispatched.
    async fn claim_wait(
        &self,
        agent: &str,
        worker: &str,
        allow_writes: bool,
        wait: Duration,
    ) -> Result<Option<JobClaim>>;

    async fn start_job(&self, claim: &JobClaim) -> Result<()>;

    async fn heartbeat(&self, claim: &JobClaim) -> Result<JobState>;

    async fn finish_job(&self, claim: &JobClaim, outcome: JobOutcome) -> Result<JobView>;

    async fn release_job(&self, claim: &JobClaim) -> Result<()>;

    async fn cancel_job(&self, id: JobId) -> Result<JobView>;

    async fn requeue_job(&self, id: JobId) -> Result<JobView>;

    async fn job(&self, id: JobId) -> Result<JobView>;

    /// The job once it reaches a final state, or as it stands after `wait`.
    async fn job_wait(&self, id: JobId, wait: Duration) -> Result<JobView>;

    async fn jobs(&self, query: JobQuery) -> Result<Vec<JobView>>;

    /// The peer with this name, or an error listing the peers there are.
    async fn peer(&self, name: &str) -> Result<PeerRecord>;

    /// Leases up to `limit` unread items to the session. With `include_seen`, items handed over
    /// before but never acknowledged are listed again (an explicit pull).
    async fn lease(
        &self,
        session: &Session,
        limit: u32,
        include_seen: bool,
    ) -> Result<Vec<InboxItem>>;

    /// Like [`Self::lease`], but waits up to `wait` for something to arrive.
    async fn lease_wait(
        &self,
        session: &Session,
        limit: u32,
        include_seen: bool,
        wait: Duration,
    ) -> Result<Vec<InboxItem>>;

    async fn mark_delivered(&self, session: &Session, ids: &[MessageId]) -> Result<u64>;

    async fn ack(&self, peer: PeerId, ids: &[MessageId]) -> Result<u64>;

    async fn sent(&self, sender: PeerId, query: SentQuery) -> Result<Vec<SentMessage>>;

    async fn log(&self, query: LogQuery) -> Result<Vec<LogEntry>>;

    async fn last_message_id(&self) -> Result<MessageId>;

    /// The log after `query.after`, waiting up to `wait` for the first entry.
    async fn log_wait(&self, query: LogQuery, wait: Duration) -> Result<Vec<LogEntry>>;

    async fn gc(&self) -> Result<GcReport>;

    async fn stats(&self) -> Result<StoreStats>;
}
