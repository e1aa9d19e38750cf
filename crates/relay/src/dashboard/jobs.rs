//! Jobs on the dashboard (issue 16): each job the caller may see, with its state, attempts,
//! worker, times, result or error, and the one thing a person may do to it — cancel, retry or
//! recover, as [`JobState::action`] decides for the CLI too — plus the dispatch form.
//!
//! Every action is a POST behind the CSRF check and goes through the caller's [`Guard`]
//! (`dispatch`, and [`Exchange::act_on_job`] over `cancel_job`/`requeue_job`), so a token can do
//! here exactly what `/v1` lets it and nothing more. Each action also asks for a confirmation
//! that needs no script: the action's button only opens a `<details>` whose form holds the
//! button that posts ("Yes, cancel job 7"), and the handler refuses a post without it.
//!
//! [`JobState::action`]: switchboard_proto::JobState::action

use askama::Template;
use axum::Form;
use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use switchboard_core::{Clock, Dispatch, Exchange, JobQuery, SystemClock};
use switchboard_proto::{JobAction, JobId, JobState, JobView, Millis};

use crate::app::App;
use crate::auth::Caller;
use crate::guard::Guard;

use super::DashboardError;
use super::pages::{self, FormName, Forms, Posted};
use super::views::{NEWEST, ago, span, time};

/// One job, ready for the template (absent fields as empty strings).
pub(crate) struct JobRow {
    pub id: JobId,
    pub state: String,
    pub agent: String,
    pub dispatcher: String,
    pub prompt: String,
    pub write: bool,
    pub attempts: u32,
    /// The worker holding it, while one does.
    pub worker: String,
    pub created: String,
    pub updated: String,
    pub updated_ago: String,
    /// When a queued job expires unless a worker takes it; empty once one has.
    pub expires: String,
    /// How long it has waited or been under way, or how long it took from dispatch to its end.
    pub timing_label: &'static str,
    pub timing: String,
    pub result: String,
    pub error: String,
    pub branch: String,
    /// What a person may do to it now, if anything.
    pub action: Option<ActionView>,
}

/// An action as the page offers it.
pub(crate) struct ActionView {
    /// Its name in the URL, in element ids and in the confirming button (`Yes, cancel job 7`).
    pub name: &'static str,
    /// The button that opens the confirmation (`Cancel…`).
    pub label: &'static str,
    /// What it will do, said before the person confirms.
    pub consequence: &'static str,
}

impl ActionView {
    fn of(action: JobAction) -> Self {
        let (label, consequence) = match action {
            JobAction::Cancel => (
                "Cancel…",
                "The job stops: a queued job is never run, a running one is told to stop.",
            ),
            JobAction::Retry => (
                "Retry…",
                "The job is queued again as a fresh start, with its attempts reset.",
            ),
            JobAction::Recover => (
                "Recover…",
                "This write job's worker vanished mid-run. Check its worktree first: \
                 recovering queues it again and another worker may redo its edits.",
            ),
        };
        Self {
            name: action.as_str(),
            label,
            consequence,
        }
    }
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsFragment<'a> {
    jobs: Vec<JobRow>,
    csrf: &'a str,
}

#[derive(Template)]
#[template(path = "job_dispatch.html")]
struct DispatchForm<'a> {
    csrf: &'a str,
    /// The peer a peer token dispatches as; `None` for a room token (the form names one).
    peer: Option<&'a str>,
    shown_as: &'a str,
    draft: &'a JobDraft,
    notice: Option<&'a str>,
}

/// What the dispatch form holds, kept when a dispatch is refused so the human loses nothing.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct JobDraft {
    #[serde(default)]
    csrf: String,
    /// The operator peer a room token dispatches as.
    #[serde(default, rename = "as")]
    as_name: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    prompt: String,
}

impl JobDraft {
    /// An empty dispatch form acting as the operator peer `as_name`.
    pub(crate) fn acting_as(as_name: String) -> Self {
        Self {
            as_name,
            ..Self::default()
        }
    }
}

impl Posted for JobDraft {
    const WHAT: &'static str = "dispatch";

    fn csrf(&self) -> &str {
        &self.csrf
    }

    fn kept(self) -> (Forms, FormName) {
        let forms = Forms {
            job: self,
            ..Forms::default()
        };
        (forms, FormName::Job)
    }
}

impl Posted for Confirmation {
    const WHAT: &'static str = "job action's";

    fn csrf(&self) -> &str {
        &self.csrf
    }

    /// A refused action keeps nothing typed; its reason shows above the jobs.
    fn kept(self) -> (Forms, FormName) {
        (Forms::default(), FormName::Job)
    }
}

/// A confirmed action's form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Confirmation {
    #[serde(default)]
    csrf: String,
    /// `yes` from the confirming button; anything else is not a confirmation.
    #[serde(default)]
    confirm: String,
}

