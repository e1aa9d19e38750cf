//! The statements on the `deliveries` table: one row per message and recipient.

use std::future::Future;

use super::{Statements, Step};
use crate::store::SessionId;

pub trait DeliveryStatements: Statements {
    /// Gives back every lease the sessions hold.
    fn release_leases(
        &mut self,
        sessions: &[SessionId],
    ) -> impl Future<Output = Step<(), Self>> + Send;
}
