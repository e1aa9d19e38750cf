//! The `deliveries` table: one row per message and recipient, with its state and lease.
//!
//! SQLite binds no arrays: a statement on a set of messages runs once per message, inside the
//! one transaction.

use rusqlite::params;

use switchboard_core::seam::columns::flag;
use switchboard_core::seam::{CANDIDATE_COLUMNS, CANDIDATE_JOINS, DeliveryStatements};
use switchboard_core::seam::{Handover, recipient_state};
use switchboard_core::seam::{LeaseCandidate, Leasing, RECIPIENT_COLUMNS, candidate};
use switchboard_core::{PeerId, SessionId};
use switchboard_proto::{MessageId, Millis, RecipientState};

use super::columns::read;
use crate::fault::OpResult;
use crate::tx::LiteTx;

impl DeliveryStatements for LiteTx {
    async fn release_leases(&mut self, sessions: &[SessionId]) -> OpResult<()> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE deliveries SET lease_session = NULL, lease_until = NULL
             WHERE lease_session = ?1",
        )?;
        for session in sessions {
            stmt.execute([session])?;
        }
        Ok(())
    }

    async fn mark_read(&mut self, peer: PeerId, ids: &[MessageId], now: Millis) -> OpResult<u64> {
        let mut stmt = self.conn.prepare_cached(MARK_READ)?;
        let mut changed = 0;
        for id in ids {
            changed += stmt.execute(params![peer, id, now])? as u64;
        }
        Ok(changed)
    }

    // No row lock: the one writer thread keeps every other lease out until the commit. The
    // planner may prefer the primary key (message, recipient) for the order it gives, which
    // walks every copy ever written to find this recipient's unread ones: `INDEXED BY` names
    // the index of copies in flight (v10) so a lease costs what is unread, however much mail
    // the store ever had.
    async fn lease_candidates(&mut self, l: &Leasing) -> OpResult<Vec<LeaseCandidate>> {
        let sql = format!(
            "SELECT {CANDIDATE_COLUMNS}
             FROM deliveries d INDEXED BY deliveries_in_flight {CANDIDATE_JOINS}
             WHERE d.recipient_id = ?1 AND d.state = 'queued' AND m.expires_at > ?2
               AND (d.lease_until IS NULL OR d.lease_until <= ?2 OR d.lease_session = ?3)
             ORDER BY d.message_id LIMIT ?4"
        );
        self.all(&sql, params![l.peer, l.now, l.session, l.limit], candidate)
    }

    async fn seen_deliveries(&mut self, peer: PeerId, limit: u32) -> OpResult<Vec<LeaseCandidate>> {
        let sql = format!(
            "SELECT {CANDIDATE_COLUMNS}
             FROM deliveries d INDEXED BY deliveries_in_flight {CANDIDATE_JOINS}
             WHERE d.recipient_id = ?1 AND d.state = 'delivered'
             ORDER BY d.message_id LIMIT ?2"
        );
        self.all(&sql, params![peer, limit], candidate)
    }

    async fn renew_leases(&mut self, l: &Leasing, ids: &[MessageId]) -> OpResult<()> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE deliveries SET lease_until = ?3 WHERE recipient_id = ?1 AND message_id = ?2",
        )?;
        for id in ids {
            stmt.execute(params![l.peer, id, l.until])?;
        }
        Ok(())
    }

    async fn take_leases(&mut self, l: &Leasing, ids: &[MessageId]) -> OpResult<()> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE deliveries SET attempts = attempts + 1, lease_session = ?3, lease_until = ?4
             WHERE recipient_id = ?1 AND message_id = ?2",
        )?;
        for id in ids {
            stmt.execute(params![l.peer, id, l.session, l.until])?;
        }
        Ok(())
    }

    async fn bury_deliveries(&mut self, peer: PeerId, ids: &[MessageId]) -> OpResult<()> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE deliveries SET state = 'dead', lease_session = NULL, lease_until = NULL
             WHERE recipient_id = ?1 AND message_id = ?2 AND state = 'queued'",
        )?;
        for id in ids {
            stmt.execute(params![peer, id])?;
        }
        Ok(())
    }

    async fn mark_delivered(&mut self, h: Handover<'_>) -> OpResult<u64> {
        let mut stmt = self.conn.prepare_cached(MARK_DELIVERED)?;
        let mut changed = 0;
        for id in h.ids {
            changed += stmt.execute(params![h.session, id, h.now, h.peer])? as u64;
        }
        Ok(changed)
    }

    async fn missing_deliveries(
        &mut self,
        peer: PeerId,
        ids: &[MessageId],
    ) -> OpResult<Vec<MessageId>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM deliveries WHERE recipient_id = ?1 AND message_id = ?2)",
        )?;
        let mut missing = Vec::new();
        for &id in ids {
            if !stmt.query_row(params![peer, id], read(flag))? {
                missing.push(id);
            }
        }
        Ok(missing)
    }

    async fn recipient_states(&mut self, message: MessageId) -> OpResult<Vec<RecipientState>> {
        let sql = format!(
            "SELECT {RECIPIENT_COLUMNS} FROM deliveries d JOIN peers p ON p.id = d.recipient_id
             WHERE d.message_id = ?1 ORDER BY p.name"
        );
        self.all(&sql, [message], recipient_state)
    }
}

