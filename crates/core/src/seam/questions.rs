//! The statements on the `questions` table (a question's own fields and state, beside its
//! message) and `answer_sources` (an answer's sources, in order).

use std::future::Future;

use switchboard_proto::{Basis, MessageId, Millis, QuestionId, QuestionView};

use super::columns::{Col, Columns};
use super::{Statements, Step};
use crate::store::{PeerId, QuestionQuery};

/// The columns [`question`] decodes, in order, from [`QUESTION_FROM`].
pub const QUESTION_COLUMNS: &str = "m.id, a.name, r.name, m.body, q.context_hint, q.state,
    m.created_at, m.expires_at, q.reply_id, q.basis, q.closed_at, rm.body, m.sender_id,
    m.recipient_id";

/// A question with its message `m`, asker `a`, the peer asked `r` and its reply `rm`.
pub const QUESTION_FROM: &str = "FROM questions q
    JOIN messages m ON m.id = q.message_id
    JOIN peers a ON a.id = m.sender_id
    JOIN peers r ON r.id = m.recipient_id
    LEFT JOIN messages rm ON rm.id = q.reply_id";

/// A question read with [`QUESTION_COLUMNS`]. An unknown basis reads as none: the question
/// is still shown.
pub fn question(r: &dyn Columns) -> Col<QuestionRow> {
    Ok(QuestionRow {
        view: QuestionView {
            id: r.int(0)?,
            from: r.text(1)?,
            to: r.text(2)?,
            question: r.text(3)?,
            context_hint: r.opt_text(4)?,
            state: r.parsed(5)?,
            asked_at: r.int(6)?,
            expires_at: r.int(7)?,
            answer: None,
            decline_reason: None,
        },
        asker: r.int(12)?,
        asked: r.int(13)?,
        reply_id: r.opt_int(8)?,
        basis: r.opt_text(9)?.and_then(|b| b.parse().ok()),
        reply_text: r.opt_text(11)?,
        closed_at: r.opt_int(10)?,
    })
}

/// The columns [`expiring`] decodes, in order, from [`EXPIRING_FROM`].
pub const EXPIRING_COLUMNS: &str =
    "q.message_id, m.recipient_id, r.name, m.expires_at - m.created_at";

/// A question with its message `m` and the peer asked `r`.
pub const EXPIRING_FROM: &str = "FROM questions q
    JOIN messages m ON m.id = q.message_id
    JOIN peers r ON r.id = m.recipient_id";

/// A question due to expire, read with [`EXPIRING_COLUMNS`].
pub fn expiring(r: &dyn Columns) -> Col<Expiring> {
    Ok(Expiring {
        id: r.int(0)?,
        asked: r.int(1)?,
        asked_name: r.text(2)?,
        ttl: r.int(3)?,
    })
}

/// A question as read, before its answer's sources are: the view with `answer` and
/// `decline_reason` left empty and its state as stored, and what completes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionRow {
    pub view: QuestionView,
    pub asker: PeerId,
    pub asked: PeerId,
    pub reply_id: Option<MessageId>,
    pub basis: Option<Basis>,
    /// The text of the reply (an answer's, or a decline's reason).
    pub reply_text: Option<String>,
    pub closed_at: Option<Millis>,
}

/// An open question past its TTL, due to become an expiry notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiring {
    pub id: QuestionId,
    pub asked: PeerId,
    pub asked_name: String,
    /// The question's time to live, which its notice gets too.
    pub ttl: Millis,
}

/// How a question closes: in `state` (as stored), by the reply message, with the basis an
/// answer gives.
#[derive(Debug, Clone, Copy)]
pub struct Closing<'a> {
    pub state: &'a str,
    pub reply: MessageId,
    pub basis: Option<&'a str>,
    pub now: Millis,
}

/// Which questions of `peer` to list, as they stand at `now`.
#[derive(Debug, Clone, Copy)]
pub struct QuestionList {
    /// Whose questions; `None` for every question of the room.
    pub peer: Option<PeerId>,
    pub query: QuestionQuery,
    pub now: Millis,
}

pub trait QuestionStatements: Statements {
    fn insert_question(
        &mut self,
        message: MessageId,
        context_hint: Option<&str>,
    ) -> impl Future<Output = Step<(), Self>> + Send;

    /// The question's asker and the peer asked, keeping other replies to it (and its expiry)
    /// out until the commit.
    fn lock_question(
        &mut self,
        id: QuestionId,
    ) -> impl Future<Output = Step<Option<(PeerId, PeerId)>, Self>> + Send;

    /// Closes the question as `closing` says.
    fn close_question(
        &mut self,
        id: QuestionId,
        closing: Closing<'_>,
    ) -> impl Future<Output = Step<(), Self>> + Send;

    /// Stores an answer's sources in the order given.
    fn insert_answer_sources(
        &mut self,
        answer: MessageId,
        sources: &[String],
    ) -> impl Future<Output = Step<(), Self>> + Send;

    /// An answer's sources, in the order given.
    fn answer_sources(
        &mut self,
        answer: MessageId,
    ) -> impl Future<Output = Step<Vec<String>, Self>> + Send;

    /// The asker's open questions past their TTL, taken for expiring: one that another
    /// transaction is replying to is left to that reply.
    fn expiring_questions(
        &mut self,
        by: PeerId,
        now: Millis,
    ) -> impl Future<Output = Step<Vec<Expiring>, Self>> + Send;

    fn question_by_id(
        &mut self,
        id: QuestionId,
    ) -> impl Future<Output = Step<Option<QuestionRow>, Self>> + Send;

    /// The peer's questions (asked, received or both; open only or all), newest first.
    fn list_questions(
        &mut self,
        list: QuestionList,
    ) -> impl Future<Output = Step<Vec<QuestionRow>, Self>> + Send;
}
