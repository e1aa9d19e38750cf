//! The `messages` table: what was said, by whom, to whom.

use tokio_postgres::Row;

use switchboard_core::PeerId;
use switchboard_core::seam::{MessageRow, MessageStatements, RecentSends};
use switchboard_proto::{LogEntry, MessageId, Millis, SentMessage};

use super::{big, col, one, opt, parse, rows, small, target};
use crate::fault::OpResult;
use crate::tx::PgTx;

const SELECT_LOG: &str = "SELECT m.id, s.name, r.name, m.scope, m.body, m.reply_to, m.created_at,
        m.kind
    FROM messages m
    JOIN peers s ON s.id = m.sender_id
    LEFT JOIN peers r ON r.id = m.recipient_id";

// Ids are handed out before commit, so under concurrent sends a message with a lower id can
// become visible just after one with a higher id, and a tail whose cursor already passed it
// skips it. Delivery never reads the log (inboxes are leased), so only an observer's view can
// miss an entry; filtering on settled transaction ids would close that gap but stall every
// tail behind any long write anywhere on the server.

fn log_row(r: &Row) -> OpResult<LogEntry> {
    Ok(LogEntry {
        id: col(r, 0)?,
        kind: parse(r, 7)?,
        from: col(r, 1)?,
        to: target(r, 2, 3)?,
        text: col(r, 4)?,
        reply_to: col(r, 5)?,
        created_at: col(r, 6)?,
    })
}

impl MessageStatements for PgTx {
    async fn insert_message(&mut self, m: MessageRow<'_>) -> OpResult<MessageId> {
        let row = one(
            self.conn(),
            "INSERT INTO messages (sender_id, recipient_id, scope, body, reply_to,
                 idempotency_key, created_at, expires_at, kind)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[
                &m.sender,
                &m.recipient,
                &m.scope,
                &m.body,
                &m.reply_to,
                &m.idempotency_key,
                &m.created_at,
                &m.expires_at,
                &m.kind.as_str(),
            ],
        )
        .await?;
        col(&row, 0)
    }

    async fn message_by_key(&mut self, sender: PeerId, key: &str) -> OpResult<Option<MessageId>> {
        let sql = "SELECT id FROM messages WHERE sender_id = $1 AND idempotency_key = $2";
        match opt(self.conn(), sql, &[&sender, &key]).await? {
            Some(row) => Ok(Some(col(&row, 0)?)),
            None => Ok(None),
        }
    }

    async fn recent_sends(
        &mut self,
        sender: PeerId,
        since: Millis,
        limit: u32,
    ) -> OpResult<RecentSends> {
        let sql = "SELECT COUNT(*), MIN(created_at) FROM (SELECT created_at FROM messages
                 WHERE sender_id = $1 AND created_at > $2 ORDER BY created_at LIMIT $3) t";
        let row = one(self.conn(), sql, &[&sender, &since, &big(limit)]).await?;
        Ok(RecentSends {
            count: small(col(&row, 0)?),
            oldest: col(&row, 1)?,
        })
    }

    async fn knows_message(&mut self, peer: PeerId, id: MessageId) -> OpResult<bool> {
        let sql =
            "SELECT EXISTS(SELECT 1 FROM deliveries WHERE recipient_id = $1 AND message_id = $2)
                 OR EXISTS(SELECT 1 FROM messages WHERE id = $2 AND sender_id = $1)";
        col(&one(self.conn(), sql, &[&peer, &id]).await?, 0)
    }

    async fn sent_by(&mut self, id: MessageId, sender: PeerId) -> OpResult<bool> {
        let sql = "SELECT EXISTS(SELECT 1 FROM messages WHERE id = $1 AND sender_id = $2)";
        col(&one(self.conn(), sql, &[&id, &sender]).await?, 0)
    }

    async fn recent_sent(&mut self, sender: PeerId, limit: u32) -> OpResult<Vec<MessageId>> {
        let sql = "SELECT id FROM messages WHERE sender_id = $1 ORDER BY id DESC LIMIT $2";
        rows(self.conn(), sql, &[&sender, &big(limit)])
            .await?
            .iter()
            .map(|r| col(r, 0))
            .collect()
    }

    async fn sent_message(&mut self, id: MessageId) -> OpResult<SentMessage> {
        let sql = "SELECT m.id, r.name, m.scope, m.body, m.reply_to, m.idempotency_key,
                 m.created_at, m.expires_at
             FROM messages m LEFT JOIN peers r ON r.id = m.recipient_id WHERE m.id = $1";
        let r = one(self.conn(), sql, &[&id]).await?;
        Ok(SentMessage {
            id: col(&r, 0)?,
            to: target(&r, 1, 2)?,
            text: col(&r, 3)?,
            reply_to: col(&r, 4)?,
            idempotency_key: col(&r, 5)?,
            created_at: col(&r, 6)?,
            expires_at: col(&r, 7)?,
            recipients: Vec::new(),
            duplicate: false,
        })
    }

    async fn log(&mut self, after: MessageId, limit: u32) -> OpResult<Vec<LogEntry>> {
        let sql = format!("{SELECT_LOG} WHERE m.id > $1 ORDER BY m.id LIMIT $2");
        rows(self.conn(), &sql, &[&after, &big(limit)])
            .await?
            .iter()
            .map(log_row)
            .collect()
    }

    async fn log_to(
        &mut self,
        peer: PeerId,
        after: MessageId,
        limit: u32,
    ) -> OpResult<Vec<LogEntry>> {
        let sql = format!(
            "{SELECT_LOG} JOIN deliveries d ON d.message_id = m.id
             WHERE d.recipient_id = $1 AND d.message_id > $2
             ORDER BY d.message_id LIMIT $3"
        );
        rows(self.conn(), &sql, &[&peer, &after, &big(limit)])
            .await?
            .iter()
            .map(log_row)
            .collect()
    }

    async fn last_message_id(&mut self) -> OpResult<MessageId> {
        let sql = "SELECT COALESCE(MAX(id), 0) FROM messages";
        col(&one(self.conn(), sql, &[]).await?, 0)
    }
}
