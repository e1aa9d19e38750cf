//! The embedded store's side of the seam: each statement of
//! [`switchboard_core::seam`] in SQLite's SQL, one file per table. Statements run inside the
//! transaction the caller opened (the writer's savepoint, or a reader's connection).
//!
//! Where SQLite's single writer makes a lock needless, the statement says so; the Postgres
//! store takes a row lock in the same place.

mod columns;
mod deliveries;
mod jobs;
mod messages;
mod peers;
mod questions;
mod sessions;
mod upkeep;

use std::str::FromStr;

use rusqlite::types::Type;
use rusqlite::{Params, Row};

use crate::fault::OpResult;
use crate::tx::LiteTx;

use switchboard_proto::Target;

/// Reads a text column into an enum, failing the row (not the process) on an unknown value.
fn parse_col<T: FromStr>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let raw: String = row.get(idx)?;
    raw.parse()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

/// Where a message went: the recipient's name in column `name_idx`, or else (a broadcast) the
/// scope in `scope_idx`.
fn target(r: &Row<'_>, name_idx: usize, scope_idx: usize) -> rusqlite::Result<Target> {
    match r.get::<_, Option<String>>(name_idx)? {
        Some(name) => Ok(Target::Peer(name)),
        None => Ok(Target::Broadcast(parse_col(r, scope_idx)?)),
    }
}

impl LiteTx {
    /// Runs one statement that returns no rows; returns how many rows it changed.
    fn exec(&self, sql: &str, params: impl Params) -> OpResult<u64> {
        Ok(self.conn.prepare_cached(sql)?.execute(params)? as u64)
    }
}
