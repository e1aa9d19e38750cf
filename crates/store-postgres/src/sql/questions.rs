//! The `questions` and `answer_sources` tables. A reply and an expiry lock the question's row,
//! so a question is closed exactly once.

use switchboard_core::PeerId;
use switchboard_core::seam::Closing;
use switchboard_core::seam::columns::{int_pair, text};
use switchboard_core::seam::{EXPIRING_COLUMNS, EXPIRING_FROM, Expiring, QUESTION_COLUMNS};
use switchboard_core::seam::{
    QUESTION_FROM, QuestionList, QuestionRow, QuestionStatements, expiring, question,
};
use switchboard_proto::{MessageId, Millis, QuestionId};

use super::{Params, big};
use crate::fault::OpResult;
use crate::tx::PgTx;

impl QuestionStatements for PgTx {
    async fn insert_question(&mut self, id: MessageId, hint: Option<&str>) -> OpResult<()> {
        let sql = "INSERT INTO questions (message_id, context_hint, state) VALUES ($1, $2, 'open')";
        self.exec(sql, &[&id, &hint]).await?;
        Ok(())
    }

    // The row lock makes a second reply wait, then find the question closed.
    async fn lock_question(&mut self, id: QuestionId) -> OpResult<Option<(PeerId, PeerId)>> {
        let sql = "SELECT m.sender_id, m.recipient_id FROM questions q
             JOIN messages m ON m.id = q.message_id WHERE q.message_id = $1 FOR UPDATE OF q";
        self.opt(sql, &[&id], int_pair).await
    }

    async fn close_question(&mut self, id: QuestionId, c: Closing<'_>) -> OpResult<()> {
        let sql = "UPDATE questions SET state = $2, reply_id = $3, basis = $4, closed_at = $5
             WHERE message_id = $1";
        self.exec(sql, &[&id, &c.state, &c.reply, &c.basis, &c.now])
            .await?;
        Ok(())
    }

    async fn insert_answer_sources(&mut self, id: MessageId, sources: &[String]) -> OpResult<()> {
        let positions: Vec<i64> = (0_i64..).take(sources.len()).collect();
        let sql = "INSERT INTO answer_sources (answer_id, position, source)
             SELECT $1, p, s FROM unnest($2::bigint[], $3::text[]) AS t(p, s)";
        self.exec(sql, &[&id, &positions, &sources]).await?;
        Ok(())
    }

    async fn answer_sources(&mut self, answer: MessageId) -> OpResult<Vec<String>> {
        let sql = "SELECT source FROM answer_sources WHERE answer_id = $1 ORDER BY position";
        self.all(sql, &[&answer], text).await
    }

    // A question whose reply is being written right now is locked by that reply: skipped here,
    // it is left to the reply to decide.
    async fn expiring_questions(&mut self, by: PeerId, now: Millis) -> OpResult<Vec<Expiring>> {
        let sql = format!(
            "SELECT {EXPIRING_COLUMNS} {EXPIRING_FROM}
             WHERE q.state = 'open' AND m.sender_id = $1 AND m.expires_at <= $2
             FOR UPDATE OF q SKIP LOCKED"
        );
        self.all(&sql, &[&by, &now], expiring).await
    }

    async fn question_by_id(&mut self, id: QuestionId) -> OpResult<Option<QuestionRow>> {
        let sql = format!("SELECT {QUESTION_COLUMNS} {QUESTION_FROM} WHERE q.message_id = $1");
        self.opt(&sql, &[&id], question).await
    }

    // Ordered by the question's own key (the same value as `m.id`), so the walk starts from the
    // few questions rather than every message of the room, newest first, and stops at the
    // limit (ordering by `m.id` walked all messages: 4 ms a call at 100k messages).
    async fn list_questions(&mut self, l: QuestionList) -> OpResult<Vec<QuestionRow>> {
        let (peer, q, now) = (l.peer, l.query, l.now);
        let sql = format!(
            "SELECT {QUESTION_COLUMNS} {QUESTION_FROM}
             WHERE ($1::BIGINT IS NULL OR ($2 AND m.sender_id = $1) OR ($3 AND m.recipient_id = $1))
               AND (NOT $4 OR (q.state = 'open' AND m.expires_at > $5))
             ORDER BY q.message_id DESC LIMIT $6"
        );
        let limit = big(q.limit);
        let params: Params = &[&peer, &q.asked, &q.received, &q.open_only, &now, &limit];
        self.all(&sql, params, question).await
    }
}
