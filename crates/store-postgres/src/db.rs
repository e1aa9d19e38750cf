//! One shared Postgres database: the connection pool, the holder connection (liveness and
//! wake-ups, see [`crate::holder`]), and the rooms and tokens that live in it.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio::task::JoinHandle;
use tokio_postgres::{Config, NoTls};

use switchboard_core::{StoreError, StoreResult};
use switchboard_proto::{Millis, PeerName};

use crate::fault::{OpError, chain, classify};
use crate::holder::{self, Router};
use crate::lane::Lane;
use crate::migrate::{self, GLOBAL, GLOBAL_SCHEMA, Migrated, ROOM, TooNew, room_schema};
use crate::store::PgStore;
use crate::tokens::PgTokens;

/// How to reach the database, and how many connections to keep.
#[derive(Clone)]
pub struct PgOptions {
    pub url: String,
    /// Most pooled connections this process opens (the holder connection comes on top).
    pub pool_size: usize,
    pub connect_timeout: Duration,
    /// How long a request waits for a free pooled connection before the store reports busy.
    pub acquire_timeout: Duration,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &redact(&self.url))
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

/// A connection string for humans: user, hosts, ports and database, never the password.
pub fn redact(url: &str) -> String {
    let Ok(cfg) = Config::from_str(url) else {
        return "postgres://<unparsable url>".into();
    };
    let hosts: Vec<String> = cfg
        .get_hosts()
        .iter()
        .zip(cfg.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(h, p)| match h {
            tokio_postgres::config::Host::Tcp(h) => format!("{h}:{p}"),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    format!(
        "postgres://{}@{}/{}",
        cfg.get_user().unwrap_or(""),
        hosts.join(","),
        cfg.get_dbname().unwrap_or("")
    )
}

/// A handle on the shared database: cheap to clone; the last clone dropped closes the holder
/// connection, which ends the liveness of every session this handle opened.
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// Where this process's writes go (see [`crate::lane`]).
    lane: Lane,
    shown: String,
    router: Arc<Router>,
    holder: JoinHandle<()>,
    /// Rooms whose schema this process has brought up to date.
    ready: Mutex<HashSet<String>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.holder.abort();
    }
}

