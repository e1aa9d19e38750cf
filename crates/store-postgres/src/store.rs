//! [`PgStore`]: the [`Store`] of one room in the shared database.

use std::sync::Arc;

use tokio::sync::broadcast;

use switchboard_core::seam::{Access, Backend, Procedure};
use switchboard_core::{StoreResult, Wake};

use crate::db::Database;
use crate::fault::OpResult;
use crate::holder::CHANNEL;
use crate::migrate::room_schema;
use crate::tx::{MAX_ATTEMPTS, PgTx, Tx, backoff};

#[derive(Clone)]
pub struct PgStore {
    db: Database,
    room: String,
    begin_rw: Arc<str>,
    begin_ro: Arc<str>,
    wakes: broadcast::Sender<Wake>,
}

impl PgStore {
    pub(crate) fn new(db: Database, room: &str) -> Self {
        let schema = room_schema(room);
        let wakes = db.router().channel(room);
        Self {
            begin_rw: Arc::from(format!("BEGIN; SET LOCAL search_path TO {schema}")),
            begin_ro: Arc::from(format!(
                "BEGIN READ ONLY; SET LOCAL search_path TO {schema}"
            )),
            db,
            room: room.to_owned(),
            wakes,
        }
    }

    pub fn room(&self) -> &str {
        &self.room
    }

    /// A pooled connection whose transaction on this room's schema opens with its first
    /// statement, in the same round trip.
    pub(crate) async fn begin(&self, read_only: bool) -> StoreResult<PgTx> {
        let tx = Tx::new(self.db.conn().await?);
        let begin = if read_only {
            &self.begin_ro
        } else {
            &self.begin_rw
        };
        Ok(PgTx::new(tx, self.db.router().key(), !read_only).opening_with(Arc::clone(begin)))
    }

    /// Commits (with the NOTIFY other replicas wake on, in the same round trip) and wakes this
    /// process's waiters; or rolls back. `Ok(None)` asks the caller to run the operation again.
    pub(crate) async fn end<T>(
        &self,
        tx: Tx,
        out: OpResult<T>,
        wakes: Vec<Wake>,
        attempt: u32,
    ) -> StoreResult<Option<T>> {
        let err = match out {
            Ok(v) => {
                let sql = if wakes.is_empty() {
                    "COMMIT".to_owned()
                } else {
                    let payload = self.db.router().payload(&self.room, &wakes);
                    format!("SELECT pg_notify('{CHANNEL}', '{payload}'); COMMIT")
                };
                match tx.conn().batch_execute(&sql).await {
                    Ok(()) => {
                        tx.release();
                        for w in wakes {
                            let _ = self.wakes.send(w);
                        }
                        return Ok(Some(v));
                    }
                    Err(e) => crate::fault::OpError::Pg(e),
                }
            }
            Err(e) => e,
        };
        tx.rollback().await;
        if err.is_conflict() && attempt + 1 < MAX_ATTEMPTS {
            backoff(attempt).await;
            return Ok(None);
        }
        Err(err.into_store(self.db.shown()))
    }
}

impl Backend for PgStore {
    type Tx = PgTx;

    fn describe(&self) -> String {
        format!("postgres {} room {}", self.db.describe(), self.room)
    }

    fn subscribe(&self) -> broadcast::Receiver<Wake> {
        self.wakes.subscribe()
    }

    // A procedure that lost a race to another transaction (a serialization failure, a deadlock,
    // a unique key inserted meanwhile) is rolled back and run again, up to `MAX_ATTEMPTS`.
    async fn transact<T: Send + 'static>(
        &self,
        access: Access,
        procedure: impl Procedure<PgTx, T>,
    ) -> StoreResult<T> {
        let read_only = access == Access::Read;
        let mut attempt: u32 = 0;
        loop {
            let mut pg = self.begin(read_only).await?;
            let out = procedure(&mut pg).await;
            let (tx, wakes) = pg.into_parts();
            match self.end(tx, out, wakes, attempt).await? {
                Some(v) => return Ok(v),
                None => attempt += 1,
            }
        }
    }
}
