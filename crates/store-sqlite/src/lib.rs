//! The embedded store: one SQLite file per OS user (local mode) or per relay, shared by every
//! process that opens it.
//!
//! - durability: WAL with `synchronous=FULL`; writes go through one writer thread per process
//!   that commits in batches (see [`writer`]), so an `ok` is always on disk;
//! - wake-ups: in-process through a broadcast channel, across processes through doorbell
//!   sockets (see [`doorbell`]);
//! - presence: process locks (see [`liveness`]);
//! - the schema: append-only migrations (see [`migrate`]).

mod checkpoint;
mod doorbell;
mod fault;
mod home;
mod liveness;
pub mod migrate;
mod poller;
mod sql;
mod tokens;
mod tx;
mod writer;

pub use tokens::SqliteTokens;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use switchboard_core::seam::{Access, Backend, Procedure};
use switchboard_core::{StoreError, StoreResult, Wake};

use crate::doorbell::Doorbell;
use crate::fault::{OpResult, classify};
use crate::liveness::Liveness;
use crate::tx::LiteTx;
use crate::writer::Writer;

/// The database file's name inside the store's home directory.
pub const DB_FILE: &str = "switchboard.db";

/// How long a write waits for another process's transaction before reporting the store busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Wakes buffered per subscriber before it counts as lagged (and simply re-reads).
const WAKE_BUFFER: usize = 1024;

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    shown: String,
    read_only: bool,
    writer: Writer,
    readers: Mutex<Vec<LiteTx>>,
    wakes: broadcast::Sender<Wake>,
    bell: Arc<Doorbell>,
    listener: Mutex<Option<Listener>>,
    live: Arc<Liveness>,
}

enum Listener {
    Bell(JoinHandle<()>),
    /// Held only for its `Drop`, which stops the polling thread.
    #[allow(dead_code)]
    Poll(poller::Poller),
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut l) = self.listener.lock()
            && let Some(Listener::Bell(task)) = l.take()
        {
            task.abort();
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `home`, migrating it to the current schema.
    pub fn open(home: &Path) -> StoreResult<Self> {
        let path = home.join(DB_FILE);
        let shown = path.display().to_string();
        let open_err = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::StorageFull => StoreError::Full {
                path: shown.clone(),
                remedy: fault::FULL_REMEDY.to_owned(),
            },
            _ => StoreError::Open {
                path: shown.clone(),
                detail: e.to_string(),
            },
        };
        home::ensure_private_dir(home).map_err(open_err)?;
        let read_only = home::is_read_only(&path);
        if !read_only {
            home::ensure_private_file(&path).map_err(open_err)?;
        }
        let mut conn = connect(&path, read_only).map_err(|e| classify(&e, &shown))?;
        prepare_schema(&mut conn, &shown, read_only)?;
        if !read_only {
            checkpoint::install(&mut conn, path.clone()).map_err(|e| classify(&e, &shown))?;
        }

        let (wakes, _) = broadcast::channel(WAKE_BUFFER);
        let bell = Arc::new(Doorbell::new(home.join("bells")));
        let on_commit = {
            let wakes = wakes.clone();
            let bell = Arc::clone(&bell);
            Box::new(move |batch: &[Wake]| {
                for w in batch {
                    let _ = wakes.send(*w);
                }
                bell.ring(batch);
            })
        };
        let live = Arc::new(Liveness::new(home.join("procs")));
        let own = LiteTx::new(conn, Arc::clone(&live), !read_only);
        let writer = Writer::start(own, shown.clone(), on_commit).map_err(open_err)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                shown,
                read_only,
                writer,
                readers: Mutex::new(Vec::new()),
                wakes,
                bell,
                listener: Mutex::new(None),
                live,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs a write on the writer thread (perhaps more than once; see [`writer`]).
    async fn write<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&mut LiteTx) -> OpResult<T> + Send + 'static,
    {
        if self.inner.read_only {
            return Err(StoreError::ReadOnly {
                path: self.inner.shown.clone(),
            });
        }
        self.inner.writer.write(op).await
    }

    /// Runs a read on a pooled connection off the async threads.
    async fn read<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut LiteTx) -> OpResult<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().ok().and_then(|mut p| p.pop());
            let mut tx = match pooled {
                Some(tx) => tx,
                None => LiteTx::new(
                    connect(&inner.path, true).map_err(|e| classify(&e, &inner.shown))?,
                    Arc::clone(&inner.live),
                    false,
                ),
            };
            let out = op(&mut tx).map_err(|e| e.into_store(&inner.shown));
            if let Ok(mut pool) = inner.readers.lock() {
                pool.push(tx);
            }
            out
        })
        .await
        .map_err(|e| StoreError::Backend(format!("reader task failed: {e}")))?
    }

    /// Starts hearing other processes' commits, once per store.
    fn ensure_listener(&self) {
        let Ok(mut slot) = self.inner.listener.lock() else {
            return;
        };
        if slot.is_some() || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        *slot = Some(match self.inner.bell.listen(self.inner.wakes.clone()) {
            Ok(task) => Listener::Bell(task),
            Err(e) => {
                tracing::debug!("doorbell unavailable ({e}); polling the store instead");
                Listener::Poll(poller::Poller::start(
                    self.inner.path.clone(),
                    self.inner.wakes.clone(),
                ))
            }
        });
    }
}

