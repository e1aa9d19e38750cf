//! The `questions` and `answer_sources` tables.

use rusqlite::{OptionalExtension, Row, params};

use switchboard_core::seam::{ExpiringQuestion, QuestionRow, QuestionStatements};
use switchboard_core::{PeerId, QuestionQuery};
use switchboard_proto::{MessageId, Millis, QuestionView};

use super::parse_col;
use crate::fault::OpResult;
use crate::tx::LiteTx;

const SELECT_QUESTION: &str = "SELECT m.id, a.name, r.name, m.body, q.context_hint, q.state,
        m.created_at, m.expires_at, q.reply_id, q.basis, q.closed_at, rm.body, m.sender_id,
        m.recipient_id
    FROM questions q
    JOIN messages m ON m.id = q.message_id
    JOIN peers a ON a.id = m.sender_id
    JOIN peers r ON r.id = m.recipient_id
    LEFT JOIN messages rm ON rm.id = q.reply_id";

fn question_row(r: &Row<'_>) -> rusqlite::Result<QuestionRow> {
    let basis: Option<String> = r.get(9)?;
    Ok(QuestionRow {
        view: QuestionView {
            id: r.get(0)?,
            from: r.get(1)?,
            to: r.get(2)?,
            question: r.get(3)?,
            context_hint: r.get(4)?,
            state: parse_col(r, 5)?,
            asked_at: r.get(6)?,
            expires_at: r.get(7)?,
            answer: None,
            decline_reason: None,
        },
        asker: r.get(12)?,
        asked: r.get(13)?,
        reply_id: r.get(8)?,
        basis: basis.and_then(|b| b.parse().ok()),
        reply_text: r.get(11)?,
        closed_at: r.get(10)?,
    })
}

impl QuestionStatements for LiteTx {
    async fn insert_question(
        &mut self,
        message: MessageId,
        context_hint: Option<&str>,
    ) -> OpResult<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO questions (message_id, context_hint, state) VALUES (?1, ?2, 'open')",
            )?
            .execute(params![message, context_hint])?;
        Ok(())
    }

    // No lock: the one writer thread keeps every other reply out until the commit.
    async fn lock_question(&mut self, id: MessageId) -> OpResult<Option<(PeerId, PeerId)>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT m.sender_id, m.recipient_id FROM questions q
                 JOIN messages m ON m.id = q.message_id WHERE q.message_id = ?1",
            )?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    async fn close_question(
        &mut self,
        id: MessageId,
        state: &str,
        reply: MessageId,
        basis: Option<&str>,
        now: Millis,
    ) -> OpResult<()> {
        self.conn
            .prepare_cached(
                "UPDATE questions SET state = ?2, reply_id = ?3, basis = ?4, closed_at = ?5
                 WHERE message_id = ?1",
            )?
            .execute(params![id, state, reply, basis, now])?;
        Ok(())
    }

    async fn insert_answer_sources(
        &mut self,
        answer: MessageId,
        sources: &[String],
    ) -> OpResult<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO answer_sources (answer_id, position, source) VALUES (?1, ?2, ?3)",
        )?;
        for (position, source) in (0_i64..).zip(sources) {
            stmt.execute(params![answer, position, source])?;
        }
        Ok(())
    }

    async fn answer_sources(&mut self, answer: MessageId) -> OpResult<Vec<String>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT source FROM answer_sources WHERE answer_id = ?1 ORDER BY position",
            )?
            .query_map([answer], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    async fn expiring_questions(
        &mut self,
        asker: PeerId,
        now: Millis,
    ) -> OpResult<Vec<ExpiringQuestion>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT q.message_id, m.recipient_id, r.name, m.expires_at - m.created_at
                 FROM questions q
                 JOIN messages m ON m.id = q.message_id
                 JOIN peers r ON r.id = m.recipient_id
                 WHERE q.state = 'open' AND m.sender_id = ?1 AND m.expires_at <= ?2",
            )?
            .query_map(params![asker, now], |r| {
                Ok(ExpiringQuestion {
                    id: r.get(0)?,
                    asked: r.get(1)?,
                    asked_name: r.get(2)?,
                    ttl: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    async fn question_by_id(&mut self, id: MessageId) -> OpResult<Option<QuestionRow>> {
        let sql = format!("{SELECT_QUESTION} WHERE q.message_id = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([id], question_row)
            .optional()?)
    }

    async fn list_questions(
        &mut self,
        peer: PeerId,
        q: QuestionQuery,
        now: Millis,
    ) -> OpResult<Vec<QuestionRow>> {
        let sql = format!(
            "{SELECT_QUESTION}
             WHERE ((?2 AND m.sender_id = ?1) OR (?3 AND m.recipient_id = ?1))
               AND (NOT ?4 OR (q.state = 'open' AND m.expires_at > ?5))
             ORDER BY m.id DESC LIMIT ?6"
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_map(
                params![peer, q.asked, q.received, q.open_only, now, q.limit],
                question_row,
            )?
            .collect::<Result<_, _>>()?)
    }
}
