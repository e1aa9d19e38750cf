//! The `messages` table: what was said, by whom, to whom.

use switchboard_core::seam::{MessageRow, MessageStatements};
use switchboard_proto::MessageId;

use super::{col, one};
use crate::fault::OpResult;
use crate::tx::PgTx;

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
}
