//! The [`Store`] of every backend, written once: each operation is its procedure run as one
//! transaction by [`Backend::transact`].

use async_trait::async_trait;
use tokio::sync::broadcast;

use switchboard_proto::{
    InboxItem, JobClaim, JobId, JobState, JobView, LogEntry, MessageId, Millis, PeerKind, PeerName,
    QuestionId, QuestionView, Reservation, SentMessage,
};

use super::{Access, Backend};
use crate::procedures::{jobs, mail, peers, questions, reservations, upkeep};
use crate::store::{
    Admission, ClaimRequest, GcPolicy, GcReport, JobOutcome, JobQuery, LeaseRequest, LogQuery,
    NewJob, NewMessage, NewQuestion, NewReservation, NewTarget, OpenSession, PeerId, PeerRecord,
    QuestionQuery, Releasing, Reply, SentQuery, SessionId, SessionRecord, Store, StoreResult,
    StoreStats,
};
use crate::wake::Wake;

/// Runs one procedure call as a transaction of `$backend`. The procedure may be run again
/// (a lost race), so the arguments it owns are cloned for each run.
macro_rules! run {
    ($backend:expr, $access:expr, $procedure:path $(, $arg:expr)* $(,)?) => {
        $backend
            .transact($access, move |x| {
                Box::pin($procedure(x $(, $arg.clone())*))
            })
            .await
    };
}

#[async_trait]
impl<B: Backend> Store for B {
    fn describe(&self) -> String {
        Backend::describe(self)
    }

    fn subscribe(&self) -> broadcast::Receiver<Wake> {
        Backend::subscribe(self)
    }

    async fn ensure_peer(
        &self,
        name: &PeerName,
        kind: PeerKind,
        now: Millis,
    ) -> StoreResult<PeerRecord> {
        let name = name.clone();
        run!(self, Access::Write, peers::ensure, name, kind, now)
    }

    async fn open_session(&self, req: OpenSession, now: Millis) -> StoreResult<SessionRecord> {
        run!(self, Access::Write, peers::open_session, req, now)
    }

    async fn close_session(&self, session: SessionId, now: Millis) -> StoreResult<()> {
        run!(self, Access::Write, peers::close_session, session, now)
    }

    async fn rename_peer(
        &self,
        peer: PeerId,
        name: &PeerName,
        now: Millis,
    ) -> StoreResult<PeerRecord> {
        let name = name.clone();
        run!(self, Access::Write, peers::rename, peer, name, now)
    }

    async fn set_summary(
        &self,
        peer: PeerId,
        summary: &str,
        now: Millis,
    ) -> StoreResult<PeerRecord> {
        let summary = summary.to_owned();
        run!(self, Access::Write, peers::set_summary, peer, summary, now)
    }

    async fn list_peers(&self, now: Millis) -> StoreResult<Vec<PeerRecord>> {
        run!(self, Access::Tidy, peers::list, now)
    }

    async fn find_peer(&self, name: &str) -> StoreResult<Option<PeerRecord>> {
        let name = name.to_owned();
        run!(self, Access::Read, peers::find, name)
    }

    async fn peer_by_client_pid(
        &self,
        pids: &[u32],
        now: Millis,
    ) -> StoreResult<Option<PeerRecord>> {
        let pids = pids.to_vec();
        run!(self, Access::Write, peers::by_client_pid, pids, now)
    }

    async fn send(
        &self,
        msg: NewMessage,
        admission: Admission,
        now: Millis,
    ) -> StoreResult<SentMessage> {
        match msg.target {
            // A send to given peers reads what other sends change only in its admission; a
            // broadcast first ends the sessions of dead processes, to find who is live.
            NewTarget::Peer(_) | NewTarget::Name(_) => {
                run!(self, Access::Admitted, mail::send, msg, admission, now)
            }
            NewTarget::Broadcast(_) => run!(self, Access::Write, mail::send, msg, admission, now),
        }
    }

    async fn ask(
        &self,
        q: NewQuestion,
        admission: Admission,
        now: Millis,
    ) -> StoreResult<QuestionView> {
        run!(self, Access::Write, questions::ask, q, admission, now)
    }

    async fn reply(
        &self,
        question: QuestionId,
        by: PeerId,
        reply: Reply,
        expires_at: Millis,
        admission: Admission,
        now: Millis,
    ) -> StoreResult<QuestionView> {
        run!(
            self,
            Access::Write,
            questions::reply,
            question,
            by,
            reply,
            expires_at,
            admission,
            now
        )
    }

    async fn questions(
        &self,
        peer: Option<PeerId>,
        query: QuestionQuery,
        now: Millis,
    ) -> StoreResult<Vec<QuestionView>> {
        run!(self, Access::Read, questions::list, peer, query, now)
    }

