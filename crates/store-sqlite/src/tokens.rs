//! The relay's token table in its own small file, `<home>/tokens.db` (0600): credentials stay
//! apart from every room's data, and the CLI (`switchboard tokens …`) can change them while the
//! relay runs. Only SHA-256 hashes of the secrets are stored.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use switchboard_core::{Grant, StoreError, StoreResult, TokenRecord, TokenStore};
use switchboard_proto::Millis;

use crate::home;

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
    conn: Arc<Mutex<Connection>>,
    /// Changes made through this handle (SQLite's data_version counts only other connections').
    own_changes: Arc<AtomicU64>,
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
        Ok(Self {
            path,
            conn: Arc::new(Mutex::new(conn)),
            own_changes: Arc::new(AtomicU64::new(0)),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().map_err(|_| StoreError::Closed)?;
            f(&conn).map_err(|e| StoreError::Backend(e.to_string()))
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

fn record(row: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    let kind: String = row.get("kind")?;
    let room: Option<String> = row.get("room")?;
    let peer: Option<String> = row.get("peer")?;
    let grant = match (kind.as_str(), room, peer) {
        ("room", Some(room), _) => Grant::Room { room },
        ("peer", Some(room), Some(peer)) => Grant::Peer { room, peer },
        _ => Grant::Admin,
    };
    Ok(TokenRecord {
        id: row.get("id")?,
        grant,
        label: row.get("label")?,
        secret_hash: row.get("secret_hash")?,
        created_at: row.get("created_at")?,
        revoked_at: row.get("revoked_at")?,
    })
}

#[async_trait]
impl TokenStore for SqliteTokens {
    async fn insert_token(&self, t: TokenRecord) -> StoreResult<()> {
        let (kind, room, peer) = match &t.grant {
            Grant::Room { room } => ("room", Some(room.clone()), None),
            Grant::Peer { room, peer } => ("peer", Some(room.clone()), Some(peer.clone())),
            Grant::Admin => ("admin", None, None),
        };
        self.with(move |c| {
            c.execute(
                "INSERT INTO tokens (id, kind, room, peer, label, secret_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![t.id, kind, room, peer, t.label, t.secret_hash, t.created_at],
            )
        })
        .await?;
        self.own_changes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn token(&self, id: &str) -> StoreResult<Option<TokenRecord>> {
        let id = id.to_owned();
        self.with(move |c| {
            c.prepare_cached("SELECT * FROM tokens WHERE id = ?1")?
                .query_row([id], record)
                .optional()
        })
        .await
    }

    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.with(|c| {
            c.prepare("SELECT * FROM tokens ORDER BY created_at, id")?
                .query_map([], record)?
                .collect()
        })
        .await
    }

    async fn revoke_token(&self, id: &str, now: Millis) -> StoreResult<bool> {
        let id = id.to_owned();
        let changed = self
            .with(move |c| {
                c.execute(
                    "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                    params![id, now],
                )
            })
            .await?;
        self.own_changes.fetch_add(1, Ordering::SeqCst);
        Ok(changed == 1)
    }

    async fn tokens_version(&self) -> StoreResult<u64> {
        let theirs: i64 = self
            .with(|c| c.query_row("PRAGMA data_version", [], |r| r.get(0)))
            .await?;
        Ok((theirs as u64).wrapping_add(self.own_changes.load(Ordering::SeqCst)))
    }
}