/// One copy handed over by the session that leased it, found by its primary key: the
/// recipient is the session's peer, which the caller names (a session leases only its own
/// peer's copies). The key matters more here than on Postgres. By `lease_session` alone the
/// planner would take
/// `deliveries_leased` and walk every copy the session holds for each id (a session leases up
/// to 100 at a time: 100 × 100 rows per hand-over, 71 % of the deliver+ack phase's
/// instructions). And an update that may touch several rows of a table with triggers first
/// gathers their keys in a temporary B-tree built afresh per execution, which a lookup by the
/// whole key spares.
///
/// `OR FAIL` (here and in [`MARK_READ`]): the state's trigger makes this a statement that may
/// write several rows, and with the default `ABORT` SQLite then opens a statement journal so
/// it could undo the statement alone, copying in every page it touches that the writer's
/// batch already changed (about three 4 KB pages per hand-over, an eighth of the relay's
/// instructions over the send's insert, the hand-over and the read together). The writer
/// never needs that: a write that fails is undone with its whole batch, or with the savepoint
/// it runs in when the batch runs again (`writer`), so `FAIL`, which leaves the undoing to
/// them, loses nothing.
const MARK_DELIVERED: &str = "UPDATE OR FAIL deliveries SET state = 'delivered', delivered_at = ?3,
         lease_session = NULL, lease_until = NULL
     WHERE recipient_id = ?4 AND message_id = ?2 AND lease_session = ?1 AND state = 'queued'";

/// One copy read by its recipient (`OR FAIL`: see [`MARK_DELIVERED`]).
const MARK_READ: &str = "UPDATE OR FAIL deliveries SET state = 'read', read_at = ?3,
         delivered_at = COALESCE(delivered_at, ?3), lease_session = NULL, lease_until = NULL
     WHERE recipient_id = ?1 AND message_id = ?2 AND state IN ('queued', 'delivered')";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{MARK_DELIVERED, MARK_READ};

    /// The state's CHECK was an `IN` list (v1), which SQLite tests through a temporary B-tree
    /// built on every update of the column; the hand-over also gathered its row's key in one,
    /// as an update that may touch several rows of a table with triggers does.
    #[test]
    fn a_hand_over_and_a_read_build_no_temporary_btree_regression() {
        assert_eq!(crate::sql::temporary_btrees(MARK_DELIVERED), 0);
        assert_eq!(crate::sql::temporary_btrees(MARK_READ), 0);
    }

    #[test]
    fn a_hand_over_and_a_read_open_no_statement_journal_regression() {
        assert!(!crate::sql::opens_statement_journal(MARK_DELIVERED));
        assert!(!crate::sql::opens_statement_journal(MARK_READ));
    }

    #[test]
    fn a_hand_over_reads_the_copy_by_its_key_not_every_copy_the_session_holds_regression() {
        let steps = crate::sql::query_plan(MARK_DELIVERED, [1, 1, 1, 1]);
        assert!(
            steps
                .iter()
                .any(|s| s
                    .contains("deliveries USING PRIMARY KEY (message_id=? AND recipient_id=?)")),
            "by the copy's key: {steps:?}"
        );
        assert!(
            !steps.iter().any(|s| s.contains("deliveries_leased")),
            "not by every copy the session holds: {steps:?}"
        );
    }
}
