//! The `deliveries` table: one row per message and recipient, with its state and lease.

use rusqlite::params;

use switchboard_core::seam::DeliveryStatements;
use switchboard_core::{PeerId, SessionId};
use switchboard_proto::MessageId;

use crate::fault::OpResult;
use crate::tx::LiteTx;

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
}
