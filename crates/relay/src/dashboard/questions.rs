//! The dashboard's questions: the `questions` view (each question the caller may see with its
//! state, deadline, and its answer's basis and sources) and the answer form, through which the
//! human answers a question addressed to the peer it acts as. Both go through the caller's
//! [`Guard`], so a token lists and answers through the page exactly what `/v1` lets it.

use std::collections::HashSet;

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use switchboard_core::{Clock, Error, Exchange, QuestionQuery, Reply, SystemClock};
use switchboard_proto::{
    AnswerView, Basis, Millis, PeerKind, QuestionId, QuestionState, QuestionView,
};

use crate::app::App;
use crate::auth::Caller;
use crate::guard::Guard;

use super::DashboardError;
use super::pages::{self, FormName, Forms, Posted};
use super::views::{self, NEWEST};

/// One question as the view shows it (times formatted, absent fields empty).
pub(crate) struct QuestionRow {
    pub id: QuestionId,
    pub from: String,
    pub to: String,
    pub question: String,
    pub context_hint: String,
    pub state: String,
    pub asked: String,
    pub asked_ago: String,
    pub deadline: String,
    pub answer: Option<AnswerRow>,
    pub declined: String,
    /// Open, and addressed to a peer the caller may answer as from the page (a peer token: its
    /// own peer; a room token: an operator peer).
    pub answerable: bool,
}

pub(crate) struct AnswerRow {
    pub basis: &'static str,
    pub sources: Vec<String>,
    pub text: String,
    pub at: String,
}

#[derive(Template)]
#[template(path = "questions.html")]
struct QuestionsFragment {
    questions: Vec<QuestionRow>,
}

/// The `questions` view, rendered.
pub(crate) async fn fragment(guard: &Guard) -> Result<String, DashboardError> {
    let questions = rows(guard, SystemClock.now_ms()).await?;
    QuestionsFragment { questions }
        .render()
        .map_err(|e| DashboardError::Render(e.to_string()))
}

/// The newest [`NEWEST`] questions the caller may list through `/v1`, newest first: a peer
/// token's own (asked or received); for a room token every question of the room, in one
/// listing (`questions` without a peer).
async fn rows(guard: &Guard, now: Millis) -> Result<Vec<QuestionRow>, Error> {
    let all = |asked| QuestionQuery {
        asked,
        received: true,
        open_only: false,
        limit: NEWEST,
    };
    if guard.caller().grant.peer().is_some() {
        let Some(me) = guard.me().await? else {
            return Ok(Vec::new());
        };
        let me_name = guard.caller().grant.peer().unwrap_or_default();
        let found = guard.questions(me, all(true)).await?;
        return Ok(found
            .into_iter()
            .map(|q| {
                let answerable = q.to == me_name;
                row(q, answerable, now)
            })
            .collect());
    }
    // A room token answers as an operator peer, so those are the questions it may answer.
    let operators: HashSet<String> = guard
        .peers()
        .await?
        .into_iter()
        .filter(|p| p.kind == PeerKind::Operator)
        .map(|p| p.name)
        .collect();
    let found = guard.room_questions(all(false)).await?;
    Ok(found
        .into_iter()
        .map(|q| {
            let answerable = operators.contains(&q.to);
            row(q, answerable, now)
        })
        .collect())
}

fn row(q: QuestionView, addressed_to_us: bool, now: Millis) -> QuestionRow {
    QuestionRow {
        id: q.id,
        from: q.from,
        to: q.to,
        question: q.question,
        context_hint: q.context_hint.unwrap_or_default(),
        state: q.state.to_string(),
        asked: views::time(q.asked_at),
        asked_ago: views::ago(q.asked_at, now),
        deadline: views::time(q.expires_at),
        answer: q.answer.map(answer_row),
        declined: q.decline_reason.unwrap_or_default(),
        answerable: addressed_to_us && q.state == QuestionState::Open,
    }
}

fn answer_row(a: AnswerView) -> AnswerRow {
    AnswerRow {
        basis: a.basis.as_str(),
        sources: a.sources,
        text: a.text,
        at: views::time(a.answered_at),
    }
}

/// What the answer form holds, kept when an answer is refused so the human loses nothing.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AnswerDraft {
    #[serde(default)]
    csrf: String,
    /// The operator peer a room token answers as.
    #[serde(default, rename = "as")]
    as_name: String,
    /// The question's number, as the page shows it (`#4` or `4`).
    #[serde(default)]
    question: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    basis: String,
    /// One source a line: a path, `file:line`, a commit, a PR, a doc.
    #[serde(default)]
    sources: String,
}

impl Posted for AnswerDraft {
    const WHAT: &'static str = "answer";

    fn csrf(&self) -> &str {
        &self.csrf
    }

    fn kept(self) -> (Forms, FormName) {
        let forms = Forms {
            answer: self,
            ..Forms::default()
        };
        (forms, FormName::Answer)
    }
}

/// One choice of the form's basis list.
pub(crate) struct BasisChoice {
    pub value: &'static str,
    pub selected: bool,
}

impl AnswerDraft {
    /// The form as a question's "Answer" link opens it.
    pub(crate) fn prefilled(question: String, as_name: String) -> Self {
        Self {
            question,
            as_name,
            ..Self::default()
        }
    }

    /// The operator name the form shows: what was typed, or the default.
    pub(crate) fn shown_as(&self) -> &str {
        pages::operator_name(&self.as_name)
    }

    pub(crate) fn question(&self) -> &str {
        &self.question
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn sources(&self) -> &str {
        &self.sources
    }

    /// Every basis there is, the one typed selected (none at first: the human says which).
    pub(crate) fn basis_choices(&self) -> Vec<BasisChoice> {
        Basis::ALL
            .iter()
            .map(|b| BasisChoice {
                value: b.as_str(),
                selected: self.basis == b.as_str(),
            })
            .collect()
    }

    fn reply(&self) -> Result<(QuestionId, Reply), DashboardError> {
        let question =
            pages::number("question", "a question", &self.question)?.ok_or_else(|| {
                DashboardError::BadInput(
                    "say which question this answers: its number, like #4 (the Answer link on a \
                 question fills it in)"
                        .into(),
                )
            })?;
        let basis = match self.basis.trim() {
            "" => {
                return Err(DashboardError::BadInput(
                    "say how you know: verified if you checked the sources just now, \
                     from_memory if not"
                        .into(),
                ));
            }
            typed => typed
                .parse::<Basis>()
                .map_err(|e| DashboardError::BadInput(e.to_string()))?,
        };
        let sources = self
            .sources
            .lines()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let reply = Reply::Answer {
            text: self.text.clone(),
            basis,
            sources,
        };
        Ok((QuestionId(question), reply))
    }
}

/// `POST /dashboard/answer`: answers a question addressed to the caller's peer (a peer token's
/// own; for a room token, the operator peer the form names), through the guard like
/// `/v1/reply`: the text, how the human knows it, and the sources.
pub(crate) async fn answer(
    State(app): State<App>,
    headers: HeaderMap,
    form: Result<Form<AnswerDraft>, FormRejection>,
) -> Response {
    pages::handle(&app, &headers, form, answer_draft).await
}

async fn answer_draft(
    app: &App,
    caller: &Caller,
    draft: &AnswerDraft,
) -> Result<(), DashboardError> {
    let (question, reply) = draft.reply()?;
    let guard = app.guard(caller).await?;
    let me = pages::acting_peer(&guard, &draft.as_name).await?;
    guard.reply(me.id, question, reply).await?;
    Ok(())
}
