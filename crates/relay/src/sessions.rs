//! Sessions the relay holds for remote callers. A remote session stays live while its caller
//! keeps an event stream (or an MCP connection) attached, or calls within the idle window; the
//! reaper ends the rest, so a client that vanished stops being online within seconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_core::{SessionId, SessionRecord};

type Key = (String, SessionId);

#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<Key, Entry>>>,
}

struct Entry {
    record: SessionRecord,
    token_id: String,
    last_seen: Instant,
    attached: usize,
}

/// Keeps a session live while held.
pub struct Attachment {
    sessions: Sessions,
    key: Key,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let mut map = self.sessions.lock();
        if let Some(e) = map.get_mut(&self.key) {
            e.attached = e.attached.saturating_sub(1);
            e.last_seen = Instant::now();
        }
    }
}

impl Sessions {
    pub fn insert(&self, room: &str, record: SessionRecord, token_id: &str) {
        let entry = Entry {
            record: record.clone(),
            token_id: token_id.to_owned(),
            last_seen: Instant::now(),
            attached: 0,
        };
        self.lock().insert((room.to_owned(), record.id), entry);
    }

    /// The session as the relay opened it, if `token_id` opened it in `room`; marks it seen.
    pub fn get(&self, room: &str, id: SessionId, token_id: &str) -> Option<SessionRecord> {
        let mut map = self.lock();
        let e = map.get_mut(&(room.to_owned(), id))?;
        if e.token_id != token_id {
            return None;
        }
        e.last_seen = Instant::now();
        Some(e.record.clone())
    }

    pub fn remove(&self, room: &str, id: SessionId) {
        self.lock().remove(&(room.to_owned(), id));
    }

    /// Holds the session live, if `token_id` opened it in `room`; with the relay's record of it.
    pub fn attach(
        &self,
        room: &str,
        id: SessionId,
        token_id: &str,
    ) -> Option<(Attachment, SessionRecord)> {
        let key = (room.to_owned(), id);
        let mut map = self.lock();
        let e = map.get_mut(&key).filter(|e| e.token_id == token_id)?;
        e.attached += 1;
        e.last_seen = Instant::now();
        let record = e.record.clone();
        let attachment = Attachment {
            sessions: self.clone(),
            key,
        };
        Some((attachment, record))
    }

    /// Takes out the sessions nobody holds and nobody used for `idle`.
    pub fn take_idle(&self, idle: Duration) -> Vec<(String, SessionId)> {
        self.take(|e| e.attached == 0 && e.last_seen.elapsed() >= idle)
    }

    /// Takes out the sessions `pick` chooses.
    fn take(&self, pick: impl Fn(&Entry) -> bool) -> Vec<Key> {
        let mut map = self.lock();
        let gone: Vec<Key> = map
            .iter()
            .filter(|(_, e)| pick(e))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &gone {
            map.remove(k);
        }
        gone
    }

    /// The tokens that hold sessions now, for the revocation check.
    pub fn tokens(&self) -> std::collections::HashSet<String> {
        self.lock().values().map(|e| e.token_id.clone()).collect()
    }

    /// Takes out every session opened with one of `tokens`.
    pub fn take_of_tokens(
        &self,
        tokens: &std::collections::HashSet<String>,
    ) -> Vec<(String, SessionId)> {
        self.take(|e| tokens.contains(&e.token_id))
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every session, for a graceful shutdown.
    pub fn drain(&self) -> Vec<(String, SessionId)> {
        self.lock().drain().map(|(k, _)| k).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
