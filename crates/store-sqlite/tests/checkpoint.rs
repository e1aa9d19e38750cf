//! Checkpoints run beside the writer (`src/checkpoint.rs`): under a steady stream of commits
//! the thread copies the WAL while the writer goes on, and the log still starts over, so the
//! file stays bounded and every message is still there.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::{Exchange, Limits, Mailbox, Outgoing};
use switchboard_store_sqlite::{DB_FILE, SqliteStore};

const SENDERS: usize = 8;
const PER_SENDER: usize = 80;
/// Near the largest message there is, so the log passes the checkpoint marks quickly.
const TEXT: usize = 60 * 1024;

/// The names of this process's threads.
fn threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .map(|name| name.trim().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_stream_of_commits_is_checkpointed_beside_the_writer_and_the_wal_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let limits = Limits {
        rate_limit: 1_000_000,
        rate_window: Duration::from_secs(1),
        pending_cap: 1_000_000,
        ..Limits::default()
    };
    let mailbox = Mailbox::new(store, limits);
    mailbox.operator("reader").await.unwrap();
    let mut tasks = Vec::new();
    for s in 0..SENDERS {
        let mailbox = mailbox.clone();
        tasks.push(tokio::spawn(async move {
            let from = mailbox.operator(&format!("writer-{s}")).await.unwrap();
            for n in 0..PER_SENDER {
                let text = format!("{s}/{n} {}", "x".repeat(TEXT));
                mailbox
                    .send(from.id, Outgoing::to_peer("reader", text))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    // ~38 MB went through the log: the checkpoint thread was asked to copy it.
    if cfg!(target_os = "linux") {
        assert!(
            // Thread names are cut to 15 bytes: "switchboard-checkpoint" shows as this.
            threads().iter().any(|t| t == "switchboard-che"),
            "no checkpoint thread among {:?}",
            threads()
        );
    }
    // The log restarted instead of holding everything: 4,000 pages and the commits in flight
    // when it passed them, far below the ~9,500 pages written.
    let wal = std::fs::metadata(dir.path().join(format!("{DB_FILE}-wal")))
        .unwrap()
        .len();
    assert!(wal < 24 * 1024 * 1024, "the WAL grew to {wal} bytes");
    let stats = mailbox.stats().await.unwrap();
    assert_eq!(stats.messages, (SENDERS * PER_SENDER) as u64);
    assert_eq!(stats.queued, (SENDERS * PER_SENDER) as u64);
}
