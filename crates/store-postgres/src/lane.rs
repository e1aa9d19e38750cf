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
//! - The sends of one room in a batch, and its leases, hand-overs and reads of copies, run
//!   side by side (see [`Batch::run_beside`]): their statements go out without waiting for
//!   each other's answers, so the server always has the next one at hand instead of idling a
//!   round trip between jobs. Each send claims its parties at its admission
//!   ([`crate::claims`]), so two sends to one recipient still read each other's writes; a
//!   write to a peer's copies claims that peer's copies for its whole run, so two of them
//!   to one peer run one after the other. They share one savepoint; should one fail in a way
//!   only a savepoint undoes, the savepoint is rolled back, and those that did not fail run
//!   side by side again (once; then one after another).
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

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use deadpool_postgres::Pool;
use futures_util::future::BoxFuture;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;

use switchboard_core::seam::{Access, Procedure, Statements};
use switchboard_core::{StoreError, StoreResult, Wake};

use crate::claims::{Claims, Key};
use crate::db::pool_error;
use crate::fault::{OpError, OpResult};
use crate::stats::Grown;
use crate::store::Room;
use crate::tx::{MAX_ATTEMPTS, PgTx, Tx};

/// How the lane's transaction begins: it waits only briefly for a lock. Another replica's
/// batch holds its rows to its commit, 10–15 ms under load, and while a job waits the whole
/// batch waits with it: through two replicas with the mail crossing between them, 2 ms gave
/// 6–38 % more than 10 ms and half the slowest sends' time (docs/benchmarks.md).
const BEGIN: &str = "BEGIN; SET LOCAL lock_timeout = '2ms'";

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
    /// the commit. A procedure of [`Access::Admitted`] or [`Access::Mail`] may run beside
    /// others.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        room: Arc<Room>,
        access: Access,
        procedure: impl Procedure<PgTx, T>,
    ) -> StoreResult<T> {
        let (done, answer) = oneshot::channel();
        let job = Write {
            room,
            access,
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
    /// It refused its request (a [`switchboard_core::Rejection`]): as `Failed`, except that
    /// beside other jobs nothing needs undoing unless it wrote before refusing.
    Refused,
    /// It lost a race: undone, and it runs again in the next batch.
    Again,
    /// It waited too long for a lock: undone, and it runs in a transaction of its own.
    Aside,
    /// Beside others: a statement of another job failed first, and the server refused every
    /// statement after it until the savepoint is rolled back. It did not fail itself.
    Aborted,
    /// The connection is gone, and the batch's writes with it.
    Broken,
}

/// A write waiting in the lane, its type erased so one queue holds every kind.
pub(crate) trait Job: Send {
    fn room(&self) -> &Arc<Room>;
    /// How it uses the store: a send to given peers ([`Access::Admitted`]) and a write to a
    /// peer's copies ([`Access::Mail`]) may run beside others of their room.
    fn access(&self) -> Access;
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
    access: Access,
    procedure: P,
    out: Option<OpResult<T>>,
    attempts: u32,
    done: oneshot::Sender<StoreResult<T>>,
}

impl<T: Send + 'static, P: Procedure<PgTx, T>> Job for Write<T, P> {
    fn room(&self) -> &Arc<Room> {
        &self.room
    }

    fn access(&self) -> Access {
        self.access
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
                Err(e) if after_a_failure(e) => Ran::Aborted,
                Err(e) if e.is_conflict() && self.attempts + 1 < MAX_ATTEMPTS => {
                    self.attempts += 1;
                    Ran::Again
                }
                Err(OpError::Store(StoreError::Rejected(_))) => Ran::Refused,
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

/// The server's refusal of a statement sent after another failed in the same transaction.
fn after_a_failure(e: &OpError) -> bool {
    matches!(e, OpError::Pg(pg) if pg.code() == Some(&SqlState::IN_FAILED_SQL_TRANSACTION))
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
    let mut b = Batch {
        pg: PgTx::new(tx, batch[0].room().process_key(), true),
        main,
        shown,
        carry: Some(BEGIN),
        begun: false,
        ran: Vec::new(),
        again: Vec::new(),
        wakes: Vec::new(),
        grown: Vec::new(),
    };
    // The sends and mail of each room go side by side, before the rest one by one. Every job
    // of a batch was queued while the others were, none waiting for another's answer, so any
    // order is one they could have run in.
    let (beside, alone): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .partition(|j| matches!(j.access(), Access::Admitted | Access::Mail(_)));
    let mut sides: Vec<Vec<Box<dyn Job>>> = Vec::new();
    for job in beside {
        match sides
            .iter_mut()
            .find(|s| Arc::ptr_eq(s[0].room(), job.room()))
        {
            Some(side) => side.push(job),
            None => sides.push(vec![job]),
        }
    }
    // Each side with whether it is its first try.
    let mut sides: VecDeque<(Vec<Box<dyn Job>>, bool)> =
        sides.into_iter().map(|side| (side, true)).collect();
    let mut one_by_one: Vec<Box<dyn Job>> = Vec::new();
    while let Some((side, first)) = sides.pop_front() {
        if side.len() == 1 {
            one_by_one.extend(side);
            continue;
        }
        match b.run_beside(side, first).await {
            Beside::Done => {}
            Beside::OneByOne(side) => one_by_one.extend(side),
            Beside::Retry {
                beside,
                one_by_one: failed,
            } => {
                one_by_one.extend(failed);
                if !beside.is_empty() {
                    sides.push_front((beside, false));
                }
            }
            Beside::Lost(e, side) => {
                let rest = side
                    .into_iter()
                    .chain(sides.into_iter().flat_map(|(side, _)| side))
                    .chain(one_by_one)
                    .chain(alone);
                abandon(b.ran, rest, &mut b.again, &e);
                return b.again;
            }
        }
    }
    let mut rest = one_by_one.into_iter().chain(alone);
    while let Some(job) = rest.next() {
        if let Err(e) = b.run_one(job).await {
            abandon(b.ran, rest, &mut b.again, &e);
            return b.again;
        }
    }
    b.commit().await
}

/// A batch's transaction while its jobs run: what goes out before the next statement, and what
/// the jobs came to.
struct Batch<'a> {
    pg: PgTx,
    main: &'a Handle,
    shown: &'a str,
    /// What must go out before the next statement: the transaction's opening, then the end of
    /// the last job's savepoint.
    carry: Option<&'static str>,
    /// True once a statement reached the database: there is a transaction to end.
    begun: bool,
    ran: Vec<Box<dyn Job>>,
    again: Vec<Box<dyn Job>>,
    wakes: Vec<(Arc<Room>, Vec<Wake>)>,
    /// The newest rows each room's jobs inserted, for its statistics after the commit.
    grown: Vec<(Arc<Room>, Grown)>,
}

/// What running jobs side by side came to.
enum Beside {
    /// Each is done or refused without having written: they commit with the batch.
    Done,
    /// Their savepoint is rolled back: they are to run one after another.
    OneByOne(Vec<Box<dyn Job>>),
    /// Their savepoint is rolled back after a first try: those that did not fail are to run
    /// side by side again, those that failed one after another (a job that waited too long
    /// for a lock, or lost a race, has been sent on its way).
    Retry {
        beside: Vec<Box<dyn Job>>,
        one_by_one: Vec<Box<dyn Job>>,
    },
    /// The transaction is lost; none of them is answered yet.
    Lost(StoreError, Vec<Box<dyn Job>>),
}

impl Batch<'_> {
    /// The opening of the next savepoint named `name`, with what must precede it.
    fn opening(&self, room: &Room, name: &str) -> String {
        let path = room.search_path();
        match self.carry {
            Some(c) => format!("{c}; {path}; SAVEPOINT {name}"),
            None => format!("{path}; SAVEPOINT {name}"),
        }
    }

    /// Keeps what a job that worked leaves for the commit: its wakes and the rows it inserted.
    fn keep(&mut self, room: &Arc<Room>, grown: Grown, done: Vec<Wake>) {
        if grown != Grown::default() {
            match self.grown.iter_mut().find(|(r, _)| Arc::ptr_eq(r, room)) {
                Some((_, g)) => g.merge(grown),
                None => self.grown.push((Arc::clone(room), grown)),
            }
        }
        match self.wakes.iter_mut().find(|(r, _)| Arc::ptr_eq(r, room)) {
            Some((_, w)) => w.extend(done),
            None => self.wakes.push((Arc::clone(room), done)),
        }
    }

    /// Runs one job in its own savepoint. An error means the transaction is lost: the job has
    /// been answered, the caller gives up the rest.
    async fn run_one(&mut self, mut job: Box<dyn Job>) -> Result<(), StoreError> {
        let room = Arc::clone(job.room());
        self.pg
            .open_next_with(Arc::from(self.opening(&room, "job")));
        self.pg.pending().wakes.clear();
        let outcome = job.run(&mut self.pg).await;
        let grown = self.pg.take_grown();
        // A job that ran no statement opened no savepoint, and what was to precede it still
        // waits.
        let sent = self.pg.opening_sent();
        self.begun |= sent;
        match outcome {
            Ran::Done => {
                let done = std::mem::take(&mut self.pg.pending().wakes);
                self.keep(&room, grown, done);
                if sent {
                    self.carry = Some("RELEASE job");
                }
                self.ran.push(job);
                Ok(())
            }
            Ran::Broken => {
                // The job's own error says how the connection went.
                job.answer(Ok(()));
                Err(lost(self.shown))
            }
            outcome => {
                if sent {
                    self.carry = None;
                    let undo = self.pg.conn().batch_execute("ROLLBACK TO job; RELEASE job");
                    if let Err(e) = undo.await {
                        // The transaction is in a state nothing vouches for: give it up.
                        let e = OpError::Pg(e).into_store(self.shown);
                        job.answer(Err(e.clone()));
                        return Err(e);
                    }
                }
                match outcome {
                    Ran::Again => self.again.push(job),
                    Ran::Aside => {
                        self.main.spawn(job.alone());
                    }
                    _ => self.ran.push(job),
                }
                Ok(())
            }
        }
    }

    /// Runs jobs of one room side by side in one savepoint: every statement goes out as soon
    /// as its job has it, the savepoint's opening first (a request goes out when first polled,
    /// and `join!` polls in order). Each job has its own view of the transaction, where a
    /// send's admission claims its parties; a write to a peer's copies first claims them
    /// (see [`crate::claims`]).
    ///
    /// A job that fails in a way only the savepoint undoes undoes the others too. On a first
    /// try they then run side by side again without it: one write waiting for a row another
    /// replica's batch holds (a send to a peer that replica is writing to, or a hand-over or
    /// read, which counts the peer's queue on its row) would otherwise send a whole side one
    /// by one.
    async fn run_beside(&mut self, mut side: Vec<Box<dyn Job>>, first: bool) -> Beside {
        let room = Arc::clone(side[0].room());
        let opening = self.opening(&room, "side");
        let claims = Arc::new(Claims::default());
        let mut views: Vec<PgTx> = (0..side.len())
            .map(|i| self.pg.beside(&claims, i))
            .collect();
        let runs = side
            .iter_mut()
            .zip(views.iter_mut())
            .enumerate()
            .map(|(i, (job, view))| {
                let claims = &claims;
                async move {
                    if let Access::Mail(peer) = job.access() {
                        // Nothing held yet, so waiting here is the claims' rule.
                        claims.take(i, &[Key::Mail(peer)]).await;
                    }
                    let ran = job.run(view).await;
                    // Done or not, it reads and claims nothing more.
                    claims.release(i);
                    ran
                }
            });
        let (opened, outcomes) = tokio::join!(
            self.pg.conn().batch_execute(&opening),
            futures_util::future::join_all(runs)
        );
        self.begun = true;
        if opened.is_err() || outcomes.iter().any(|r| matches!(r, Ran::Broken)) {
            return Beside::Lost(lost(self.shown), side);
        }
        let clean = outcomes.iter().zip(&views).all(|(ran, view)| match ran {
            Ran::Done => true,
            Ran::Refused => !view.wrote(),
            _ => false,
        });
        if !clean {
            let wrote: Vec<bool> = views.iter().map(PgTx::wrote).collect();
            drop(views);
            self.carry = None;
            let undo = self
                .pg
                .conn()
                .batch_execute("ROLLBACK TO side; RELEASE side");
            if let Err(e) = undo.await {
                return Beside::Lost(OpError::Pg(e).into_store(self.shown), side);
            }
            if !first {
                return Beside::OneByOne(side);
            }
            let (mut beside, mut one_by_one) = (Vec::new(), Vec::new());
            for ((job, ran), wrote) in side.into_iter().zip(outcomes).zip(wrote) {
                match ran {
                    Ran::Done | Ran::Aborted => beside.push(job),
                    Ran::Refused if !wrote => beside.push(job),
                    // As `run_one` sends them: the next batch, or a transaction of its own.
                    Ran::Again => self.again.push(job),
                    Ran::Aside => {
                        self.main.spawn(job.alone());
                    }
                    _ => one_by_one.push(job),
                }
            }
            return Beside::Retry { beside, one_by_one };
        }
        self.carry = Some("RELEASE side");
        for ((job, mut view), ran) in side.into_iter().zip(views).zip(outcomes) {
            if matches!(ran, Ran::Done) {
                let grown = view.take_grown();
                let done = std::mem::take(&mut view.pending().wakes);
                self.keep(&room, grown, done);
            }
            self.ran.push(job);
        }
        Beside::Done
    }

    /// Commits what ran and answers it; returns the jobs to run again.
    async fn commit(self) -> Vec<Box<dyn Job>> {
        let Batch {
            pg,
            main,
            shown,
            carry,
            begun,
            ran,
            again,
            mut wakes,
            grown,
        } = self;
        let tx = match pg.into_parts() {
            Ok((tx, _)) => tx,
            Err(e) => {
                for job in ran {
                    job.answer(Err(e.clone()));
                }
                return again;
            }
        };
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
        // takes Postgres's one lock for the notification queue, which every notifying commit
        // of the cluster holds until its WAL flush is done: behind another replica's commit on
        // a busy disk, the bound (10 ms then) ran out and the whole batch failed `Busy` at
        // its commit.
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
                for (room, g) in grown {
                    room.grew(g);
                }
            }
            Err(_) => tx.rollback().await,
        }
        for job in ran {
            job.answer(commit.clone());
        }
        again
    }
}

/// The error of every job of a batch whose connection closed before the commit.
fn lost(shown: &str) -> StoreError {
    StoreError::Unreachable {
        path: shown.to_owned(),
        detail: "the connection to the database closed before the commit".into(),
    }
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