/// Opens a connection with the settings every connection of the store uses.
pub(crate) fn connect(path: &Path, read_only: bool) -> rusqlite::Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(64);
    // Plans must not depend on bound values: otherwise every statement whose parameter could
    // match a partial index is re-prepared on each execution, which dominated the write path.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    // cache_size: 32 MB per connection instead of SQLite's 2 MB, so the pages every write
    // touches (interior pages, each sender's and recipient's newest leaves, the in-flight
    // index) stay in memory as a store grows into hundreds of thousands of messages. The
    // cache fills only as pages are read, so a session that reads little holds little.
    // temp_store: when a batch of writes runs again with a savepoint per write (after one
    // failed, see `writer`), each savepoint's sub-journal would otherwise be a temporary
    // file, a `pwrite` per page (14 % of the writer's time when every write had one).
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA cache_size = -32768; \
         PRAGMA temp_store = MEMORY;",
    )?;
    Ok(conn)
}

/// Switches a writable store to WAL and migrates it; checks a read-only one is current.
fn prepare_schema(conn: &mut Connection, shown: &str, read_only: bool) -> StoreResult<()> {
    let classify = |e: rusqlite::Error| classify(&e, shown);
    if read_only {
        let found = migrate::current(conn).map_err(classify)?;
        if found != migrate::latest() {
            return Err(StoreError::ReadOnly {
                path: shown.to_owned(),
            });
        }
        return Ok(());
    }
    // Journal-mode changes do not wait on the busy handler, so a crowd of processes opening a
    // fresh file at once retries here.
    let mut tries = 0;
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Ok(_) => break,
            Err(e) if is_busy(&e) && tries < 200 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(classify(e)),
        }
    }
    match migrate::apply(conn).map_err(classify)? {
        migrate::Outcome::UpToDate(_) => Ok(()),
        migrate::Outcome::TooNew(found) => Err(StoreError::TooNew {
            path: shown.to_owned(),
            found,
            known: migrate::latest(),
        }),
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl Backend for SqliteStore {
    type Tx = LiteTx;

    fn describe(&self) -> String {
        format!("sqlite {}", self.inner.shown)
    }

    fn subscribe(&self) -> broadcast::Receiver<Wake> {
        let rx = self.inner.wakes.subscribe();
        self.ensure_listener();
        rx
    }

    async fn transact<T: Send + 'static>(
        &self,
        access: Access,
        procedure: impl Procedure<LiteTx, T>,
    ) -> StoreResult<T> {
        let writes = match access {
            Access::Read => false,
            Access::Write | Access::Admitted | Access::Mail(_) => true,
            Access::Tidy => !self.inner.read_only,
        };
        if writes {
            self.write(move |tx| tx::run(tx, &procedure)).await
        } else {
            self.read(move |tx| tx::run(tx, &procedure)).await
        }
    }
}
