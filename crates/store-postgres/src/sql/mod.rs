//! The Postgres store's side of the seam: each statement of [`switchboard_core::seam`] in
//! Postgres's SQL, one file per table, run on the connection of a [`PgTx`](crate::tx::PgTx).
//!
//! Where SQLite's single writer makes a check safe, the statement here takes a row lock
//! (`FOR NO KEY UPDATE`) or skips rows another transaction is taking (`SKIP LOCKED`); sets of
//! ids are bound as one array where SQLite runs one statement per id.

mod columns;
mod deliveries;
mod jobs;
mod messages;
mod peers;
mod questions;
mod sessions;
mod upkeep;

use std::str::FromStr;

use deadpool_postgres::ClientWrapper;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};

use switchboard_proto::Target;

use crate::fault::{OpError, OpResult};

/// A pooled connection, with its per-connection cache of prepared statements.
pub type Conn = ClientWrapper;

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub async fn rows(c: &Conn, sql: &str, params: Params<'_>) -> OpResult<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query(&stmt, params).await?)
}

pub async fn opt(c: &Conn, sql: &str, params: Params<'_>) -> OpResult<Option<Row>> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&stmt, params).await?)
}

pub async fn one(c: &Conn, sql: &str, params: Params<'_>) -> OpResult<Row> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_one(&stmt, params).await?)
}

pub async fn exec(c: &Conn, sql: &str, params: Params<'_>) -> OpResult<u64> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.execute(&stmt, params).await?)
}

/// One column, failing the operation (not the process) on a type mismatch.
pub fn col<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> OpResult<T> {
    Ok(row.try_get(idx)?)
}

/// A text column read into an enum; an unknown value is a corrupt row.
pub fn parse<T: FromStr>(row: &Row, idx: usize) -> OpResult<T>
where
    T::Err: std::fmt::Display,
{
    let raw: &str = col(row, idx)?;
    raw.parse().map_err(|e: T::Err| {
        OpError::Store(switchboard_core::StoreError::Backend(format!(
            "unexpected value '{raw}' in column {idx}: {e}"
        )))
    })
}

/// A count or attempt number as stored (BIGINT) in the API's type.
pub fn small(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

pub fn big(v: u32) -> i64 {
    i64::from(v)
}

/// Where a message went: the recipient's name in column `name_idx`, or else (a broadcast) the
/// scope in `scope_idx`.
pub fn target(r: &Row, name_idx: usize, scope_idx: usize) -> OpResult<Target> {
    match col::<Option<String>>(r, name_idx)? {
        Some(name) => Ok(Target::Peer(name)),
        None => Ok(Target::Broadcast(parse(r, scope_idx)?)),
    }
}
