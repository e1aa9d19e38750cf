//! The `deliveries` table: one row per message and recipient, with its state and lease.
//!
//! SQLite binds no arrays: a statement on a set of messages runs once per message, inside the
//! one transaction.

use rusqlite::{Row, params};

use switchboard_core::seam::{DeliveryStatements, LeaseCandidate};
use switchboard_core::{PeerId, SessionId};
use switchboard_proto::{InboxItem, MessageId, Millis, RecipientState};

use super::{parse_col, target};
use crate::fault::OpResult;
use crate::tx::LiteTx;

// The planner may prefer the primary key (recipient, message), which walks a recipient's whole
// history past every read item to find the unread ones: name the (recipient, state, message)
// index so a lease costs what is unread, however much mail the peer ever had.
const SELECT_CANDIDATE: &str = "SELECT m.id, s.name, r.name, m.scope, m.body, m.reply_to,
        m.created_at, d.state, d.attempts, m.kind, q.context_hint, a.basis, d.lease_session,
        d.lease_until
    FROM deliveries d INDEXED BY deliveries_by_state
    JOIN messages m ON m.id = d.message_id
    JOIN peers s ON s.id = m.sender_id
    LEFT JOIN peers r ON r.id = m.recipient_id
    LEFT JOIN questions q ON q.message_id = m.id
    LEFT JOIN questions a ON a.reply_id = m.id";

fn candidate(r: &Row<'_>) -> rusqlite::Result<LeaseCandidate> {
    let basis: Option<String> = r.get(11)?;
    Ok(LeaseCandidate {
        item: InboxItem {
            id: r.get(0)?,
            kind: parse_col(r, 9)?,
            from: r.get(1)?,
            to: target(r, 2, 3)?,
            text: r.get(4)?,
            reply_to: r.get(5)?,
            created_at: r.get(6)?,
            seen_before: false,
            context_hint: r.get(10)?,
            grounding: None,
        },
        state: parse_col(r, 7)?,
        attempts: r.get(8)?,
        lease: match (r.get(12)?, r.get(13)?) {
            (Some(session), Some(until)) => Some((session, until)),
            _ => None,
        },
        basis: match basis {
            Some(_) => Some(parse_col(r, 11)?),
            None => None,
        },
    })
}

impl DeliveryStatements for LiteTx {
    async fn insert_deliveries(
        &mut self,
        message: MessageId,
        recipients: &[PeerId],
    ) -> OpResult<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO deliveries (message_id, recipient_id, state) VALUES (?1, ?2, 'queued')",
        )?;
        for r in recipients {
            stmt.execute(params![message, r])?;
        }
        Ok(())
    }

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

    async fn queued_count(&mut self, recipient: PeerId, cap: u32) -> OpResult<u32> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
                     WHERE recipient_id = ?1 AND state = 'queued' LIMIT ?2)",
            )?
            .query_row(params![recipient, cap], |r| r.get(0))?)
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

    // No row lock: the one writer thread keeps every other lease out until the commit.
    async fn lease_candidates(
        &mut self,
        peer: PeerId,
        session: SessionId,
        now: Millis,
        limit: u32,
    ) -> OpResult<Vec<LeaseCandidate>> {
        let sql = format!(
            "{SELECT_CANDIDATE} WHERE d.recipient_id = ?1 AND d.state = 'queued'
               AND m.expires_at > ?2
               AND (d.lease_until IS NULL OR d.lease_until <= ?2 OR d.lease_session = ?3)
             ORDER BY d.message_id LIMIT ?4"
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_map(params![peer, now, session, limit], candidate)?
            .collect::<Result<_, _>>()?)
    }

    async fn seen_deliveries(&mut self, peer: PeerId, limit: u32) -> OpResult<Vec<LeaseCandidate>> {
        let sql = format!(
            "{SELECT_CANDIDATE} WHERE d.recipient_id = ?1 AND d.state = 'delivered'
             ORDER BY d.message_id LIMIT ?2"
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_map(params![peer, limit], candidate)?
            .collect::<Result<_, _>>()?)
    }

    async fn renew_leases(
        &mut self,
        peer: PeerId,
        ids: &[MessageId],
        until: Millis,
    ) -> OpResult<()> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE deliveries SET lease_until = ?3 WHERE recipient_id = ?1 AND message_id = ?2",
        )?;
        for id in ids {
            stmt.execute(params![peer, id, until])?;
        }
        Ok(())
    }

    async fn take_leases(
        &mut self,
        peer: PeerId,
        ids: &[MessageId],
        session: SessionId,
        until: Millis,
    ) -> OpResult<()> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE deliveries SET attempts = attempts + 1, lease_session = ?3, lease_until = ?4
             WHERE recipient_id = ?1 AND message_id = ?2",
        )?;
        for id in ids {
            stmt.execute(params![peer, id, session, until])?;
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

    async fn mark_delivered(
        &mut self,
        session: SessionId,
        ids: &[MessageId],
        now: Millis,
    ) -> OpResult<u64> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE deliveries SET state = 'delivered', delivered_at = ?3,
                 lease_session = NULL, lease_until = NULL
             WHERE lease_session = ?1 AND message_id = ?2 AND state = 'queued'",
        )?;
        let mut changed = 0;
        for id in ids {
            changed += stmt.execute(params![session, id, now])? as u64;
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
            if !stmt.query_row(params![peer, id], |r| r.get::<_, bool>(0))? {
                missing.push(id);
            }
        }
        Ok(missing)
    }

    async fn recipient_states(&mut self, message: MessageId) -> OpResult<Vec<RecipientState>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT p.name, d.state, d.attempts, d.delivered_at, d.read_at
                 FROM deliveries d JOIN peers p ON p.id = d.recipient_id
                 WHERE d.message_id = ?1 ORDER BY p.name",
            )?
            .query_map([message], |r| {
                Ok(RecipientState {
                    peer: r.get(0)?,
                    state: parse_col(r, 1)?,
                    attempts: r.get(2)?,
                    delivered_at: r.get(3)?,
                    read_at: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }
}
