//! The guard: a room's mailbox seen through one caller's token. Every operation is checked
//! against what the token grants — a peer token acts as its own peer and nobody else, sessions
//! belong to the token that opened them, jobs are visible to their dispatcher and their agent —
//! before the room's mailbox does the work. The `/v1` API and the `/mcp` sessions both go
//! through it, so the two cannot differ in what they allow.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;

use switchboard_core::exchange::Result;
use switchboard_core::{
    Ask, Dispatch, Error, Exchange, GcReport, JobOutcome, JobQuery, Limits, LogQuery, Mailbox,
    NamePolicy, OpenSession, Outgoing, PeerId, PeerRecord, QuestionQuery, Rejection, Reply,
    SentQuery, Session, SessionId, StoreStats, Wake,
};
use switchboard_proto::{
    InboxItem, JobClaim, JobId, JobState, JobView, LogEntry, MessageId, PeerName, QuestionView,
    SentMessage,
};

use crate::auth::Caller;
use crate::sessions::{Attachment, Sessions};

pub struct Guard {
    mailbox: Arc<Mailbox>,
    room: String,
    caller: Caller,
    sessions: Sessions,
    /// The peer a peer token acts as, once it exists: looked up once per guard, not per check.
    me: OnceLock<PeerId>,
    /// Set for an MCP connection: the sessions it opens stay attached while it lives, and are
    /// let go (for the reaper to end once idle) when it is dropped.
    held: Option<Mutex<Vec<Attachment>>>,
}

impl Guard {
    pub fn new(mailbox: Arc<Mailbox>, room: &str, caller: Caller, sessions: Sessions) -> Self {
        Self {
            mailbox,
            room: room.to_owned(),
            caller,
            sessions,
            me: OnceLock::new(),
            held: None,
        }
    }

    /// Keeps the sessions this guard opens attached until it is dropped.
    pub fn holding_sessions(mut self) -> Self {
        self.held = Some(Mutex::new(Vec::new()));
        self
    }

