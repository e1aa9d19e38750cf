//! The mailbox service: the one door through which every front end reaches peers and messages.
//! It validates input, applies the configured limits, and turns store wake-ups into waits.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast::{self, error::RecvError};

use switchboard_proto::reservation::{MAX_GLOBS, MAX_REASON_BYTES, MAX_REPO_BYTES};
use switchboard_proto::{
    InboxItem, ItemKind, JobClaim, JobState, JobView, LogEntry, MAX_CONTEXT_HINT_BYTES,
    MAX_DECLINE_BYTES, MAX_IDEMPOTENCY_KEY_BYTES, MAX_JOB_FIELD_BYTES, MAX_PROMPT_BYTES,
    MAX_RESULT_BYTES, MAX_SOURCE_BYTES, MAX_SOURCES, MAX_SUMMARY_BYTES, MAX_TEXT_BYTES, Millis,
    PeerKind, PeerName, QuestionState, QuestionView, Reservation, SentMessage, Target,
};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Rejection};
use crate::exchange::{Exchange, Result, Session};
use crate::op::{self, Answer, Call};
use crate::policy::{Limits, ms};
use crate::store::{
    Admission, ClaimRequest, GcPolicy, GcReport, JobOutcome, LeaseRequest, NewJob, NewMessage,
    NewQuestion, NewReservation, NewTarget, PeerId, PeerRecord, Releasing, Reply, Store,
    StoreError,
};

/// How long a reservation holds when its holder names no TTL.
pub const RESERVATION_TTL: Duration = Duration::from_secs(3600);
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
        if wait.is_zero() {
            // Nothing to wait for: one look, without joining the wake channel.
            return look().await;
        }
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

    async fn call(&self, call: Call) -> Result<Answer> {
        Ok(match call {
            Call::Operator(o) => Answer::Operator(self.operator(o).await?),
            Call::OpenSession(o) => Answer::OpenSession(self.open_session(o).await?),
            Call::CloseSession(o) => Answer::CloseSession(self.close_session(o).await?),
            Call::Peers(o) => Answer::Peers(self.peers(o).await?),
            Call::Peer(o) => Answer::Peer(self.resolve(&o.name, None).await?),
            Call::PeerOfClient(o) => Answer::PeerOfClient(self.peer_of_client(o).await?),
            Call::Rename(o) => Answer::Rename(self.rename(o).await?),
            Call::SetSummary(o) => Answer::SetSummary(self.set_summary(o).await?),
            Call::Send(o) => Answer::Send(self.send(o).await?),
            Call::Ask(o) => Answer::Ask(self.ask(o).await?),
            Call::Reply(o) => Answer::Reply(self.reply(o).await?),
            Call::Questions(o) => Answer::Questions(self.questions(o).await?),
            Call::Question(o) => Answer::Question(self.question(o).await?),
            Call::Dispatch(o) => Answer::Dispatch(self.dispatch(o).await?),
            Call::Claim(o) => Answer::Claim(self.claim(o).await?),
            Call::StartJob(o) => Answer::StartJob(self.start_job(o).await?),
            Call::Heartbeat(o) => Answer::Heartbeat(self.heartbeat(o).await?),
            Call::FinishJob(o) => Answer::FinishJob(self.finish_job(o).await?),
            Call::ReleaseJob(o) => Answer::ReleaseJob(self.release_job(o).await?),
            Call::CancelJob(o) => Answer::CancelJob(self.store.cancel_job(o.id, self.now()).await?),
            Call::RequeueJob(o) => {
                Answer::RequeueJob(self.store.requeue_job(o.id, self.now()).await?)
            }
            Call::Job(o) => Answer::Job(self.job(o).await?),
            Call::Jobs(o) => Answer::Jobs(self.jobs(o).await?),
            Call::Lease(o) => Answer::Lease(self.lease(o).await?),
            Call::MarkDelivered(o) => Answer::MarkDelivered(self.mark_delivered(o).await?),
            Call::Ack(o) => Answer::Ack(self.ack(o).await?),
            Call::Sent(o) => Answer::Sent(self.sent(o).await?),
            Call::Log(o) => Answer::Log(self.log(o).await?),
            Call::LastMessageId(_) => Answer::LastMessageId(self.store.last_message_id().await?),
            Call::Gc(_) => Answer::Gc(self.gc().await?),
            Call::Stats(_) => Answer::Stats(self.store.stats(self.now()).await?),
            Call::Reserve(o) => Answer::Reserve(self.reserve(o).await?),
            Call::Release(o) => {
                let peer = given(o.peer, "peer")?;
                if let Releasing::Repo(repo) = &o.which {
                    check_repo(repo)?;
                }
                Answer::Release(self.store.release(peer, o.which, self.now()).await?)
            }
            Call::Reservations(o) => {
                if let Some(repo) = &o.repo {
                    check_repo(repo)?;
                }
                Answer::Reservations(self.store.reservations(o.repo, self.now()).await?)
            }
        })
    }
}