impl Database {
    /// Connects, migrates the deployment-wide schema and starts the holder connection.
    pub async fn connect(opts: &PgOptions) -> StoreResult<Self> {
        let shown = redact(&opts.url);
        let open_err = |detail: String| StoreError::Open {
            path: shown.clone(),
            detail,
        };
        let mut cfg = Config::from_str(&opts.url)
            .map_err(|e| open_err(format!("not a valid Postgres URL: {}", chain(&e))))?;
        cfg.connect_timeout(opts.connect_timeout);
        cfg.application_name("switchboard");
        let manager = Manager::from_config(
            cfg.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(opts.acquire_timeout))
            .create_timeout(Some(opts.connect_timeout))
            .build()
            .map_err(|e| open_err(e.to_string()))?;
        let db_shown = shown.clone();
        let mut first = pool.get().await.map_err(|e| pool_error(&e, &db_shown))?;
        apply(&mut first, GLOBAL_SCHEMA, GLOBAL, &shown).await?;
        drop(first);
        // The write lane's own connection, made on the lane's thread when it first writes.
        let lane_pool = Pool::builder(Manager::from_config(
            cfg.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        ))
        .max_size(1)
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(opts.connect_timeout))
        .build()
        .map_err(|e| open_err(e.to_string()))?;
        let lane = Lane::start(lane_pool, shown.clone())
            .map_err(|e| open_err(format!("the write lane's thread could not start: {e}")))?;
        let router = Arc::new(Router::new());
        let holder = holder::start(cfg.clone(), Arc::clone(&router))
            .await
            .map_err(open_err)?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                lane,
                shown,
                router,
                holder,
                ready: Mutex::default(),
            }),
        })
    }

    /// The database, for humans (no password).
    pub fn describe(&self) -> &str {
        &self.inner.shown
    }

    pub(crate) fn router(&self) -> &Router {
        &self.inner.router
    }

    /// A pooled connection.
    pub(crate) async fn conn(&self) -> StoreResult<Object> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| pool_error(&e, &self.inner.shown))
    }

    pub(crate) fn lane(&self) -> &Lane {
        &self.inner.lane
    }

    /// The store of one room, creating its schema (and recording the room) on first use.
    pub async fn room(&self, room: &str, now: Millis) -> StoreResult<PgStore> {
        let name =
            PeerName::parse(room).map_err(|e| StoreError::Backend(format!("room name: {e}")))?;
        if !self.is_ready(room) {
            let mut c = self.conn().await?;
            apply(&mut c, &room_schema(room), ROOM, &self.inner.shown).await?;
            c.execute(
                "INSERT INTO switchboard.rooms (name, created_at) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING",
                &[&room, &now],
            )
            .await
            .map_err(|e| classify(&e, &self.inner.shown))?;
            self.lock_ready().insert(room.to_owned());
        }
        Ok(PgStore::new(self.clone(), name.as_str()))
    }

    fn is_ready(&self, room: &str) -> bool {
        self.lock_ready().contains(room)
    }

    fn lock_ready(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.inner
            .ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every room the database knows, oldest first.
    pub async fn rooms(&self) -> StoreResult<Vec<String>> {
        let c = self.conn().await?;
        let rows = c
            .query(
                "SELECT name FROM switchboard.rooms ORDER BY created_at, name",
                &[],
            )
            .await
            .map_err(|e| classify(&e, &self.inner.shown))?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(|e| classify(&e, &self.inner.shown)))
            .collect()
    }

    /// Brings every room's schema up to date (the deployment-wide one is at connect), and
    /// says what changed: `switchboard migrate`.
    pub async fn migrate_rooms(&self) -> StoreResult<Vec<(String, Migrated)>> {
        let mut out = Vec::new();
        for room in self.rooms().await? {
            let mut c = self.conn().await?;
            let m = apply(&mut c, &room_schema(&room), ROOM, &self.inner.shown).await?;
            self.lock_ready().insert(room.clone());
            out.push((room, m));
        }
        Ok(out)
    }

    /// What `doctor` reports of the server: its version, the deployment's schema version, and
    /// whether autovacuum runs.
    pub async fn check(&self) -> StoreResult<ServerCheck> {
        let c = self.conn().await?;
        let row = c
            .query_one(
                "SELECT current_setting('server_version'),
                        (SELECT COALESCE(MAX(version), 0) FROM switchboard.schema_version),
                        current_setting('autovacuum') = 'on'",
                &[],
            )
            .await
            .map_err(|e| classify(&e, &self.inner.shown))?;
        let get = |e| classify(&e, &self.inner.shown);
        let schema: i32 = row.try_get(1).map_err(get)?;
        Ok(ServerCheck {
            version: row.try_get(0).map_err(get)?,
            schema: u32::try_from(schema).unwrap_or(0),
            autovacuum: row.try_get(2).map_err(get)?,
        })
    }

    /// The tokens of this deployment.
    pub fn tokens(&self) -> PgTokens {
        PgTokens::new(self.clone())
    }

    pub(crate) fn shown(&self) -> &str {
        &self.inner.shown
    }
}

/// What [`Database::check`] found on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCheck {
    /// `server_version`, as the server reports it.
    pub version: String,
    /// The deployment-wide schema's version.
    pub schema: u32,
    /// Whether autovacuum runs. Off, nothing reclaims the row versions every hand-over and
    /// acknowledgement leaves in `deliveries` (and every send in its recipients' `peers` rows):
    /// the tables and their indexes grow without end and every lease walks further.
    pub autovacuum: bool,
}

async fn apply(
    c: &mut Object,
    schema: &str,
    migrations: &[&str],
    shown: &str,
) -> StoreResult<Migrated> {
    let client: &mut tokio_postgres::Client = c.as_mut();
    match migrate::apply(client, schema, migrations).await {
        Ok(Ok(m)) => Ok(m),
        Ok(Err(TooNew { found, known })) => Err(StoreError::TooNew {
            path: format!("{shown} (schema {schema})"),
            found,
            known,
        }),
        Err(e) => Err(OpError::into_store(e, shown)),
    }
}

pub(crate) fn pool_error(e: &deadpool_postgres::PoolError, shown: &str) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Timeout(_) => StoreError::Busy {
            path: shown.to_owned(),
        },
        deadpool_postgres::PoolError::Backend(pg) => classify(pg, shown),
        other => StoreError::Open {
            path: shown.to_owned(),
            detail: other.to_string(),
        },
    }
}
