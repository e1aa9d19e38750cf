//! [`PgStore`]: the [`Store`] of one room in the shared database.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::broadcast;

use switchboard_core::seam::{Access, Backend, BoxFuture, Step};
use switchboard_core::{
    Admission, ClaimRequest, GcPolicy, GcReport, JobOutcome, JobQuery, LeaseRequest, LogQuery,
    NewJob, NewMessage, NewQuestion, OpenSession, PeerId, PeerRecord, QuestionQuery, Reply,
    SentQuery, SessionId, SessionRecord, Store, StoreResult, StoreStats, Wake,
};
use switchboard_proto::{
    InboxItem, JobClaim, JobId, JobState, JobView, LogEntry, MessageId, Millis, PeerKind, PeerName,
    QuestionView, SentMessage,
};

use crate::db::Database;
use crate::fault::{OpResult, classify};
use crate::holder::CHANNEL;
use crate::migrate::room_schema;
use crate::ops::{self, col, one};
use crate::tx::{MAX_ATTEMPTS, PgTx, Tx, backoff, txn};

#[derive(Clone)]
pub struct PgStore {
    db: Database,
    room: String,
    begin_rw: String,
    begin_ro: String,
    wakes: broadcast::Sender<Wake>,
}

impl PgStore {
    pub(crate) fn new(db: Database, room: &str) -> Self {
        let schema = room_schema(room);
        let wakes = db.router().channel(room);
        Self {
            begin_rw: format!("BEGIN; SET LOCAL search_path TO {schema}"),
            begin_ro: format!("BEGIN READ ONLY; SET LOCAL search_path TO {schema}"),
            db,
            room: room.to_owned(),
            wakes,
        }
    }

    pub fn room(&self) -> &str {
        &self.room
    }

    /// A pooled connection with a transaction open on this room's schema: one round trip.
    pub(crate) async fn begin(&self, read_only: bool) -> StoreResult<Tx> {
        let tx = Tx::new(self.db.conn().await?);
        let sql = if read_only {
            &self.begin_ro
        } else {
            &self.begin_rw
        };
        tx.conn()
            .batch_execute(sql)
            .await
            .map_err(|e| classify(&e, self.db.shown()))?;
        Ok(tx)
    }

    /// Commits (with the NOTIFY other replicas wake on, in the same round trip) and wakes this
    /// process's waiters; or rolls back. `Ok(None)` asks the caller to run the operation again.
    pub(crate) async fn end<T>(
        &self,
        tx: Tx,
        out: OpResult<T>,
        wakes: Vec<Wake>,
        attempt: u32,
    ) -> StoreResult<Option<T>> {
        let err = match out {
            Ok(v) => {
                let sql = if wakes.is_empty() {
                    "COMMIT".to_owned()
                } else {
                    let payload = self.db.router().payload(&self.room, &wakes);
                    format!("SELECT pg_notify('{CHANNEL}', '{payload}'); COMMIT")
                };
                match tx.conn().batch_execute(&sql).await {
                    Ok(()) => {
                        tx.release();
                        for w in wakes {
                            let _ = self.wakes.send(w);
                        }
                        return Ok(Some(v));
                    }
                    Err(e) => crate::fault::OpError::Pg(e),
                }
            }
            Err(e) => e,
        };
        tx.rollback().await;
        if err.is_conflict() && attempt + 1 < MAX_ATTEMPTS {
            backoff(attempt).await;
            return Ok(None);
        }
        Err(err.into_store(self.db.shown()))
    }
}

impl Backend for PgStore {
    type Tx = PgTx;

    fn describe(&self) -> String {
        format!("postgres {} room {}", self.db.describe(), self.room)
    }

    fn subscribe(&self) -> broadcast::Receiver<Wake> {
        self.wakes.subscribe()
    }

    fn legacy(&self) -> Arc<dyn Store> {
        Arc::new(Legacy(self.clone()))
    }

