//! Process liveness for local mode, without heartbeats.
//!
//! A process that opens sessions holds an exclusive lock on `procs/<key>.lock` for as long as it
//! lives. The kernel drops the lock when the process ends, however it ends (exit, SIGKILL, a
//! crash), so any other process can tell a dead session from a live one at once by trying the
//! lock. That is what makes a killed agent go offline within a moment and frees its name and
//! its leases for its next session.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

pub struct Liveness {
    dir: PathBuf,
    key: String,
    held: OnceLock<File>,
}

impl Liveness {
    pub fn new(dir: PathBuf) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Self {
            dir,
            key: format!("{}-{nanos:x}", std::process::id()),
            held: OnceLock::new(),
        }
    }

    /// This process's key, as stored with its sessions.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Takes this process's lock, once. The file is locked under a temporary name and renamed
    /// into place, so no other process ever sees it unlocked and declares us dead.
    pub fn claim(&self) -> io::Result<()> {
        if self.held.get().is_some() {
            return Ok(());
        }
        crate::home::ensure_private_dir(&self.dir)?;
        let tmp = self.dir.join(format!("{}.tmp", self.key));
        let file = private_file(&tmp)?;
        file.lock()?;
        fs::rename(&tmp, self.lock_path(&self.key))?;
        // Another thread may have raced us here; the loser's file is simply dropped.
        let _ = self.held.set(file);
        Ok(())
    }

    /// False only when the owner of `key` has certainly ended.
    pub fn is_alive(&self, key: &str) -> bool {
        if key == self.key {
            return self.held.get().is_some();
        }
        let path = self.lock_path(key);
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return false,
            Err(e) => {
                tracing::warn!("cannot check liveness of {}: {e}", path.display());
                return true;
            }
        };
        match file.try_lock() {
            Ok(()) => {
                // We hold the dead owner's lock now; nobody else needs the file.
                let _ = fs::remove_file(&path);
                false
            }
            Err(TryLockError::WouldBlock) => true,
            Err(TryLockError::Error(e)) => {
                tracing::warn!("cannot check liveness of {}: {e}", path.display());
                true
            }
        }
    }

    fn lock_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.lock"))
    }
}

impl Drop for Liveness {
    fn drop(&mut self) {
        if self.held.get().is_some() {
            let _ = fs::remove_file(self.lock_path(&self.key));
        }
    }
}

fn private_file(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
}
