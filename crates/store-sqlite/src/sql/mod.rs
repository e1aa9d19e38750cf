//! The embedded store's side of the seam: each statement of
//! [`switchboard_core::seam`] in SQLite's SQL, one file per table. Statements run inside the
//! transaction the caller opened (the writer's savepoint, a reader's connection, or the token
//! file's). Rows are read by the shared decoders of the seam, through [`columns`].
//!
//! Where SQLite's single writer makes a lock needless, the statement says so; the Postgres
//! store takes a row lock in the same place.

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

use rusqlite::{OptionalExtension, Params};

/// A fresh in-memory store at the latest schema with foreign keys on, as the store runs: what
/// the statements' plan and program tests compile against (a plan is the regression a timing
/// test would only hint at).
#[cfg(test)]
fn latest_schema() -> rusqlite::Connection {
    #![allow(clippy::unwrap_used)]
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    crate::migrate::apply(&mut conn).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    conn
}

/// The steps SQLite plans for `sql` with `params`.
#[cfg(test)]
pub(crate) fn query_plan(sql: &str, params: impl Params) -> Vec<String> {
    #![allow(clippy::unwrap_used)]
    let conn = latest_schema();
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let steps = stmt.query_map(params, |r| r.get::<_, String>(3)).unwrap();
    steps.map(Result::unwrap).collect()
}

/// The program SQLite compiles for `sql`, one `(opcode, p1, p2)` per instruction. Unbound
/// parameters read as NULL; the program does not depend on them.
#[cfg(test)]
fn program(sql: &str) -> Vec<(String, i64, i64)> {
    #![allow(clippy::unwrap_used)]
    let conn = latest_schema();
    let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
    let mut rows = stmt.raw_query();
    let mut program = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        program.push((
            row.get(1).unwrap(),
            row.get(2).unwrap(),
            row.get(3).unwrap(),
        ));
    }
    program
}

/// How many temporary B-trees the program SQLite compiles for `sql` opens. Each is built
/// afresh on every execution (a page allocated and zeroed, a cursor opened), which a
/// statement run per row cannot afford.
#[cfg(test)]
pub(crate) fn temporary_btrees(sql: &str) -> usize {
    program(sql)
        .iter()
        .filter(|(opcode, ..)| opcode == "OpenEphemeral")
        .count()
}

