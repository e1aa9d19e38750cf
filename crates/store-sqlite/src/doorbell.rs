//! Cross-process wake-ups for processes sharing one store file.
//!
//! Every process that waits on the store binds a Unix datagram socket in `bells/`. After each
//! commit the writer sends one small datagram — the encoded [`Wake`]s — to every socket there
//! but its own. A datagram costs microseconds and needs no daemon; sockets of dead processes
//! refuse the datagram and are removed by the first writer that notices.
//!
//! Where Unix sockets are unavailable (Windows, or a path too long for `sockaddr_un`), the
//! store falls back to polling SQLite's `data_version` (see `poller`).

use std::path::PathBuf;
#[cfg(unix)]
use std::sync::OnceLock;

use switchboard_core::Wake;
use tokio::sync::broadcast;

pub struct Doorbell {
    dir: PathBuf,
    #[cfg(unix)]
    own: OnceLock<PathBuf>,
    #[cfg(unix)]
    sender: Option<std::os::unix::net::UnixDatagram>,
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
        }
    }

    /// Rings every other listener. Never blocks: a listener whose queue is full already has a
    /// wake pending, which is all a wake means.
    #[cfg(unix)]
    pub fn ring(&self, wakes: &[Wake]) {
        use std::io::ErrorKind;
        let Some(sender) = &self.sender else { return };
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let payload = Wake::encode(wakes);
        let own = self.own.get();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "sock") || Some(&path) == own {
                continue;
            }
            match sender.send_to(payload.as_bytes(), &path) {
                Ok(_) => {}
                Err(e)
                    if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::NotFound) =>
                {
                    let _ = std::fs::remove_file(&path);
                }
                Err(_) => {}
            }
        }
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
