//! The Postgres store's side of the seam: each statement of [`switchboard_core::seam`] in
//! Postgres's SQL, one file per table, run on the connection of a [`PgTx`]. Rows are read by
//! the shared decoders of the seam, through [`columns`].
//!
//! Where SQLite's single writer makes a check safe, the statement here takes a row lock
//! (`FOR NO KEY UPDATE`) or skips rows another transaction is taking (`SKIP LOCKED`); sets of
//! ids are bound as one array where SQLite runs one statement per id.

mod admission;
mod columns;
mod deliveries;
mod jobs;
mod messages;
mod peers;
mod questions;
mod reservations;
mod sessions;
mod tokens;
mod upkeep;

use deadpool_postgres::ClientWrapper;
use tokio_postgres::types::ToSql;

use switchboard_core::seam::Decode;

use self::columns::read;
use crate::fault::OpResult;
use crate::tx::PgTx;

/// A pooled connection, with its per-connection cache of prepared statements.
pub type Conn = ClientWrapper;

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

// Every statement is prepared once per connection and kept in its cache. A statement is
// prepared after the transaction's `BEGIN` and search path were sent (see `PgTx::opened`): the
// names it reads resolve in the room's schema.
impl PgTx {
    /// Runs one statement that returns no rows; returns how many rows it changed.
    async fn exec(&self, sql: &str, params: Params<'_>) -> OpResult<u64> {
        self.sent(sql);
        let c = self.conn();
        self.opened(async { c.execute(&c.prepare_cached(sql).await?, params).await })
            .await
    }

    /// The one row a statement returns, through a shared decoder.
    async fn one<T>(&self, sql: &str, params: Params<'_>, decode: Decode<T>) -> OpResult<T> {
        self.sent(sql);
        let c = self.conn();
        let row = self
            .opened(async { c.query_one(&c.prepare_cached(sql).await?, params).await })
            .await?;
        read(&row, decode)
    }

    /// The row a statement returns, if any, through a shared decoder.
    async fn opt<T>(&self, sql: &str, p: Params<'_>, decode: Decode<T>) -> OpResult<Option<T>> {
        self.sent(sql);
        let c = self.conn();
        let row = self
            .opened(async { c.query_opt(&c.prepare_cached(sql).await?, p).await })
            .await?;
        row.map(|r| read(&r, decode)).transpose()
    }

    /// Every row a statement returns, through a shared decoder.
    async fn all<T>(&self, sql: &str, params: Params<'_>, decode: Decode<T>) -> OpResult<Vec<T>> {
        self.sent(sql);
        let c = self.conn();
        let rows = self
            .opened(async { c.query(&c.prepare_cached(sql).await?, params).await })
            .await?;
        rows.iter().map(|r| read(r, decode)).collect()
    }
}

/// A count or limit as bound (BIGINT).
pub fn big(v: u32) -> i64 {
    i64::from(v)
}
