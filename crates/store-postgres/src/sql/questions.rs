//! The `questions` and `answer_sources` tables. A reply and an expiry lock the question's row,
//! so a question is closed exactly once.

use tokio_postgres::Row;

use switchboard_core::seam::{ExpiringQuestion, QuestionRow, QuestionStatements};
use switchboard_core::{PeerId, QuestionQuery};
use switchboard_proto::{MessageId, Millis, QuestionView};

use super::{big, col, exec, opt, parse, rows};
use crate::fault::OpResult;
use crate::tx::PgTx;

const SELECT_QUESTION: &str = "SELECT m.id, a.name, r.name, m.body, q.context_hint, q.state,
        m.created_at, m.expires_at, q.reply_id, q.basis, q.closed_at, rm.body, m.sender_id,
        m.recipient_id
    FROM questions q
    JOIN messages m ON m.id = q.message_id
    JOIN peers a ON a.id = m.sender_id
    JOIN peers r ON r.id = m.recipient_id
    LEFT JOIN messages rm ON rm.id = q.reply_id";

fn question_row(r: &Row) -> OpResult<QuestionRow> {
    let basis: Option<&str> = col(r, 9)?;
    Ok(QuestionRow {
        view: QuestionView {
            id: col(r, 0)?,
            from: col(r, 1)?,
            to: col(r, 2)?,
            question: col(r, 3)?,
            context_hint: col(r, 4)?,
            state: parse(r, 5)?,
            asked_at: col(r, 6)?,
            expires_at: col(r, 7)?,
            answer: None,
            decline_reason: None,
        },
        asker: col(r, 12)?,
        asked: col(r, 13)?,
        reply_id: col(r, 8)?,
        basis: basis.and_then(|b| b.parse().ok()),
        reply_text: col(r, 11)?,
        closed_at: col(r, 10)?,
    })
}

impl QuestionStatements for PgTx {
    async fn insert_question(
        &mut self,
        message: MessageId,
        context_hint: Option<&str>,
    ) -> OpResult<()> {
        let sql = "INSERT INTO questions (message_id, context_hint, state) VALUES ($1, $2, 'open')";
        exec(self.conn(), sql, &[&message, &context_hint]).await?;
        Ok(())
    }

    // The row lock makes a second reply wait, then find the question closed.
    async fn lock_question(&mut self, id: MessageId) -> OpResult<Option<(PeerId, PeerId)>> {
        let sql = "SELECT m.sender_id, m.recipient_id FROM questions q
             JOIN messages m ON m.id = q.message_id WHERE q.message_id = $1 FOR UPDATE OF q";
        match opt(self.conn(), sql, &[&id]).await? {
            Some(row) => Ok(Some((col(&row, 0)?, col(&row, 1)?))),
            None => Ok(None),
        }
    }

    async fn close_question(
        &mut self,
        id: MessageId,
        state: &str,
        reply: MessageId,
        basis: Option<&str>,
        now: Millis,
    ) -> OpResult<()> {
        let sql = "UPDATE questions SET state = $2, reply_id = $3, basis = $4, closed_at = $5
             WHERE message_id = $1";
        exec(self.conn(), sql, &[&id, &state, &reply, &basis, &now]).await?;
        Ok(())
    }

    async fn insert_answer_sources(
        &mut self,
        answer: MessageId,
        sources: &[String],
    ) -> OpResult<()> {
        let positions: Vec<i64> = (0_i64..).take(sources.len()).collect();
        let sql = "INSERT INTO answer_sources (answer_id, position, source)
             SELECT $1, p, s FROM unnest($2::bigint[], $3::text[]) AS t(p, s)";
        exec(self.conn(), sql, &[&answer, &positions, &sources]).await?;
        Ok(())
    }

    async fn answer_sources(&mut self, answer: MessageId) -> OpResult<Vec<String>> {
        let sql = "SELECT source FROM answer_sources WHERE answer_id = $1 ORDER BY position";
        rows(self.conn(), sql, &[&answer])
            .await?
            .iter()
            .map(|r| col(r, 0))
            .collect()
    }

    // A question whose reply is being written right now is locked by that reply: skipped here,
    // it is left to the reply to decide.
    async fn expiring_questions(
        &mut self,
        asker: PeerId,
        now: Millis,
    ) -> OpResult<Vec<ExpiringQuestion>> {
        let sql = "SELECT q.message_id, m.recipient_id, r.name, m.expires_at - m.created_at
             FROM questions q
             JOIN messages m ON m.id = q.message_id
             JOIN peers r ON r.id = m.recipient_id
             WHERE q.state = 'open' AND m.sender_id = $1 AND m.expires_at <= $2
             FOR UPDATE OF q SKIP LOCKED";
        rows(self.conn(), sql, &[&asker, &now])
            .await?
            .iter()
            .map(|r| {
                Ok(ExpiringQuestion {
                    id: col(r, 0)?,
                    asked: col(r, 1)?,
                    asked_name: col(r, 2)?,
                    ttl: col(r, 3)?,
                })
            })
            .collect()
    }

    async fn question_by_id(&mut self, id: MessageId) -> OpResult<Option<QuestionRow>> {
        let sql = format!("{SELECT_QUESTION} WHERE q.message_id = $1");
        opt(self.conn(), &sql, &[&id])
            .await?
            .as_ref()
            .map(question_row)
            .transpose()
    }

    async fn list_questions(
        &mut self,
        peer: PeerId,
        q: QuestionQuery,
        now: Millis,
    ) -> OpResult<Vec<QuestionRow>> {
        let sql = format!(
            "{SELECT_QUESTION}
             WHERE (($2 AND m.sender_id = $1) OR ($3 AND m.recipient_id = $1))
               AND (NOT $4 OR (q.state = 'open' AND m.expires_at > $5))
             ORDER BY m.id DESC LIMIT $6"
        );
        let limit = big(q.limit);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
            [&peer, &q.asked, &q.received, &q.open_only, &now, &limit];
        rows(self.conn(), &sql, &params)
            .await?
            .iter()
            .map(question_row)
            .collect()
    }
}
