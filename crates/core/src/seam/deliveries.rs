//! The statements on the `deliveries` table: one row per message and recipient.

use std::future::Future;

use switchboard_proto::MessageId;

use super::{Statements, Step};
use crate::store::{PeerId, SessionId};

pub trait DeliveryStatements: Statements {
    /// One queued delivery of the message per recipient.
    fn insert_deliveries(
        &mut self,
        message: MessageId,
        recipients: &[PeerId],
    ) -> impl Future<Output = Step<(), Self>> + Send;

    /// Gives back every lease the sessions hold.
    fn release_leases(
        &mut self,
        sessions: &[SessionId],
    ) -> impl Future<Output = Step<(), Self>> + Send;
}
