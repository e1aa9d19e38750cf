//! Questions and their one reply. A question, an answer, a decline and an expiry notice are
//! messages (so they reach peers by every delivery path); the `questions` row holds the
//! question's own fields and state, `answer_sources` the answer's sources. A reply and an
//! expiry lock the question's row, so a question is closed exactly once.

use tokio_postgres::Row;

use switchboard_core::rules::{ReplyRecord, may_reply};
use switchboard_core::{
    Admission, NewMessage, NewQuestion, NewTarget, PeerId, QuestionQuery, Rejection, Reply, Wake,
};
use switchboard_proto::{
    AnswerView, Basis, ItemKind, MessageId, Millis, QuestionState, QuestionView,
};

use super::{Conn, big, col, exec, one, opt, parse, rows};
use super::{mail, peers};
use crate::fault::OpResult;

pub async fn ask(
    c: &Conn,
    wakes: &mut Vec<Wake>,
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
    let sent = mail::send(c, wakes, &msg, adm, now).await?;
    exec(
        c,
        "INSERT INTO questions (message_id, context_hint, state) VALUES ($1, $2, 'open')",
        &[&sent.id, &q.context_hint],
    )
    .await?;
    load(c, sent.id, now).await
}

#[allow(clippy::too_many_arguments)]
pub async fn reply(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    question: MessageId,
    by: PeerId,
    reply: &Reply,
    expires_at: Millis,
    adm: Admission,
    now: Millis,
) -> OpResult<QuestionView> {
    let parties = opt(
        c,
        "SELECT m.sender_id, m.recipient_id FROM questions q
         JOIN messages m ON m.id = q.message_id WHERE q.message_id = $1 FOR UPDATE OF q",
        &[&question],
    )
    .await?;
    // A refusal names the replier first when the replier is no peer at all; the lookup is made
    // only on the way to a refusal.
    let Some(parties) = parties else {
        peers::require(c, by).await?;
        return Err(Rejection::UnknownQuestion { id: question }.into());
    };
    let (asker, asked): (PeerId, PeerId) = (col(&parties, 0)?, col(&parties, 1)?);
    if let Err(refused) = may_reply(&load(c, question, now).await?, asked, by) {
        peers::require(c, by).await?;
        return Err(refused.into());
    }
    let record = ReplyRecord::new(reply, question, by, asker, expires_at);
    let sent = mail::send(c, wakes, &record.message, adm, now).await?;
    close(c, question, record.state, sent.id, record.basis, now).await?;
    if let Reply::Answer { sources, .. } = reply {
        let positions: Vec<i64> = (0..sources.len() as i64).collect();
        exec(
            c,
            "INSERT INTO answer_sources (answer_id, position, source)
             SELECT $1, p, s FROM unnest($2::bigint[], $3::text[]) AS t(p, s)",
            &[&sent.id, &positions, &sources],
        )
        .await?;
    }
    load(c, question, now).await
}

async fn close(
    c: &Conn,
    question: MessageId,
    state: &str,
    reply: MessageId,
    basis: Option<&str>,
    now: Millis,
) -> OpResult<()> {
    exec(
        c,
        "UPDATE questions SET state = $2, reply_id = $3, basis = $4, closed_at = $5
         WHERE message_id = $1",
        &[&question, &state, &reply, &basis, &now],
    )
    .await?;
    Ok(())
}

/// Turns the peer's questions that passed their TTL unanswered into expiry notices in its own
/// inbox, so the asker is told rather than left waiting. A question whose reply is being
/// written right now is skipped: that reply decides it.
pub async fn expire_asked_by(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    asker: PeerId,
    now: Millis,
) -> OpResult<()> {
    let due = rows(
        c,
        "SELECT q.message_id, m.recipient_id, r.name, m.expires_at - m.created_at
         FROM questions q
         JOIN messages m ON m.id = q.message_id
         JOIN peers r ON r.id = m.recipient_id
         WHERE q.state = 'open' AND m.sender_id = $1 AND m.expires_at <= $2
         FOR UPDATE OF q SKIP LOCKED",
        &[&asker, &now],
    )
    .await?;
    for row in due {
        let question: MessageId = col(&row, 0)?;
        let name: String = col(&row, 2)?;
        let ttl: i64 = col(&row, 3)?;
        let text = switchboard_core::notice::question_expired(question, &name);
        let notice = mail::notice(
            c,
            wakes,
            &mail::Notice {
                kind: ItemKind::Expired,
                from: col(&row, 1)?,
                to: asker,
                text: &text,
                reply_to: Some(question),
                expires_at: now.saturating_add(ttl),
            },
            now,
        )
        .await?;
        close(c, question, "expired", notice, None, now).await?;
    }
    Ok(())
}

