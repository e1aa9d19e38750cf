//! The exchange: every operation a front end (MCP server, CLI, worker, hooks, HTTP API) can ask
//! of switchboard. [`crate::Mailbox`] answers it from a store on this machine; a relay client
//! answers it over HTTP. Front ends hold an `Arc<dyn Exchange>` and never know which.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use switchboard_proto::{
    JobAction, JobClaim, JobId, JobState, JobView, LogEntry, MessageId, Millis, QuestionId,
    QuestionView, SentMessage, Target,
};

use crate::error::Error;
use crate::op::{self, Answer, Call, Op};
use crate::policy::Limits;
use crate::store::{
    GcReport, JobOutcome, JobQuery, LogQuery, OpenSession, PeerId, PeerRecord, QuestionQuery,
    Reply, SentQuery, SessionId, SessionRecord, StoreStats,
};
use crate::wake::Wake;

/// The client kind a worker's presence session reports.
pub const WORKER_CLIENT: &str = "switchboard-worker";

pub type Result<T> = std::result::Result<T, Error>;

/// A live session of a peer, as handed out by [`crate::Exchange::open_session`].
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
    /// Paths a write job holds while it runs (its worker reserves them at the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve: Option<switchboard_proto::JobReservation>,
}

impl Dispatch {
    /// A read-only job with the default model, TTL and no request id.
    pub fn new(agent: impl Into<String>, prompt: impl Into<String>) -> Self {
        Self {
            agent: agent.into(),
            prompt: prompt.into(),
            model: None,
            write: false,
            request_id: None,
            ttl: None,
            reserve: None,
        }
    }
}

