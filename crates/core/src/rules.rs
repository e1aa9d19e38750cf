//! Rules every storage backend applies the same way, whatever its SQL: checks and views that
//! need no database, kept here so the embedded and the Postgres stores cannot drift apart.

use switchboard_proto::{
    DeliveryState, ItemKind, MessageId, Millis, PeerInfo, QuestionId, QuestionState, QuestionView,
    RecipientState, Scope, SentMessage, Target,
};

use crate::error::Rejection;
use crate::store::{NewMessage, NewTarget, PeerId, Reply, SessionId};

/// Where a broadcast goes: the peers whose `column` (as every backend names it) equals
/// `value`, or the whole room when `value` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastPlace {
    pub column: &'static str,
    pub value: Option<String>,
}

impl BroadcastPlace {
    /// The place of a broadcast in `scope` from a sender described by `info`; a sender with
    /// no working directory (or repository) cannot broadcast to its directory (or repository).
    pub fn of(scope: Scope, info: &PeerInfo) -> Result<Self, Rejection> {
        let (column, value, what) = match scope {
            Scope::Room => {
                return Ok(Self {
                    column: "cwd",
                    value: None,
                });
            }
            Scope::Dir => ("cwd", &info.cwd, "working directory"),
            Scope::Repo => ("git_root", &info.git_root, "git repository"),
        };
        match value {
            Some(v) => Ok(Self {
                column,
                value: Some(v.clone()),
            }),
            None => Err(Rejection::NoLocation {
                scope,
                what: what.into(),
            }),
        }
    }
}

/// Whether `by` may reply to `question`, asked of `asked`: only the peer asked, only once.
/// Within a room, peers may learn whom a question was asked, so a wrong answerer is told.
pub fn may_reply(question: &QuestionView, asked: PeerId, by: PeerId) -> Result<(), Rejection> {
    if asked != by {
        return Err(Rejection::NotYourQuestion {
            id: question.id,
            asked: question.to.clone(),
        });
    }
    if question.state != QuestionState::Open {
        return Err(Rejection::QuestionClosed {
            id: question.id,
            state: question.state.to_string(),
        });
    }
    Ok(())
}

/// How a reply is stored: the message it becomes, the question's new state as stored, and
/// the basis of an answer.
pub struct ReplyRecord {
    pub message: NewMessage,
    pub state: &'static str,
    pub basis: Option<&'static str>,
}

impl ReplyRecord {
    pub fn new(
        reply: &Reply,
        question: QuestionId,
        by: PeerId,
        asker: PeerId,
        expires_at: Millis,
    ) -> Self {
        let (kind, text, state, basis) = match reply {
            Reply::Answer { text, basis, .. } => {
                (ItemKind::Answer, text, "answered", Some(basis.as_str()))
            }
            Reply::Decline { reason } => (ItemKind::Decline, reason, "declined", None),
        };
        Self {
            message: NewMessage {
                kind,
                sender: by,
                target: NewTarget::Peer(asker),
                text: text.clone(),
                reply_to: Some(question.into()),
                idempotency_key: None,
                expires_at,
            },
            state,
            basis,
        }
    }
}

/// The sender's view of a message just stored: known without reading it back, since every
/// copy is fresh and queued. Recipients are listed by name.
pub fn fresh_sent(
    id: MessageId,
    to: Target,
    msg: &NewMessage,
    now: Millis,
    mut recipients: Vec<String>,
) -> SentMessage {
    recipients.sort();
    SentMessage {
        id,
        to,
        text: msg.text.clone(),
        reply_to: msg.reply_to,
        idempotency_key: msg.idempotency_key.clone(),
        created_at: now,
        expires_at: msg.expires_at,
        recipients: recipients
            .into_iter()
            .map(|peer| RecipientState {
                peer,
                state: DeliveryState::Queued,
                attempts: 0,
                delivered_at: None,
                read_at: None,
            })
            .collect(),
        duplicate: false,
    }
}

/// What a lease does to one queued item it found: the rule of delivery attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStep {
    /// The session asking already holds a current lease on the item (it leases again after a
    /// hand-over that failed, say a 503 on `mark_delivered`): the lease is extended and no
    /// attempt is counted, since nothing was lost.
    Renew,
    /// A new attempt: the item was never leased, its lease lapsed, or the session holding it
    /// ended. The lease goes to the asking session and `attempts` grows by one.
    Take,
    /// As [`Self::Take`], but the item already used up its attempts: it becomes `dead`.
    Bury,
}

impl LeaseStep {
    /// Decides for an item with `attempts` counted so far and its current lease (the session
    /// holding it and until when), leased by `session` at `now`. An item dies after its leases
    /// lapsed (or went to another session) `max_attempts` times — never because the session
    /// that holds it asked again.
    pub fn of(
        attempts: u32,
        lease: Option<(SessionId, Millis)>,
        session: SessionId,
        max_attempts: u32,
        now: Millis,
    ) -> Self {
        match lease {
            Some((holder, until)) if holder == session && until > now => LeaseStep::Renew,
            _ if attempts >= max_attempts => LeaseStep::Bury,
            _ => LeaseStep::Take,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LeaseStep;
    use switchboard_proto::SessionId;

    const S3: SessionId = SessionId(3);
    const S7: SessionId = SessionId(7);

    #[test]
    fn the_holder_renews_without_spending_an_attempt() {
        // Held by session 7 until 100: session 7 renews even at the attempt limit.
        assert_eq!(
            LeaseStep::of(5, Some((S7, 100)), S7, 5, 50),
            LeaseStep::Renew
        );
        // Lapsed: a new attempt, even for the same session.
        assert_eq!(
            LeaseStep::of(1, Some((S7, 100)), S7, 5, 100),
            LeaseStep::Take
        );
        // Never leased, or released by a session that ended.
        assert_eq!(LeaseStep::of(0, None, S7, 5, 0), LeaseStep::Take);
        // Another session after a lapse, with the attempts used up.
        assert_eq!(LeaseStep::of(5, Some((S3, 10)), S7, 5, 50), LeaseStep::Bury);
        assert_eq!(LeaseStep::of(5, None, S7, 5, 50), LeaseStep::Bury);
    }
}
