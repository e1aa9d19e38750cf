//! The `deliveries` table: one row per message and recipient, with its state and lease.
//!
//! A statement on a set of messages binds them as one array (`ANY($2)`).

use switchboard_core::seam::columns::int;
use switchboard_core::seam::{CANDIDATE_COLUMNS, CANDIDATE_JOINS, DeliveryStatements};
use switchboard_core::seam::{Handover, recipient_state};
use switchboard_core::seam::{LeaseCandidate, Leasing, RECIPIENT_COLUMNS, candidate};
use switchboard_core::{PeerId, SessionId};
use switchboard_proto::{MessageId, Millis, RecipientState};

use super::big;
use crate::fault::OpResult;
use crate::tx::PgTx;

impl DeliveryStatements for PgTx {
    async fn release_leases(&mut self, sessions: &[SessionId]) -> OpResult<()> {
        let sql = "UPDATE deliveries SET lease_session = NULL, lease_until = NULL
             WHERE lease_session = ANY($1)";
        self.exec(sql, &[&sessions]).await?;
        Ok(())
    }

    async fn mark_read(&mut self, peer: PeerId, ids: &[MessageId], now: Millis) -> OpResult<u64> {
        let sql = "UPDATE deliveries SET state = 'read', read_at = $3,
                 delivered_at = COALESCE(delivered_at, $3), lease_session = NULL, lease_until = NULL
             WHERE recipient_id = $1 AND message_id = ANY($2) AND state IN ('queued', 'delivered')";
        self.exec(sql, &[&peer, &ids, &now]).await
    }

    // Takes the rows it returns, skipping those another session's lease is taking right now:
    // two leases at once never hand out one item twice, and neither waits for the other.
    async fn lease_candidates(&mut self, l: &Leasing) -> OpResult<Vec<LeaseCandidate>> {
        let sql = format!(
            "SELECT {CANDIDATE_COLUMNS} FROM deliveries d {CANDIDATE_JOINS}
             WHERE d.recipient_id = $1 AND d.state = 'queued' AND m.expires_at > $2
               AND (d.lease_until IS NULL OR d.lease_until <= $2 OR d.lease_session = $3)
             ORDER BY d.message_id LIMIT $4 FOR UPDATE OF d SKIP LOCKED"
        );
        let limit = big(l.limit);
        self.all(&sql, &[&l.peer, &l.now, &l.session, &limit], candidate)
            .await
    }

    async fn seen_deliveries(&mut self, peer: PeerId, limit: u32) -> OpResult<Vec<LeaseCandidate>> {
        let sql = format!(
            "SELECT {CANDIDATE_COLUMNS} FROM deliveries d {CANDIDATE_JOINS}
             WHERE d.recipient_id = $1 AND d.state = 'delivered'
             ORDER BY d.message_id LIMIT $2"
        );
        self.all(&sql, &[&peer, &big(limit)], candidate).await
    }

    async fn renew_leases(&mut self, l: &Leasing, ids: &[MessageId]) -> OpResult<()> {
        let sql = "UPDATE deliveries SET lease_until = $3
             WHERE recipient_id = $1 AND message_id = ANY($2)";
        self.exec(sql, &[&l.peer, &ids, &l.until]).await?;
        Ok(())
    }

    async fn take_leases(&mut self, l: &Leasing, ids: &[MessageId]) -> OpResult<()> {
        let sql = "UPDATE deliveries SET attempts = attempts + 1, lease_session = $3,
                 lease_until = $4
             WHERE recipient_id = $1 AND message_id = ANY($2)";
        self.exec(sql, &[&l.peer, &ids, &l.session, &l.until])
            .await?;
        Ok(())
    }

    async fn bury_deliveries(&mut self, peer: PeerId, ids: &[MessageId]) -> OpResult<()> {
        let sql = "UPDATE deliveries SET state = 'dead', lease_session = NULL, lease_until = NULL
             WHERE recipient_id = $1 AND message_id = ANY($2)";
        self.exec(sql, &[&peer, &ids]).await?;
        Ok(())
    }

    async fn mark_delivered(&mut self, h: Handover<'_>) -> OpResult<u64> {
        let sql = "UPDATE deliveries SET state = 'delivered', delivered_at = $3,
                 lease_session = NULL, lease_until = NULL
             WHERE lease_session = $1 AND message_id = ANY($2) AND state = 'queued'";
        self.exec(sql, &[&h.session, &h.ids, &h.now]).await
    }

    async fn missing_deliveries(
        &mut self,
        peer: PeerId,
        ids: &[MessageId],
    ) -> OpResult<Vec<MessageId>> {
        let sql = "SELECT i FROM unnest($2::bigint[]) WITH ORDINALITY AS t(i, n)
             WHERE NOT EXISTS(SELECT 1 FROM deliveries WHERE recipient_id = $1 AND message_id = i)
             ORDER BY n";
        self.all(sql, &[&peer, &ids], int).await
    }

    async fn recipient_states(&mut self, message: MessageId) -> OpResult<Vec<RecipientState>> {
        let sql = format!(
            "SELECT {RECIPIENT_COLUMNS} FROM deliveries d JOIN peers p ON p.id = d.recipient_id
             WHERE d.message_id = $1 ORDER BY p.name"
        );
        self.all(&sql, &[&message], recipient_state).await
    }
}
