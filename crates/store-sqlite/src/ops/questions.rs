//! Questions and their one reply. A question, an answer, a decline and an expiry notice are
//! messages (so they reach peers by every delivery path); the `questions` row holds the
//! question's own fields and state, `answer_sources` the answer's sources.

use rusqlite::{Connection, OptionalExtension, Row, params};

use switchboard_core::rules::{ReplyRecord, may_reply};
use switchboard_core::{
    Admission, NewMessage, NewQuestion, NewTarget, PeerId, QuestionQuery, Rejection, Reply, Wake,
};
use switchboard_proto::{
    AnswerView, Basis, ItemKind, MessageId, Millis, QuestionState, QuestionView,
};

use super::{mail, parse_col, peers};
use crate::fault::OpResult;
use crate::liveness::Liveness;

pub fn ask(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    live: &Liveness,
    q: &NewQuestion,
    adm: Admission,
    now: Millis,
) -> OpResult<QuestionView> {
    let msg = NewMessage {
        kind: ItemKind::Question,
        sender: q.asker,
        target: NewTarget::Peer(q.to),
        text: q.question.clone(),
        reply_to: None,
        idempotency_key: None,
        expires_at: q.expires_at,
    };
    let sent = mail::send(conn, wakes, live, &msg, adm, now)?;
    conn.prepare_cached(
        "INSERT INTO questions (message_id, context_hint, state) VALUES (?1, ?2, 'open')",
    )?
    .execute(params![sent.id, q.context_hint])?;
    load(conn, sent.id, now)
}

