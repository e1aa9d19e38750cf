//! The `deliveries` table: one row per message and recipient, with its state and lease.
//!
//! A statement on a set of messages binds them as one array (`ANY($2)`).

use tokio_postgres::Row;

use switchboard_core::seam::{DeliveryStatements, LeaseCandidate};
use switchboard_core::{PeerId, SessionId};
use switchboard_proto::{InboxItem, MessageId, Millis, RecipientState};

use super::{big, col, exec, one, parse, rows, small, target};
use crate::fault::OpResult;
use crate::tx::PgTx;

const SELECT_CANDIDATE: &str = "SELECT m.id, s.name, r.name, m.scope, m.body, m.reply_to,
        m.created_at, d.state, d.attempts, m.kind, q.context_hint, a.basis, d.lease_session,
        d.lease_until
    FROM deliveries d
    JOIN messages m ON m.id = d.message_id
    JOIN peers s ON s.id = m.sender_id
    LEFT JOIN peers r ON r.id = m.recipient_id
    LEFT JOIN questions q ON q.message_id = m.id
    LEFT JOIN questions a ON a.reply_id = m.id";

fn candidate(r: &Row) -> OpResult<LeaseCandidate> {
    Ok(LeaseCandidate {
        item: InboxItem {
            id: col(r, 0)?,
            kind: parse(r, 9)?,
            from: col(r, 1)?,
            to: target(r, 2, 3)?,
            text: col(r, 4)?,
            reply_to: col(r, 5)?,
            created_at: col(r, 6)?,
            seen_before: false,
            context_hint: col(r, 10)?,
            grounding: None,
        },
        state: parse(r, 7)?,
        attempts: small(col(r, 8)?),
        lease: match (col(r, 12)?, col(r, 13)?) {
            (Some(session), Some(until)) => Some((session, until)),
            _ => None,
        },
        basis: match col::<Option<&str>>(r, 11)? {
            Some(_) => Some(parse(r, 11)?),
            None => None,
        },
    })
}

impl DeliveryStatements for PgTx {
    async fn insert_deliveries(
        &mut self,
        message: MessageId,
        recipients: &[PeerId],
    ) -> OpResult<()> {
        let sql = "INSERT INTO deliveries (message_id, recipient_id, state)
             SELECT $1, r, 'queued' FROM unnest($2::bigint[]) AS r";
        exec(self.conn(), sql, &[&message, &recipients]).await?;
        Ok(())
    }

    async fn release_leases(&mut self, sessions: &[SessionId]) -> OpResult<()> {
        let sql = "UPDATE deliveries SET lease_session = NULL, lease_until = NULL
             WHERE lease_session = ANY($1)";
        exec(self.conn(), sql, &[&sessions]).await?;
        Ok(())
    }