/// How the mailbox answers each operation (see [`crate::op`] for what each one is).
impl Mailbox {
    async fn operator(&self, o: op::Operator) -> Result<PeerRecord> {
        let name = PeerName::parse(&o.name)?;
        Ok(self
            .store
            .ensure_peer(&name, PeerKind::Operator, self.now())
            .await?)
    }

    async fn open_session(&self, o: op::OpenSession) -> Result<Session> {
        let req = o.session;
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

    async fn close_session(&self, o: op::CloseSession) -> Result<()> {
        Ok(self.store.close_session(o.session, self.now()).await?)
    }

    async fn peers(&self, o: op::Peers) -> Result<Vec<PeerRecord>> {
        let mut peers = self.store.list_peers(self.now()).await?;
        peers.retain(|p| p.online || !o.online_only);
        Ok(peers)
    }

    async fn peer_of_client(&self, o: op::PeerOfClient) -> Result<Option<PeerRecord>> {
        Ok(self.store.peer_by_client_pid(&o.pids, self.now()).await?)
    }

    async fn rename(&self, o: op::Rename) -> Result<PeerRecord> {
        let peer = given(o.peer, "peer")?;
        let name = PeerName::parse(&o.name)?;
        Ok(self.store.rename_peer(peer, &name, self.now()).await?)
    }

    async fn set_summary(&self, o: op::SetSummary) -> Result<PeerRecord> {
        let peer = given(o.peer, "peer")?;
        check_len("summary", &o.summary, MAX_SUMMARY_BYTES)?;
        Ok(self.store.set_summary(peer, &o.summary, self.now()).await?)
    }

    async fn send(&self, o: op::Send) -> Result<SentMessage> {
        let (from, out) = (given(o.from, "from")?, o.message);
        non_empty("message text", &out.text)?;
        check_len("message text", &out.text, MAX_TEXT_BYTES)?;
        if let Some(key) = &out.idempotency_key {
            check_len("idempotency key", key, MAX_IDEMPOTENCY_KEY_BYTES)?;
        }
        let expires_at = self.expiry(out.ttl)?;
        let target = match &out.to {
            // Resolved inside the send's transaction: one trip to the store, not two.
            Target::Peer(name) => NewTarget::Name(PeerName::parse(name)?),
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

    async fn ask(&self, o: op::Ask) -> Result<QuestionView> {
        let (from, ask) = (given(o.from, "from")?, o.ask);
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

    async fn reply(&self, o: op::Reply) -> Result<QuestionView> {
        let by = given(o.by, "by")?;
        match &o.reply {
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
        let (admission, now) = (self.admission(), self.now());
        Ok(self
            .store
            .reply(o.question, by, o.reply, expires_at, admission, now)
            .await?)
    }

    /// Without a peer: every question of the room (the relay's guard lets only a room token
    /// leave the peer out; a peer token's own peer is filled in).
    async fn questions(&self, o: op::Questions) -> Result<Vec<QuestionView>> {
        Ok(self.store.questions(o.peer, o.query, self.now()).await?)
    }

    async fn question(&self, o: op::Question) -> Result<QuestionView> {
        let peer = given(o.peer, "peer")?;
        let look = || async { Ok(self.store.question(peer, o.id, self.now()).await?) };
        let closed = |q: &QuestionView| q.state != QuestionState::Open;
        self.until(Some(peer), o.wait, look, closed).await
    }

    async fn dispatch(&self, o: op::Dispatch) -> Result<JobView> {
        let (from, d) = (given(o.from, "from")?, o.job);
        PeerName::parse(&d.agent)?;
        non_empty("prompt", &d.prompt)?;
        check_len("prompt", &d.prompt, MAX_PROMPT_BYTES)?;
        for (field, value) in [("model", &d.model), ("request_id", &d.request_id)] {
            if let Some(v) = value {
                non_empty(field, v)?;
                check_len(field, v, MAX_JOB_FIELD_BYTES)?;
            }
        }
        if let Some(r) = &d.reserve {
            if !d.write {
                return Err(Error::Invalid(
                    "only a write job reserves paths: dispatch it with write".into(),
                ));
            }
            check_repo(&r.repo)?;
            if r.paths.is_empty() || r.paths.len() > MAX_GLOBS {
                return Err(Error::TooMany {
                    field: "reserve.paths",
                    count: r.paths.len(),
                    max: MAX_GLOBS,
                });
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
            reserve: d.reserve,
        };
        Ok(self.store.dispatch(job, self.now()).await?)
    }

    async fn claim(&self, o: op::Claim) -> Result<Option<JobClaim>> {
        PeerName::parse(&o.agent)?;
        check_len("worker", &o.worker, switchboard_proto::MAX_FIELD_BYTES)?;
        let req = ClaimRequest {
            agent: o.agent,
            worker: o.worker,
            allow_writes: o.allow_writes,
            lease_ms: ms(self.limits.job_lease),
            max_attempts: self.limits.job_max_attempts,
        };
        let look = || async { Ok(self.store.claim(req.clone(), self.now()).await?) };
        self.until(None, o.wait, look, Option::is_some).await
    }

    async fn start_job(&self, o: op::StartJob) -> Result<()> {
        let (id, fence) = (o.claim.job.id, o.claim.fence);
        Ok(self.store.start_job(id, fence, self.now()).await?)
    }

    async fn heartbeat(&self, o: op::Heartbeat) -> Result<JobState> {
        let (id, fence) = (o.claim.job.id, o.claim.fence);
        let lease = ms(self.limits.job_lease);
        Ok(self.store.heartbeat(id, fence, lease, self.now()).await?)
    }

    async fn finish_job(&self, o: op::FinishJob) -> Result<JobView> {
        let (id, fence) = (o.claim.job.id, o.claim.fence);
        let outcome = match o.outcome {
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
            .finish_job(id, fence, outcome, self.now())
            .await?)
    }

    async fn release_job(&self, o: op::ReleaseJob) -> Result<()> {
        let (id, fence) = (o.claim.job.id, o.claim.fence);
        Ok(self.store.release_job(id, fence, self.now()).await?)
    }

    async fn job(&self, o: op::Job) -> Result<JobView> {
        let look = || async { Ok(self.store.job(o.id, self.now()).await?) };
        let ended = |j: &JobView| j.state.is_final();
        self.until(None, o.wait, look, ended).await
    }

    async fn jobs(&self, o: op::Jobs) -> Result<Vec<JobView>> {
        if let Some(agent) = &o.query.agent {
            PeerName::parse(agent)?;
        }
        Ok(self.store.jobs(o.query, self.now()).await?)
    }

    async fn lease(&self, o: op::Lease) -> Result<Vec<InboxItem>> {
        let req = LeaseRequest {
            peer: o.session.peer.id,
            session: o.session.id,
            limit: o.limit,
            lease_ms: ms(self.limits.lease),
            include_seen: o.include_seen,
            max_attempts: self.limits.max_attempts,
        };
        let look = || async { Ok(self.store.lease(req, self.now()).await?) };
        let found = |items: &Vec<InboxItem>| !items.is_empty();
        self.until(Some(req.peer), o.wait, look, found).await
    }

    async fn mark_delivered(&self, o: op::MarkDelivered) -> Result<u64> {
        let (peer, session) = (o.session.peer.id, o.session.id);
        Ok(self
            .store
            .mark_delivered(peer, session, &o.ids, self.now())
            .await?)
    }

    async fn ack(&self, o: op::Ack) -> Result<u64> {
        let peer = given(o.peer, "peer")?;
        if o.ids.is_empty() {
            return Err(Error::NoIds);
        }
        Ok(self.store.ack(peer, &o.ids, self.now()).await?)
    }

    async fn sent(&self, o: op::Sent) -> Result<Vec<SentMessage>> {
        let sender = given(o.sender, "sender")?;
        Ok(self.store.sent(sender, o.query, self.now()).await?)
    }

    async fn log(&self, o: op::Log) -> Result<Vec<LogEntry>> {
        let look = || async { Ok(self.store.log(o.query).await?) };
        let found = |entries: &Vec<LogEntry>| !entries.is_empty();
        self.until(o.query.peer, o.wait, look, found).await
    }

    async fn reserve(&self, o: op::Reserve) -> Result<Reservation> {
        let peer = given(o.peer, "peer")?;
        check_repo(&o.repo)?;
        non_empty("reason", &o.reason)?;
        check_len("reason", &o.reason, MAX_REASON_BYTES)?;
        if o.globs.is_empty() {
            return Err(Error::Empty { field: "globs" });
        }
        if o.globs.len() > MAX_GLOBS {
            return Err(Error::TooMany {
                field: "globs",
                count: o.globs.len(),
                max: MAX_GLOBS,
            });
        }
        let expires_at = self.expiry(Some(o.ttl.unwrap_or(RESERVATION_TTL)))?;
        let new = NewReservation {
            peer,
            session: o.session,
            repo: o.repo,
            globs: o.globs,
            mode: o.mode,
            reason: o.reason,
            expires_at,
            job: o.job,
        };
        // A conflict is an answer to wait on, not an error, until the wait runs out: a release,
        // a TTL or the holder's death may end it (the first two wake us; a TTL is looked at
        // again at every wake and at the recheck interval).
        let look = || async {
            match self.store.reserve(new.clone(), self.now()).await {
                Ok(r) => Ok(Ok(r)),
                Err(StoreError::Rejected(r @ Rejection::Reserved { .. })) => Ok(Err(r)),
                Err(e) => Err(Error::from(e)),
            }
        };
        let taken = |r: &std::result::Result<Reservation, Rejection>| r.is_ok();
        self.until(None, o.wait, look, taken)
            .await?
            .map_err(Error::Rejected)
    }

    async fn gc(&self) -> Result<GcReport> {
        let now = self.now();
        let policy = GcPolicy {
            delete_before: now.saturating_sub(ms(self.limits.retention)),
        };
        Ok(self.store.gc(policy, now).await?)
    }
}

/// A peer argument, which only a relay may fill in (from the caller's token).
fn given(peer: Option<PeerId>, field: &'static str) -> Result<PeerId> {
    peer.ok_or(Error::Missing { field })
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

/// A repository key as every reservation operation takes it: not empty, not too long, no NUL
/// (which one backend cannot store, or even compare).
fn check_repo(repo: &str) -> Result<()> {
    non_empty("repo", repo)?;
    check_len("repo", repo, MAX_REPO_BYTES)
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
            Ok(Ok(wake)) if wake.stirs(peer) => return true,
            Ok(Ok(_)) => continue,
            Ok(Err(RecvError::Lagged(_))) => return true,
            // The store is gone: nothing more will arrive; let the caller re-read once and stop.
            Ok(Err(RecvError::Closed)) => return false,
            Err(_) => return tokio::time::Instant::now() < deadline,
        }
    }
}
