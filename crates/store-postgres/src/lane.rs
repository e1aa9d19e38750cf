//! The write lane of this process: every write to the database runs here, many to one
//! transaction (group commit), as the embedded store's writer thread does.
//!
//! Why: a send locks its recipient's row (the pending cap is a counter on it) until its
//! transaction commits, and a commit waits for the WAL to reach the disk. One transaction per
//! send handed each recipient's lock from send to send through one disk flush each. Here the
//! writes that queued while the last batch ran go out in one transaction: one commit, one
//! flush, each lock taken once per batch.
//!
//! - The lane is a thread with its own single-threaded runtime and its own connection: every
//!   statement is a round trip, and the lane's task, the connection's task and the socket all
//!   on one thread cost no hand-offs between threads (a third of the lane's time went to them
//!   when it shared the relay's runtime).
//! - Each job runs in its own savepoint, with its room's schema on the search path, both sent
//!   in the same round trip as the job's first statement (and the savepoint before released
//!   with them): a job that fails is undone alone and the rest of the batch still commits.
//!   Answers are given only after the commit.
//! - A job that lost a race (a deadlock, a serialization failure, a unique key inserted
//!   meanwhile) is undone and runs again in the next batch, up to `MAX_ATTEMPTS` times. A job
//!   that panics is undone and fails alone; the lane outlives it.
//! - The lane never waits long for a lock: another replica's batch (or a lone transaction)
//!   may hold rows in any order, and two batches waiting on each other would stall until
//!   Postgres's deadlock check (a second by default). So the lane's transaction sets a short
//!   `lock_timeout`; a job that hits it is undone and set aside to run in a transaction of its
//!   own on a pooled connection, which locks in id order and may wait as long as it needs.
//!   The commit itself waits without a bound: a commit that notifies queues behind every
//!   other notifying commit of the cluster, each until its WAL flush is done.

use std::collections::HashSet;
use std::sync::Arc;

use deadpool_postgres::Pool;
use futures_util::future::BoxFuture;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;

use switchboard_core::seam::{Procedure, Statements};
use switchboard_core::{StoreError, StoreResult, Wake};
use switchboard_proto::MessageId;

use crate::db::pool_error;
use crate::fault::{OpError, OpResult};
use crate::store::Room;
use crate::tx::{MAX_ATTEMPTS, PgTx, Tx};

/// How the lane's transaction begins: it waits only briefly for a lock.
const BEGIN: &str = "BEGIN; SET LOCAL lock_timeout = '10ms'";

/// Most jobs in one transaction: bounds how long the first job of a batch waits for its
/// answer and how long the batch holds its locks, and keeps a batch's savepoints within the
/// 64 subtransactions Postgres tracks per transaction in shared memory (past them, every
/// visibility check of every session looks them up on disk).
const MAX_BATCH: usize = 60;

/// Where this process's writes are queued. The lane's thread ends when the last clone is
/// dropped.
#[derive(Clone)]
pub(crate) struct Lane {
    queue: mpsc::UnboundedSender<Box<dyn Job>>,
}

