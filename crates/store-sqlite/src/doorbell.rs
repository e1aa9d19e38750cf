//! Cross-process wake-ups for processes sharing one store file.
//!
//! Every process that waits on the store binds a Unix datagram socket in `bells/`. After each
//! commit the writer sends one small datagram — the encoded [`Wake`]s — to every socket there
//! but its own. A datagram costs microseconds and needs no daemon; sockets of dead processes
//! refuse the datagram and are removed by the first writer that notices.
//!
//! The writer rings after every commit, on the path every durable answer waits for, so it keeps
//! the directory's listing and reads it again only when the directory changed (see
//! [`Listing`]). Listing it on every commit was 3 % of the writer thread's time under the relay
//! bench (`opendir`, its 32 KiB buffer, and the allocator's consolidation that buffer set off).
//!
//! Where Unix sockets are unavailable (Windows, or a path too long for `sockaddr_un`), the
//! store falls back to polling SQLite's `data_version` (see `poller`).

use std::path::PathBuf;
#[cfg(unix)]
use std::sync::{Mutex, OnceLock};
#[cfg(unix)]
use std::time::{Duration, SystemTime};

use switchboard_core::Wake;
use tokio::sync::broadcast;

pub struct Doorbell {
    dir: PathBuf,
    #[cfg(unix)]
    own: OnceLock<PathBuf>,
    #[cfg(unix)]
    sender: Option<std::os::unix::net::UnixDatagram>,
    #[cfg(unix)]
    listing: Mutex<Listing>,
}

/// The bells found at the last reading of the directory, and when that was.
///
/// A directory's modification time moves when a bell is bound or removed there, but only by
/// the kernel's coarse clock: a bell bound in the same tick as an earlier change leaves the
/// time where it was. So a listing is trusted only while the directory's time is the one it was
/// read with and it was read [`SETTLED`] or more after that time (git's rule for racy index
/// entries); within that window every ring reads the directory again.
#[cfg(unix)]
#[derive(Default)]
struct Listing {
    changed: Option<SystemTime>,
    read_at: Option<SystemTime>,
    bells: Vec<PathBuf>,
}

/// How long after a directory's change its time can still be the same as a later change's:
/// far above the kernel's tick (1–10 ms), so no clock's coarseness can hide a new bell.
#[cfg(unix)]
const SETTLED: Duration = Duration::from_secs(1);

#[cfg(unix)]
impl Listing {
    /// Whether the listing still says which bells `changed` (the directory's time now) holds.
    fn current(&self, changed: SystemTime) -> bool {
        self.changed == Some(changed)
            && self
                .read_at
                .is_some_and(|at| at.duration_since(changed).is_ok_and(|d| d >= SETTLED))
    }
}

impl Doorbell {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            #[cfg(unix)]
            own: OnceLock::new(),
            #[cfg(unix)]
            sender: std::os::unix::net::UnixDatagram::unbound()
                .and_then(|s| s.set_nonblocking(true).map(|()| s))
                .ok(),
            #[cfg(unix)]
            listing: Mutex::new(Listing::default()),
        }
    }

    /// Rings every other listener. Never blocks: a listener whose queue is full already has a
    /// wake pending, which is all a wake means.
    #[cfg(unix)]
    pub fn ring(&self, wakes: &[Wake]) {
        use std::io::ErrorKind;
        let Some(sender) = &self.sender else { return };
        let mut listing = self
            .listing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !self.refresh(&mut listing) {
            return;
        }
        let payload = Wake::encode(wakes);
        let own = self.own.get();
        let mut gone = false;
        for path in &listing.bells {
            if Some(path) == own {
                continue;
            }
            match sender.send_to(payload.as_bytes(), path) {
                Ok(_) => {}
                Err(e)
                    if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::NotFound) =>
                {
                    let _ = std::fs::remove_file(path);
                    gone = true;
                }
                Err(_) => {}
            }
        }
        if gone {
            // The removal moved the directory's time; the next ring reads it again.
            listing.changed = None;
        }
    }

    /// Brings `listing` up to date with the directory, reading it only when it may have
    /// changed; false when the directory cannot be read (no bells to ring).
    #[cfg(unix)]
    fn refresh(&self, listing: &mut Listing) -> bool {
        let Ok(changed) = std::fs::metadata(&self.dir).and_then(|m| m.modified()) else {
            return false;
        };
        if listing.current(changed) {
            return true;
        }
        // Taken before the reading, so a bell bound while it runs counts as after it.
        let read_at = SystemTime::now();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return false;
        };
        listing.bells = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "sock"))
            .collect();
        listing.changed = Some(changed);
        listing.read_at = Some(read_at);
        true
    }

    #[cfg(not(unix))]
    pub fn ring(&self, _wakes: &[Wake]) {}

    /// Binds this process's bell and forwards what it hears to `tx` until the returned task is
    /// aborted. Fails when no socket can be bound here; the caller then polls instead.
    #[cfg(unix)]
    pub fn listen(
        &self,
        tx: broadcast::Sender<Wake>,
    ) -> std::io::Result<tokio::task::JoinHandle<()>> {
        crate::home::ensure_private_dir(&self.dir)?;
        let path = self
            .dir
            .join(format!("{}-{:x}.sock", std::process::id(), rand_suffix()));
        let socket = tokio::net::UnixDatagram::bind(&path)?;
        let _ = self.own.set(path);
        Ok(tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf).await {
                for wake in Wake::decode(&buf[..n]) {
                    let _ = tx.send(wake);
                }
            }
        }))
    }

    #[cfg(not(unix))]
    pub fn listen(
        &self,
        _tx: broadcast::Sender<Wake>,
    ) -> std::io::Result<tokio::task::JoinHandle<()>> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "doorbell sockets need Unix",
        ))
    }
}

