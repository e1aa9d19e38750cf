//! The embedded store's side of the seam: each statement of
//! [`switchboard_core::seam`] in SQLite's SQL, one file per table. Statements run inside the
//! transaction the caller opened (the writer's savepoint, a reader's connection, or the token
//! file's). Rows are read by the shared decoders of the seam, through [`columns`].
//!
//! Where SQLite's single writer makes a lock needless, the statement says so; the Postgres
//! store takes a row lock in the same place.

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

use rusqlite::{OptionalExtension, Params};

/// The steps SQLite plans for `sql` with `params`, over a fresh in-memory store at the latest
/// schema: what the statements' plan tests read (a plan is the regression a timing test would
/// only hint at).
#[cfg(test)]
pub(crate) fn query_plan(sql: &str, params: impl Params) -> Vec<String> {
    #![allow(clippy::unwrap_used)]
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    crate::migrate::apply(&mut conn).unwrap();
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let steps = stmt.query_map(params, |r| r.get::<_, String>(3)).unwrap();
    steps.map(Result::unwrap).collect()
}

/// How many temporary B-trees the program SQLite compiles for `sql` opens, over a fresh
/// in-memory store at the latest schema. Each is built afresh on every execution (a page
/// allocated and zeroed, a cursor opened), which a statement run per row cannot afford.
#[cfg(test)]
pub(crate) fn temporary_btrees(sql: &str) -> usize {
    #![allow(clippy::unwrap_used)]
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    crate::migrate::apply(&mut conn).unwrap();
    let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
    // Unbound parameters read as NULL; the program does not depend on them.
    let mut rows = stmt.raw_query();
    let mut count = 0;
    while let Some(row) = rows.next().unwrap() {
        count += usize::from(row.get::<_, String>(1).unwrap() == "OpenEphemeral");
    }
    count
}

use switchboard_core::seam::Decode;

use self::columns::read;
use crate::fault::OpResult;
use crate::tx::LiteTx;

// Every statement goes through the connection's cache of prepared statements, except the
// housekeeping ones (see `upkeep`).
impl LiteTx {
    /// Runs one statement that returns no rows; returns how many rows it changed.
    fn exec(&self, sql: &str, params: impl Params) -> OpResult<u64> {
        Ok(self.conn.prepare_cached(sql)?.execute(params)? as u64)
    }

    /// The one row a statement returns, through a shared decoder.
    fn one<T>(&self, sql: &str, params: impl Params, decode: Decode<T>) -> OpResult<T> {
        Ok(self
            .conn
            .prepare_cached(sql)?
            .query_row(params, read(decode))?)
    }

    /// The row a statement returns, if any, through a shared decoder.
    fn opt<T>(&self, sql: &str, params: impl Params, decode: Decode<T>) -> OpResult<Option<T>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        Ok(stmt.query_row(params, read(decode)).optional()?)
    }

    /// Every row a statement returns, through a shared decoder.
    fn all<T>(&self, sql: &str, params: impl Params, decode: Decode<T>) -> OpResult<Vec<T>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params, read(decode))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