impl Lane {
    /// Starts the lane on a thread of its own, writing through `pool` (of one connection, made
    /// on that thread). Writes set aside run on the runtime this is called in.
    pub(crate) fn start(pool: Pool, shown: String) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::unbounded_channel();
        let main = Handle::current();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("switchboard-pg-lane".into())
            .spawn(move || runtime.block_on(run(jobs, &pool, &main, &shown)))?;
        Ok(Self { queue })
    }

    /// Queues `procedure` on `room` for the next batch and waits for its answer, given after
    /// the commit.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        room: Arc<Room>,
        procedure: impl Procedure<PgTx, T>,
    ) -> StoreResult<T> {
        let (done, answer) = oneshot::channel();
        let job = Write {
            room,
            procedure,
            out: None,
            attempts: 0,
            done,
        };
        self.queue
            .send(Box::new(job))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// What running a job inside a batch came to.
pub(crate) enum Ran {
    /// It worked: its writes commit with the batch.
    Done,
    /// It failed for good: undone, and it answers with its error.
    Failed,
    /// It lost a race: undone, and it runs again in the next batch.
    Again,
    /// It waited too long for a lock: undone, and it runs in a transaction of its own.
    Aside,
    /// The connection is gone, and the batch's writes with it.
    Broken,
}

/// A write waiting in the lane, its type erased so one queue holds every kind.
pub(crate) trait Job: Send {
    fn room(&self) -> &Arc<Room>;
    /// Runs the procedure on the batch's transaction, keeping its result for the answer.
    fn run<'x>(&'x mut self, tx: &'x mut PgTx) -> BoxFuture<'x, Ran>;
    /// Answers the caller once the batch's commit has an outcome: the job's own error if it
    /// failed, else the commit's error, else its result.
    fn answer(self: Box<Self>, commit: Result<(), StoreError>);
    /// Runs the procedure in a transaction of its own and answers.
    fn alone(self: Box<Self>) -> BoxFuture<'static, ()>;
}

struct Write<T, P> {
    room: Arc<Room>,
    procedure: P,
    out: Option<OpResult<T>>,
    attempts: u32,
    done: oneshot::Sender<StoreResult<T>>,
}

impl<T: Send + 'static, P: Procedure<PgTx, T>> Job for Write<T, P> {
    fn room(&self) -> &Arc<Room> {
        &self.room
    }

    fn run<'x>(&'x mut self, tx: &'x mut PgTx) -> BoxFuture<'x, Ran> {
        Box::pin(async move {
            // A panic counts as this job failing: it is undone to its savepoint like any
            // failed job, and the lane's thread goes on serving every other write.
            let out = crate::fault::caught(async { (self.procedure)(tx).await }).await;
            let ran = match &out {
                Ok(_) => Ran::Done,
                Err(_) if tx.conn().is_closed() => Ran::Broken,
                Err(e) if waited_too_long(e) => Ran::Aside,
                Err(e) if e.is_conflict() && self.attempts + 1 < MAX_ATTEMPTS => {
                    self.attempts += 1;
                    Ran::Again
                }
                Err(_) => Ran::Failed,
            };
            self.out = Some(out);
            ran
        })
    }

    fn answer(self: Box<Self>, commit: Result<(), StoreError>) {
        let answer = match (self.out, commit) {
            (Some(Err(e)), _) => Err(e.into_store(self.room.shown())),
            (_, Err(e)) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            // Every job runs before its batch commits; one that did not has no result.
            (None, Ok(())) => Err(StoreError::Closed),
        };
        let _ = self.done.send(answer);
    }

    fn alone(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let out = self.room.alone(false, &self.procedure).await;
            let _ = self.done.send(out);
        })
    }
}

fn waited_too_long(e: &OpError) -> bool {
    matches!(e, OpError::Pg(pg) if pg.code() == Some(&SqlState::LOCK_NOT_AVAILABLE))
}

async fn run(
    mut queue: mpsc::UnboundedReceiver<Box<dyn Job>>,
    pool: &Pool,
    main: &Handle,
    shown: &str,
) {
    let mut again = Vec::new();
    loop {
        let mut batch: Vec<Box<dyn Job>> = std::mem::take(&mut again);
        if batch.is_empty() {
            match queue.recv().await {
                Some(job) => batch.push(job),
                None => return,
            }
        }
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        again = run_batch(pool, main, shown, batch).await;
    }
}

