//! Store operations as plain functions over a connection: each is called inside one
//! transaction (the writer's savepoint, or a reader's snapshot) and knows nothing of threads.

pub mod jobs;
pub mod mail;
pub mod peers;
pub mod questions;
pub mod upkeep;

use std::str::FromStr;

use rusqlite::Row;
use rusqlite::types::Type;

/// Reads a text column into an enum, failing the row (not the process) on an unknown value.
fn parse_col<T: FromStr>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let raw: String = row.get(idx)?;
    raw.parse()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

/// Counts rows of a query, stopping at `cap`: limit checks never scan more than the limit.
fn count_up_to(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<u32> {
    conn.prepare_cached(sql)?.query_row(params, |r| r.get(0))
}
