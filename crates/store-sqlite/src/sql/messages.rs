//! The `messages` table: what was said, by whom, to whom.

use rusqlite::params;

use switchboard_core::PeerId;
use switchboard_core::seam::columns::{flag, int};
use switchboard_core::seam::{LOG_COLUMNS, LOG_FROM, MessageRow, MessageStatements};
use switchboard_core::seam::{RECENT_SENDS_COLUMNS, RecentSends, SENT_COLUMNS, log_entry};
use switchboard_core::seam::{recent_sends, sent_message};
use switchboard_proto::{LogEntry, MessageId, Millis, SentMessage};

use crate::fault::OpResult;
use crate::tx::LiteTx;

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
        Ok(self.conn.last_insert_rowid().into())
    }

    async fn message_by_key(&mut self, sender: PeerId, key: &str) -> OpResult<Option<MessageId>> {
        let sql = "SELECT id FROM messages WHERE sender_id = ?1 AND idempotency_key = ?2";
        self.opt(sql, params![sender, key], int)
    }

    async fn recent_sends(&mut self, s: PeerId, since: Millis, cap: u32) -> OpResult<RecentSends> {
        let sql = format!(
            "SELECT {RECENT_SENDS_COLUMNS} FROM (SELECT created_at FROM messages
                 WHERE sender_id = ?1 AND created_at > ?2 ORDER BY created_at LIMIT ?3)"
        );
        self.one(&sql, params![s, since, cap], recent_sends)
    }

    async fn knows_message(&mut self, peer: PeerId, id: MessageId) -> OpResult<bool> {
        let sql =
            "SELECT EXISTS(SELECT 1 FROM deliveries WHERE recipient_id = ?1 AND message_id = ?2)
                 OR EXISTS(SELECT 1 FROM messages WHERE id = ?2 AND sender_id = ?1)";
        self.one(sql, params![peer, id], flag)
    }

    async fn sent_by(&mut self, id: MessageId, sender: PeerId) -> OpResult<bool> {
        let sql = "SELECT EXISTS(SELECT 1 FROM messages WHERE id = ?1 AND sender_id = ?2)";
        self.one(sql, params![id, sender], flag)
    }

    async fn recent_sent(&mut self, sender: PeerId, limit: u32) -> OpResult<Vec<MessageId>> {
        let sql = "SELECT id FROM messages WHERE sender_id = ?1 ORDER BY id DESC LIMIT ?2";
        self.all(sql, params![sender, limit], int)
    }

    async fn sent_message(&mut self, id: MessageId) -> OpResult<SentMessage> {
        let sql = format!(
            "SELECT {SENT_COLUMNS} FROM messages m LEFT JOIN peers r ON r.id = m.recipient_id
             WHERE m.id = ?1"
        );
        self.one(&sql, [id], sent_message)
    }

    async fn log(&mut self, after: MessageId, limit: u32) -> OpResult<Vec<LogEntry>> {
        let sql = format!("SELECT {LOG_COLUMNS} {LOG_FROM} WHERE m.id > ?1 ORDER BY m.id LIMIT ?2");
        self.all(&sql, params![after, limit], log_entry)
    }

    async fn log_to(&mut self, to: PeerId, after: MessageId, n: u32) -> OpResult<Vec<LogEntry>> {
        let sql = format!(
            "SELECT {LOG_COLUMNS} {LOG_FROM} JOIN deliveries d ON d.message_id = m.id
             WHERE d.recipient_id = ?1 AND d.message_id > ?2
             ORDER BY d.message_id LIMIT ?3"
        );
        self.all(&sql, params![to, after, n], log_entry)
    }

    async fn last_message_id(&mut self) -> OpResult<MessageId> {
        self.one("SELECT COALESCE(MAX(id), 0) FROM messages", [], int)
    }
}