/// Runs one batch in one transaction and answers its jobs; returns those to run again.
async fn run_batch(
    pool: &Pool,
    main: &Handle,
    shown: &str,
    batch: Vec<Box<dyn Job>>,
) -> Vec<Box<dyn Job>> {
    let tx = match pool.get().await {
        Ok(obj) => Tx::new(obj),
        Err(e) => {
            let e = pool_error(&e, shown);
            for job in batch {
                job.answer(Err(e.clone()));
            }
            return Vec::new();
        }
    };
    let mut pg = PgTx::new(tx, batch[0].room().process_key(), true);
    // What must go out before the next statement: the transaction's opening, then the end of
    // the last job's savepoint.
    let mut carry = Some(BEGIN);
    let mut begun = false;
    let (mut ran, mut again) = (Vec::new(), Vec::new());
    let mut wakes: Vec<(Arc<Room>, Vec<Wake>)> = Vec::new();
    // The newest message each room's jobs inserted, for its statistics after the commit.
    let mut grown: Vec<(Arc<Room>, MessageId)> = Vec::new();
    let mut jobs = batch.into_iter();
    while let Some(mut job) = jobs.next() {
        let room = Arc::clone(job.room());
        let path = room.search_path();
        pg.open_next_with(Arc::from(match carry {
            Some(c) => format!("{c}; {path}; SAVEPOINT job"),
            None => format!("{path}; SAVEPOINT job"),
        }));
        pg.pending().wakes.clear();
        let outcome = job.run(&mut pg).await;
        let newest = pg.take_newest_message();
        // A job that ran no statement opened no savepoint, and what was to precede it still
        // waits.
        let sent = pg.opening_sent();
        begun |= sent;
        match outcome {
            Ran::Done => {
                if let Some(id) = newest {
                    match grown.iter_mut().find(|(r, _)| Arc::ptr_eq(r, &room)) {
                        Some((_, n)) => *n = (*n).max(id),
                        None => grown.push((Arc::clone(&room), id)),
                    }
                }
                let done = std::mem::take(&mut pg.pending().wakes);
                match wakes.iter_mut().find(|(r, _)| Arc::ptr_eq(r, &room)) {
                    Some((_, w)) => w.extend(done),
                    None => wakes.push((room, done)),
                }
                if sent {
                    carry = Some("RELEASE job");
                }
                ran.push(job);
            }
            Ran::Broken => {
                // The job's own error says how the connection went.
                job.answer(Ok(()));
                let lost = StoreError::Unreachable {
                    path: shown.to_owned(),
                    detail: "the connection to the database closed before the commit".into(),
                };
                abandon(ran, jobs, &mut again, &lost);
                return again;
            }
            outcome => {
                if sent {
                    carry = None;
                    let undo = pg.conn().batch_execute("ROLLBACK TO job; RELEASE job");
                    if let Err(e) = undo.await {
                        // The transaction is in a state nothing vouches for: give it up.
                        let e = OpError::Pg(e).into_store(shown);
                        job.answer(Err(e.clone()));
                        abandon(ran, jobs, &mut again, &e);
                        return again;
                    }
                }
                match outcome {
                    Ran::Again => again.push(job),
                    Ran::Aside => {
                        main.spawn(job.alone());
                    }
                    _ => ran.push(job),
                }
            }
        }
    }
    let (tx, _) = pg.into_parts();
    if !begun {
        // Nothing reached the database: no transaction to end.
        tx.release();
        for job in ran {
            job.answer(Ok(()));
        }
        return again;
    }
    let mut end: Vec<String> = carry.map(str::to_owned).into_iter().collect();
    // The short lock wait is for the jobs' statements only. A commit that notifies first
    // takes Postgres's one lock for the notification queue, which every notifying commit of
    // the cluster holds until its WAL flush is done: behind another replica's commit on a busy
    // disk, 10 ms ran out and the whole batch failed `Busy` at its commit.
    end.push("SET LOCAL lock_timeout = 0".to_owned());
    for (room, w) in &mut wakes {
        let mut seen = HashSet::new();
        w.retain(|w| seen.insert(*w));
        end.extend(room.notify_sql(w));
    }
    end.push("COMMIT".to_owned());
    // Under READ COMMITTED with no deferred constraints a commit does not lose races: an
    // error here is the connection or the server, and every job of the batch reports it.
    let commit = tx
        .conn()
        .batch_execute(&end.join("; "))
        .await
        .map_err(|e| OpError::Pg(e).into_store(shown));
    match &commit {
        Ok(()) => {
            tx.release();
            for (room, w) in wakes {
                room.wake(w);
            }
            // On the relay's runtime: the lane's thread only writes.
            let _entered = main.enter();
            for (room, newest) in grown {
                room.grew(Some(newest));
            }
        }
        Err(_) => tx.rollback().await,
    }
    for job in ran {
        job.answer(commit.clone());
    }
    again
}

/// Gives up a batch whose transaction is lost: the jobs that ran fail with `e` (nothing of
/// theirs was committed), those not yet run go to the next batch.
fn abandon(
    ran: Vec<Box<dyn Job>>,
    rest: impl Iterator<Item = Box<dyn Job>>,
    again: &mut Vec<Box<dyn Job>>,
    e: &StoreError,
) {
    for job in ran {
        job.answer(Err(e.clone()));
    }
    again.extend(rest);
}
