//! [`PgStore`]: the [`Store`] of one room in the shared database. Reads run each in its own
//! read-only transaction on a pooled connection; writes go through the process's write lane
//! ([`crate::lane`]), which commits many at once.

use std::sync::Arc;

use tokio::sync::broadcast;

use switchboard_core::seam::{Access, Backend, Procedure};
use switchboard_core::{StoreResult, Wake};

use crate::db::Database;
use crate::fault::OpResult;
use crate::holder::CHANNEL;
use crate::migrate::room_schema;
use crate::stats::{Grown, Stats};
use crate::tx::{MAX_ATTEMPTS, PgTx, Tx, backoff};

#[derive(Clone)]
pub struct PgStore {
    room: Arc<Room>,
}

/// One room of the database, and how a transaction of it begins and ends.
pub(crate) struct Room {
    db: Database,
    name: String,
    begin_rw: Arc<str>,
    begin_ro: Arc<str>,
    /// Puts this room's schema first for the rest of a transaction of the write lane, which
    /// serves every room.
    search_path: String,
    /// Its schema, quoted.
    schema: String,
    stats: Stats,
    wakes: broadcast::Sender<Wake>,
}

impl PgStore {
    pub(crate) fn new(db: Database, room: &str) -> Self {
        let schema = room_schema(room);
        let wakes = db.router().channel(room);
        let room = Arc::new(Room {
            begin_rw: Arc::from(format!("BEGIN; SET LOCAL search_path TO {schema}")),
            begin_ro: Arc::from(format!(
                "BEGIN READ ONLY; SET LOCAL search_path TO {schema}"
            )),
            search_path: format!("SET LOCAL search_path TO {schema}"),
            schema,
            stats: Stats::new(),
            db,
            name: room.to_owned(),
            wakes,
        });
        Self { room }
    }

    pub fn room(&self) -> &str {
        &self.room.name
    }
}

impl Room {
    pub(crate) fn shown(&self) -> &str {
        self.db.shown()
    }

    /// A pooled connection whose transaction on this room's schema opens with its first
    /// statement, in the same round trip.
    async fn begin(&self, read_only: bool) -> StoreResult<PgTx> {
        let tx = self.connect().await?;
        let begin = if read_only {
            &self.begin_ro
        } else {
            &self.begin_rw
        };
        Ok(PgTx::new(tx, self.db.router().key(), !read_only).opening_with(Arc::clone(begin)))
    }

    /// A pooled connection.
    async fn connect(&self) -> StoreResult<Tx> {
        Ok(Tx::new(self.db.conn().await?))
    }

    pub(crate) fn search_path(&self) -> &str {
        &self.search_path
    }

    pub(crate) fn process_key(&self) -> i64 {
        self.db.router().key()
    }

    /// What ends a transaction that wrote: the NOTIFY other replicas wake on (sent with the
    /// commit, so it is delivered exactly when the writes are visible), then `COMMIT`.
    fn commit_sql(&self, wakes: &[Wake]) -> String {
        match self.notify_sql(wakes) {
            Some(notify) => format!("{notify}; COMMIT"),
            None => "COMMIT".to_owned(),
        }
    }

    /// The NOTIFY that tells other replicas of `wakes`, if there are any.
    pub(crate) fn notify_sql(&self, wakes: &[Wake]) -> Option<String> {
        if wakes.is_empty() {
            return None;
        }
        let payload = self.db.router().payload(&self.name, wakes);
        Some(format!("SELECT pg_notify('{CHANNEL}', '{payload}')"))
    }

    /// After a commit that inserted `grown`: refreshes the planner's statistics of the room's
    /// tables that have doubled since they were last refreshed (see [`crate::stats`]), on a
    /// pooled connection of the current runtime, without waiting for it.
    pub(crate) fn grew(self: &Arc<Self>, grown: Grown) {
        let Some(sql) = self.stats.due(&self.schema, grown) else {
            return;
        };
        let room = Arc::clone(self);
        tokio::spawn(async move {
            let done = match room.connect().await {
                Ok(tx) => {
                    let done = tx.conn().batch_execute(&sql).await;
                    tx.release();
                    done.map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
            // Stale statistics cost speed, not correctness: the next doubling tries again.
            if let Err(e) = done {
                tracing::warn!("cannot refresh the statistics of room {}: {e}", room.name);
            }
        });
    }

    /// Wakes this process's waiters after a commit (other replicas hear the NOTIFY).
    pub(crate) fn wake(&self, wakes: Vec<Wake>) {
        for w in wakes {
            let _ = self.wakes.send(w);
        }
    }

    /// Commits (with the NOTIFY, in the same round trip) and wakes this process's waiters; or
    /// rolls back. `Ok(None)` asks the caller to run the operation again.
    async fn end<T>(
        &self,
        tx: Tx,
        out: OpResult<T>,
        wakes: Vec<Wake>,
        attempt: u32,
    ) -> StoreResult<Option<T>> {
        let err = match out {
            Ok(v) => match tx.conn().batch_execute(&self.commit_sql(&wakes)).await {
                Ok(()) => {
                    tx.release();
                    self.wake(wakes);
                    return Ok(Some(v));
                }
                Err(e) => crate::fault::OpError::Pg(e),
            },
            Err(e) => e,
        };
        tx.rollback().await;
        if err.is_conflict() && attempt + 1 < MAX_ATTEMPTS {
            backoff(attempt).await;
            return Ok(None);
        }
        Err(err.into_store(self.shown()))
    }

    /// Runs `procedure` in a transaction of its own. A procedure that lost a race to another
    /// transaction (a serialization failure, a deadlock, a unique key inserted meanwhile) is
    /// rolled back and run again, up to `MAX_ATTEMPTS`.
    pub(crate) async fn alone<T: Send + 'static>(
        self: &Arc<Self>,
        read_only: bool,
        procedure: &impl Procedure<PgTx, T>,
    ) -> StoreResult<T> {
        let mut attempt: u32 = 0;
        loop {
            let mut pg = self.begin(read_only).await?;
            // A panic counts as the procedure failing, as in the lane: its transaction is
            // rolled back below, and the caller gets an error instead of a panic in its own
            // task (a relay request, a set-aside write of the lane).
            let out = crate::fault::caught(async { procedure(&mut pg).await }).await;
            let grown = pg.take_grown();
            let (tx, wakes) = pg.into_parts()?;
            match self.end(tx, out, wakes, attempt).await? {
                Some(v) => {
                    // A read inserted nothing: nothing is due.
                    self.grew(grown);
                    return Ok(v);
                }
                None => attempt += 1,
            }
        }
    }
}

impl Backend for PgStore {
    type Tx = PgTx;

    fn describe(&self) -> String {
        format!(
            "postgres {} room {}",
            self.room.db.describe(),
            self.room.name
        )
    }

    fn subscribe(&self) -> broadcast::Receiver<Wake> {
        self.room.wakes.subscribe()
    }

    async fn transact<T: Send + 'static>(
        &self,
        access: Access,
        procedure: impl Procedure<PgTx, T>,
    ) -> StoreResult<T> {
        match access {
            Access::Read => self.room.alone(true, &procedure).await,
            Access::Write | Access::Tidy | Access::Admitted | Access::Mail(_) => {
                let room = Arc::clone(&self.room);
                self.room.db.lane().write(room, access, procedure).await
            }
        }
    }
}
