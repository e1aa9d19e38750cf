//! A send's admission reads in one round trip.
//!
//! The write lane runs every write of the process one statement after another, and each
//! statement costs it a round trip to the server, so a send's four reads before its insert
//! (key, name, lock, rate) were four trips in a row of the lane. Here they are pipelined: sent
//! together, without waiting for each answer. Postgres still runs them one after another, in
//! the order sent, each with a snapshot of its own, so the rate is read after the lock is held
//! and counts every send committed before this one, exactly as when sent one by one. What they
//! read past a decided answer (the rest, after a key found) is read and dropped; the locks taken
//! for it end with the batch's commit, as any send's.

use std::sync::LazyLock;

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use switchboard_core::seam::columns::int;
use switchboard_core::seam::{
    AdmissionStatements, AdmitTo, Admitted, Admitting, PARTY_COLUMNS, Party, party, party_ids,
};
use switchboard_core::seam::{Col, Columns};

use super::columns::read;
use super::messages::{MESSAGE_BY_KEY, NTH_NEWEST_SEND};
use super::peers::LOCK_PARTIES;
use super::{Conn, big};
use crate::fault::OpResult;
use crate::tx::PgTx;

impl AdmissionStatements for PgTx {
    async fn admit(&mut self, a: Admitting<'_>) -> OpResult<Admitted> {
        let c = self.conn();
        let ids;
        let (lock_sql, lock_params): (&str, Vec<&(dyn ToSql + Sync)>) = match &a.to {
            AdmitTo::Name(name) => (&LOCK_NAMED, vec![&a.sender, name]),
            AdmitTo::Peers(recipients) => {
                ids = party_ids(a.sender, recipients);
                (&LOCK_PARTIES, vec![&ids])
            }
        };
        let rate_n = a.rate_nth.map(big);
        let (by_key, locked, nth) = self
            .opened(async {
                // Every statement is prepared before any is sent: a prepare not cached yet is a
                // round trip of its own, and would let a later statement go out first.
                let key_stmt = match a.key {
                    Some(_) => Some(c.prepare_cached(MESSAGE_BY_KEY).await?),
                    None => None,
                };
                let lock_stmt = c.prepare_cached(lock_sql).await?;
                let rate_stmt = match rate_n {
                    Some(_) => Some(c.prepare_cached(NTH_NEWEST_SEND).await?),
                    None => None,
                };
                let key_params: [&(dyn ToSql + Sync); 2] = [&a.sender, &a.key];
                let rate_params: [&(dyn ToSql + Sync); 2] = [&a.sender, &rate_n];
                // Each query goes out when first polled, and `join!` polls them in this order.
                let (by_key, locked, nth) = tokio::join!(
                    maybe(c, key_stmt.as_ref(), &key_params),
                    c.query(&lock_stmt, &lock_params),
                    maybe(c, rate_stmt.as_ref(), &rate_params),
                );
                // The first error is the cause: after it, the others only say the transaction
                // was aborted.
                Ok((by_key?, locked?, nth?))
            })
            .await?;
        if let Some(row) = by_key.first() {
            return Ok(Admitted {
                duplicate: Some(read(row, int)?),
                ..Admitted::default()
            });
        }
        let nth_newest = nth.first().map(|r| read(r, int)).transpose()?;
        let (named, parties) = match a.to {
            AdmitTo::Peers(_) => {
                let parties = locked.iter().map(|r| read(r, party));
                (None, parties.collect::<OpResult<_>>()?)
            }
            AdmitTo::Name(_) => {
                let found: Vec<(Party, bool)> = locked
                    .iter()
                    .map(|r| read(r, named_party))
                    .collect::<OpResult<_>>()?;
                let Some((named, _)) = found.iter().find(|(_, named)| *named) else {
                    return Ok(Admitted::default());
                };
                (Some(named.id), found.into_iter().map(|(p, _)| p).collect())
            }
        };
        Ok(Admitted {
            duplicate: None,
            named,
            parties,
            nth_newest,
        })
    }
}

/// Locks the sender (`$1`) and the peer named `$2`, in id order, and reads them as parties,
/// each with whether it is the named one. The name is read from the row the lock holds (one
/// renamed while this waited for it is no longer the named one), so the peer locked is the
/// peer named. Made once: every send on a name prepares it by this text.
static LOCK_NAMED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {PARTY_COLUMNS}, name = $2 FROM peers WHERE id = $1 OR name = $2
         ORDER BY id FOR NO KEY UPDATE"
    )
});

/// A party with whether the send named it.
fn named_party(r: &dyn Columns) -> Col<(Party, bool)> {
    Ok((party(r)?, r.flag(3)?))
}

/// The rows of a statement that is only sometimes part of the admission: none when it is not.
async fn maybe(
    c: &Conn,
    stmt: Option<&tokio_postgres::Statement>,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    match stmt {
        Some(s) => c.query(s, params).await,
        None => Ok(Vec::new()),
    }
}
