//! The statements on the `deliveries` table: one row per message and recipient.

use std::future::Future;

use switchboard_proto::{Basis, DeliveryState, InboxItem, MessageId, Millis, RecipientState};

use super::{Statements, Step};
use crate::store::{PeerId, SessionId};

/// A delivery a lease may hand over, as read: the item without what the rules decide
/// (`seen_before`, `grounding` are left empty), with the delivery's state and lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseCandidate {
    pub item: InboxItem,
    pub state: DeliveryState,
    pub attempts: u32,
    /// The session holding the item's lease, and until when.
    pub lease: Option<(SessionId, Millis)>,
    /// The basis recorded on the question this message answers, if it answers one.
    pub basis: Option<Basis>,
}

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

    /// The recipient's queued deliveries, counted up to `cap`.
    fn queued_count(
        &mut self,
        recipient: PeerId,
        cap: u32,
    ) -> impl Future<Output = Step<u32, Self>> + Send;

    /// Marks the peer's queued or delivered copies of the messages read; returns how many
    /// changed.
    fn mark_read(
        &mut self,
        peer: PeerId,
        ids: &[MessageId],
        now: Millis,
    ) -> impl Future<Output = Step<u64, Self>> + Send;

    /// The peer's queued, unexpired deliveries that `session` may lease now (not leased, lease
    /// lapsed, or its own), oldest first; the lease decides their fate in this transaction.
    fn lease_candidates(
        &mut self,
        peer: PeerId,
        session: SessionId,
        now: Millis,
        limit: u32,
    ) -> impl Future<Output = Step<Vec<LeaseCandidate>, Self>> + Send;

    /// The peer's deliveries handed over but not acknowledged, oldest first.
    fn seen_deliveries(
        &mut self,
        peer: PeerId,
        limit: u32,
    ) -> impl Future<Output = Step<Vec<LeaseCandidate>, Self>> + Send;

    /// Extends the leases the session already holds on these deliveries.
    fn renew_leases(
        &mut self,
        peer: PeerId,
        ids: &[MessageId],
        until: Millis,
    ) -> impl Future<Output = Step<(), Self>> + Send;

    /// Leases the deliveries to `session`, counting one more attempt each.
    fn take_leases(
        &mut self,
        peer: PeerId,
        ids: &[MessageId],
        session: SessionId,
        until: Millis,
    ) -> impl Future<Output = Step<(), Self>> + Send;

    /// Declares the deliveries dead (their attempts are used up).
    fn bury_deliveries(
        &mut self,
        peer: PeerId,
        ids: &[MessageId],
    ) -> impl Future<Output = Step<(), Self>> + Send;

    /// Marks the queued deliveries the session leased as handed over; returns how many
    /// changed.
    fn mark_delivered(
        &mut self,
        session: SessionId,
        ids: &[MessageId],
        now: Millis,
    ) -> impl Future<Output = Step<u64, Self>> + Send;

    /// Those of `ids` the peer has no delivery of, in the order given.
    fn missing_deliveries(
        &mut self,
        peer: PeerId,
        ids: &[MessageId],
    ) -> impl Future<Output = Step<Vec<MessageId>, Self>> + Send;

    /// Every recipient's delivery of the message as stored, by recipient name.
    fn recipient_states(
        &mut self,
        message: MessageId,
    ) -> impl Future<Output = Step<Vec<RecipientState>, Self>> + Send;
}
