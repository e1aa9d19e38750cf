//! The writer thread: every write of this process runs here, batched into one transaction per
//! round (group commit), so many concurrent sends share one fsync under `synchronous=FULL`.
//!
//! A batch first runs every write straight in its transaction. A write that fails is rolled
//! back alone and the rest of the batch still commits: when one fails, the batch's transaction
//! is rolled back and its writes run again, each in a savepoint of its own (writes are
//! procedures a backend may run more than once: they act only through their statements).
//! A savepoint per write on every batch cost SQLite a copy of each page a write touched into
//! the savepoint's journal (~40 pages per message through the relay, a sixth of the writer's
//! instructions), for the rare write that fails. A write that panics is such a failed write:
//! the thread outlives it. Results are handed back only after the commit is durable.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, mpsc};
use std::thread;

use rusqlite::Connection;
use tokio::sync::oneshot;

use switchboard_core::{StoreError, Wake, seam};

use crate::fault::{self, OpResult};
use crate::tx::LiteTx;

/// Most jobs folded into one transaction; bounds the latency a large batch adds to its first job.
const MAX_BATCH: usize = 512;

/// A queued write: run in the writer's transaction (more than once if its batch has to run
/// again), then told how its batch ended.
trait Job: Send {
    /// Runs the write and keeps its result; returns its error if it failed.
    fn run(&mut self, tx: &mut LiteTx) -> Option<StoreError>;
    /// Answers the caller: the write's last result if its batch committed, else why not.
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
}

struct Write<T, F> {
    op: F,
    path: Arc<str>,
    out: Option<Result<T, StoreError>>,
    done: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Write<T, F>
where
    T: Send,
    F: Fn(&mut LiteTx) -> OpResult<T> + Send,
{
    fn run(&mut self, tx: &mut LiteTx) -> Option<StoreError> {
        // A panic counts as this write failing: the pass is rolled back and run again with a
        // savepoint per write, so nothing the write changed survives (which is why asserting
        // unwind safety is sound), and the thread goes on serving every other write.
        let out = match panic::catch_unwind(AssertUnwindSafe(|| (self.op)(tx))) {
            Ok(out) => out.map_err(|e| e.into_store(&self.path)),
            Err(payload) => Err(seam::panicked(payload.as_ref())),
        };
        let failed = out.as_ref().err().cloned();
        self.out = Some(out);
        failed
    }

    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let result = match (commit, self.out) {
            (Ok(()), Some(out)) => out,
            (Err(e), _) => Err(e),
            // Every write of a committed pass has run; this only keeps the type honest.
            (Ok(()), None) => Err(StoreError::Backend(
                "a write was answered without having run".into(),
            )),
        };
        let _ = self.done.send(result);
    }
}

/// Called after every successful commit with the batch's wakes.
pub type OnCommit = Box<dyn Fn(&[Wake]) + Send>;

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Box<dyn Job>>,
    path: Arc<str>,
}

impl Writer {
    pub fn start(mut own: LiteTx, path: String, on_commit: OnCommit) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        let shown: Arc<str> = Arc::from(path.as_str());
        thread::Builder::new()
            .name("switchboard-writer".into())
            .spawn(move || run(&mut own, &path, &rx, &on_commit))?;
        Ok(Self { tx, path: shown })
    }

    /// Queues `op` for the next batch and waits for its durable result. `op` may run more than
    /// once (see the module's comment); only its last run counts.
    pub async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut LiteTx) -> OpResult<T> + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job = Box::new(Write {
            op,
            path: self.path.clone(),
            out: None,
            done,
        });
        self.tx.send(job).map_err(|_| StoreError::Closed)?;
        result.await.map_err(|_| StoreError::Closed)?
    }
}

fn run(own: &mut LiteTx, path: &str, rx: &mpsc::Receiver<Box<dyn Job>>, on_commit: &OnCommit) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(own, path, batch, on_commit);
    }
}

fn run_batch(own: &mut LiteTx, path: &str, mut jobs: Vec<Box<dyn Job>>, on_commit: &OnCommit) {
    // One transaction per pass; a pass ends early only when SQLite threw its transaction away.
    while !jobs.is_empty() {
        let mut wakes = Vec::new();
        let (ran, outcome) = pass(own, path, &mut jobs, &mut wakes);
        if outcome.is_ok() && !wakes.is_empty() {
            on_commit(&wakes);
        }
        for job in jobs.drain(..ran) {
            job.finish(outcome.clone());
        }
    }
}

/// Runs `jobs` (or, when SQLite threw the transaction away, the first few) in one transaction
/// and commits it; returns how many ran and how the pass ended.
fn pass(
    own: &mut LiteTx,
    path: &str,
    jobs: &mut [Box<dyn Job>],
    wakes: &mut Vec<Wake>,
) -> (usize, Result<(), StoreError>) {
    if let Err(e) = exec(&own.conn, "BEGIN IMMEDIATE") {
        return (jobs.len(), Err(fault::classify(&e, path)));
    }
    let mut failed = false;
    for job in jobs.iter_mut() {
        own.pending.wakes.clear();
        if job.run(own).is_some() {
            failed = true;
            break;
        }
        wakes.append(&mut own.pending.wakes);
    }
    let (ran, lost) = if failed {
        // The failed write may have changed rows before it failed: undo the whole pass, and
        // run it again with each write in its own savepoint.
        if !own.conn.is_autocommit() {
            let _ = exec(&own.conn, "ROLLBACK");
        }
        wakes.clear();
        if let Err(e) = exec(&own.conn, "BEGIN IMMEDIATE") {
            return (jobs.len(), Err(fault::classify(&e, path)));
        }
        one_by_one(own, path, jobs, wakes)
    } else {
        (jobs.len(), None)
    };
    let commit = match lost {
        Some(e) => Err(e),
        None => exec(&own.conn, "COMMIT").map_err(|e| {
            let _ = exec(&own.conn, "ROLLBACK");
            fault::classify(&e, path)
        }),
    };
    (ran, commit)
}

