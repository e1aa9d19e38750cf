//! The mailbox service: the one door through which every front end reaches peers and messages.
//! It validates input, applies the configured limits, and turns store wake-ups into waits.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast::{self, error::RecvError};

use switchboard_proto::{
    InboxItem, ItemKind, JobClaim, JobId, JobState, JobView, LogEntry, MAX_CONTEXT_HINT_BYTES,
    MAX_DECLINE_BYTES, MAX_IDEMPOTENCY_KEY_BYTES, MAX_JOB_FIELD_BYTES, MAX_PROMPT_BYTES,
    MAX_RESULT_BYTES, MAX_SOURCE_BYTES, MAX_SOURCES, MAX_SUMMARY_BYTES, MAX_TEXT_BYTES, MessageId,
    Millis, PeerKind, PeerName, QuestionState, QuestionView, SentMessage, Target,
};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Rejection};
use crate::exchange::{Ask, Dispatch, Exchange, Outgoing, Result, Session};
use crate::policy::{Limits, ms};
use crate::store::{
    Admission, ClaimRequest, GcPolicy, GcReport, JobOutcome, JobQuery, LeaseRequest, LogQuery,
    NewJob, NewMessage, NewQuestion, NewTarget, OpenSession, PeerId, PeerRecord, QuestionQuery,
    Reply, SentQuery, SessionId, Store, StoreStats,
};
use crate::wake::Wake;

/// Longest a waiter sleeps without a wake before looking again; it only matters when a lease
/// held by another session runs out, which rings no doorbell.
const RECHECK: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Mailbox {
    store: Arc<dyn Store>,
    limits: Limits,
    clock: Arc<dyn Clock>,
}

impl Mailbox {
    pub fn new(store: Arc<dyn Store>, limits: Limits) -> Self {
        Self::with_clock(store, limits, Arc::new(SystemClock))
    }
    pub fn with_clock(store: Arc<dyn Store>, limits: Limits, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            limits,
            clock,
        }
    }
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
    fn now(&self) -> Millis {
        self.clock.now_ms()
    }
    /// The expiry instant for a TTL (the default when none), refusing one beyond retention.
    fn expiry(&self, ttl: Option<Duration>) -> Result<Millis> {
        let ttl = ttl.unwrap_or(self.limits.default_ttl);
        if ttl > self.limits.retention {
            return Err(Error::TtlTooLong {
                asked_secs: ttl.as_secs(),
                max_secs: self.limits.retention.as_secs(),
            });
        }
        Ok(self.now().saturating_add(ms(ttl)))
    }
    /// Looks with `look` until `done` accepts the answer, looking again after every wake that
    /// concerns `peer` (every wake when `None`), for at most `wait`; then returns the last look.
    /// Subscribing before the first look means nothing committed in between is missed.
    async fn until<T, F, Fut>(
        &self,
        peer: Option<PeerId>,
        wait: Duration,
        mut look: F,
        done: impl Fn(&T) -> bool,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut wakes = self.store.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let seen = look().await?;
            if done(&seen) || !wait_for(&mut wakes, peer, deadline).await {
                return Ok(seen);
            }
        }
    }
    fn admission(&self) -> Admission {
        Admission {
            pending_cap: self.limits.pending_cap,
            rate_limit: self.limits.rate_limit,
            rate_window_ms: ms(self.limits.rate_window),
        }
    }
    /// Like [`Self::peer`]; `asker` is left out of the list of known peers.
    async fn resolve(&self, name: &str, asker: Option<PeerId>) -> Result<PeerRecord> {
        PeerName::parse(name)?;
        if let Some(peer) = self.store.find_peer(name).await? {
            return Ok(peer);
        }
        let known = self
            .store
            .list_peers(self.now())
            .await?
            .into_iter()
            .filter(|p| Some(p.id) != asker)
            .map(|p| p.name)
            .collect();
        Err(Rejection::UnknownPeer {
            name: name.to_owned(),
            known,
        }
        .into())
    }
}

#[async_trait]
impl Exchange for Mailbox {
    fn describe(&self) -> String {
        self.store.describe()
    }

    fn limits(&self) -> &Limits {
        &self.limits
    }

    fn subscribe(&self) -> broadcast::Receiver<Wake> {
        self.store.subscribe()
    }

