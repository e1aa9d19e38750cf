//! The `deliveries` table: one row per message and recipient, with its state and lease.

use switchboard_core::seam::DeliveryStatements;
use switchboard_core::{PeerId, SessionId};
use switchboard_proto::MessageId;

use super::exec;
use crate::fault::OpResult;
use crate::tx::PgTx;

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
}
