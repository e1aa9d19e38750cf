//! The connection that stands for this process.
//!
//! Every process (relay replica) keeps one dedicated connection open for as long as it lives.
//! On it the process holds a session-level advisory lock on its own random key — the key its
//! sessions are stored with — and LISTENs for other processes' commits. When the process dies,
//! however it dies, Postgres ends that connection and frees the lock, so any replica can tell a
//! dead session from a live one at once, without heartbeats (the same idea as the embedded
//! store's process locks). Notifications name the room and carry the wakes in the encoding the
//! embedded store's doorbells use.

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::{AsyncMessage, Client, Config, Connection, NoTls, Socket};

use switchboard_core::Wake;

use crate::fault::chain;
use crate::migrate::room_schema;

/// The one channel every replica listens on.
pub const CHANNEL: &str = "switchboard";

/// Wakes buffered per subscriber before it counts as lagged (and simply re-reads).
const WAKE_BUFFER: usize = 1024;

/// Routes wakes to the rooms this process has open, from its own commits and others'.
pub struct Router {
    key: AtomicI64,
    rooms: Mutex<HashMap<String, broadcast::Sender<Wake>>>,
}

impl Router {
    pub fn new() -> Self {
        Self {
            key: AtomicI64::new(0),
            rooms: Mutex::default(),
        }
    }

    /// The liveness key this process's new sessions are stored with.
    pub fn key(&self) -> i64 {
        self.key.load(Ordering::SeqCst)
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<Wake>>> {
        self.rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The wake channel of a room, made on first use.
    pub fn channel(&self, room: &str) -> broadcast::Sender<Wake> {
        self.rooms()
            .entry(room.to_owned())
            .or_insert_with(|| broadcast::channel(WAKE_BUFFER).0)
            .clone()
    }

    /// What a commit's NOTIFY carries: who sent it, the room, and the wakes. Every part is
    /// made of characters that need no quoting (digits, a peer-name-rules room, the wake code).
    pub fn payload(&self, room: &str, wakes: &[Wake]) -> String {
        format!("{} {room} {}", self.key(), Wake::encode(wakes))
    }

    /// A notification from the database. This process's own were already delivered locally
    /// at commit, so they are skipped; anything malformed wakes the whole room.
    fn remote(&self, payload: &str) {
        let mut parts = payload.splitn(3, ' ');
        let (Some(key), Some(room), wakes) = (parts.next(), parts.next(), parts.next()) else {
            return;
        };
        if key.parse::<i64>().ok() == Some(self.key()) {
            return;
        }
        let Some(tx) = self.rooms().get(room).cloned() else {
            return;
        };
        for w in Wake::decode(wakes.unwrap_or("r").as_bytes()) {
            let _ = tx.send(w);
        }
    }

    /// After a gap in listening, anything may have changed: every room looks again.
    fn wake_all(&self) {
        for tx in self.rooms().values() {
            let _ = tx.send(Wake::Room);
            let _ = tx.send(Wake::Jobs);
        }
    }

    fn open_rooms(&self) -> Vec<String> {
        self.rooms().keys().cloned().collect()
    }
}

/// A random positive key, so replicas never share one.
fn new_key() -> i64 {
    let raw = getrandom::u64().unwrap_or_else(|_| {
        // No entropy source: fall back to the clock and pid, still unique per process.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nanos ^ (u64::from(std::process::id()) << 32)
    });
    (raw >> 1) as i64
}

struct Held {
    /// Kept for its connection: dropping the last client closes it.
    _client: Client,
    conn: Connection<Socket, NoTlsStream>,
}

/// Opens the holder connection, takes the key's lock, starts listening and runs `then`.
async fn connect(cfg: &Config, key: i64, router: &Router, then: &str) -> Result<Held, String> {
    let (client, mut conn) = cfg.connect(NoTls).await.map_err(|e| chain(&e))?;
    {
        let sql = format!("LISTEN {CHANNEL}; SELECT pg_advisory_lock({key}); {then}");
        let setup = client.batch_execute(&sql);
        tokio::pin!(setup);
        // The connection must be driven while the setup runs; notifications may already come.
        loop {
            tokio::select! {
                done = &mut setup => {
                    done.map_err(|e| chain(&e))?;
                    break;
                }
                msg = poll_fn(|cx| conn.poll_message(cx)) => match msg {
                    Some(Ok(AsyncMessage::Notification(n))) => router.remote(n.payload()),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(chain(&e)),
                    None => return Err("the connection closed during setup".into()),
                },
            }
        }
    }
    Ok(Held {
        _client: client,
        conn,
    })
}

/// Connects the holder and keeps it alive in a task, reconnecting (under a new key) when the
/// connection is lost. The task ends only when aborted; aborting it closes the connection,
/// which is how a dropped store handle stops being alive.
pub async fn start(cfg: Config, router: Arc<Router>) -> Result<JoinHandle<()>, String> {
    let key = new_key();
    let held = connect(&cfg, key, &router, "").await?;
    router.key.store(key, Ordering::SeqCst);
    Ok(tokio::spawn(hold(cfg, router, held)))
}

async fn hold(cfg: Config, router: Arc<Router>, mut held: Held) {
    loop {
        let err = drive(&router, &mut held.conn).await;
        tracing::warn!(
            "lost the Postgres connection that holds this replica's liveness ({err}); reconnecting"
        );
        let mut delay = Duration::from_millis(100);
        held = loop {
            tokio::time::sleep(delay).await;
            let key = new_key();
            let adopt = adopt(&router, router.key(), key);
            match connect(&cfg, key, &router, &adopt).await {
                Ok(h) => {
                    router.key.store(key, Ordering::SeqCst);
                    router.wake_all();
                    break h;
                }
                Err(e) => {
                    tracing::warn!("cannot reconnect to Postgres: {e}");
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        };
    }
}

/// Runs the connection, routing notifications, until it is lost.
async fn drive(router: &Router, conn: &mut Connection<Socket, NoTlsStream>) -> String {
    loop {
        match poll_fn(|cx| conn.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notification(n))) => router.remote(n.payload()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return chain(&e),
            None => return "connection closed".into(),
        }
    }
}

/// SQL that moves this process's live sessions to its new key, so the gap does not end them.
/// Sessions another replica reaped during the gap stay ended; their clients open new ones.
fn adopt(router: &Router, old: i64, new: i64) -> String {
    router
        .open_rooms()
        .iter()
        .map(|room| {
            format!(
                "UPDATE {}.sessions SET process_key = {new} \
                 WHERE process_key = {old} AND ended_at IS NULL;",
                room_schema(room)
            )
        })
        .collect()
}
