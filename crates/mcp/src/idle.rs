//! The meeting point of a Claude Code session's MCP server and its hooks, which are separate
//! processes spawned by the same client.
//!
//! Every stdio server leaves a *session mark*, a file named after its client's process id,
//! for as long as it runs; a hook finds it among its own ancestors. It tells the hook two
//! things:
//!
//! - a server of this very session exists, so the hook waits for it to register rather than
//!   guessing the peer from the directory (and making the name look taken);
//! - whether the server pushes by channel. Claude Code drops channel events silently when its
//!   channel gate says no (an API-key login, an organisation policy, a feature flag), and a
//!   server cannot tell. The async waiting hook (`asyncRewake`) wakes an idle session whatever
//!   the gate says, so while a session is idle the hook, not the channel, hands its mail over:
//!   the hook holds an exclusive lock on the mark for as long as it waits, and the server's
//!   channel push stands down while the mark is locked. Mid-turn (no hook waiting) the channel
//!   pushes as before.
//!
//! The lock is the operating system's advisory file lock, so a hook killed in any way releases
//! it at once, and the server never waits on it.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The server's side: the mark exists while the session does.
#[derive(Debug)]
pub struct IdleMark {
    path: PathBuf,
}

/// What a pushing session's mark holds.
const PUSHES: &str = "push";

impl IdleMark {
    /// Creates the mark of the session whose client is `client_pid`, under `dir`.
    pub fn create(dir: &Path, client_pid: u32, pushes: bool) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        sweep(dir);
        let path = mark_path(dir, client_pid);
        write_mark(&path, pushes)?;
        Ok(Self { path })
    }

    /// Records whether the session pushes by channel, once `initialize` has decided it.
    pub fn set_pushes(&self, pushes: bool) -> std::io::Result<()> {
        write_mark(&self.path, pushes)
    }

    /// Whether an idle session's `Stop` hook holds the mark now.
    pub fn hook_waiting(&self) -> bool {
        let Ok(file) = open(&self.path) else {
            return false;
        };
        // Taking the lock ourselves would make a hook that starts this instant miss it; a
        // shared probe only conflicts with the hook's exclusive hold, and the hook retries.
        match file.try_lock_shared() {
            Ok(()) => false,
            Err(TryLockError::WouldBlock) => true,
            Err(TryLockError::Error(e)) => {
                tracing::debug!("cannot probe the idle mark: {e}");
                false
            }
        }
    }
}

impl Drop for IdleMark {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The hook's side: the session is idle while this is held.
#[derive(Debug)]
pub struct IdleHold {
    _file: File,
}

/// How long the hook tries to take the mark while a server's probe holds it for an instant.
const TAKE_FOR: Duration = Duration::from_millis(200);

/// A session mark a hook found: its own session's server.
#[derive(Debug, Clone)]
pub struct Found {
    path: PathBuf,
    /// The server pushes by channel.
    pub pushes: bool,
}

/// The mark of the nearest of `pids` that has one: the hook's own session's server. `None`
/// when the session runs over HTTP, or no server of this client runs.
pub fn find(dir: &Path, pids: &[u32]) -> Option<Found> {
    pids.iter()
        .map(|&pid| mark_path(dir, pid))
        .find_map(|path| {
            let content = std::fs::read_to_string(&path).ok()?;
            Some(Found {
                pushes: content.trim() == PUSHES,
                path,
            })
        })
}

impl Found {
    /// Marks the session idle until the hold is dropped. `None` when another hook of the
    /// session already holds it.
    pub fn hold(&self) -> Option<IdleHold> {
        let file = open(&self.path).ok()?;
        let until = Instant::now() + TAKE_FOR;
        loop {
            match file.try_lock() {
                Ok(()) => return Some(IdleHold { _file: file }),
                Err(TryLockError::WouldBlock) if Instant::now() < until => {
                    // A server's probe holds a shared lock for microseconds; another hook holds
                    // it for minutes. Short, bounded retries tell the two apart.
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return None,
            }
        }
    }
}

/// Removes the marks of clients that are gone: a server killed outright leaves its mark
/// behind. Only where a process's liveness can be read cheaply (Linux's `/proc`).
fn sweep(dir: &Path) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("claude-"))
            .and_then(|n| n.strip_suffix(".idle"));
        if let Some(pid) = pid
            && pid.parse::<u32>().is_ok()
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn mark_path(dir: &Path, client_pid: u32) -> PathBuf {
    dir.join(format!("claude-{client_pid}.idle"))
}

/// Writes what a mark says in place. Never truncated first (as `fs::write` does): a hook that
/// reads the mark meanwhile must see the old content or the new, never an empty file. An empty
/// mark says "this server does not push", and a waiter that believed it of a pushing server
/// held no lock, so the server pushed by channel mail the client then dropped, and the waiter,
/// finding it handed over, never woke the session. A mark is not replaced by a renamed file
/// either: a waiting hook's lock is on the file it opened.
fn write_mark(path: &Path, pushes: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = open(path)?;
    let content = if pushes { PUSHES } else { "" };
    // Over an empty mark this write makes it "push" at once; over "push" it changes nothing.
    file.write_all(content.as_bytes())?;
    // Over "push" this empties it at once; otherwise there is nothing past the content.
    file.set_len(content.len() as u64)
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_sees_a_waiting_hook_and_its_end() {
        let dir = std::env::temp_dir().join(format!("sb-idle-{}", std::process::id()));
        let mark = IdleMark::create(&dir, 4242, true).unwrap();
        assert!(!mark.hook_waiting());
        let found = find(&dir, &[17, 4242]).expect("the mark of an ancestor is found");
        assert!(found.pushes);
        let held = found.hold().expect("a free mark is taken");
        assert!(mark.hook_waiting());
        // A second hook of the same session does not take it from the first.
        assert!(found.hold().is_none());
        drop(held);
        assert!(!mark.hook_waiting());
        drop(mark);
        assert!(
            find(&dir, &[4242]).is_none(),
            "no mark once the session ended"
        );
        let quiet = IdleMark::create(&dir, 4243, false).unwrap();
        assert!(!find(&dir, &[4243]).unwrap().pushes);
        drop(quiet);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The flaky real-client failure: a waiter read the mark of a pushing server while
    /// `initialize` rewrote it (`fs::write` truncates, then writes), took it for a server that
    /// does not push, and so held no lock; the server pushed the mail by channel, the offline
    /// client dropped it, and the idle session was never woken. Rewriting a mark with the value
    /// it has must never show a reader anything else.
    #[test]
    fn a_mark_rewritten_while_a_hook_reads_it_never_reads_as_not_pushing_regression() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = std::env::temp_dir().join(format!("sb-idle-rw-{}", std::process::id()));
        let mark = IdleMark::create(&dir, 4244, true).unwrap();
        let done = AtomicBool::new(false);
        let misread = std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut misread = 0;
                while !done.load(Ordering::Relaxed) {
                    if !find(&dir, &[4244]).expect("the mark is there").pushes {
                        misread += 1;
                    }
                }
                misread
            });
            for _ in 0..20_000 {
                mark.set_pushes(true).unwrap();
            }
            done.store(true, Ordering::Relaxed);
            reader.join().unwrap()
        });
        assert_eq!(misread, 0, "reads that found a pushing server's mark empty");
        drop(mark);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
