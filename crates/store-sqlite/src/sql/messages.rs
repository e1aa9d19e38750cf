//! The `messages` table: what was said, by whom, to whom.

use rusqlite::params;

use switchboard_core::seam::{MessageRow, MessageStatements};
use switchboard_proto::MessageId;

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
        Ok(self.conn.last_insert_rowid())
    }
}
