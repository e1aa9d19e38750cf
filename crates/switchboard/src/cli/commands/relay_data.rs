//! Where a relay keeps its rooms and tokens: the embedded store in the store directory (one
//! SQLite store per room under `rooms/<room>/`, tokens in `tokens.db`), or one shared Postgres
//! database for a team relay of several replicas. `serve`, `tokens`, `migrate` and `doctor`
//! all reach the data through this one choice.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::{Clock, Store, StoreError, SystemClock, TokenStore};
use switchboard_relay::RoomOpener;
use switchboard_store_postgres::{Database, PgOptions, is_postgres_url};
use switchboard_store_sqlite::{SqliteStore, SqliteTokens};

use super::super::CliError;

pub enum RelayData {
    Embedded(PathBuf),
    Postgres(Database),
}

/// How to reach Postgres, when the URL names it.
pub struct DbChoice<'a> {
    pub url: Option<&'a str>,
    pub pool: usize,
    pub timeout: Duration,
}

impl<'a> DbChoice<'a> {
    /// The defaults, for the commands that take no pool flags.
    pub fn url(url: Option<&'a str>) -> Self {
        Self {
            url,
            pool: 4,
            timeout: Duration::from_secs(10),
        }
    }
}

impl RelayData {
    pub async fn open(home: &Path, choice: DbChoice<'_>) -> Result<Self, CliError> {
        let Some(url) = choice.url.filter(|u| !u.is_empty()) else {
            return Ok(Self::Embedded(home.to_owned()));
        };
        if !is_postgres_url(url) {
            let scheme = url.split_once("://").map_or("", |(s, _)| s);
            return Err(CliError::BadInput(format!(
                "--database-url must be a postgres:// URL, not {scheme:?} (the embedded store \
                 needs no URL)"
            )));
        }
        let opts = PgOptions {
            pool_size: choice.pool,
            connect_timeout: choice.timeout,
            acquire_timeout: choice.timeout,
            ..PgOptions::new(url)
        };
        let db = Database::connect(&opts)
            .await
            .map_err(switchboard_core::Error::Store)?;
        Ok(Self::Postgres(db))
    }

    /// Where the data lives, for humans.
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded(home) => home.display().to_string(),
            Self::Postgres(db) => db.describe().to_owned(),
        }
    }

    pub fn tokens(&self) -> Result<Arc<dyn TokenStore>, CliError> {
        Ok(match self {
            Self::Embedded(home) => {
                Arc::new(SqliteTokens::open(home).map_err(switchboard_core::Error::Store)?)
            }
            Self::Postgres(db) => Arc::new(db.tokens()),
        })
    }

    /// Opens rooms on demand, for the relay.
    pub fn opener(&self) -> RoomOpener {
        match self {
            Self::Embedded(home) => {
                let home = home.clone();
                Arc::new(move |room: String| {
                    let home = home.clone();
                    Box::pin(async move {
                        // Opening a SQLite file (and migrating it) blocks.
                        tokio::task::spawn_blocking(move || {
                            Ok(Arc::new(embedded_room(&home, &room)?) as Arc<dyn Store>)
                        })
                        .await
                        .map_err(|e| StoreError::Backend(e.to_string()))?
                    })
                })
            }
            Self::Postgres(db) => {
                let db = db.clone();
                Arc::new(move |room: String| {
                    let db = db.clone();
                    Box::pin(async move {
                        let store = db.room(&room, SystemClock.now_ms()).await?;
                        Ok(Arc::new(store) as Arc<dyn Store>)
                    })
                })
            }
        }
    }

    pub async fn room(&self, room: &str) -> Result<Arc<dyn Store>, CliError> {
        Ok((self.opener())(room.to_owned())
            .await
            .map_err(switchboard_core::Error::Store)?)
    }
}

/// The embedded store of one room of the relay whose data lives in `home`.
pub fn embedded_room(home: &Path, room: &str) -> Result<SqliteStore, StoreError> {
    SqliteStore::open(&home.join("rooms").join(room))
}

/// The rooms the embedded relay in `home` has, by their directories.
pub fn embedded_rooms(home: &Path) -> std::io::Result<Vec<String>> {
    let dir = home.join("rooms");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut rooms = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            rooms.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    rooms.sort();
    Ok(rooms)
}