    // A procedure that lost a race to another transaction (a serialization failure, a deadlock,
    // a unique key inserted meanwhile) is rolled back and run again, up to `MAX_ATTEMPTS`.
    async fn transact<T, P>(&self, access: Access, procedure: P) -> StoreResult<T>
    where
        T: Send + 'static,
        P: for<'x> Fn(&'x mut PgTx) -> BoxFuture<'x, Step<T, PgTx>> + Send + Sync + 'static,
    {
        let read_only = access == Access::Read;
        let mut attempt: u32 = 0;
        loop {
            let tx = self.begin(read_only).await?;
            let mut pg = PgTx::new(tx, self.db.router().key(), !read_only);
            let out = procedure(&mut pg).await;
            let (tx, wakes) = pg.into_parts();
            match self.end(tx, out, wakes, attempt).await? {
                Some(v) => return Ok(v),
                None => attempt += 1,
            }
        }
    }
}

/// During the move to the seam: the operations not moved yet, as they were.
struct Legacy(PgStore);

#[async_trait]
impl Store for Legacy {
    fn describe(&self) -> String {
        format!("postgres {} room {}", self.0.db.describe(), self.0.room)
    }

    fn subscribe(&self) -> broadcast::Receiver<Wake> {
        self.0.wakes.subscribe()
    }

    async fn ensure_peer(
        &self,
        name: &PeerName,
        kind: PeerKind,
        now: Millis,
    ) -> StoreResult<PeerRecord> {
        txn!(self.0, false, |c, w| ops::peers::ensure(
            c, w, name, kind, now
        ))
    }

    async fn open_session(&self, req: OpenSession, now: Millis) -> StoreResult<SessionRecord> {
        let key = self.0.db.router().key();
        txn!(self.0, false, |c, w| ops::peers::open_session(
            c, w, key, &req, now
        ))
    }

    async fn close_session(&self, session: SessionId, now: Millis) -> StoreResult<()> {
        txn!(self.0, false, |c, w| ops::peers::close_session(
            c, w, session, now
        ))
    }

    async fn rename_peer(
        &self,
        peer: PeerId,
        name: &PeerName,
        now: Millis,
    ) -> StoreResult<PeerRecord> {
        txn!(self.0, false, |c, w| ops::peers::rename(
            c, w, peer, name, now
        ))
    }

    async fn set_summary(
        &self,
        peer: PeerId,
        summary: &str,
        now: Millis,
    ) -> StoreResult<PeerRecord> {
        txn!(self.0, false, |c, w| ops::peers::set_summary(
            c, w, peer, summary, now
        ))
    }

    async fn list_peers(&self, now: Millis) -> StoreResult<Vec<PeerRecord>> {
        txn!(self.0, false, |c, w| async {
            ops::peers::reap(c, w, now).await?;
            ops::peers::all(c).await
        })
    }

    async fn find_peer(&self, name: &str) -> StoreResult<Option<PeerRecord>> {
        txn!(self.0, true, |c, _w| ops::peers::by_name(c, name))
    }

    async fn peer_by_client_pid(
        &self,
        pids: &[u32],
        now: Millis,
    ) -> StoreResult<Option<PeerRecord>> {
        txn!(self.0, false, |c, w| ops::peers::by_client_pid(
            c, w, pids, now
        ))
    }

    async fn send(
        &self,
        msg: NewMessage,
        admission: Admission,
        now: Millis,
    ) -> StoreResult<SentMessage> {
        txn!(self.0, false, |c, w| ops::mail::send(
            c, w, &msg, admission, now
        ))
    }

    async fn ask(
        &self,
        q: NewQuestion,
        admission: Admission,
        now: Millis,
    ) -> StoreResult<QuestionView> {
        txn!(self.0, false, |c, w| ops::questions::ask(
            c, w, &q, admission, now
        ))
    }

    async fn reply(
        &self,
        question: MessageId,
        by: PeerId,
        reply: Reply,
        expires_at: Millis,
        admission: Admission,
        now: Millis,
    ) -> StoreResult<QuestionView> {
        txn!(self.0, false, |c, w| ops::questions::reply(
            c, w, question, by, &reply, expires_at, admission, now
        ))
    }

    async fn questions(
        &self,
        peer: PeerId,
        query: QuestionQuery,
        now: Millis,
    ) -> StoreResult<Vec<QuestionView>> {
        txn!(self.0, true, |c, _w| ops::questions::list(
            c, peer, query, now
        ))
    }

    async fn question(
        &self,
        peer: PeerId,
        id: MessageId,
        now: Millis,
    ) -> StoreResult<QuestionView> {
        txn!(self.0, true, |c, _w| ops::questions::load_for(
            c, id, peer, now
        ))
    }

