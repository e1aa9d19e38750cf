//! The statements on the `deliveries` table: one row per message and recipient.

use std::future::Future;

use switchboard_proto::{Basis, DeliveryState, InboxItem, MessageId, Millis, RecipientState};

use super::columns::{Col, Columns};
use super::messages::target;
use super::{Statements, Step};
use crate::store::{PeerId, SessionId};

/// The columns [`candidate`] decodes, in order, from `deliveries d` joined by
/// [`CANDIDATE_JOINS`].
pub const CANDIDATE_COLUMNS: &str = "m.id, s.name, r.name, m.scope, m.body, m.reply_to,
    m.created_at, d.state, d.attempts, m.kind, q.context_hint, a.basis, d.lease_session,
    d.lease_until";

/// What [`CANDIDATE_COLUMNS`] reads besides `deliveries d`: the message, its sender and
/// recipient, the question it asks and the question it answers.
pub const CANDIDATE_JOINS: &str = "JOIN messages m ON m.id = d.message_id
    JOIN peers s ON s.id = m.sender_id
    LEFT JOIN peers r ON r.id = m.recipient_id
    LEFT JOIN questions q ON q.message_id = m.id
    LEFT JOIN questions a ON a.reply_id = m.id";

/// A delivery read with [`CANDIDATE_COLUMNS`].
pub fn candidate(r: &dyn Columns) -> Col<LeaseCandidate> {
    Ok(LeaseCandidate {
        item: InboxItem {
            id: r.int(0)?,
            kind: r.parsed(9)?,
            from: r.text(1)?,
            to: target(r, 2, 3)?,
            text: r.text(4)?,
            reply_to: r.opt_int(5)?,
            created_at: r.int(6)?,
            seen_before: false,
            context_hint: r.opt_text(10)?,
            grounding: None,
        },
        state: r.parsed(7)?,
        attempts: r.count(8)?,
        lease: match (r.opt_int(12)?, r.opt_int(13)?) {
            (Some(session), Some(until)) => Some((session, until)),
            _ => None,
        },
        basis: r.opt_parsed(11)?,
    })
}

/// The columns [`recipient_state`] decodes, in order, from `deliveries d` joined with its
/// recipient `peers p`.
pub const RECIPIENT_COLUMNS: &str = "p.name, d.state, d.attempts, d.delivered_at, d.read_at";

/// A recipient's delivery read with [`RECIPIENT_COLUMNS`].
pub fn recipient_state(r: &dyn Columns) -> Col<RecipientState> {
    Ok(RecipientState {
        peer: r.text(0)?,
        state: r.parsed(1)?,
        attempts: r.count(2)?,
        delivered_at: r.opt_int(3)?,
        read_at: r.opt_int(4)?,
    })
}

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

/// One lease of a peer's inbox by a session, as its statements read and write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leasing {
    pub peer: PeerId,
    pub session: SessionId,
    pub now: Millis,
    /// When the leases it takes or renews run out.
    pub until: Millis,
    /// How many items it hands over at the most.
    pub limit: u32,
}

/// The deliveries `ids` a session of `peer` leased, handed over at `now`.
#[derive(Debug, Clone, Copy)]
pub struct Handover<'a> {
    pub peer: PeerId,
    pub session: SessionId,
    pub ids: &'a [MessageId],
    pub now: Millis,
}

pub trait DeliveryStatements: Statements {
    /// Gives back every lease the sessions hold.
    fn release_leases(
        &mut self,
        sessions: &[SessionId],
    ) -> impl Future<Output = Step<(), Self>> + Send;

    /// Marks the peer's queued or delivered copies of the messages read; returns how many
    /// changed.
    fn mark_read(
        &mut self,
        peer: PeerId,
        ids: &[MessageId],
        now: Millis,
    ) -> impl Future<Output = Step<u64, Self>> + Send;

    /// The peer's queued, unexpired deliveries that the session may lease now (not leased,
    /// lease lapsed, or its own), oldest first, up to the limit; the lease decides their fate
    /// in this transaction.
    fn lease_candidates(
        &mut self,
        lease: &Leasing,
    ) -> impl Future<Output = Step<Vec<LeaseCandidate>, Self>> + Send;

    /// The peer's deliveries handed over but not acknowledged, oldest first.
    fn seen_deliveries(
        &mut self,
        peer: PeerId,
        limit: u32,
    ) -> impl Future<Output = Step<Vec<LeaseCandidate>, Self>> + Send;

    /// Extends the leases the session already holds on the peer's deliveries `ids`.
    fn renew_leases(
        &mut self,
        lease: &Leasing,
        ids: &[MessageId],
    ) -> impl Future<Output = Step<(), Self>> + Send;

    /// Leases the peer's deliveries `ids` to the session, counting one more attempt each.
    fn take_leases(
        &mut self,
        lease: &Leasing,
        ids: &[MessageId],
    ) -> impl Future<Output = Step<(), Self>> + Send;

    /// Declares the peer's queued deliveries of the messages dead (their attempts are used
    /// up); a copy no longer queued is left as it is.
    fn bury_deliveries(
        &mut self,
        peer: PeerId,
        ids: &[MessageId],
    ) -> impl Future<Output = Step<(), Self>> + Send;

    /// Marks the queued deliveries the session leased as handed over; returns how many
    /// changed.
    fn mark_delivered(
        &mut self,
        handover: Handover<'_>,
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