#[cfg(unix)]
fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

impl Drop for Doorbell {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(own) = self.own.get() {
            let _ = std::fs::remove_file(own);
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;

    use switchboard_core::Wake;

    use super::Doorbell;

    /// A bell listening at `path`, with a short timeout so a missed ring fails the test.
    fn bell(path: &std::path::Path) -> UnixDatagram {
        let socket = UnixDatagram::bind(path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        socket
    }

    fn hears(socket: &UnixDatagram) -> Vec<Wake> {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).unwrap();
        Wake::decode(&buf[..n])
    }

    /// The listing is kept between rings; a bell bound right after one (within the coarse
    /// clock's tick, so the directory's time may not move) must still hear the next, and a
    /// bell that went away is dropped without failing the others.
    #[test]
    fn a_bell_bound_right_after_a_ring_hears_the_next_one_regression() {
        let dir = tempfile::tempdir().unwrap();
        let door = Doorbell::new(dir.path().to_path_buf());
        let first = bell(&dir.path().join("1-a.sock"));
        door.ring(&[Wake::Inbox(1.into())]);
        assert_eq!(hears(&first), [Wake::Inbox(1.into())]);

        // As a coarse clock leaves it: the directory's time where the first bell put it.
        let before = std::fs::metadata(dir.path()).unwrap().modified().unwrap();
        let second = bell(&dir.path().join("2-b.sock"));
        std::fs::File::open(dir.path())
            .unwrap()
            .set_modified(before)
            .unwrap();
        door.ring(&[Wake::Inbox(2.into())]);
        assert_eq!(hears(&first), [Wake::Inbox(2.into())]);
        assert_eq!(hears(&second), [Wake::Inbox(2.into())]);

        drop(first);
        door.ring(&[Wake::Inbox(3.into())]);
        assert_eq!(hears(&second), [Wake::Inbox(3.into())]);
        assert!(
            !dir.path().join("1-a.sock").exists(),
            "a dead bell is removed"
        );
        let third = bell(&dir.path().join("3-c.sock"));
        door.ring(&[Wake::Inbox(4.into())]);
        assert_eq!(hears(&second), [Wake::Inbox(4.into())]);
        assert_eq!(hears(&third), [Wake::Inbox(4.into())]);
    }

    /// Once the directory has settled the listing is trusted, and a later bell still moves
    /// the directory's time past it.
    #[test]
    fn a_settled_listing_is_kept_until_the_directory_changes() {
        let dir = tempfile::tempdir().unwrap();
        let door = Doorbell::new(dir.path().to_path_buf());
        let first = bell(&dir.path().join("1-a.sock"));
        let changed = std::fs::metadata(dir.path()).unwrap().modified().unwrap();
        {
            let mut listing = door.listing.lock().unwrap();
            assert!(door.refresh(&mut listing));
            // As if read long after the directory's last change.
            listing.read_at = Some(changed + super::SETTLED);
            assert!(listing.current(changed));
        }
        door.ring(&[Wake::Inbox(1.into())]);
        assert_eq!(hears(&first), [Wake::Inbox(1.into())]);
        let now = std::fs::metadata(dir.path()).unwrap().modified().unwrap();
        assert!(
            door.listing.lock().unwrap().current(now),
            "no reading while unchanged"
        );
    }
}