    async fn dispatch(&self, job: NewJob, now: Millis) -> StoreResult<JobView> {
        txn!(self.0, false, |c, w| ops::jobs::dispatch(c, w, &job, now))
    }

    async fn claim(&self, req: ClaimRequest, now: Millis) -> StoreResult<Option<JobClaim>> {
        txn!(self.0, false, |c, w| ops::jobs::claim(c, w, &req, now))
    }

    async fn start_job(&self, id: JobId, fence: i64, now: Millis) -> StoreResult<()> {
        txn!(self.0, false, |c, w| ops::jobs::start(c, w, id, fence, now))
    }

    async fn heartbeat(
        &self,
        id: JobId,
        fence: i64,
        lease_ms: i64,
        now: Millis,
    ) -> StoreResult<JobState> {
        txn!(self.0, false, |c, _w| ops::jobs::heartbeat(
            c, id, fence, lease_ms, now
        ))
    }

    async fn finish_job(
        &self,
        id: JobId,
        fence: i64,
        outcome: JobOutcome,
        now: Millis,
    ) -> StoreResult<JobView> {
        txn!(self.0, false, |c, w| ops::jobs::finish(
            c, w, id, fence, &outcome, now
        ))
    }

    async fn release_job(&self, id: JobId, fence: i64, now: Millis) -> StoreResult<()> {
        txn!(self.0, false, |c, w| ops::jobs::release(
            c, w, id, fence, now
        ))
    }

    async fn cancel_job(&self, id: JobId, now: Millis) -> StoreResult<JobView> {
        txn!(self.0, false, |c, w| ops::jobs::cancel(c, w, id, now))
    }

    async fn requeue_job(&self, id: JobId, now: Millis) -> StoreResult<JobView> {
        txn!(self.0, false, |c, w| ops::jobs::requeue(c, w, id, now))
    }

    async fn job(&self, id: JobId, now: Millis) -> StoreResult<JobView> {
        txn!(self.0, false, |c, w| ops::jobs::view(c, w, id, now))
    }

    async fn jobs(&self, query: JobQuery, now: Millis) -> StoreResult<Vec<JobView>> {
        txn!(self.0, false, |c, w| ops::jobs::list(c, w, &query, now))
    }

    async fn lease(&self, req: LeaseRequest, now: Millis) -> StoreResult<Vec<InboxItem>> {
        txn!(self.0, false, |c, w| ops::mail::lease(c, w, &req, now))
    }

    async fn mark_delivered(
        &self,
        session: SessionId,
        ids: &[MessageId],
        now: Millis,
    ) -> StoreResult<u64> {
        txn!(self.0, false, |c, _w| ops::mail::mark_delivered(
            c, session, ids, now
        ))
    }

    async fn ack(&self, peer: PeerId, ids: &[MessageId], now: Millis) -> StoreResult<u64> {
        txn!(self.0, false, |c, _w| ops::mail::ack(c, peer, ids, now))
    }

    async fn sent(
        &self,
        sender: PeerId,
        query: SentQuery,
        now: Millis,
    ) -> StoreResult<Vec<SentMessage>> {
        txn!(self.0, true, |c, _w| ops::mail::sent(c, sender, query, now))
    }

    async fn log(&self, query: LogQuery) -> StoreResult<Vec<LogEntry>> {
        txn!(self.0, true, |c, _w| ops::mail::log(c, &query))
    }

    async fn last_message_id(&self) -> StoreResult<MessageId> {
        txn!(self.0, true, |c, _w| ops::mail::last_message_id(c))
    }

    async fn gc(&self, policy: GcPolicy, now: Millis) -> StoreResult<GcReport> {
        txn!(self.0, false, |c, w| ops::upkeep::gc(c, w, policy, now))
    }

    async fn stats(&self, now: Millis) -> StoreResult<StoreStats> {
        let backend = self.describe();
        txn!(self.0, false, |c, w| async {
            ops::peers::reap(c, w, now).await?;
            let version = one(
                c,
                "SELECT COALESCE(MAX(version), 0) FROM schema_version",
                &[],
            )
            .await?;
            let version = u32::try_from(col::<i32>(&version, 0)?).unwrap_or(0);
            ops::upkeep::counts(c, backend.clone(), version).await
        })
    }
}