/// Whether SQLite opens a statement journal when it runs `sql` inside a transaction. It does
/// for a program that may write several rows (here: one that runs a trigger) and may stop
/// midway (a constraint checked with `ABORT`, an immediate foreign key's counter), and then
/// copies in every page the statement touches that the transaction had already changed, so
/// it can undo the statement alone.
#[cfg(test)]
pub(crate) fn opens_statement_journal(sql: &str) -> bool {
    // SQLite's numbers for `ABORT` in a halt's P2, and for the statement's own counter (not
    // the deferred one) in an `FkCounter`'s P1.
    const OE_ABORT: i64 = 2;
    const STATEMENT_COUNTER: i64 = 0;
    let program = program(sql);
    let writes_several = program.iter().any(|(opcode, ..)| opcode == "Program");
    let may_stop = program.iter().any(|(opcode, p1, p2)| {
        matches!(opcode.as_str(), "Halt" | "HaltIfNull") && *p2 == OE_ABORT
            || opcode == "FkCounter" && *p1 == STATEMENT_COUNTER
    });
    writes_several && may_stop
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::pin::pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};

    use switchboard_core::PeerId;
    use switchboard_core::seam::{DeliveryStatements, MessageRow, MessageStatements};
    use switchboard_proto::ItemKind;

    use crate::liveness::Liveness;
    use crate::tx::LiteTx;

    /// Every statement of this store is synchronous: its future is ready when first polled.
    fn ready<T>(f: impl Future<Output = T>) -> T {
        match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("a statement waited"),
        }
    }

    /// Until v13 a batch of sends from many senders to many recipients wrote a leaf page per
    /// sender (the (sender, number) index) and per recipient (the copies' (recipient,
    /// message) key) once those trees outgrew the senders and recipients (on a model of the
    /// growth bench, ~67 pages a commit in an empty store, ~180 from ~50,000 messages on), so
    /// sends slowed as the store grew. By (number, sender) and (message, recipient) a batch's
    /// entries join each tree near its one end. Counted, not timed: the frames each send
    /// commit appends to the log, early and after 20,480 messages, with the copies read
    /// between batches as in a live room (17 → 142 pages with the old orders, 15 → 17 now).
    #[test]
    fn a_send_commit_writes_as_many_pages_in_a_large_store_as_in_an_empty_one_regression() {
        const SENDERS: i64 = 64;
        const RECIPIENTS: i64 = 64;
        const ROUNDS: usize = 320;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let mut conn = crate::connect(&path, false).unwrap();
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .unwrap();
        crate::migrate::apply(&mut conn).unwrap();
        conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA wal_autocheckpoint = 0;")
            .unwrap();
        for id in 1..=SENDERS + RECIPIENTS {
            conn.execute(
                "INSERT INTO peers (id, name, kind, created_at, last_seen_at)
                 VALUES (?1, 'p' || ?1, 'agent', 0, 0)",
                [id],
            )
            .unwrap();
        }
        let frame = 24
            + u64::from(
                conn.query_row("PRAGMA page_size", [], |r| r.get::<_, u32>(0))
                    .unwrap(),
            );
        let wal = dir.path().join("store.db-wal");
        let mut tx = LiteTx::new(
            conn,
            Arc::new(Liveness::new(dir.path().join("procs"))),
            true,
        );
        let mut pages = Vec::new();
        for round in 0..ROUNDS {
            // An empty log each round, so a commit's frames are the file's length.
            tx.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .unwrap();
            tx.conn.execute_batch("BEGIN").unwrap();
            let mut copies = Vec::new();
            for s in 0..SENDERS {
                let to = PeerId(SENDERS + 1 + (s + round as i64) % RECIPIENTS);
                let id = ready(tx.insert_message(MessageRow {
                    kind: ItemKind::Message,
                    sender: PeerId(s + 1),
                    recipient: Some(to),
                    scope: None,
                    body: "a message of a few words",
                    reply_to: None,
                    idempotency_key: None,
                    created_at: 1,
                    expires_at: 2,
                    counted: true,
                    copies_to: &[to],
                }))
                .unwrap();
                copies.push((to, id));
            }
            tx.conn.execute_batch("COMMIT").unwrap();
            let written = std::fs::metadata(&wal).unwrap().len();
            pages.push((written - 32) / frame);
            tx.conn.execute_batch("BEGIN").unwrap();
            for (to, id) in copies {
                ready(tx.mark_read(to, &[id], 1)).unwrap();
            }
            tx.conn.execute_batch("COMMIT").unwrap();
        }
        let median = |rounds: &[u64]| {
            let mut sorted = rounds.to_vec();
            sorted.sort_unstable();
            sorted[sorted.len() / 2]
        };
        let (small, large) = (median(&pages[1..21]), median(&pages[ROUNDS - 20..]));
        assert!(
            large * 4 <= small * 5,
            "a send commit wrote {small} pages in an empty store, {large} after {} messages",
            ROUNDS as i64 * SENDERS
        );
    }

    /// The check can fail: the same update with SQLite's default `ABORT` opens one.
    #[test]
    fn an_update_that_runs_a_trigger_and_may_abort_opens_a_statement_journal() {
        assert!(super::opens_statement_journal(
            "UPDATE deliveries SET state = 'read' WHERE recipient_id = 1 AND message_id = 1"
        ));
        assert!(!super::opens_statement_journal(
            "UPDATE deliveries SET lease_until = 1 WHERE recipient_id = 1 AND message_id = 1"
        ));
    }
}