    async fn queued_count(&mut self, recipient: PeerId, cap: u32) -> OpResult<u32> {
        let sql = "SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
                 WHERE recipient_id = $1 AND state = 'queued' LIMIT $2) t";
        let row = one(self.conn(), sql, &[&recipient, &big(cap)]).await?;
        Ok(small(col(&row, 0)?))
    }

    async fn mark_read(&mut self, peer: PeerId, ids: &[MessageId], now: Millis) -> OpResult<u64> {
        let sql = "UPDATE deliveries SET state = 'read', read_at = $3,
                 delivered_at = COALESCE(delivered_at, $3), lease_session = NULL, lease_until = NULL
             WHERE recipient_id = $1 AND message_id = ANY($2) AND state IN ('queued', 'delivered')";
        exec(self.conn(), sql, &[&peer, &ids, &now]).await
    }

    // Takes the rows it returns, skipping those another session's lease is taking right now:
    // two leases at once never hand out one item twice, and neither waits for the other.
    async fn lease_candidates(
        &mut self,
        peer: PeerId,
        session: SessionId,
        now: Millis,
        limit: u32,
    ) -> OpResult<Vec<LeaseCandidate>> {
        let sql = format!(
            "{SELECT_CANDIDATE} WHERE d.recipient_id = $1 AND d.state = 'queued'
               AND m.expires_at > $2
               AND (d.lease_until IS NULL OR d.lease_until <= $2 OR d.lease_session = $3)
             ORDER BY d.message_id LIMIT $4 FOR UPDATE OF d SKIP LOCKED"
        );
        rows(self.conn(), &sql, &[&peer, &now, &session, &big(limit)])
            .await?
            .iter()
            .map(candidate)
            .collect()
    }

    async fn seen_deliveries(&mut self, peer: PeerId, limit: u32) -> OpResult<Vec<LeaseCandidate>> {
        let sql = format!(
            "{SELECT_CANDIDATE} WHERE d.recipient_id = $1 AND d.state = 'delivered'
             ORDER BY d.message_id LIMIT $2"
        );
        rows(self.conn(), &sql, &[&peer, &big(limit)])
            .await?
            .iter()
            .map(candidate)
            .collect()
    }

    async fn renew_leases(
        &mut self,
        peer: PeerId,
        ids: &[MessageId],
        until: Millis,
    ) -> OpResult<()> {
        let sql = "UPDATE deliveries SET lease_until = $3
             WHERE recipient_id = $1 AND message_id = ANY($2)";
        exec(self.conn(), sql, &[&peer, &ids, &until]).await?;
        Ok(())
    }

    async fn take_leases(
        &mut self,
        peer: PeerId,
        ids: &[MessageId],
        session: SessionId,
        until: Millis,
    ) -> OpResult<()> {
        let sql = "UPDATE deliveries SET attempts = attempts + 1, lease_session = $3,
                 lease_until = $4
             WHERE recipient_id = $1 AND message_id = ANY($2)";
        exec(self.conn(), sql, &[&peer, &ids, &session, &until]).await?;
        Ok(())
    }

    async fn bury_deliveries(&mut self, peer: PeerId, ids: &[MessageId]) -> OpResult<()> {
        let sql = "UPDATE deliveries SET state = 'dead', lease_session = NULL, lease_until = NULL
             WHERE recipient_id = $1 AND message_id = ANY($2)";
        exec(self.conn(), sql, &[&peer, &ids]).await?;
        Ok(())
    }

    async fn mark_delivered(
        &mut self,
        session: SessionId,
        ids: &[MessageId],
        now: Millis,
    ) -> OpResult<u64> {
        let sql = "UPDATE deliveries SET state = 'delivered', delivered_at = $3,
                 lease_session = NULL, lease_until = NULL
             WHERE lease_session = $1 AND message_id = ANY($2) AND state = 'queued'";
        exec(self.conn(), sql, &[&session, &ids, &now]).await
    }

    async fn missing_deliveries(
        &mut self,
        peer: PeerId,
        ids: &[MessageId],
    ) -> OpResult<Vec<MessageId>> {
        let sql = "SELECT i FROM unnest($2::bigint[]) WITH ORDINALITY AS t(i, n)
             WHERE NOT EXISTS(SELECT 1 FROM deliveries WHERE recipient_id = $1 AND message_id = i)
             ORDER BY n";
        rows(self.conn(), sql, &[&peer, &ids])
            .await?
            .iter()
            .map(|r| col(r, 0))
            .collect()
    }

    async fn recipient_states(&mut self, message: MessageId) -> OpResult<Vec<RecipientState>> {
        let sql = "SELECT p.name, d.state, d.attempts, d.delivered_at, d.read_at
             FROM deliveries d JOIN peers p ON p.id = d.recipient_id
             WHERE d.message_id = $1 ORDER BY p.name";
        rows(self.conn(), sql, &[&message])
            .await?
            .iter()
            .map(|r| {
                Ok(RecipientState {
                    peer: col(r, 0)?,
                    state: parse(r, 1)?,
                    attempts: small(col(r, 2)?),
                    delivered_at: col(r, 3)?,
                    read_at: col(r, 4)?,
                })
            })
            .collect()
    }
}