/// See the module docs. An exchange answers [`Exchange::call`]; every other method is a typed
/// convenience written once here on top of it. Every operation that writes answers only once
/// the change is durable.
#[async_trait]
pub trait Exchange: Send + Sync + 'static {
    /// Where the data lives, for humans: a store path or a relay URL.
    fn describe(&self) -> String;

    /// The limits in force (a relay's own, when remote).
    fn limits(&self) -> &Limits;

    /// Wakes for changes that may concern this exchange's callers; hints, never data.
    fn subscribe(&self) -> broadcast::Receiver<Wake>;

    /// Runs one operation; the answer is that operation's (see [`op`]).
    async fn call(&self, call: Call) -> Result<Answer>;

    /// Told that a message created at `created_at` was just pushed to a client, so a relay
    /// can measure how long pushes take; nothing happens by default.
    fn pushed(&self, _created_at: Millis) {}

    /// The human's peer, created on first use.
    async fn operator(&self, name: &str) -> Result<PeerRecord> {
        let name = name.to_owned();
        self.run(op::Operator { name }).await
    }

    async fn open_session(&self, session: OpenSession) -> Result<Session> {
        self.run(op::OpenSession { session }).await
    }

    async fn close_session(&self, session: SessionId) -> Result<()> {
        self.run(op::CloseSession { session }).await
    }

    async fn peers(&self) -> Result<Vec<PeerRecord>> {
        self.run(op::Peers::default()).await
    }

    /// The peer with this name, or an error listing the peers there are.
    async fn peer(&self, name: &str) -> Result<PeerRecord> {
        let name = name.to_owned();
        self.run(op::Peer { name }).await
    }

    /// The peer whose live session was spawned by one of these processes (nearest first).
    async fn peer_of_client(&self, pids: &[u32]) -> Result<Option<PeerRecord>> {
        let pids = pids.to_vec();
        self.run(op::PeerOfClient { pids }).await
    }

    async fn rename(&self, peer: PeerId, name: &str) -> Result<PeerRecord> {
        let (peer, name) = (Some(peer), name.to_owned());
        self.run(op::Rename { peer, name }).await
    }

    async fn set_summary(&self, peer: PeerId, summary: &str) -> Result<PeerRecord> {
        let (peer, summary) = (Some(peer), summary.to_owned());
        self.run(op::SetSummary { peer, summary }).await
    }

    /// Validates and stores a message; returns once it is durable.
    async fn send(&self, from: PeerId, message: Outgoing) -> Result<SentMessage> {
        let from = Some(from);
        self.run(op::Send { from, message }).await
    }

    /// Validates and stores a question to one peer; returns once it is durable.
    async fn ask(&self, from: PeerId, ask: Ask) -> Result<QuestionView> {
        let from = Some(from);
        self.run(op::Ask { from, ask }).await
    }

    /// Answers or declines a question asked to `by`, once.
    async fn reply(&self, by: PeerId, question: QuestionId, reply: Reply) -> Result<QuestionView> {
        let by = Some(by);
        let call = op::Reply {
            by,
            question,
            reply,
        };
        self.run(call).await
    }

    async fn questions(&self, peer: PeerId, query: QuestionQuery) -> Result<Vec<QuestionView>> {
        let peer = Some(peer);
        self.run(op::Questions { peer, query }).await
    }

    /// Every question of the room, newest first (a room token's view over a relay; `asked`
    /// and `received` say nothing here).
    async fn room_questions(&self, query: QuestionQuery) -> Result<Vec<QuestionView>> {
        self.run(op::Questions { peer: None, query }).await
    }

    /// One question the peer asked or received, as it stands (to wait, run [`op::Question`]).
    async fn question(&self, peer: PeerId, id: QuestionId) -> Result<QuestionView> {
        let (peer, wait) = (Some(peer), Duration::ZERO);
        self.run(op::Question { peer, id, wait }).await
    }

    /// Validates and stores a job; returns once it is durable.
    async fn dispatch(&self, from: PeerId, job: Dispatch) -> Result<JobView> {
        let from = Some(from);
        self.run(op::Dispatch { from, job }).await
    }

    /// Whether a live worker serves `agent` now: a peer of that name online, last opened by a
    /// worker (whose presence session reports [`WORKER_CLIENT`]). A job for an agent nobody
    /// serves waits, stored, until its TTL: the CLI and the `dispatch` tool say so.
    async fn worker_serves(&self, agent: &str) -> Result<bool> {
        let online = self.run(op::Peers { online_only: true }).await?;
        Ok(online
            .iter()
            .any(|p| p.name == agent && p.info.client_kind.as_deref() == Some(WORKER_CLIENT)))
    }

    async fn start_job(&self, claim: &JobClaim) -> Result<()> {
        let claim = claim.clone();
        self.run(op::StartJob { claim }).await
    }

    async fn heartbeat(&self, claim: &JobClaim) -> Result<JobState> {
        let claim = claim.clone();
        self.run(op::Heartbeat { claim }).await
    }

    async fn finish_job(&self, claim: &JobClaim, outcome: JobOutcome) -> Result<JobView> {
        let claim = claim.clone();
        self.run(op::FinishJob { claim, outcome }).await
    }

    async fn release_job(&self, claim: &JobClaim) -> Result<()> {
        let claim = claim.clone();
        self.run(op::ReleaseJob { claim }).await
    }

    async fn cancel_job(&self, id: JobId) -> Result<JobView> {
        self.run(op::CancelJob { id }).await
    }

    async fn requeue_job(&self, id: JobId) -> Result<JobView> {
        self.run(op::RequeueJob { id }).await
    }

    /// A person's action on a job: refused with [`Error::WrongJobAction`] (changing nothing)
    /// unless it is the one [`JobState::action`] allows, so `retry` never recovers a parked
    /// write job and nothing is retried while it runs. The job is read through `self`, so a
    /// caller that may not see it gets the same refusal as for any other read.
    async fn act_on_job(&self, id: JobId, action: JobAction) -> Result<JobView> {
        let job = self.job(id).await?;
        action.check(id, job.state)?;
        match action {
            JobAction::Cancel => self.cancel_job(id).await,
            JobAction::Retry | JobAction::Recover => self.requeue_job(id).await,
        }
    }

    /// The job as it stands (to wait for it to end, run [`op::Job`]).
    async fn job(&self, id: JobId) -> Result<JobView> {
        let wait = Duration::ZERO;
        self.run(op::Job { id, wait }).await
    }

    async fn jobs(&self, query: JobQuery) -> Result<Vec<JobView>> {
        self.run(op::Jobs { query }).await
    }

    async fn mark_delivered(&self, session: &Session, ids: &[MessageId]) -> Result<u64> {
        let (session, ids) = (session.clone(), ids.to_vec());
        self.run(op::MarkDelivered { session, ids }).await
    }

    async fn ack(&self, peer: PeerId, ids: &[MessageId]) -> Result<u64> {
        let (peer, ids) = (Some(peer), ids.to_vec());
        self.run(op::Ack { peer, ids }).await
    }

    async fn sent(&self, sender: PeerId, query: SentQuery) -> Result<Vec<SentMessage>> {
        let sender = Some(sender);
        self.run(op::Sent { sender, query }).await
    }

    /// The room's log after `query.after` as it stands (to wait for an entry, run [`op::Log`]).
    async fn log(&self, query: LogQuery) -> Result<Vec<LogEntry>> {
        let wait = Duration::ZERO;
        self.run(op::Log { query, wait }).await
    }

    async fn last_message_id(&self) -> Result<MessageId> {
        self.run(op::LastMessageId {}).await
    }

    async fn gc(&self) -> Result<GcReport> {
        self.run(op::Gc {}).await
    }

    async fn stats(&self) -> Result<StoreStats> {
        self.run(op::Stats {}).await
    }
}

/// Runs any operation with its typed answer: `exchange.run(op::Lease { .. })`. For the
/// operations that take a wait or a flag, this is the way in.
#[async_trait]
pub trait Run: Exchange {
    async fn run<O: Op>(&self, op: O) -> Result<O::Answer> {
        O::answer(self.call(op.into()).await?)
    }
}

impl<E: Exchange + ?Sized> Run for E {}
