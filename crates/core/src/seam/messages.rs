//! The statements on the `messages` table.

use std::future::Future;

use switchboard_proto::{ItemKind, MessageId, Millis};

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

pub trait MessageStatements: Statements {
    /// Inserts a message; returns its id.
    fn insert_message(
        &mut self,
        row: MessageRow<'_>,
    ) -> impl Future<Output = Step<MessageId, Self>> + Send;
}
