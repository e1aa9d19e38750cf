//! The statements on the `messages` table.

use std::future::Future;

use switchboard_proto::{ItemKind, LogEntry, MessageId, Millis, SentMessage};

use super::{Statements, Step};
use crate::store::PeerId;

/// A message row to insert. A direct message names its recipient, a broadcast its scope.
#[derive(Debug, Clone, Copy)]
pub struct MessageRow<'a> {
    pub kind: ItemKind,
    pub sender: PeerId,
    pub recipient: Option<PeerId>,
    pub scope: Option<&'a str>,
    pub body: &'a str,
    pub reply_to: Option<MessageId>,
    pub idempotency_key: Option<&'a str>,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// A sender's messages inside the rate window: how many (counted up to the limit, never
/// further) and when the oldest of them was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentSends {
    pub count: u32,
    pub oldest: Option<Millis>,
}

pub trait MessageStatements: Statements {
    /// Inserts a message; returns its id.
    fn insert_message(
        &mut self,
        row: MessageRow<'_>,
    ) -> impl Future<Output = Step<MessageId, Self>> + Send;

    /// The message the sender already sent under this idempotency key.
    fn message_by_key(
        &mut self,
        sender: PeerId,
        key: &str,
    ) -> impl Future<Output = Step<Option<MessageId>, Self>> + Send;

    /// The sender's messages created after `since`, counted up to `limit`.
    fn recent_sends(
        &mut self,
        sender: PeerId,
        since: Millis,
        limit: u32,
    ) -> impl Future<Output = Step<RecentSends, Self>> + Send;

    /// Whether the peer received (a delivery) or sent the message: what a reply may answer.
    fn knows_message(
        &mut self,
        peer: PeerId,
        id: MessageId,
    ) -> impl Future<Output = Step<bool, Self>> + Send;

    /// Whether the message exists and was sent by `sender`.
    fn sent_by(
        &mut self,
        id: MessageId,
        sender: PeerId,
    ) -> impl Future<Output = Step<bool, Self>> + Send;

    /// The ids of the sender's `limit` newest messages, newest first.
    fn recent_sent(
        &mut self,
        sender: PeerId,
        limit: u32,
    ) -> impl Future<Output = Step<Vec<MessageId>, Self>> + Send;

    /// The sender's view of a message that exists, without its recipients (see
    /// [`DeliveryStatements::recipient_states`](super::DeliveryStatements::recipient_states)).
    fn sent_message(
        &mut self,
        id: MessageId,
    ) -> impl Future<Output = Step<SentMessage, Self>> + Send;

    /// Every message after `after`, oldest first.
    fn log(
        &mut self,
        after: MessageId,
        limit: u32,
    ) -> impl Future<Output = Step<Vec<LogEntry>, Self>> + Send;

    /// The messages delivered to `peer` (directly or by broadcast) after `after`, oldest first.
    fn log_to(
        &mut self,
        peer: PeerId,
        after: MessageId,
        limit: u32,
    ) -> impl Future<Output = Step<Vec<LogEntry>, Self>> + Send;

    /// The newest message's id, 0 when there is none.
    fn last_message_id(&mut self) -> impl Future<Output = Step<MessageId, Self>> + Send;
}