    async fn question(
        &self,
        peer: PeerId,
        id: QuestionId,
        now: Millis,
    ) -> StoreResult<QuestionView> {
        run!(self, Access::Read, questions::load_for, peer, id, now)
    }

    async fn dispatch(&self, job: NewJob, now: Millis) -> StoreResult<JobView> {
        run!(self, Access::Write, jobs::dispatch, job, now)
    }

    async fn claim(&self, req: ClaimRequest, now: Millis) -> StoreResult<Option<JobClaim>> {
        run!(self, Access::Write, jobs::claim, req, now)
    }

    async fn start_job(&self, id: JobId, fence: i64, now: Millis) -> StoreResult<()> {
        run!(self, Access::Write, jobs::start, id, fence, now)
    }

    async fn heartbeat(
        &self,
        id: JobId,
        fence: i64,
        lease_ms: i64,
        now: Millis,
    ) -> StoreResult<JobState> {
        run!(
            self,
            Access::Write,
            jobs::heartbeat,
            id,
            fence,
            lease_ms,
            now
        )
    }

    async fn finish_job(
        &self,
        id: JobId,
        fence: i64,
        outcome: JobOutcome,
        now: Millis,
    ) -> StoreResult<JobView> {
        run!(self, Access::Write, jobs::finish, id, fence, outcome, now)
    }

    async fn release_job(&self, id: JobId, fence: i64, now: Millis) -> StoreResult<()> {
        run!(self, Access::Write, jobs::release, id, fence, now)
    }

    async fn cancel_job(&self, id: JobId, now: Millis) -> StoreResult<JobView> {
        run!(self, Access::Write, jobs::cancel, id, now)
    }

    async fn requeue_job(&self, id: JobId, now: Millis) -> StoreResult<JobView> {
        run!(self, Access::Write, jobs::requeue, id, now)
    }

    async fn job(&self, id: JobId, now: Millis) -> StoreResult<JobView> {
        // A write: reading a job first applies the sweep (lapsed leases, passed TTLs).
        run!(self, Access::Write, jobs::view, id, now)
    }

    async fn jobs(&self, query: JobQuery, now: Millis) -> StoreResult<Vec<JobView>> {
        // A write, as `job` is: the sweep runs first.
        run!(self, Access::Write, jobs::list, query, now)
    }

    async fn reserve(&self, r: NewReservation, now: Millis) -> StoreResult<Reservation> {
        run!(self, Access::Write, reservations::reserve, r, now)
    }

    async fn release(&self, peer: PeerId, which: Releasing, now: Millis) -> StoreResult<u64> {
        run!(self, Access::Write, reservations::release, peer, which, now)
    }

    async fn reservations(
        &self,
        repo: Option<String>,
        now: Millis,
    ) -> StoreResult<Vec<Reservation>> {
        // Tidy: a dead holder's reservations end before they are listed.
        run!(self, Access::Tidy, reservations::list, repo, now)
    }

    async fn lease(&self, req: LeaseRequest, now: Millis) -> StoreResult<Vec<InboxItem>> {
        run!(self, Access::Mail(req.peer), mail::lease, req, now)
    }

    async fn mark_delivered(
        &self,
        peer: PeerId,
        session: SessionId,
        ids: &[MessageId],
        now: Millis,
    ) -> StoreResult<u64> {
        let ids = ids.to_vec();
        run!(
            self,
            Access::Mail(peer),
            mail::mark_delivered,
            peer,
            session,
            ids,
            now
        )
    }

    async fn ack(&self, peer: PeerId, ids: &[MessageId], now: Millis) -> StoreResult<u64> {
        let ids = ids.to_vec();
        run!(self, Access::Mail(peer), mail::ack, peer, ids, now)
    }

    async fn sent(
        &self,
        sender: PeerId,
        query: SentQuery,
        now: Millis,
    ) -> StoreResult<Vec<SentMessage>> {
        run!(self, Access::Read, mail::sent, sender, query, now)
    }

    async fn log(&self, query: LogQuery) -> StoreResult<Vec<LogEntry>> {
        run!(self, Access::Read, mail::log, query)
    }

    async fn last_message_id(&self) -> StoreResult<MessageId> {
        run!(self, Access::Read, mail::last_message_id)
    }

    async fn gc(&self, policy: GcPolicy, now: Millis) -> StoreResult<GcReport> {
        run!(self, Access::Write, upkeep::gc, policy, now)
    }

    async fn stats(&self, now: Millis) -> StoreResult<StoreStats> {
        let stats = run!(self, Access::Tidy, upkeep::stats, now)?;
        // Where the data lives is for the backend to say: it is not recorded in the data.
        Ok(StoreStats {
            backend: Backend::describe(self),
            ..stats
        })
    }
}
