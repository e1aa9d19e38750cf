//! Questions and their one reply. A question, an answer, a decline and an expiry notice are
//! messages (so they reach peers by every delivery path); the `questions` row holds the
//! question's own fields and state, `answer_sources` the answer's sources. A reply and an
//! expiry lock the question's row, so a question is closed exactly once.

use switchboard_proto::{AnswerView, ItemKind, Millis, QuestionId, QuestionState, QuestionView};

use super::mail::{self, Notice};
use super::peers;
use crate::error::Rejection;
use crate::notice::question_expired;
use crate::rules::{ReplyRecord, may_reply};
use crate::seam::{Closing, Executor, QuestionList, QuestionRow, Step};
use crate::store::{Admission, NewMessage, NewQuestion, NewTarget, PeerId, QuestionQuery, Reply};

/// Sends the question as a message to the peer asked (under every check of a send) and opens
/// it.
pub async fn ask<X: Executor>(
    x: &mut X,
    q: NewQuestion,
    adm: Admission,
    now: Millis,
) -> Step<QuestionView, X> {
    let msg = NewMessage {
        kind: ItemKind::Question,
        sender: q.asker,
        target: NewTarget::Peer(q.to),
        text: q.question,
        reply_to: None,
        idempotency_key: None,
        expires_at: q.expires_at,
    };
    let sent = mail::submit(x, &msg, adm, now).await?;
    x.insert_question(sent.id, q.context_hint.as_deref())
        .await?;
    load(x, sent.id.into(), now).await
}

/// Closes an open question by its answer or decline, sent to the asker as a message. Only the
/// peer asked may reply, once.
pub async fn reply<X: Executor>(
    x: &mut X,
    question: QuestionId,
    by: PeerId,
    reply: Reply,
    expires_at: Millis,
    adm: Admission,
    now: Millis,
) -> Step<QuestionView, X> {
    // A refusal names the replier first when the replier is no peer at all; the lookup is made
    // only on the way to a refusal.
    let Some((asker, asked)) = x.lock_question(question).await? else {
        peers::require(x, by).await?;
        return Err(Rejection::UnknownQuestion { id: question }.into());
    };
    if let Err(refused) = may_reply(&load(x, question, now).await?, asked, by) {
        peers::require(x, by).await?;
        return Err(refused.into());
    }
    let record = ReplyRecord::new(&reply, question, by, asker, expires_at);
    let sent = mail::submit(x, &record.message, adm, now).await?;
    let closing = Closing {
        state: record.state,
        reply: sent.id,
        basis: record.basis,
        now,
    };
    x.close_question(question, closing).await?;
    if let Reply::Answer { sources, .. } = &reply {
        x.insert_answer_sources(sent.id, sources).await?;
    }
    load(x, question, now).await
}

/// Turns the peer's questions that passed their TTL unanswered into expiry notices in its own
/// inbox, so the asker is told rather than left waiting. A question whose reply is being
/// written right now is left to that reply.
pub async fn expire_asked_by<X: Executor>(x: &mut X, asker: PeerId, now: Millis) -> Step<(), X> {
    for q in x.expiring_questions(asker, now).await? {
        let text = question_expired(q.id, &q.asked_name);
        let notice = mail::notice(
            x,
            &Notice {
                kind: ItemKind::Expired,
                from: q.asked,
                to: asker,
                text: &text,
                reply_to: Some(q.id.into()),
                expires_at: now.saturating_add(q.ttl),
            },
            now,
        )
        .await?;
        let closing = Closing {
            state: "expired",
            reply: notice,
            basis: None,
            now,
        };
        x.close_question(q.id, closing).await?;
    }
    Ok(())
}

/// The peer's questions, newest first; with no peer, every question of the room.
pub async fn list<X: Executor>(
    x: &mut X,
    peer: Option<PeerId>,
    query: QuestionQuery,
    now: Millis,
) -> Step<Vec<QuestionView>, X> {
    let rows = x.list_questions(QuestionList { peer, query, now }).await?;
    if rows.is_empty()
        && let Some(peer) = peer
    {
        peers::require(x, peer).await?;
    }
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(finish(x, r, now).await?);
    }
    Ok(out)
}

/// A question as `peer` may see it: only its asker and the peer asked; to anyone else it is
/// no question at all.
pub async fn load_for<X: Executor>(
    x: &mut X,
    peer: PeerId,
    id: QuestionId,
    now: Millis,
) -> Step<QuestionView, X> {
    match x.question_by_id(id).await? {
        Some(r) if r.asker == peer || r.asked == peer => finish(x, r, now).await,
        _ => {
            peers::require(x, peer).await?;
            Err(Rejection::UnknownQuestion { id }.into())
        }
    }
}

async fn load<X: Executor>(x: &mut X, id: QuestionId, now: Millis) -> Step<QuestionView, X> {
    match x.question_by_id(id).await? {
        Some(r) => finish(x, r, now).await,
        None => Err(Rejection::UnknownQuestion { id }.into()),
    }
}

/// Completes a row into the view: the answer with its sources, or the reason for declining.
/// An open question past its TTL reads as expired even before its notice is made.
async fn finish<X: Executor>(x: &mut X, r: QuestionRow, now: Millis) -> Step<QuestionView, X> {
    let mut v = r.view;
    match v.state {
        QuestionState::Answered => {
            if let (Some(id), Some(basis)) = (r.reply_id, r.basis) {
                v.answer = Some(AnswerView {
                    basis,
                    sources: x.answer_sources(id).await?,
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