#[allow(clippy::too_many_arguments)]
pub fn reply(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    live: &Liveness,
    question: MessageId,
    by: PeerId,
    reply: &Reply,
    expires_at: Millis,
    adm: Admission,
    now: Millis,
) -> OpResult<QuestionView> {
    let parties: Option<(PeerId, PeerId)> = conn
        .prepare_cached(
            "SELECT m.sender_id, m.recipient_id FROM questions q
             JOIN messages m ON m.id = q.message_id WHERE q.message_id = ?1",
        )?
        .query_row([question], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    // A refusal names the replier first when the replier is no peer at all; the lookup is made
    // only on the way to a refusal.
    let Some((asker, asked)) = parties else {
        peers::require(conn, by)?;
        return Err(Rejection::UnknownQuestion { id: question }.into());
    };
    if let Err(refused) = may_reply(&load(conn, question, now)?, asked, by) {
        peers::require(conn, by)?;
        return Err(refused.into());
    }
    let record = ReplyRecord::new(reply, question, by, asker, expires_at);
    let sent = mail::send(conn, wakes, live, &record.message, adm, now)?;
    close(conn, question, record.state, sent.id, record.basis, now)?;
    if let Reply::Answer { sources, .. } = reply {
        let mut insert = conn.prepare_cached(
            "INSERT INTO answer_sources (answer_id, position, source) VALUES (?1, ?2, ?3)",
        )?;
        for (i, s) in sources.iter().enumerate() {
            insert.execute(params![sent.id, i64::try_from(i).unwrap_or(i64::MAX), s])?;
        }
    }
    load(conn, question, now)
}

fn close(
    conn: &Connection,
    question: MessageId,
    state: &str,
    reply: MessageId,
    basis: Option<&str>,
    now: Millis,
) -> OpResult<()> {
    conn.prepare_cached(
        "UPDATE questions SET state = ?2, reply_id = ?3, basis = ?4, closed_at = ?5
         WHERE message_id = ?1",
    )?
    .execute(params![question, state, reply, basis, now])?;
    Ok(())
}

/// Turns the peer's questions that passed their TTL unanswered into expiry notices in its own
/// inbox, so the asker is told rather than left waiting.
pub fn expire_asked_by(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    asker: PeerId,
    now: Millis,
) -> OpResult<()> {
    let due: Vec<(MessageId, PeerId, String, Millis)> = conn
        .prepare_cached(
            "SELECT q.message_id, m.recipient_id, r.name, m.expires_at - m.created_at
             FROM questions q
             JOIN messages m ON m.id = q.message_id
             JOIN peers r ON r.id = m.recipient_id
             WHERE q.state = 'open' AND m.sender_id = ?1 AND m.expires_at <= ?2",
        )?
        .query_map(params![asker, now], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    for (question, recipient, name, ttl) in due {
        let text = switchboard_core::notice::question_expired(question, &name);
        let notice = mail::notice(
            conn,
            wakes,
            &mail::Notice {
                kind: ItemKind::Expired,
                from: recipient,
                to: asker,
                text: &text,
                reply_to: Some(question),
                expires_at: now.saturating_add(ttl),
            },
            now,
        )?;
        close(conn, question, "expired", notice, None, now)?;
    }
    Ok(())
}

/// An answer's sources, in the order given.
pub fn sources(conn: &Connection, answer: MessageId) -> OpResult<Vec<String>> {
    Ok(conn
        .prepare_cached("SELECT source FROM answer_sources WHERE answer_id = ?1 ORDER BY position")?
        .query_map([answer], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

const SELECT_QUESTION: &str = "SELECT m.id, a.name, r.name, m.body, q.context_hint, q.state,
        m.created_at, m.expires_at, q.reply_id, q.basis, q.closed_at, rm.body
    FROM questions q
    JOIN messages m ON m.id = q.message_id
    JOIN peers a ON a.id = m.sender_id
    JOIN peers r ON r.id = m.recipient_id
    LEFT JOIN messages rm ON rm.id = q.reply_id";

struct Row0 {
    view: QuestionView,
    reply_id: Option<MessageId>,
    basis: Option<Basis>,
    reply_text: Option<String>,
    closed_at: Option<Millis>,
}

fn row(r: &Row<'_>) -> rusqlite::Result<Row0> {
    let basis: Option<String> = r.get(9)?;
    Ok(Row0 {
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
        reply_id: r.get(8)?,
        basis: basis.and_then(|b| b.parse().ok()),
        reply_text: r.get(11)?,
        closed_at: r.get(10)?,
    })
}

/// Completes a row into the view: the answer with its sources, or the reason for declining.
/// An open question past its TTL reads as expired even before its notice is made.
fn finish(conn: &Connection, r: Row0, now: Millis) -> OpResult<QuestionView> {
    let mut v = r.view;
    match v.state {
        QuestionState::Answered => {
            if let (Some(id), Some(basis)) = (r.reply_id, r.basis) {
                v.answer = Some(AnswerView {
                    basis,
                    sources: sources(conn, id)?,
                    text: r.reply_text.unwrap_or_default(),
                    answered_at: r.closed_at.unwrap_or_default(),
                });
            }
        }
        QuestionState::Declined => v.decline_reason = r.reply_text,
        QuestionState::Open if v.expires_at <= now => v.state = QuestionState::Expired,
        _ => {}
    }
    Ok(v)
}

fn load(conn: &Connection, id: MessageId, now: Millis) -> OpResult<QuestionView> {
    let r = conn
        .prepare_cached(&format!("{SELECT_QUESTION} WHERE q.message_id = ?1"))?
        .query_row([id], row)?;
    finish(conn, r, now)
}

/// A question as `peer` may see it: only its asker and the peer asked.
pub fn load_for(
    conn: &Connection,
    id: MessageId,
    peer: PeerId,
    now: Millis,
) -> OpResult<QuestionView> {
    let r = conn
        .prepare_cached(&format!(
            "{SELECT_QUESTION} WHERE q.message_id = ?1 AND (m.sender_id = ?2 OR m.recipient_id = ?2)"
        ))?
        .query_row(params![id, peer], row)
        .optional()?;
    match r {
        Some(r) => finish(conn, r, now),
        None => {
            peers::require(conn, peer)?;
            Err(Rejection::UnknownQuestion { id }.into())
        }
    }
}

pub fn list(
    conn: &Connection,
    peer: PeerId,
    q: QuestionQuery,
    now: Millis,
) -> OpResult<Vec<QuestionView>> {
    let sql = format!(
        "{SELECT_QUESTION}
         WHERE ((?2 AND m.sender_id = ?1) OR (?3 AND m.recipient_id = ?1))
           AND (NOT ?4 OR (q.state = 'open' AND m.expires_at > ?5))
         ORDER BY m.id DESC LIMIT ?6"
    );
    let rows: Vec<Row0> = conn
        .prepare_cached(&sql)?
        .query_map(
            params![peer, q.asked, q.received, q.open_only, now, q.limit],
            row,
        )?
        .collect::<Result<_, _>>()?;
    if rows.is_empty() {
        peers::require(conn, peer)?;
    }
    rows.into_iter().map(|r| finish(conn, r, now)).collect()
}
