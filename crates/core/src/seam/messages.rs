//! The statements on the `messages` table.

use std::future::Future;

use switchboard_proto::{ItemKind, LogEntry, MessageId, Millis, SentMessage, Target};

use super::columns::{Col, Columns};
use super::{Statements, Step};
use crate::store::PeerId;

/// Where a message went: the recipient's name in column `name`, or else (a broadcast) the
/// scope in `scope`.
pub(super) fn target(r: &dyn Columns, name: usize, scope: usize) -> Col<Target> {
    match r.opt_text(name)? {
        Some(name) => Ok(Target::Peer(name)),
        None => Ok(Target::Broadcast(r.parsed(scope)?)),
    }
}

/// The columns [`log_entry`] decodes, in order, from [`LOG_FROM`].
pub const LOG_COLUMNS: &str =
    "m.id, s.name, r.name, m.scope, m.body, m.reply_to, m.created_at, m.kind";

/// A message with its sender `s` and recipient `r` (none for a broadcast).
pub const LOG_FROM: &str = "FROM messages m
    JOIN peers s ON s.id = m.sender_id
    LEFT JOIN peers r ON r.id = m.recipient_id";

/// A message read with [`LOG_COLUMNS`].
pub fn log_entry(r: &dyn Columns) -> Col<LogEntry> {
    Ok(LogEntry {
        id: r.int(0)?,
        kind: r.parsed(7)?,
        from: r.text(1)?,
        to: target(r, 2, 3)?,
        text: r.text(4)?,
        reply_to: r.opt_int(5)?,
        created_at: r.int(6)?,
    })
}

/// The columns [`sent_message`] decodes, in order, from `messages m` with its recipient
/// `peers r` (none for a broadcast).
pub const SENT_COLUMNS: &str =
    "m.id, r.name, m.scope, m.body, m.reply_to, m.idempotency_key, m.created_at, m.expires_at";

/// A sent message read with [`SENT_COLUMNS`], without its recipients.
pub fn sent_message(r: &dyn Columns) -> Col<SentMessage> {
    Ok(SentMessage {
        id: r.int(0)?,
        to: target(r, 1, 2)?,
        text: r.text(3)?,
        reply_to: r.opt_int(4)?,
        idempotency_key: r.opt_text(5)?,
        created_at: r.int(6)?,
        expires_at: r.int(7)?,
        recipients: Vec::new(),
        duplicate: false,
    })
}

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
    /// Whether the message counts against the sender's rate limit: it then takes the
    /// sender's next send number (`sender_seq`). The notices the store writes on a peer's
    /// behalf don't.
    pub counted: bool,
    /// Who gets a queued copy (a delivery) of it.
    pub copies_to: &'a [PeerId],
}

pub trait MessageStatements: Statements {
    /// Inserts a message with one queued delivery per recipient in `copies_to`; returns its
    /// id. One statement where the backend binds arrays, so a send costs one trip for both.
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

    /// When the sender's `n`th newest counted message was sent (`n` = 1 is the newest); none
    /// when it sent fewer, or the message is gone. Counted messages are numbered per sender
    /// (`sender_seq`), so this is one lookup in the (sender, number) index, however many
    /// messages the window holds: the rate limit's check.
    fn nth_newest_send(
        &mut self,
        sender: PeerId,
        n: u32,
    ) -> impl Future<Output = Step<Option<Millis>, Self>> + Send;

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