/// The newest jobs the caller may see (a peer token: those it dispatched or runs), newest
/// first.
pub(crate) async fn rows(guard: &Guard, now: Millis) -> Result<Vec<JobRow>, DashboardError> {
    let query = JobQuery {
        dispatcher: None,
        agent: None,
        active_only: false,
        limit: NEWEST,
    };
    let mut jobs = guard.jobs(query).await?;
    jobs.sort_by_key(|j| std::cmp::Reverse(j.id));
    Ok(jobs.into_iter().map(|j| row(j, now)).collect())
}

fn row(j: JobView, now: Millis) -> JobRow {
    // No start time is stored (a heartbeat moves `updated_at`), so a live job's time is counted
    // from its dispatch, and a settled one's from dispatch to its end.
    let (timing_label, timing) = match j.state {
        JobState::Queued => ("waiting for", span(j.created_at, now)),
        s if s.is_held() => ("under way for", span(j.created_at, now)),
        _ => ("took", span(j.created_at, j.updated_at)),
    };
    let expires = if j.state == JobState::Queued {
        time(j.expires_at)
    } else {
        String::new()
    };
    JobRow {
        id: j.id,
        state: j.state.to_string(),
        agent: j.agent,
        dispatcher: j.dispatcher,
        prompt: j.prompt,
        write: j.write,
        attempts: j.attempts,
        worker: j.worker.unwrap_or_default(),
        created: time(j.created_at),
        updated: time(j.updated_at),
        updated_ago: ago(j.updated_at, now),
        expires,
        timing_label,
        timing,
        result: j.result.unwrap_or_default(),
        error: j.error.unwrap_or_default(),
        branch: j.branch.unwrap_or_default(),
        action: j.state.action().map(ActionView::of),
    }
}

/// The jobs view, its actions' forms carrying `csrf`.
pub(crate) async fn fragment(guard: &Guard, csrf: &str) -> Result<String, DashboardError> {
    let jobs = rows(guard, SystemClock.now_ms()).await?;
    pages::fragment_html(&JobsFragment { jobs, csrf })
}

/// The dispatch form, with what `forms` kept of it and why a dispatch or an action was refused.
pub(crate) fn dispatch_form(
    csrf: &str,
    peer: Option<&str>,
    forms: &Forms,
) -> Result<String, DashboardError> {
    pages::fragment_html(&DispatchForm {
        csrf,
        peer,
        shown_as: pages::operator_name(&forms.job.as_name),
        draft: &forms.job,
        notice: forms.notice(FormName::Job),
    })
}

/// `POST /dashboard/dispatch`: dispatches a job as the caller's peer (a peer token's own; for a
/// room token, the operator peer the form names), through the guard like `/v1/dispatch`.
pub(crate) async fn dispatch(
    State(app): State<App>,
    headers: HeaderMap,
    form: Result<Form<JobDraft>, FormRejection>,
) -> Response {
    pages::handle(&app, &headers, form, dispatch_draft).await
}

async fn dispatch_draft(
    app: &App,
    caller: &Caller,
    draft: &JobDraft,
) -> Result<(), DashboardError> {
    let guard = app.guard(caller).await?;
    let agent = draft.agent.trim();
    if agent.is_empty() {
        return Err(DashboardError::BadInput(
            "say which agent the job is for: the name its workers serve (`switchboard worker \
             --agent NAME`)"
                .into(),
        ));
    }
    let me = pages::acting_peer(&guard, &draft.as_name).await?;
    guard
        .dispatch(me.id, Dispatch::new(agent, draft.prompt.clone()))
        .await?;
    Ok(())
}

/// `POST /dashboard/jobs/{id}/{action}`: a confirmed cancel, retry or recover, through the
/// guard; refused (changing nothing) unless the job's state allows that very action.
pub(crate) async fn act(
    State(app): State<App>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    form: Result<Form<Confirmation>, FormRejection>,
) -> Response {
    let act = async |app: &App, caller: &Caller, form: &Confirmation| {
        let (id, action) = action_of(path)?;
        if form.confirm != "yes" {
            return Err(DashboardError::BadInput(format!(
                "{action} of job {id} was not confirmed: open '{}' on the job and press \
                 'Yes, {action} job {id}'",
                ActionView::of(action).label
            )));
        }
        let guard = app.guard(caller).await?;
        guard.act_on_job(id, action).await?;
        Ok(())
    };
    pages::handle(&app, &headers, form, act).await
}

/// The job id and the action a path names, or what is wrong with it.
fn action_of(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(JobId, JobAction), DashboardError> {
    let Path((id, action)) = path.map_err(|e| {
        DashboardError::BadInput(format!("the job action's path is not valid: {e}"))
    })?;
    let id: JobId = id.parse().map_err(|_| {
        DashboardError::BadInput(format!(
            "'{id}' is not a job id: a job's id is its number, as the page shows it"
        ))
    })?;
    let action: JobAction = action.parse().map_err(|_| {
        DashboardError::BadInput(format!(
            "'{action}' is not something a job can be asked: the actions are cancel, retry \
             and recover"
        ))
    })?;
    Ok((id, action))
}
