//! The `messages` table: what was said, by whom, to whom.

use std::sync::LazyLock;

use switchboard_core::PeerId;
use switchboard_core::seam::columns::{flag, int};
use switchboard_core::seam::{LOG_COLUMNS, LOG_FROM, MessageRow, MessageStatements};
use switchboard_core::seam::{SENT_COLUMNS, log_entry, sent_message};
use switchboard_proto::{LogEntry, MessageId, Millis, SentMessage};

use super::big;
use crate::fault::OpResult;
use crate::tx::PgTx;

// Ids are handed out before commit, so under concurrent sends a message with a lower id can
// become visible just after one with a higher id, and a tail whose cursor already passed it
// skips it. Delivery never reads the log (inboxes are leased), so only an observer's view can
// miss an entry; filtering on settled transaction ids would close that gap but stall every
// tail behind any long write anywhere on the server.

/// The message a sender sent under an idempotency key, the sender and the key bound as the
/// parameters named (the admission reads it beside its lock, at other positions).
pub(super) fn message_by_key(sender: &str, key: &str) -> String {
    format!("SELECT id FROM messages WHERE sender_id = {sender} AND idempotency_key = {key}")
}

/// [`message_by_key`] on its own: `$1` the sender, `$2` the key.
static MESSAGE_BY_KEY: LazyLock<String> = LazyLock::new(|| message_by_key("$1", "$2"));

/// When a sender's `$2`th newest counted message was sent: `$1` the sender.
pub(super) const NTH_NEWEST_SEND: &str = "SELECT created_at FROM messages
     WHERE sender_id = $1 AND sender_seq = (SELECT MAX(sender_seq) FROM messages
         WHERE sender_id = $1 AND sender_seq IS NOT NULL) - $2 + 1";

impl MessageStatements for PgTx {
    async fn insert_message(&mut self, m: MessageRow<'_>) -> OpResult<MessageId> {
        let id = self
            .one(
                // The message, its copies and their count in their recipients' `queued` (the pending
                // cap's) in one statement: one round trip. The recipients' rows are locked by the
                // send's admission, or (a notice) it has one.
                "WITH m AS (
                 INSERT INTO messages (sender_id, recipient_id, scope, body, reply_to,
                     idempotency_key, created_at, expires_at, kind, sender_seq)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
                     CASE WHEN $10 THEN COALESCE((SELECT MAX(sender_seq) FROM messages
                         WHERE sender_id = $1 AND sender_seq IS NOT NULL), 0) + 1 END)
                 RETURNING id),
             copies AS (
                 INSERT INTO deliveries (message_id, recipient_id, state)
                 SELECT m.id, r, 'queued' FROM m, unnest($11::bigint[]) AS r),
             counted AS (
                 UPDATE peers SET queued = queued + 1 WHERE id = ANY($11::bigint[]))
             SELECT id FROM m",
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
                    &m.counted,
                    &m.copies_to,
                ],
                int,
            )
            .await?;
        self.inserted_message(id);
        Ok(id)
    }

    async fn message_by_key(&mut self, sender: PeerId, key: &str) -> OpResult<Option<MessageId>> {
        self.opt(&MESSAGE_BY_KEY, &[&sender, &key], int).await
    }

    async fn nth_newest_send(&mut self, sender: PeerId, n: u32) -> OpResult<Option<Millis>> {
        self.opt(NTH_NEWEST_SEND, &[&sender, &big(n)], int).await
    }

    async fn knows_message(&mut self, peer: PeerId, id: MessageId) -> OpResult<bool> {
        let sql =
            "SELECT EXISTS(SELECT 1 FROM deliveries WHERE recipient_id = $1 AND message_id = $2)
                 OR EXISTS(SELECT 1 FROM messages WHERE id = $2 AND sender_id = $1)";
        self.one(sql, &[&peer, &id], flag).await
    }

    async fn sent_by(&mut self, id: MessageId, sender: PeerId) -> OpResult<bool> {
        let sql = "SELECT EXISTS(SELECT 1 FROM messages WHERE id = $1 AND sender_id = $2)";
        self.one(sql, &[&id, &sender], flag).await
    }

    async fn recent_sent(&mut self, sender: PeerId, limit: u32) -> OpResult<Vec<MessageId>> {
        let sql = "SELECT id FROM messages WHERE sender_id = $1 ORDER BY id DESC LIMIT $2";
        self.all(sql, &[&sender, &big(limit)], int).await
    }

    async fn sent_message(&mut self, id: MessageId) -> OpResult<SentMessage> {
        let sql = format!(
            "SELECT {SENT_COLUMNS} FROM messages m LEFT JOIN peers r ON r.id = m.recipient_id
             WHERE m.id = $1"
        );
        self.one(&sql, &[&id], sent_message).await
    }

    async fn log(&mut self, after: MessageId, limit: u32) -> OpResult<Vec<LogEntry>> {
        let sql = format!("SELECT {LOG_COLUMNS} {LOG_FROM} WHERE m.id > $1 ORDER BY m.id LIMIT $2");
        self.all(&sql, &[&after, &big(limit)], log_entry).await
    }

    async fn log_to(&mut self, to: PeerId, after: MessageId, n: u32) -> OpResult<Vec<LogEntry>> {
        let sql = format!(
            "SELECT {LOG_COLUMNS} {LOG_FROM} JOIN deliveries d ON d.message_id = m.id
             WHERE d.recipient_id = $1 AND d.message_id > $2
             ORDER BY d.message_id LIMIT $3"
        );
        self.all(&sql, &[&to, &after, &big(n)], log_entry).await
    }

    async fn last_message_id(&mut self) -> OpResult<MessageId> {
        let sql = "SELECT COALESCE(MAX(id), 0) FROM messages";
        self.one(sql, &[], int).await
    }
}
