//! The `messages` table: what was said, by whom, to whom.

use rusqlite::{OptionalExtension, Row, params};

use switchboard_core::PeerId;
use switchboard_core::seam::{MessageRow, MessageStatements, RecentSends};
use switchboard_proto::{LogEntry, MessageId, Millis, SentMessage};

use super::{parse_col, target};
use crate::fault::OpResult;
use crate::tx::LiteTx;

const SELECT_LOG: &str = "SELECT m.id, s.name, r.name, m.scope, m.body, m.reply_to, m.created_at,
        m.kind
    FROM messages m
    JOIN peers s ON s.id = m.sender_id
    LEFT JOIN peers r ON r.id = m.recipient_id";

fn log_row(r: &Row<'_>) -> rusqlite::Result<LogEntry> {
    Ok(LogEntry {
        id: r.get(0)?,
        kind: parse_col(r, 7)?,
        from: r.get(1)?,
        to: target(r, 2, 3)?,
        text: r.get(4)?,
        reply_to: r.get(5)?,
        created_at: r.get(6)?,
    })
}

impl MessageStatements for LiteTx {
    async fn insert_message(&mut self, m: MessageRow<'_>) -> OpResult<MessageId> {
        self.conn
            .prepare_cached(
                "INSERT INTO messages (sender_id, recipient_id, scope, body, reply_to,
                     idempotency_key, created_at, expires_at, kind)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                m.sender,
                m.recipient,
                m.scope,
                m.body,
                m.reply_to,
                m.idempotency_key,
                m.created_at,
                m.expires_at,
                m.kind.as_str()
            ])?;
        Ok(self.conn.last_insert_rowid())
    }

    async fn message_by_key(&mut self, sender: PeerId, key: &str) -> OpResult<Option<MessageId>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id FROM messages WHERE sender_id = ?1 AND idempotency_key = ?2",
            )?
            .query_row(params![sender, key], |r| r.get(0))
            .optional()?)
    }

    async fn recent_sends(
        &mut self,
        sender: PeerId,
        since: Millis,
        limit: u32,
    ) -> OpResult<RecentSends> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT COUNT(*), MIN(created_at) FROM (SELECT created_at FROM messages
                     WHERE sender_id = ?1 AND created_at > ?2 ORDER BY created_at LIMIT ?3)",
            )?
            .query_row(params![sender, since, limit], |r| {
                Ok(RecentSends {
                    count: r.get(0)?,
                    oldest: r.get(1)?,
                })
            })?)
    }

    async fn knows_message(&mut self, peer: PeerId, id: MessageId) -> OpResult<bool> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM deliveries WHERE recipient_id = ?1 AND message_id = ?2)
                     OR EXISTS(SELECT 1 FROM messages WHERE id = ?2 AND sender_id = ?1)",
            )?
            .query_row(params![peer, id], |r| r.get(0))?)
    }

    async fn sent_by(&mut self, id: MessageId, sender: PeerId) -> OpResult<bool> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM messages WHERE id = ?1 AND sender_id = ?2)",
            )?
            .query_row(params![id, sender], |r| r.get(0))?)
    }

    async fn recent_sent(&mut self, sender: PeerId, limit: u32) -> OpResult<Vec<MessageId>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id FROM messages WHERE sender_id = ?1 ORDER BY id DESC LIMIT ?2",
            )?
            .query_map(params![sender, limit], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    async fn sent_message(&mut self, id: MessageId) -> OpResult<SentMessage> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT m.id, r.name, m.scope, m.body, m.reply_to, m.idempotency_key, m.created_at,
                     m.expires_at
                 FROM messages m LEFT JOIN peers r ON r.id = m.recipient_id WHERE m.id = ?1",
            )?
            .query_row([id], |r| {
                Ok(SentMessage {
                    id: r.get(0)?,
                    to: target(r, 1, 2)?,
                    text: r.get(3)?,
                    reply_to: r.get(4)?,
                    idempotency_key: r.get(5)?,
                    created_at: r.get(6)?,
                    expires_at: r.get(7)?,
                    recipients: Vec::new(),
                    duplicate: false,
                })
            })?)
    }

    async fn log(&mut self, after: MessageId, limit: u32) -> OpResult<Vec<LogEntry>> {
        let sql = format!("{SELECT_LOG} WHERE m.id > ?1 ORDER BY m.id LIMIT ?2");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_map(params![after, limit], log_row)?
            .collect::<Result<_, _>>()?)
    }

    async fn log_to(
        &mut self,
        peer: PeerId,
        after: MessageId,
        limit: u32,
    ) -> OpResult<Vec<LogEntry>> {
        let sql = format!(
            "{SELECT_LOG} JOIN deliveries d ON d.message_id = m.id
             WHERE d.recipient_id = ?1 AND d.message_id > ?2
             ORDER BY d.message_id LIMIT ?3"
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_map(params![peer, after, limit], log_row)?
            .collect::<Result<_, _>>()?)
    }

    async fn last_message_id(&mut self) -> OpResult<MessageId> {
        Ok(self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM messages")?
            .query_row([], |r| r.get(0))?)
    }
}
