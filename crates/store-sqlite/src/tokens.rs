//! The relay's token table in its own small file, `<home>/tokens.db` (0600): credentials stay
//! apart from every room's data, and the CLI (`switchboard tokens …`) can change them while the
//! relay runs. Only SHA-256 hashes of the secrets are stored. The statements are in
//! [`crate::sql`]; the procedures and the `TokenStore` are the seam's.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use switchboard_core::seam::{Access, Pending, Procedure, Statements, TokenBackend};
use switchboard_core::{StoreError, StoreResult};

use crate::fault::OpError;
use crate::{home, tx};

const FILE: &str = "tokens.db";
const SCHEMA_VERSION: u32 = 1;
const SCHEMA: &str = "
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('room', 'peer', 'admin')),
    room TEXT,
    peer TEXT,
    label TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);";

#[derive(Clone)]
pub struct SqliteTokens {
    path: PathBuf,
    shown: String,
    tx: Arc<Mutex<TokenTx>>,
}

/// The token file's one connection, as the seam's statements see it.
pub struct TokenTx {
    pub(crate) conn: Connection,
    /// Changes made through this handle (SQLite's data_version counts only other connections').
    pub(crate) own_changes: u64,
    /// Never any wakes: a verifier reads `tokens_version` before it trusts its cache.
    pending: Pending,
}

impl std::fmt::Debug for SqliteTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteTokens")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteTokens {
    pub fn open(home: &Path) -> StoreResult<Self> {
        let path = home.join(FILE);
        let shown = path.display().to_string();
        let fail = |detail: String| StoreError::Open {
            path: shown.clone(),
            detail,
        };
        home::ensure_private_dir(home).map_err(|e| fail(e.to_string()))?;
        if !path.exists() {
            home::ensure_private_file(&path).map_err(|e| fail(e.to_string()))?;
        }
        let conn = Connection::open(&path).map_err(|e| fail(e.to_string()))?;
        migrate(&conn, &shown)?;
        let tx = TokenTx {
            conn,
            own_changes: 0,
            pending: Pending::default(),
        };
        Ok(Self {
            path,
            shown,
            tx: Arc::new(Mutex::new(tx)),
        })
    }
}

impl Statements for TokenTx {
    type Error = OpError;

    fn pending(&mut self) -> &mut Pending {
        &mut self.pending
    }
}

impl TokenBackend for SqliteTokens {
    type Tx = TokenTx;

    // A write runs in an immediate transaction; a read is one statement, atomic on its own.
    async fn transact<T: Send + 'static>(
        &self,
        access: Access,
        procedure: impl Procedure<TokenTx, T>,
    ) -> StoreResult<T> {
        let (shared, shown) = (Arc::clone(&self.tx), self.shown.clone());
        let writes = access != Access::Read;
        tokio::task::spawn_blocking(move || {
            let mut x = shared.lock().map_err(|_| StoreError::Closed)?;
            x.pending.writable = writes;
            let out = match writes {
                false => tx::run(&mut *x, &procedure),
                true => x
                    .conn
                    .execute_batch("BEGIN IMMEDIATE")
                    .map_err(OpError::from)
                    .and_then(|()| {
                        let out = tx::run(&mut *x, &procedure);
                        let end = if out.is_ok() { "COMMIT" } else { "ROLLBACK" };
                        x.conn.execute_batch(end)?;
                        out
                    }),
            };
            out.map_err(|e| e.into_store(&shown))
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }
}

fn migrate(conn: &Connection, shown: &str) -> StoreResult<()> {
    let backend = |e: rusqlite::Error| StoreError::Backend(e.to_string());
    conn.execute_batch("PRAGMA synchronous = FULL;")
        .map_err(backend)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(backend)?;
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend)?;
    match version {
        0 => conn
            .execute_batch(&format!(
                "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(backend),
        SCHEMA_VERSION => Ok(()),
        found => Err(StoreError::TooNew {
            path: shown.to_owned(),
            found,
            known: SCHEMA_VERSION,
        }),
    }
}
