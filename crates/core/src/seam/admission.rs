//! What a send reads before it writes, asked as one request.
//!
//! A send checks its idempotency key, resolves its recipient's name, locks its parties and
//! reads the sender's rate, in that order (see [`crate::procedures::mail`]). Each is a
//! statement of its own, and the default [`AdmissionStatements::admit`] runs them one by one,
//! stopping where the answer is decided: what an in-process backend does, where a statement
//! costs no trip. A backend that pays a round trip per statement may send them all at once,
//! as long as the database runs each after the one before it with a snapshot of its own (the
//! rate must be read after the lock is held, so it counts every send committed before this
//! one); what it answers is then the same. The rules that read these facts stay in the
//! procedure.

use std::future::Future;

use switchboard_proto::{MessageId, Millis};

use super::{MessageStatements, Party, PeerStatements, Step};
use crate::store::PeerId;

/// Whom a send is to, as its admission resolves it.
#[derive(Debug, Clone, Copy)]
pub enum AdmitTo<'a> {
    /// The peer of this name (looked up, inside the transaction).
    Name(&'a str),
    /// These peers, resolved by the caller (a peer id, or a broadcast's live peers).
    Peers(&'a [PeerId]),
}

/// One send's admission reads.
#[derive(Debug, Clone, Copy)]
pub struct Admitting<'a> {
    pub sender: PeerId,
    /// The send's idempotency key: a message already sent under it decides the send.
    pub key: Option<&'a str>,
    pub to: AdmitTo<'a>,
    /// Which of the sender's newest counted sends the rate limit reads (its limit); none when
    /// there is no lookup to make.
    pub rate_nth: Option<u32>,
}

/// What a send's admission read. Later fields are empty when an earlier one decided the send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admitted {
    /// The message the sender already sent under the key.
    pub duplicate: Option<MessageId>,
    /// The peer a [`AdmitTo::Name`] names; none when the name is nobody's (and always for
    /// [`AdmitTo::Peers`], whose recipients the caller has).
    pub named: Option<PeerId>,
    /// The sender and the recipients that exist, locked until the commit, in id order.
    pub parties: Vec<Party>,
    /// When the sender's `rate_nth`th newest counted message was sent.
    pub nth_newest: Option<Millis>,
}

/// The reads of a send's admission (see the module's documentation).
pub trait AdmissionStatements: PeerStatements + MessageStatements {
    /// Reads, in order: the message under the key (which decides the send), the recipient by
    /// name (none decides it too), the parties locked in id order, and the sender's
    /// `rate_nth`th newest send.
    fn admit(&mut self, a: Admitting<'_>) -> impl Future<Output = Step<Admitted, Self>> + Send {
        async move {
            if let Some(key) = a.key
                && let Some(id) = self.message_by_key(a.sender, key).await?
            {
                return Ok(Admitted {
                    duplicate: Some(id),
                    ..Admitted::default()
                });
            }
            let named = match a.to {
                AdmitTo::Peers(_) => None,
                AdmitTo::Name(name) => match self.peer_id_by_name(name).await? {
                    Some(id) => Some(id),
                    None => return Ok(Admitted::default()),
                },
            };
            let recipients = match a.to {
                AdmitTo::Peers(ids) => ids,
                AdmitTo::Name(_) => named.as_slice(),
            };
            let parties = self.lock_parties(&party_ids(a.sender, recipients)).await?;
            let nth_newest = match a.rate_nth {
                Some(n) => self.nth_newest_send(a.sender, n).await?,
                None => None,
            };
            Ok(Admitted {
                duplicate: None,
                named,
                parties,
                nth_newest,
            })
        }
    }
}

/// The ids a send locks: its recipients and its sender, in id order, each once (the order every
/// transaction locks peers in, so two never wait on each other).
pub fn party_ids(sender: PeerId, recipients: &[PeerId]) -> Vec<PeerId> {
    let mut ids = recipients.to_vec();
    ids.push(sender);
    ids.sort_unstable();
    ids.dedup();
    ids
}
