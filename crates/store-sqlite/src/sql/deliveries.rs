//! The `deliveries` table: one row per message and recipient, with its state and lease.

use switchboard_core::SessionId;
use switchboard_core::seam::DeliveryStatements;

use crate::fault::OpResult;
use crate::tx::LiteTx;

impl DeliveryStatements for LiteTx {
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
