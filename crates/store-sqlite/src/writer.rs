//! The writer thread: every write of this process runs here, batched into one transaction per
//! round (group commit), so many concurrent sends share one fsync under `synchronous=FULL`.
//!
//! Each job runs inside its own savepoint: a job that fails is rolled back alone and the rest
//! of the batch still commits. Results are handed back only after the commit is durable.

use std::sync::{Arc, mpsc};
use std::thread;

use rusqlite::Connection;
use tokio::sync::oneshot;

use switchboard_core::{StoreError, Wake};

use crate::fault::{self, OpResult};
use crate::tx::LiteTx;

/// Most jobs folded into one transaction; bounds the latency a large batch adds to its first job.
const MAX_BATCH: usize = 512;

/// Runs after the batch commits (or fails to), with the commit's outcome.
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A write. Given the writer's transaction it runs, records its wakes there, and returns its
/// error if it failed; given an error (its batch could not start) it only reports that error.
type Job =
    Box<dyn FnOnce(Result<&mut LiteTx, StoreError>) -> (Option<StoreError>, Completion) + Send>;

/// Called after every successful commit with the batch's wakes.
pub type OnCommit = Box<dyn Fn(&[Wake]) + Send>;

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    path: Arc<str>,
}

impl Writer {
    pub fn start(mut own: LiteTx, path: String, on_commit: OnCommit) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let shown: Arc<str> = Arc::from(path.as_str());
        thread::Builder::new()
            .name("switchboard-writer".into())
            .spawn(move || run(&mut own, &path, &rx, &on_commit))?;
        Ok(Self { tx, path: shown })
    }

    /// Queues `op` for the next batch and waits for its durable result.
    pub async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut LiteTx) -> OpResult<T> + Send + 'static,
    {
        let path = self.path.clone();
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |slot| {
            let out = match slot {
                Ok(tx) => op(tx).map_err(|e| e.into_store(&path)),
                Err(e) => Err(e),
            };
            let failed = out.as_ref().err().cloned();
            let completion: Completion = Box::new(move |commit| {
                let _ = done.send(commit.and(out));
            });
            (failed, completion)
        });
        self.tx.send(job).map_err(|_| StoreError::Closed)?;
        result.await.map_err(|_| StoreError::Closed)?
    }
}

fn run(own: &mut LiteTx, path: &str, rx: &mpsc::Receiver<Job>, on_commit: &OnCommit) {
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

fn run_batch(own: &mut LiteTx, path: &str, batch: Vec<Job>, on_commit: &OnCommit) {
    let mut jobs = batch.into_iter().peekable();
    // One transaction per pass; a pass ends early only when SQLite threw its transaction away.
    while jobs.peek().is_some() {
        if let Err(e) = exec(&own.conn, "BEGIN IMMEDIATE") {
            let e = fault::classify(&e, path);
            for job in jobs {
                let (_, completion) = job(Err(e.clone()));
                completion(Ok(()));
            }
            return;
        }
        let mut wakes = Vec::new();
        let mut completions = Vec::new();
        let mut lost = None;
        for job in jobs.by_ref() {
            let (failed, completion) = run_in_savepoint(job, own, path, &mut wakes);
            completions.push(completion);
            // After some errors (a full disk, an I/O error) SQLite may roll back the whole
            // transaction, not just the failed statement. Then every write of this pass is
            // gone, and the next would run outside any transaction: report them all failed
            // and start the rest in a new transaction.
            if let Some(e) = failed
                && own.conn.is_autocommit()
            {
                lost = Some(e);
                break;
            }
        }
        let commit = match lost {
            Some(e) => Err(e),
            None => exec(&own.conn, "COMMIT").map_err(|e| {
                let _ = exec(&own.conn, "ROLLBACK");
                fault::classify(&e, path)
            }),
        };
        if commit.is_ok() && !wakes.is_empty() {
            on_commit(&wakes);
        }
        for completion in completions {
            completion(match &commit {
                Ok(()) => Ok(()),
                Err(e) => Err(e.clone()),
            });
        }
    }
}

/// Runs one job in its own savepoint; returns its error (if it failed) and its completion.
fn run_in_savepoint(
    job: Job,
    own: &mut LiteTx,
    path: &str,
    wakes: &mut Vec<Wake>,
) -> (Option<StoreError>, Completion) {
    if let Err(e) = exec(&own.conn, "SAVEPOINT job") {
        let e = fault::classify(&e, path);
        let (_, completion) = job(Err(e.clone()));
        return (Some(e), completion);
    }
    own.pending.wakes.clear();
    let (failed, completion) = job(Ok(own));
    let conn = &own.conn;
    if failed.is_none() {
        let _ = exec(conn, "RELEASE job");
        wakes.append(&mut own.pending.wakes);
    } else if !conn.is_autocommit() {
        let _ = exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"));
    }
    (failed, completion)
}

/// Runs a transaction-control statement from the statement cache: these run several times per
/// write, and parsing them afresh each time showed up in profiles.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}