/// An answer's sources, in the order given.
pub async fn sources(c: &Conn, answer: MessageId) -> OpResult<Vec<String>> {
    rows(
        c,
        "SELECT source FROM answer_sources WHERE answer_id = $1 ORDER BY position",
        &[&answer],
    )
    .await?
    .iter()
    .map(|r| col(r, 0))
    .collect()
}

const SELECT_QUESTION: &str = "SELECT m.id, a.name, r.name, m.body, q.context_hint, q.state,
        m.created_at, m.expires_at, q.reply_id, q.basis, q.closed_at, rm.body
    FROM questions q
    JOIN messages m ON m.id = q.message_id
    JOIN peers a ON a.id = m.sender_id
    JOIN peers r ON r.id = m.recipient_id
    LEFT JOIN messages rm ON rm.id = q.reply_id";

/// A question row before its answer's sources are read.
struct Loaded {
    view: QuestionView,
    reply_id: Option<MessageId>,
    basis: Option<Basis>,
    reply_text: Option<String>,
    closed_at: Option<Millis>,
}

fn row(r: &Row) -> OpResult<Loaded> {
    let basis: Option<&str> = col(r, 9)?;
    Ok(Loaded {
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
        reply_id: col(r, 8)?,
        basis: basis.and_then(|b| b.parse().ok()),
        reply_text: col(r, 11)?,
        closed_at: col(r, 10)?,
    })
}

/// Completes a row into the view: the answer with its sources, or the reason for declining.
/// An open question past its TTL reads as expired even before its notice is made.
async fn finish(c: &Conn, r: Loaded, now: Millis) -> OpResult<QuestionView> {
    let mut v = r.view;
    match v.state {
        QuestionState::Answered => {
            if let (Some(id), Some(basis)) = (r.reply_id, r.basis) {
                v.answer = Some(AnswerView {
                    basis,
                    sources: sources(c, id).await?,
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

async fn load(c: &Conn, id: MessageId, now: Millis) -> OpResult<QuestionView> {
    let sql = format!("{SELECT_QUESTION} WHERE q.message_id = $1");
    let r = row(&one(c, &sql, &[&id]).await?)?;
    finish(c, r, now).await
}

/// A question as `peer` may see it: only its asker and the peer asked.
pub async fn load_for(
    c: &Conn,
    id: MessageId,
    peer: PeerId,
    now: Millis,
) -> OpResult<QuestionView> {
    let sql = format!(
        "{SELECT_QUESTION} WHERE q.message_id = $1 AND (m.sender_id = $2 OR m.recipient_id = $2)"
    );
    match opt(c, &sql, &[&id, &peer]).await? {
        Some(r) => finish(c, row(&r)?, now).await,
        None => {
            peers::require(c, peer).await?;
            Err(Rejection::UnknownQuestion { id }.into())
        }
    }
}

pub async fn list(
    c: &Conn,
    peer: PeerId,
    q: QuestionQuery,
    now: Millis,
) -> OpResult<Vec<QuestionView>> {
    let sql = format!(
        "{SELECT_QUESTION}
         WHERE (($2 AND m.sender_id = $1) OR ($3 AND m.recipient_id = $1))
           AND (NOT $4 OR (q.state = 'open' AND m.expires_at > $5))
         ORDER BY m.id DESC LIMIT $6"
    );
    let found = rows(
        c,
        &sql,
        &[
            &peer,
            &q.asked,
            &q.received,
            &q.open_only,
            &now,
            &big(q.limit),
        ],
    )
    .await?;
    if found.is_empty() {
        peers::require(c, peer).await?;
    }
    let mut out = Vec::with_capacity(found.len());
    for r in &found {
        out.push(finish(c, row(r)?, now).await?);
    }
    Ok(out)
}