/// Runs each job in its own savepoint, so a failed one rolls back alone; returns how many ran,
/// and the error that lost the whole transaction, if one did.
fn one_by_one(
    own: &mut LiteTx,
    path: &str,
    jobs: &mut [Box<dyn Job>],
    wakes: &mut Vec<Wake>,
) -> (usize, Option<StoreError>) {
    for (i, job) in jobs.iter_mut().enumerate() {
        if let Err(e) = exec(&own.conn, "SAVEPOINT job") {
            return (i + 1, Some(fault::classify(&e, path)));
        }
        own.pending.wakes.clear();
        let failed = job.run(own);
        let conn = &own.conn;
        match failed {
            None => {
                let _ = exec(conn, "RELEASE job");
                wakes.append(&mut own.pending.wakes);
            }
            // After some errors (a full disk, an I/O error) SQLite may roll back the whole
            // transaction, not just the failed statement. Then every write of this pass is
            // gone, and the next would run outside any transaction: report them all failed
            // and start the rest in a new transaction.
            Some(e) if conn.is_autocommit() => return (i + 1, Some(e)),
            Some(_) => {
                let _ = exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"));
            }
        }
    }
    (jobs.len(), None)
}

/// Runs a transaction-control statement from the statement cache: these run several times per
/// write, and parsing them afresh each time showed up in profiles.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::future::Future;
    use std::pin::pin;
    use std::sync::{Arc, Mutex, mpsc};
    use std::task::{Context, Waker};

    use switchboard_core::{Rejection, StoreError, Wake};

    use super::Writer;
    use crate::fault::OpResult;
    use crate::liveness::Liveness;
    use crate::tx::LiteTx;

    fn insert(tx: &mut LiteTx, x: &str) -> OpResult<()> {
        tx.conn.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
        Ok(())
    }

    /// Polls a write once, which queues it, so the writes queued in a row share a batch.
    fn queue<F: Future>(f: std::pin::Pin<&mut F>) {
        let polled = f.poll(&mut Context::from_waker(Waker::noop()));
        assert!(polled.is_pending(), "a write waits for its batch's commit");
    }

    /// Writes run straight in the batch's transaction, without a savepoint each; one that
    /// changed rows and then failed must still leave no trace, and the rest of its batch
    /// must commit with their own results and wakes.
    #[tokio::test]
    async fn a_failed_write_rolls_back_alone_and_the_rest_of_its_batch_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = crate::connect(&path, false).unwrap();
        conn.execute_batch("CREATE TABLE t (x TEXT NOT NULL)")
            .unwrap();
        let live = Arc::new(Liveness::new(dir.path().join("procs")));
        let committed = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&committed);
        let writer = Writer::start(
            LiteTx::new(conn, live, true),
            "w.db".into(),
            Box::new(move |w: &[Wake]| seen.lock().unwrap().extend_from_slice(w)),
        )
        .unwrap();

        // The first write holds the writer until the three after it are queued.
        let (go, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let mut held = pin!(writer.write(move |_| {
            let _ = gate.lock().unwrap().recv();
            Ok(())
        }));
        queue(held.as_mut());
        let mut a = pin!(writer.write(|tx| {
            tx.pending.wakes.push(Wake::Inbox(1.into()));
            insert(tx, "a")
        }));
        let mut b = pin!(writer.write(|tx| -> OpResult<()> {
            insert(tx, "b")?;
            tx.pending.wakes.push(Wake::Inbox(2.into()));
            Err(Rejection::UnknownMessage { id: 7.into() }.into())
        }));
        let mut c = pin!(writer.write(|tx| {
            tx.pending.wakes.push(Wake::Inbox(3.into()));
            insert(tx, "c")?;
            tx.conn
                .query_row("SELECT group_concat(x) FROM t", [], |r| {
                    r.get::<_, String>(0)
                })
                .map_err(Into::into)
        }));
        queue(a.as_mut());
        queue(b.as_mut());
        queue(c.as_mut());
        go.send(()).unwrap();
        drop(go);

        held.await.unwrap();
        a.await.unwrap();
        assert!(matches!(
            b.await,
            Err(StoreError::Rejected(Rejection::UnknownMessage { .. }))
        ));
        assert_eq!(c.await.unwrap(), "a,c", "c saw a's row and not b's");
        let rows: String = writer
            .write(|tx| {
                tx.conn
                    .query_row("SELECT group_concat(x) FROM t", [], |r| r.get(0))
                    .map_err(Into::into)
            })
            .await
            .unwrap();
        assert_eq!(rows, "a,c");
        let wakes = committed.lock().unwrap().clone();
        assert_eq!(wakes, [Wake::Inbox(1.into()), Wake::Inbox(3.into())]);
    }
}
