//! Messages and delivery records: send, lease, hand-over, acknowledgement, and the views of
//! sender, recipient and observer.

use switchboard_proto::{ItemKind, MessageId, Millis};

use crate::seam::{Executor, MessageRow, Step};
use crate::store::PeerId;
use crate::wake::Wake;

/// A message the store itself writes on a peer's behalf (an expiry or job notice): no limits
/// apply, since refusing it would leave someone waiting for news that never comes.
pub struct Notice<'a> {
    pub kind: ItemKind,
    pub from: PeerId,
    pub to: PeerId,
    pub text: &'a str,
    pub reply_to: Option<MessageId>,
    pub expires_at: Millis,
}

/// Stores a notice with its queued delivery and wakes the recipient; returns its id.
pub async fn notice<X: Executor>(x: &mut X, n: &Notice<'_>, now: Millis) -> Step<MessageId, X> {
    let id = x
        .insert_message(MessageRow {
            kind: n.kind,
            sender: n.from,
            recipient: Some(n.to),
            scope: None,
            body: n.text,
            reply_to: n.reply_to,
            idempotency_key: None,
            created_at: now,
            expires_at: n.expires_at,
        })
        .await?;
    x.insert_deliveries(id, &[n.to]).await?;
    x.wake(Wake::Inbox(n.to));
    Ok(id)
}
