//! Whether an HTTP client is there to be written to. Over Streamable HTTP a server's
//! notification reaches the client only through the session's open `GET` stream; rmcp accepts
//! (and caches) a notification with no stream attached, so "sent" there says nothing about a
//! client. The relay counts the streams it serves for a session in a [`Presence`] and puts it
//! in the request extensions; the session pushes only while a stream is attached, so a message
//! is `delivered` only when it was written to a live client, and waits queued otherwise.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;

/// Shared by the relay (which attaches streams) and the session (which asks before pushing).
#[derive(Clone, Debug)]
pub struct Presence(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    streams: AtomicUsize,
    /// Says when the count changed, so a session pushes what waited as soon as a stream opens.
    changed: watch::Sender<usize>,
}

impl Default for Presence {
    fn default() -> Self {
        let (changed, _) = watch::channel(0);
        Self(Arc::new(Inner {
            streams: AtomicUsize::new(0),
            changed,
        }))
    }
}

impl Presence {
    /// Counts a stream open until the returned guard is dropped.
    pub fn attach(&self) -> Attached {
        let n = self.0.streams.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.changed.send_replace(n);
        Attached(self.clone())
    }

    /// Whether a client holds a stream of this session now.
    pub fn listening(&self) -> bool {
        self.0.streams.load(Ordering::SeqCst) > 0
    }

    /// A receiver that sees every change of the count.
    pub fn watch(&self) -> watch::Receiver<usize> {
        self.0.changed.subscribe()
    }
}

/// One open stream; dropping it (the client went away, the response ended) counts it out.
#[derive(Debug)]
pub struct Attached(Presence);

impl Drop for Attached {
    fn drop(&mut self) {
        let inner = &(self.0).0;
        let n = inner
            .streams
            .fetch_sub(1, Ordering::SeqCst)
            .saturating_sub(1);
        inner.changed.send_replace(n);
    }
}

#[cfg(test)]
mod tests {
    use super::Presence;

    #[test]
    fn a_stream_counts_while_attached() {
        let p = Presence::default();
        let mut seen = p.watch();
        assert!(!p.listening());
        let a = p.attach();
        let b = p.attach();
        assert!(p.listening());
        drop(a);
        assert!(p.listening());
        drop(b);
        assert!(!p.listening());
        assert!(seen.has_changed().unwrap_or(false));
        assert_eq!(*seen.borrow_and_update(), 0);
    }
}
