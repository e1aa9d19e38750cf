//! The statements on the `questions` table (a question's own fields and state, beside its
//! message) and `answer_sources` (an answer's sources, in order).

use std::future::Future;

use switchboard_proto::{Basis, MessageId, Millis, QuestionView};

use super::{Statements, Step};
use crate::store::{PeerId, QuestionQuery};

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
pub struct ExpiringQuestion {
    pub id: MessageId,
    pub asked: PeerId,
    pub asked_name: String,
    /// The question's time to live, which its notice gets too.
    pub ttl: Millis,
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
        id: MessageId,
    ) -> impl Future<Output = Step<Option<(PeerId, PeerId)>, Self>> + Send;

    /// Closes the question in `state` (as stored) by the reply message.
    fn close_question(
        &mut self,
        id: MessageId,
        state: &str,
        reply: MessageId,
        basis: Option<&str>,
        now: Millis,
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
        asker: PeerId,
        now: Millis,
    ) -> impl Future<Output = Step<Vec<ExpiringQuestion>, Self>> + Send;

    fn question_by_id(
        &mut self,
        id: MessageId,
    ) -> impl Future<Output = Step<Option<QuestionRow>, Self>> + Send;

    /// The peer's questions (asked, received or both; open only or all), newest first.
    fn list_questions(
        &mut self,
        peer: PeerId,
        query: QuestionQuery,
        now: Millis,
    ) -> impl Future<Output = Step<Vec<QuestionRow>, Self>> + Send;
}
