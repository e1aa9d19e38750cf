//! Rules every storage backend applies the same way, whatever its SQL: checks and views that
//! need no database, kept here so the embedded and the Postgres stores cannot drift apart.

use switchboard_proto::{
    DeliveryState, ItemKind, MessageId, Millis, PeerInfo, QuestionState, QuestionView,
    RecipientState, Scope, SentMessage, Target,
};

use crate::error::Rejection;
use crate::store::{NewMessage, NewTarget, PeerId, Reply};

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
        question: MessageId,
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
                reply_to: Some(question),
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
