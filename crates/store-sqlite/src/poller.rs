//! The fallback wake-up source where doorbell sockets cannot be used: a thread that polls
//! SQLite's `data_version`, which changes whenever another connection commits.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use switchboard_core::Wake;
use tokio::sync::broadcast;

const INTERVAL: Duration = Duration::from_millis(50);

pub struct Poller {
    stop: Arc<AtomicBool>,
}

impl Poller {
    pub fn start(path: PathBuf, tx: broadcast::Sender<Wake>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let spawned = std::thread::Builder::new()
            .name("switchboard-poller".into())
            .spawn(move || poll(&path, &tx, &flag));
        if let Err(e) = spawned {
            tracing::warn!("cannot start the store poller: {e}; waits rely on their timeouts");
        }
        Self { stop }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn poll(path: &std::path::Path, tx: &broadcast::Sender<Wake>, stop: &AtomicBool) {
    let Ok(conn) = crate::connect(path, true) else {
        return;
    };
    let version = |c: &rusqlite::Connection| -> Option<i64> {
        c.query_row("PRAGMA data_version", [], |r| r.get(0)).ok()
    };
    let mut last = version(&conn);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(INTERVAL);
        let now = version(&conn);
        if now != last {
            last = now;
            let _ = tx.send(Wake::Room);
        }
    }
}
