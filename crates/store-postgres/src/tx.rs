//! One store operation's transaction on a pooled connection: begun with the room's schema on
//! the search path, committed with its NOTIFY, rolled back and run again when it lost a race.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::Object;

use switchboard_core::seam::{Pending, Statements};
use switchboard_core::{StoreError, Wake};
use switchboard_proto::{JobId, MessageId};

use crate::claims::Claims;
use crate::fault::OpError;
use crate::sql::Conn;
use crate::stats::Grown;

/// How many times an operation that keeps losing races is run before the error is reported.
pub const MAX_ATTEMPTS: u32 = 10;

/// A connection inside a transaction. Dropped before [`Tx::release`] (an error mid-way, or the
/// caller's future cancelled), the connection is closed instead of going back to the pool, so
/// no half-done transaction can leak into the next operation that borrows it.
pub struct Tx {
    obj: Option<Object>,
}

impl Tx {
    pub fn new(obj: Object) -> Self {
        Self { obj: Some(obj) }
    }

    pub fn conn(&self) -> &Conn {
        match &self.obj {
            Some(o) => o,
            // `obj` is taken only by `release` and `drop`, which consume the value.
            None => unreachable!("a transaction used after release"),
        }
    }

    /// Gives the connection back to the pool: only once its transaction has ended.
    pub fn release(mut self) {
        drop(self.obj.take());
    }

    /// Ends the transaction without its changes; the connection goes back to the pool only if
    /// the rollback itself worked.
    pub async fn rollback(self) {
        if self.conn().batch_execute("ROLLBACK").await.is_ok() {
            self.release();
        }
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if let Some(obj) = self.obj.take() {
            drop(Object::take(obj));
        }
    }
}

/// A short, growing pause before running a transaction again, so racers spread out.
pub async fn backoff(attempt: u32) {
    let jitter = u64::from(std::process::id() % 3);
    tokio::time::sleep(Duration::from_millis((1u64 << attempt.min(6)) + jitter)).await;
}

/// A transaction of one room as the seam's [`Statements`] see it: its connection, the wakes to
/// send at the commit, and this process's liveness key (its sessions are stored with it).
pub struct PgTx {
    /// Shared by the jobs the write lane runs side by side in one transaction (see
    /// [`crate::lane`]); each has a `PgTx` of its own.
    tx: Arc<Tx>,
    pending: Pending,
    pub(crate) process_key: i64,
    /// The `BEGIN …` not sent yet: it goes out with the first statement, in the same round
    /// trip (see [`PgTx::opened`]).
    opening: Mutex<Option<Arc<str>>>,
    /// The newest rows inserted since [`PgTx::take_grown`] was last called: how far the room
    /// has grown, for its statistics (see [`crate::stats`]).
    grown: Grown,
    /// For a send the write lane runs beside others: where it claims the parties its
    /// admission locked, and its number there.
    pub(crate) claims: Option<(Arc<Claims>, usize)>,
    /// True once a statement that may write went out: anything but a `SELECT` (which at
    /// most locks rows).
    wrote: AtomicBool,
}

impl PgTx {
    pub fn new(tx: Tx, process_key: i64, writable: bool) -> Self {
        let pending = Pending {
            wakes: Vec::new(),
            writable,
        };
        Self {
            tx: Arc::new(tx),
            pending,
            process_key,
            opening: Mutex::new(None),
            grown: Grown::default(),
            claims: None,
            wrote: AtomicBool::new(false),
        }
    }

    /// Another job's view of the same transaction, as one of several run side by side: its
    /// own wakes and answers, no opening of its own (the lane sends it), its parties claimed
    /// in `claims` as number `job`.
    pub(crate) fn beside(&self, claims: &Arc<Claims>, job: usize) -> Self {
        Self {
            tx: Arc::clone(&self.tx),
            pending: Pending {
                wakes: Vec::new(),
                writable: self.pending.writable,
            },
            process_key: self.process_key,
            opening: Mutex::new(None),
            grown: Grown::default(),
            claims: Some((Arc::clone(claims), job)),
            wrote: AtomicBool::new(false),
        }
    }

    /// Notes that `sql` went out: anything but a `SELECT` may have written.
    pub(crate) fn sent(&self, sql: &str) {
        if !sql.trim_start().starts_with("SELECT") {
            self.wrote.store(true, Ordering::Relaxed);
        }
    }

    /// True when a statement that may write went out through this view.
    pub(crate) fn wrote(&self) -> bool {
        self.wrote.load(Ordering::Relaxed)
    }

    /// Notes a message this transaction inserted.
    pub(crate) fn inserted_message(&mut self, id: MessageId) {
        self.grown.message = self.grown.message.max(Some(id));
    }

    /// Notes a job this transaction inserted.
    pub(crate) fn inserted_job(&mut self, id: JobId) {
        self.grown.job = self.grown.job.max(Some(id));
    }

    /// The newest rows inserted since the last call.
    pub(crate) fn take_grown(&mut self) -> Grown {
        std::mem::take(&mut self.grown)
    }

    /// Opens the transaction with `begin` when the first statement runs, pipelined with it.
    pub fn opening_with(self, begin: Arc<str>) -> Self {
        self.open_next_with(begin);
        self
    }

    /// Sets what goes out just before the next statement, in place of anything not sent yet:
    /// the write lane opens each job's savepoint (and ends the one before) this way, in the
    /// job's first round trip.
    pub(crate) fn open_next_with(&self, prefix: Arc<str>) {
        if let Ok(mut slot) = self.opening.lock() {
            *slot = Some(prefix);
        }
    }

    /// True when what [`PgTx::open_next_with`] set went out: a statement ran since.
    pub(crate) fn opening_sent(&self) -> bool {
        self.opening.lock().map_or(true, |s| s.is_none())
    }

    /// Runs a statement's request, sending the pending `BEGIN` just before it on the same
    /// connection without waiting for its answer: Postgres runs them in order, so the
    /// statement is inside the transaction, and a transaction costs one round trip fewer.
    /// Should the `BEGIN` fail, the connection is broken and the error is returned.
    pub(crate) async fn opened<T>(
        &self,
        request: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, OpError> {
        let begin = self.opening.lock().ok().and_then(|mut s| s.take());
        match begin {
            None => Ok(request.await?),
            Some(begin) => {
                let (begun, out) = tokio::join!(self.conn().batch_execute(&begin), request);
                begun?;
                Ok(out?)
            }
        }
    }

    pub fn conn(&self) -> &Conn {
        self.tx.conn()
    }

    /// The transaction and the wakes of its commit. Called once every view made by
    /// [`PgTx::beside`] is gone (the lane drops them with the jobs they ran); were one left,
    /// the transaction could not be ended here, and it ends with that view instead (dropped
    /// unreleased, its connection is closed).
    pub fn into_parts(self) -> Result<(Tx, Vec<Wake>), StoreError> {
        match Arc::into_inner(self.tx) {
            Some(tx) => Ok((tx, self.pending.wakes)),
            None => Err(StoreError::Backend(
                "a transaction was ended while a job still held it".into(),
            )),
        }
    }
}

impl Statements for PgTx {
    type Error = OpError;

    fn pending(&mut self) -> &mut Pending {
        &mut self.pending
    }
}
