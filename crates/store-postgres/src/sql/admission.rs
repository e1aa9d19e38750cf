//! A send's admission reads in one round trip, and in two statements.
//!
//! The write lane runs every write of the process one statement after another, and each
//! statement costs it a round trip to the server, so a send's four reads before its insert
//! (key, name, lock, rate) were four trips in a row of the lane. Here they are two statements,
//! pipelined: sent together, without waiting for the first's answer. The first locks the
//! parties (resolving the name on the locked rows) and reads the key's message beside them;
//! the second reads the rate. Postgres runs them one after another, in the order sent, each
//! with a snapshot of its own, so the rate is read after the lock is held and counts every
//! send committed before this one, exactly as when sent one by one. The key needs no such
//! care: a message under the same key committed while the lock was awaited is caught by the
//! unique index at the insert, a lost race the lane runs again. What is read past a decided
//! answer (the rest, after a key found) is read and dropped; the locks taken for it end with
//! the batch's commit, as any send's.
//!
//! Each statement is a message of the protocol's own (its `Sync`) and an answer the server
//! sends back by itself: folding the key into the lock saved the server and the lane a send
//! and a wake-up each a message (`docs/benchmarks.md`, issue 17's fourteenth step).

use std::sync::LazyLock;

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use switchboard_core::PeerId;
use switchboard_core::seam::columns::int;
use switchboard_core::seam::{
    AdmissionStatements, AdmitTo, Admitted, Admitting, PARTY_COLUMNS, Party, party, party_ids,
};
use switchboard_core::seam::{Col, Columns, Decode};
use switchboard_proto::MessageId;

use super::columns::read;
use super::messages::{NTH_NEWEST_SEND, message_by_key};
use super::{Conn, big};
use crate::claims::Key;
use crate::fault::OpResult;
use crate::tx::PgTx;

impl AdmissionStatements for PgTx {
    async fn admit(&mut self, a: Admitting<'_>) -> OpResult<Admitted> {
        let c = self.conn();
        let ids;
        let (lock_sql, lock_params): (&str, Vec<&(dyn ToSql + Sync)>) = match &a.to {
            AdmitTo::Name(name) => (&LOCK_NAMED, vec![&a.sender, name, &a.key]),
            AdmitTo::Peers(recipients) => {
                ids = party_ids(a.sender, recipients);
                (&LOCK_PARTIES_KEYED, vec![&ids, &a.sender, &a.key])
            }
        };
        let rate_n = a.rate_nth.map(big);
        // Both statements are prepared before either is sent: a prepare not cached yet is a
        // round trip of its own, and would let the later one go out first.
        let reads = async || {
            self.opened(async {
                let lock_stmt = c.prepare_cached(lock_sql).await?;
                let rate_stmt = match rate_n {
                    Some(_) => Some(c.prepare_cached(NTH_NEWEST_SEND).await?),
                    None => None,
                };
                let rate_params: [&(dyn ToSql + Sync); 2] = [&a.sender, &rate_n];
                // Each query goes out when first polled, and `join!` polls them in order.
                let (locked, nth) = tokio::join!(
                    c.query(&lock_stmt, &lock_params),
                    maybe(c, rate_stmt.as_ref(), &rate_params),
                );
                // The first error is the cause: after it, the other only says the transaction
                // was aborted.
                Ok::<_, tokio_postgres::Error>((locked?, nth?))
            })
            .await
        };
        let (locked, nth) = match &self.claims {
            None => reads().await?,
            // Beside other sends in one transaction (see `crate::claims`): what was read stands
            // once this send holds the parties and none was written since the read went out;
            // else it is read again.
            Some((claims, job)) => {
                // The parties it names first: a send that would wait for another's parties
                // waits before it reads, not after.
                let mut named = vec![Key::Id(a.sender)];
                match &a.to {
                    AdmitTo::Name(name) => named.push(Key::Name((*name).to_owned())),
                    AdmitTo::Peers(ids) => named.extend(ids.iter().map(|&id| Key::Id(id))),
                }
                claims.take(*job, &named).await;
                let mut read_at = claims.clock();
                let mut read = reads().await?;
                loop {
                    let parties: Vec<Key> = read
                        .0
                        .iter()
                        .map(|r| read_id(r).map(Key::Id))
                        .collect::<OpResult<_>>()?;
                    if claims.claim(*job, &parties) {
                        if !claims.written_since(&parties, read_at) {
                            break read;
                        }
                    } else {
                        // Another send holds one. Waiting while holding its own would let two
                        // crossing sends (ann→ben beside ben→ann) wait on each other for ever:
                        // it lets go of all, waits, and takes them all at once.
                        claims.release(*job);
                        let all: Vec<Key> = named.iter().cloned().chain(parties).collect();
                        claims.take(*job, &all).await;
                    }
                    read_at = claims.clock();
                    read = reads().await?;
                }
            }
        };
        // The key's message is read beside every locked row; a sender who has sent under the
        // key exists, so a found key has a row to be read on.
        let keyed: Decode<Option<MessageId>> = match &a.to {
            AdmitTo::Name(_) => |r| r.opt_int(4),
            AdmitTo::Peers(_) => |r| r.opt_int(3),
        };
        if let Some(row) = locked.first()
            && let Some(id) = read(row, keyed)?
        {
            return Ok(Admitted {
                duplicate: Some(id),
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
/// each with whether it is the named one, and the message the sender sent under the key `$3`
/// (NULL when none, or no key). The name is read from the row the lock holds (one renamed
/// while this waited for it is no longer the named one), so the peer locked is the peer
/// named. Made once: every send on a name prepares it by this text.
static LOCK_NAMED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {PARTY_COLUMNS}, name = $2, ({}) AS duplicate FROM peers
         WHERE id = $1 OR name = $2 ORDER BY id FOR NO KEY UPDATE",
        message_by_key("$1", "$3")
    )
});

/// Locks the parties `$1` (the sender `$2` among them) as `LOCK_PARTIES` does, with the message
/// the sender sent under the key `$3` beside each.
static LOCK_PARTIES_KEYED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {PARTY_COLUMNS}, ({}) AS duplicate FROM peers
         WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
        message_by_key("$2", "$3")
    )
});

/// The id of a locked party (the rows' first column).
fn read_id(row: &Row) -> OpResult<PeerId> {
    read(row, int)
}

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