    /// The human's peer, created on first use.
    async fn operator(&self, name: &str) -> Result<PeerRecord> {
        let name = PeerName::parse(name)?;
        Ok(self
            .store
            .ensure_peer(&name, PeerKind::Operator, self.now())
            .await?)
    }
    async fn open_session(&self, req: OpenSession) -> Result<Session> {
        for (field, value) in [
            ("client kind", &req.info.client_kind),
            ("client version", &req.info.client_version),
            ("host", &req.info.host),
            ("working directory", &req.info.cwd),
            ("git root", &req.info.git_root),
            ("git branch", &req.info.git_branch),
        ] {
            if let Some(v) = value {
                check_len(field, v, switchboard_proto::MAX_FIELD_BYTES)?;
            }
        }
        Ok(self.store.open_session(req, self.now()).await?)
    }
    async fn close_session(&self, session: SessionId) -> Result<()> {
        Ok(self.store.close_session(session, self.now()).await?)
    }
    async fn peers(&self) -> Result<Vec<PeerRecord>> {
        Ok(self.store.list_peers(self.now()).await?)
    }
    /// The peer whose live session was spawned by one of these processes (nearest first).
    async fn peer_of_client(&self, pids: &[u32]) -> Result<Option<PeerRecord>> {
        Ok(self.store.peer_by_client_pid(pids, self.now()).await?)
    }
    async fn rename(&self, peer: PeerId, name: &str) -> Result<PeerRecord> {
        let name = PeerName::parse(name)?;
        Ok(self.store.rename_peer(peer, &name, self.now()).await?)
    }
    async fn set_summary(&self, peer: PeerId, summary: &str) -> Result<PeerRecord> {
        check_len("summary", summary, MAX_SUMMARY_BYTES)?;
        Ok(self.store.set_summary(peer, summary, self.now()).await?)
    }
    /// Validates and stores a message; returns once it is durable.
    async fn send(&self, from: PeerId, out: Outgoing) -> Result<SentMessage> {
        non_empty("message text", &out.text)?;
        check_len("message text", &out.text, MAX_TEXT_BYTES)?;
        if let Some(key) = &out.idempotency_key {
            check_len("idempotency key", key, MAX_IDEMPOTENCY_KEY_BYTES)?;
        }
        let expires_at = self.expiry(out.ttl)?;
        let target = match &out.to {
            Target::Peer(name) => NewTarget::Peer(self.resolve(name, Some(from)).await?.id),
            Target::Broadcast(scope) => NewTarget::Broadcast(*scope),
        };
        let msg = NewMessage {
            kind: ItemKind::Message,
            sender: from,
            target,
            text: out.text,
            reply_to: out.reply_to,
            idempotency_key: out.idempotency_key,
            expires_at,
        };
        Ok(self.store.send(msg, self.admission(), self.now()).await?)
    }
    /// Validates and stores a question to one peer; returns once it is durable.
    async fn ask(&self, from: PeerId, ask: Ask) -> Result<QuestionView> {
        non_empty("question", &ask.question)?;
        check_len("question", &ask.question, MAX_TEXT_BYTES)?;
        if let Some(hint) = &ask.context_hint {
            check_len("context_hint", hint, MAX_CONTEXT_HINT_BYTES)?;
        }
        let expires_at = self.expiry(ask.ttl)?;
        let to = self.resolve(&ask.to, Some(from)).await?.id;
        let q = NewQuestion {
            asker: from,
            to,
            question: ask.question,
            context_hint: ask.context_hint.filter(|h| !h.trim().is_empty()),
            expires_at,
        };
        Ok(self.store.ask(q, self.admission(), self.now()).await?)
    }
    /// Answers or declines a question asked to `by`, once.
    async fn reply(&self, by: PeerId, question: MessageId, reply: Reply) -> Result<QuestionView> {
        match &reply {
            Reply::Answer { text, sources, .. } => {
                non_empty("answer", text)?;
                check_len("answer", text, MAX_TEXT_BYTES)?;
                if sources.len() > MAX_SOURCES {
                    return Err(Error::TooMany {
                        field: "sources",
                        count: sources.len(),
                        max: MAX_SOURCES,
                    });
                }
                for s in sources {
                    non_empty("a source", s)?;
                    check_len("a source", s, MAX_SOURCE_BYTES)?;
                }
            }
            Reply::Decline { reason } => {
                non_empty("the reason for declining", reason)?;
                check_len("the reason for declining", reason, MAX_DECLINE_BYTES)?;
            }
        }
        let expires_at = self.expiry(None)?;
        Ok(self
            .store
            .reply(
                question,
                by,
                reply,
                expires_at,
                self.admission(),
                self.now(),
            )
            .await?)
    }
    async fn questions(&self, peer: PeerId, query: QuestionQuery) -> Result<Vec<QuestionView>> {
        Ok(self.store.questions(peer, query, self.now()).await?)
    }
    async fn question(&self, peer: PeerId, id: MessageId) -> Result<QuestionView> {
        Ok(self.store.question(peer, id, self.now()).await?)
    }
    /// The question once it is no longer open, or as it stands after `wait`.
    async fn question_wait(
        &self,
        peer: PeerId,
        id: MessageId,
        wait: Duration,
    ) -> Result<QuestionView> {
        self.until(
            Some(peer),
            wait,
            || self.question(peer, id),
            |q| q.state != QuestionState::Open,
        )
        .await
    }
    /// Validates and stores a job; returns once it is durable.
    async fn dispatch(&self, from: PeerId, d: Dispatch) -> Result<JobView> {
        PeerName::parse(&d.agent)?;
        non_empty("prompt", &d.prompt)?;
        check_len("prompt", &d.prompt, MAX_PROMPT_BYTES)?;
        for (field, value) in [("model", &d.model), ("request_id", &d.request_id)] {
            if let Some(v) = value {
                non_empty(field, v)?;
                check_len(field, v, MAX_JOB_FIELD_BYTES)?;
            }
        }
        let expires_at = self.expiry(Some(d.ttl.unwrap_or(self.limits.job_ttl)))?;
        let job = NewJob {
            dispatcher: from,
            agent: d.agent,
            prompt: d.prompt,
            model: d.model,
            write: d.write,
            request_id: d.request_id,
            expires_at,
        };
        Ok(self.store.dispatch(job, self.now()).await?)
    }
    /// The next job for a worker of `agent`, if any.
    async fn claim(
        &self,
        agent: &str,
        worker: &str,
        allow_writes: bool,
    ) -> Result<Option<JobClaim>> {
        PeerName::parse(agent)?;
        check_len("worker", worker, switchboard_proto::MAX_FIELD_BYTES)?;
        let req = ClaimRequest {
            agent: agent.to_owned(),
            worker: worker.to_owned(),
            allow_writes,
            lease_ms: ms(self.limits.job_lease),
            max_attempts: self.limits.job_max_attempts,
        };
        Ok(self.store.claim(req, self.now()).await?)
    }
    /// Like [`Self::claim`], waiting up to `wait` for a job to be dispatched.
    async fn claim_wait(
        &self,
        agent: &str,
        worker: &str,
        allow_writes: bool,
        wait: Duration,
    ) -> Result<Option<JobClaim>> {
        self.until(
            None,
            wait,
            || self.claim(agent, worker, allow_writes),
            Option::is_some,
        )
        .await
    }
    async fn start_job(&self, claim: &JobClaim) -> Result<()> {
        Ok(self
            .store
            .start_job(claim.job.id, claim.fence, self.now())
            .await?)
    }
    async fn heartbeat(&self, claim: &JobClaim) -> Result<JobState> {
        let lease = ms(self.limits.job_lease);
        Ok(self
            .store
            .heartbeat(claim.job.id, claim.fence, lease, self.now())
            .await?)
    }
    async fn finish_job(&self, claim: &JobClaim, outcome: JobOutcome) -> Result<JobView> {
        let outcome = match outcome {
            JobOutcome::Completed { result, branch } => JobOutcome::Completed {
                result: clip(storable(result), MAX_RESULT_BYTES),
                branch: branch.map(storable),
            },
            JobOutcome::Failed { error } => JobOutcome::Failed {
                error: clip(storable(error), MAX_RESULT_BYTES),
            },
        };
        Ok(self
            .store
            .finish_job(claim.job.id, claim.fence, outcome, self.now())
            .await?)
    }
    async fn release_job(&self, claim: &JobClaim) -> Result<()> {
        Ok(self
            .store
            .release_job(claim.job.id, claim.fence, self.now())
            .await?)
    }
    async fn cancel_job(&self, id: JobId) -> Result<JobView> {
        Ok(self.store.cancel_job(id, self.now()).await?)
    }
    async fn requeue_job(&self, id: JobId) -> Result<JobView> {
        Ok(self.store.requeue_job(id, self.now()).await?)
    }
    async fn job(&self, id: JobId) -> Result<JobView> {
        Ok(self.store.job(id, self.now()).await?)
    }
    /// The job once it reaches a final state, or as it stands after `wait`.
    async fn job_wait(&self, id: JobId, wait: Duration) -> Result<JobView> {
        self.until(None, wait, || self.job(id), |j| j.state.is_final())
            .await
    }
    async fn jobs(&self, query: JobQuery) -> Result<Vec<JobView>> {
        if let Some(agent) = &query.agent {
            PeerName::parse(agent)?;
        }
        Ok(self.store.jobs(query, self.now()).await?)
    }
    /// The peer with this name, or an error listing the peers there are.
    async fn peer(&self, name: &str) -> Result<PeerRecord> {
        self.resolve(name, None).await
    }
    /// Leases up to `limit` unread items to the session. With `include_seen`, items handed over
    /// before but never acknowledged are listed again (an explicit pull).
    async fn lease(
        &self,
        session: &Session,
        limit: u32,
        include_seen: bool,
    ) -> Result<Vec<InboxItem>> {
        let req = LeaseRequest {
            peer: session.peer.id,
            session: session.id,
            limit,
            lease_ms: ms(self.limits.lease),
            include_seen,
            max_attempts: self.limits.max_attempts,
        };
        Ok(self.store.lease(req, self.now()).await?)
    }
    /// Like [`Self::lease`], but waits up to `wait` for something to arrive.
    async fn lease_wait(
        &self,
        session: &Session,
        limit: u32,
        include_seen: bool,
        wait: Duration,
    ) -> Result<Vec<InboxItem>> {
        let peer = Some(session.peer.id);
        self.until(
            peer,
            wait,
            || self.lease(session, limit, include_seen),
            |items| !items.is_empty(),
        )
        .await
    }
    async fn mark_delivered(&self, session: &Session, ids: &[MessageId]) -> Result<u64> {
        Ok(self
            .store
            .mark_delivered(session.id, ids, self.now())
            .await?)
    }
    async fn ack(&self, peer: PeerId, ids: &[MessageId]) -> Result<u64> {
        if ids.is_empty() {
            return Err(Error::NoIds);
        }
        Ok(self.store.ack(peer, ids, self.now()).await?)
    }
    async fn sent(&self, sender: PeerId, query: SentQuery) -> Result<Vec<SentMessage>> {
        Ok(self.store.sent(sender, query, self.now()).await?)
    }
    async fn log(&self, query: LogQuery) -> Result<Vec<LogEntry>> {
        Ok(self.store.log(query).await?)
    }
    async fn last_message_id(&self) -> Result<MessageId> {
        Ok(self.store.last_message_id().await?)
    }
    /// The log after `query.after`, waiting up to `wait` for the first entry.
    async fn log_wait(&self, query: LogQuery, wait: Duration) -> Result<Vec<LogEntry>> {
        self.until(query.peer, wait, || self.log(query), |e| !e.is_empty())
            .await
    }
    async fn gc(&self) -> Result<GcReport> {
        let now = self.now();
        let policy = GcPolicy {
            delete_before: now.saturating_sub(ms(self.limits.retention)),
        };
        Ok(self.store.gc(policy, now).await?)
    }
    async fn stats(&self) -> Result<StoreStats> {
        Ok(self.store.stats(self.now()).await?)
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, keeping its end: the tail of a
/// command's output is where its conclusion (or its error) is.
fn clip(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

fn non_empty(field: &'static str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::Empty { field });
    }
    Ok(())
}

/// A text field to be stored: at most `max` bytes, and no NUL character, which one backend
/// (Postgres) cannot store — refused here for both, so they answer alike.
fn check_len(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(Error::TooLong {
            field,
            len: value.len(),
            max,
        });
    }
    if value.contains('\0') {
        return Err(Error::NulChar { field });
    }
    Ok(())
}

/// A worker's report is the tail of a command's output, which may hold any byte: a NUL is
/// shown as U+FFFD rather than refusing (and so losing) the whole result.
fn storable(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

/// Waits for a wake that concerns `peer` (any wake when `None`), or the deadline. Returns
/// false at the deadline. A lagged receiver counts as a wake: something happened.
async fn wait_for(
    wakes: &mut broadcast::Receiver<Wake>,
    peer: Option<PeerId>,
    deadline: tokio::time::Instant,
) -> bool {
    loop {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return false;
        }
        let slice = (deadline - now).min(RECHECK);
        match tokio::time::timeout(slice, wakes.recv()).await {
            Ok(Ok(wake)) if peer.is_none_or(|p| wake.concerns(p)) => return true,
            Ok(Ok(_)) => continue,
            Ok(Err(RecvError::Lagged(_))) => return true,
            // The store is gone: nothing more will arrive; let the caller re-read once and stop.
            Ok(Err(RecvError::Closed)) => return false,
            Err(_) => return tokio::time::Instant::now() < deadline,
        }
    }
}
