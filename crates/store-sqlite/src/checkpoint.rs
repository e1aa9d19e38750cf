//! Checkpoints beside the writer, not in it.
//!
//! SQLite's default checkpoints the WAL inside the commit that pushed it past 1,000 pages: the
//! writer thread then copies those pages into the database file and waits for its `fsync`
//! while every write queued behind it waits too (7.5 % of the writer's time under the relay
//! bench, and its longest stalls). Here the writer's commit only asks a checkpoint thread of
//! this process to run a passive checkpoint on its own connection, which copies committed
//! frames while the writer goes on committing.
//!
//! A passive checkpoint never blocks the writer, but neither can it restart the log: SQLite
//! reuses the WAL from its start only when a write begins with every frame already copied, and
//! under a steady stream of commits the checkpoint thread is always a few frames behind. So
//! once the WAL is [`RESTART_PAGES`] long the writer checkpoints itself, which copies only the
//! frames since the thread's last pass, and the next write starts the log over: the file stays
//! bounded and the writer does a fraction of the copying it did.
//!
//! The thread starts on the first request, so a process that never writes 4 MB (most agent
//! sessions) never has it. A failed checkpoint (another process's checkpoint holding the lock,
//! say) changes nothing committed and is tried again on the next request.

use std::path::PathBuf;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread;

use rusqlite::Connection;
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;

/// The WAL length (in pages) at which the checkpoint thread is asked to copy it: SQLite's own
/// default for its automatic checkpoint.
const CHECKPOINT_PAGES: i32 = 1000;

/// The WAL length at which the writer checkpoints itself, so the log restarts.
const RESTART_PAGES: i32 = 4 * CHECKPOINT_PAGES;

/// Makes `conn`'s commits hand their checkpoints to a thread of this process; `path` is the
/// database file that thread opens.
pub fn install(conn: &mut Connection, path: PathBuf) -> rusqlite::Result<()> {
    let mut beside = Beside { path, thread: None };
    // The WAL length at the last request: the thread is asked once per CHECKPOINT_PAGES of
    // new log, not after every commit past the mark (each pass ends in an `fsync`).
    let mut asked = 0;
    conn.wal_hook(Some(move |wal: &mut Wal, pages: i32| {
        // Whatever happens here, the commit that called it has happened: an error returned
        // would make SQLite report that commit as failed, and its caller would send again.
        if pages < asked {
            asked = 0; // the log started over
        }
        if pages >= RESTART_PAGES {
            if let Err(e) = wal.checkpoint_v2(CheckpointMode::PASSIVE) {
                tracing::debug!("the writer's own checkpoint did not run: {e}");
            }
        } else if pages >= asked + CHECKPOINT_PAGES {
            asked = pages;
            beside.request();
        }
        Ok(())
    }))
}

/// The checkpoint thread, started on the first request. Only the writer's WAL hook holds it,
/// so it needs no lock.
struct Beside {
    path: PathBuf,
    /// One pending request at most: a thread that is asked while it runs simply runs again.
    thread: Option<SyncSender<()>>,
}

impl Beside {
    fn request(&mut self) {
        if let Some(tx) = self.thread.as_ref() {
            match tx.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => return,
                // The thread ended (it could not open the file): start another.
                Err(TrySendError::Disconnected(())) => {}
            }
        }
        let (tx, rx) = mpsc::sync_channel::<()>(1);
        let path = self.path.clone();
        let started = thread::Builder::new()
            .name("switchboard-checkpoint".into())
            .spawn(move || run(&path, &rx));
        match started {
            Ok(_) => {
                let _ = tx.try_send(());
                self.thread = Some(tx);
            }
            // Without a thread the WAL still gets copied: the writer does it at RESTART_PAGES.
            Err(e) => tracing::debug!("no checkpoint thread: {e}"),
        }
    }
}

/// Runs a passive checkpoint per request until the writer's connection (holding the sender)
/// is closed.
fn run(path: &std::path::Path, requests: &mpsc::Receiver<()>) {
    let conn = match crate::connect(path, false) {
        Ok(conn) => conn,
        Err(e) => {
            tracing::debug!("the checkpoint thread cannot open {}: {e}", path.display());
            return;
        }
    };
    while requests.recv().is_ok() {
        if let Err(e) = conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
            tracing::debug!("checkpoint did not run: {e}");
        }
    }
}