    /// The peer a peer token acts as, when it exists yet (`None` for a room token, or a peer
    /// that has not joined). A peer's id never changes and a peer token's peer cannot be
    /// renamed through it, so the first answer stands for the guard's life. A store failure is
    /// an error, never "no peer": a client retries the one and not the other.
    pub async fn me(&self) -> Result<Option<PeerId>> {
        if let Some(id) = self.me.get() {
            return Ok(Some(*id));
        }
        let Some(name) = self.caller.grant.peer() else {
            return Ok(None);
        };
        match self.mailbox.peer(name).await {
            Ok(peer) => Ok(Some(*self.me.get_or_init(|| peer.id))),
            Err(Error::Rejected(Rejection::UnknownPeer { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn denied(&self) -> Error {
        let name = self.caller.grant.peer().unwrap_or_default();
        Error::Denied(format!(
            "this token belongs to peer '{name}'; it cannot act for another peer"
        ))
    }

    /// Passes when the caller may act as `peer`.
    async fn own(&self, peer: PeerId) -> Result<()> {
        if self.caller.grant.peer().is_none() {
            return Ok(());
        }
        match self.me().await? {
            Some(me) if me == peer => Ok(()),
            _ => Err(self.denied()),
        }
    }

    /// The session as the relay opened it for this token (never the caller's copy of it).
    fn session(&self, given: &Session) -> Result<Session> {
        self.sessions
            .get(&self.room, given.id, &self.caller.token_id)
            .ok_or(Error::UnknownSession)
    }

    fn may_see(&self, job: &JobView) -> bool {
        self.caller
            .grant
            .peer()
            .is_none_or(|me| job.agent == me || job.dispatcher == me)
    }

    /// The job, if this caller may see it; an invisible job reads as unknown.
    async fn visible_job(&self, id: JobId) -> Result<JobView> {
        let job = self.mailbox.job(id).await?;
        if self.may_see(&job) {
            Ok(job)
        } else {
            Err(Rejection::UnknownJob { id }.into())
        }
    }

    /// A worker may touch a claimed job only if it serves the job's agent.
    async fn check_claim(&self, claim: &JobClaim) -> Result<()> {
        let job = self.visible_job(claim.job.id).await?;
        match self.caller.grant.peer() {
            Some(me) if job.agent != me => Err(self.denied()),
            _ => Ok(()),
        }
    }

    fn check_agent(&self, agent: &str) -> Result<()> {
        match self.caller.grant.peer() {
            Some(me) if agent != me => Err(Error::Denied(format!(
                "this token belongs to peer '{me}'; it can only run jobs addressed to '{me}'"
            ))),
            _ => Ok(()),
        }
    }

    fn check_name(&self, name: &str) -> Result<()> {
        match self.caller.grant.peer() {
            Some(me) if name != me => Err(self.denied()),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Exchange for Guard {
    fn describe(&self) -> String {
        format!("room '{}' of this relay", self.room)
    }

    fn limits(&self) -> &Limits {
        self.mailbox.limits()
    }

    fn subscribe(&self) -> broadcast::Receiver<Wake> {
        self.mailbox.subscribe()
    }

    async fn operator(&self, name: &str) -> Result<PeerRecord> {
        self.check_name(name)?;
        // A human holding a peer token acts as that peer, whatever kind it was minted as.
        if self.caller.grant.peer().is_some()
            && let Ok(peer) = self.mailbox.peer(name).await
        {
            return Ok(peer);
        }
        self.mailbox.operator(name).await
    }

    async fn open_session(&self, mut req: OpenSession) -> Result<Session> {
        if let Some(me) = self.caller.grant.peer() {
            // A peer token's identity is its name and its kind, whatever the client proposed:
            // a human using an agent's token (`switchboard inbox`) joins that agent.
            req.name = PeerName::parse(me)?;
            req.policy = NamePolicy::Join;
            if let Ok(peer) = self.mailbox.peer(me).await {
                req.kind = peer.kind;
            }
        }
        let session = self.mailbox.open_session(req).await?;
        self.sessions
            .insert(&self.room, session.clone(), &self.caller.token_id);
        if let Some(held) = &self.held
            && let Some((a, _)) =
                self.sessions
                    .attach(&self.room, session.id, &self.caller.token_id)
            && let Ok(mut held) = held.lock()
        {
            held.push(a);
        }
        Ok(session)
    }

    async fn close_session(&self, session: SessionId) -> Result<()> {
        if self
            .sessions
            .get(&self.room, session, &self.caller.token_id)
            .is_none()
        {
            return Err(Error::UnknownSession);
        }
        self.sessions.remove(&self.room, session);
        self.mailbox.close_session(session).await
    }

    async fn peers(&self) -> Result<Vec<PeerRecord>> {
        self.mailbox.peers().await
    }

    async fn peer_of_client(&self, pids: &[u32]) -> Result<Option<PeerRecord>> {
        match self.caller.grant.peer() {
            Some(me) => Ok(self.mailbox.peer(me).await.ok()),
            None => self.mailbox.peer_of_client(pids).await,
        }
    }

    async fn rename(&self, peer: PeerId, name: &str) -> Result<PeerRecord> {
        if self.caller.grant.peer().is_some() {
            return Err(Error::Denied(
                "a peer token's name is fixed; mint a token for the new name instead".into(),
            ));
        }
        self.mailbox.rename(peer, name).await
    }

    async fn set_summary(&self, peer: PeerId, summary: &str) -> Result<PeerRecord> {
        self.own(peer).await?;
        self.mailbox.set_summary(peer, summary).await
    }

    async fn send(&self, from: PeerId, out: Outgoing) -> Result<SentMessage> {
        self.own(from).await?;
        self.mailbox.send(from, out).await
    }

    async fn ask(&self, from: PeerId, ask: Ask) -> Result<QuestionView> {
        self.own(from).await?;
        self.mailbox.ask(from, ask).await
    }

    async fn reply(&self, by: PeerId, question: MessageId, reply: Reply) -> Result<QuestionView> {
        self.own(by).await?;
        self.mailbox.reply(by, question, reply).await
    }

    async fn questions(&self, peer: PeerId, query: QuestionQuery) -> Result<Vec<QuestionView>> {
        self.own(peer).await?;
        self.mailbox.questions(peer, query).await
    }

    async fn question(&self, peer: PeerId, id: MessageId) -> Result<QuestionView> {
        self.own(peer).await?;
        self.mailbox.question(peer, id).await
    }

    async fn question_wait(
        &self,
        peer: PeerId,
        id: MessageId,
        wait: Duration,
    ) -> Result<QuestionView> {
        self.own(peer).await?;
        self.mailbox.question_wait(peer, id, wait).await
    }

    async fn dispatch(&self, from: PeerId, d: Dispatch) -> Result<JobView> {
        self.own(from).await?;
        self.mailbox.dispatch(from, d).await
    }

    async fn claim(
        &self,
        agent: &str,
        worker: &str,
        allow_writes: bool,
    ) -> Result<Option<JobClaim>> {
        self.check_agent(agent)?;
        self.mailbox.claim(agent, worker, allow_writes).await
    }

    async fn claim_wait(
        &self,
        agent: &str,
        worker: &str,
        allow_writes: bool,
        wait: Duration,
    ) -> Result<Option<JobClaim>> {
        self.check_agent(agent)?;
        self.mailbox
            .claim_wait(agent, worker, allow_writes, wait)
            .await
    }

    async fn start_job(&self, claim: &JobClaim) -> Result<()> {
        self.check_claim(claim).await?;
        self.mailbox.start_job(claim).await
    }

    async fn heartbeat(&self, claim: &JobClaim) -> Result<JobState> {
        self.check_claim(claim).await?;
        self.mailbox.heartbeat(claim).await
    }

    async fn finish_job(&self, claim: &JobClaim, outcome: JobOutcome) -> Result<JobView> {
        self.check_claim(claim).await?;
        self.mailbox.finish_job(claim, outcome).await
    }

    async fn release_job(&self, claim: &JobClaim) -> Result<()> {
        self.check_claim(claim).await?;
        self.mailbox.release_job(claim).await
    }

    async fn cancel_job(&self, id: JobId) -> Result<JobView> {
        self.visible_job(id).await?;
        self.mailbox.cancel_job(id).await
    }

    async fn requeue_job(&self, id: JobId) -> Result<JobView> {
        self.visible_job(id).await?;
        self.mailbox.requeue_job(id).await
    }

    async fn job(&self, id: JobId) -> Result<JobView> {
        self.visible_job(id).await
    }

    async fn job_wait(&self, id: JobId, wait: Duration) -> Result<JobView> {
        self.visible_job(id).await?;
        self.mailbox.job_wait(id, wait).await
    }

    async fn jobs(&self, query: JobQuery) -> Result<Vec<JobView>> {
        let mut jobs = self.mailbox.jobs(query).await?;
        jobs.retain(|j| self.may_see(j));
        Ok(jobs)
    }

    async fn peer(&self, name: &str) -> Result<PeerRecord> {
        self.mailbox.peer(name).await
    }

    async fn lease(
        &self,
        session: &Session,
        limit: u32,
        include_seen: bool,
    ) -> Result<Vec<InboxItem>> {
        let session = self.session(session)?;
        self.mailbox.lease(&session, limit, include_seen).await
    }

    async fn lease_wait(
        &self,
        session: &Session,
        limit: u32,
        include_seen: bool,
        wait: Duration,
    ) -> Result<Vec<InboxItem>> {
        let session = self.session(session)?;
        self.mailbox
            .lease_wait(&session, limit, include_seen, wait)
            .await
    }

    async fn mark_delivered(&self, session: &Session, ids: &[MessageId]) -> Result<u64> {
        let session = self.session(session)?;
        self.mailbox.mark_delivered(&session, ids).await
    }

    async fn ack(&self, peer: PeerId, ids: &[MessageId]) -> Result<u64> {
        self.own(peer).await?;
        self.mailbox.ack(peer, ids).await
    }

    async fn sent(&self, sender: PeerId, query: SentQuery) -> Result<Vec<SentMessage>> {
        self.own(sender).await?;
        self.mailbox.sent(sender, query).await
    }

    async fn log(&self, query: LogQuery) -> Result<Vec<LogEntry>> {
        let query = self.scoped(query).await?;
        self.mailbox.log(query).await
    }

    async fn last_message_id(&self) -> Result<MessageId> {
        self.mailbox.last_message_id().await
    }

    async fn log_wait(&self, query: LogQuery, wait: Duration) -> Result<Vec<LogEntry>> {
        let query = self.scoped(query).await?;
        self.mailbox.log_wait(query, wait).await
    }

    async fn gc(&self) -> Result<GcReport> {
        if self.caller.grant.peer().is_some() {
            return Err(Error::Denied(
                "garbage collection needs the room token; the relay also runs it itself".into(),
            ));
        }
        self.mailbox.gc().await
    }

    async fn stats(&self) -> Result<StoreStats> {
        let mut stats = self.mailbox.stats().await?;
        // Where the relay keeps its files is the relay's business.
        let kind = stats
            .backend
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        stats.backend = format!("room '{}' on a relay ({kind})", self.room);
        Ok(stats)
    }
}

impl Guard {
    /// A peer token reads only its own part of the room's log.
    async fn scoped(&self, mut query: LogQuery) -> Result<LogQuery> {
        if self.caller.grant.peer().is_some() {
            query.peer = Some(self.me().await?.ok_or_else(|| self.denied())?);
        }
        Ok(query)
    }
}
