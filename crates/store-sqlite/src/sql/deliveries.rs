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
        let mut stmt = self.conn.prepare_cached(
            "UPDATE deliveries SET state = 'read', read_at = ?3,
                 delivered_at = COALESCE(delivered_at, ?3), lease_session = NULL, lease_until = NULL
             WHERE recipient_id = ?1 AND message_id = ?2 AND state IN ('queued', 'delivered')",
        )?;
        let mut changed = 0;
        for id in ids {
            changed += stmt.execute(params![peer, id, now])? as u64;
        }
        Ok(changed)
    }

    // No row lock: the one writer thread keeps every other lease out until the commit. The
    // planner may prefer the primary key (recipient, message), which walks a recipient's whole
    // history past every read item to find the unread ones: `INDEXED BY` names the
    // (recipient, state, message) index so a lease costs what is unread, however much mail the
    // peer ever had.
    async fn lease_candidates(&mut self, l: &Leasing) -> OpResult<Vec<LeaseCandidate>> {
        let sql = format!(
            "SELECT {CANDIDATE_COLUMNS}
             FROM deliveries d INDEXED BY deliveries_by_state {CANDIDATE_JOINS}
             WHERE d.recipient_id = ?1 AND d.state = 'queued' AND m.expires_at > ?2
               AND (d.lease_until IS NULL OR d.lease_until <= ?2 OR d.lease_session = ?3)
             ORDER BY d.message_id LIMIT ?4"
        );
        self.all(&sql, params![l.peer, l.now, l.session, l.limit], candidate)
    }

    async fn seen_deliveries(&mut self, peer: PeerId, limit: u32) -> OpResult<Vec<LeaseCandidate>> {
        let sql = format!(
            "SELECT {CANDIDATE_COLUMNS}
             FROM deliveries d INDEXED BY deliveries_by_state {CANDIDATE_JOINS}
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
             WHERE recipient_id = ?1 AND message_id = ?2",
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
            changed += stmt.execute(params![h.session, id, h.now])? as u64;
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

/// One copy handed over by the session that leased it. SQLite-specific: the unary `+` keeps the
/// planner off `deliveries_leased`, which it would otherwise pick for `lease_session = ?1` and
/// then walk every copy the session holds for each id (a session leases up to 100 at a time:
/// 100 × 100 rows per hand-over, 71 % of the deliver+ack phase's instructions); by
/// `deliveries_by_message` it reads the message's few copies. Postgres plans this from its
/// statistics and needs no hint.
const MARK_DELIVERED: &str = "UPDATE deliveries SET state = 'delivered', delivered_at = ?3,
         lease_session = NULL, lease_until = NULL
     WHERE +lease_session = ?1 AND message_id = ?2 AND state = 'queued'";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::MARK_DELIVERED;

    #[test]
    fn a_hand_over_reads_the_messages_copies_not_every_copy_the_session_holds_regression() {
        let steps = crate::sql::query_plan(MARK_DELIVERED, [1, 1, 1]);
        assert!(
            steps.iter().any(|s| s.contains("deliveries_by_message")),
            "by the message's copies: {steps:?}"
        );
        assert!(
            !steps.iter().any(|s| s.contains("deliveries_leased")),
            "not by every copy the session holds: {steps:?}"
        );
    }
}
