//! Durable jobs: dispatch, claims under a lease and a fencing token, heartbeats, the end of a
//! run, and the sweeps that requeue, park (`needs_recovery`), expire or bury jobs. Every final
//! state sends the dispatcher a notice that holds the job's id and state, never its payload.
//!
//! A worker's change reads the job locked and checks its fence first, so a worker whose claim
//! was lost (its lease ran out, the job was taken again) cannot change the new run.

use switchboard_proto::{ItemKind, JobAction, JobClaim, JobId, JobState, JobView, Millis};

use super::mail::{Notice, notice};
use super::peers;
use crate::error::Rejection;
use crate::seam::{Executor, JobRow, RunOutcome, Step};
use crate::store::{ClaimRequest, JobOutcome, JobQuery, NewJob};
use crate::wake::Wake;

/// The job and its fencing token; an unknown id is the caller's mistake.
async fn load<X: Executor>(x: &mut X, id: JobId) -> Step<JobRow, X> {
    x.job_by_id(id)
        .await?
        .ok_or_else(|| Rejection::UnknownJob { id }.into())
}

/// The job, locked until the commit.
async fn lock<X: Executor>(x: &mut X, id: JobId) -> Step<JobRow, X> {
    x.lock_job(id)
        .await?
        .ok_or_else(|| Rejection::UnknownJob { id }.into())
}

/// The job as its claim holder may change it: locked, and the fence must be current.
async fn held<X: Executor>(x: &mut X, id: JobId, fence: i64) -> Step<JobView, X> {
    let row = lock(x, id).await?;
    if row.fence != fence {
        return Err(Rejection::StaleClaim { id }.into());
    }
    Ok(row.job)
}

/// The refusal of an action the job's state does not allow.
fn refuse(job: &JobView, action: &'static str) -> Rejection {
    Rejection::JobState {
        id: job.id,
        state: job.state.to_string(),
        action: action.into(),
    }
}

/// The job, after the sweep.
pub async fn view<X: Executor>(x: &mut X, id: JobId, now: Millis) -> Step<JobView, X> {
    sweep(x, now).await?;
    Ok(load(x, id).await?.job)
}

/// Queues a job; the same request id from the same dispatcher returns the first job, marked
/// as a duplicate, instead of queuing it twice.
pub async fn dispatch<X: Executor>(x: &mut X, job: NewJob, now: Millis) -> Step<JobView, X> {
    if let Some(request) = &job.request_id
        && let Some(id) = x.job_by_request(job.dispatcher, request).await?
    {
        let mut v = load(x, id).await?.job;
        v.duplicate = true;
        return Ok(v);
    }
    peers::require(x, job.dispatcher).await?;
    let id = x.insert_job(&job, now).await?;
    x.wake(Wake::Jobs);
    Ok(load(x, id).await?.job)
}

/// Gives the worker the oldest queued job it may run, burying (`dead`) the ones that used up
/// their attempts on the way.
pub async fn claim<X: Executor>(
    x: &mut X,
    req: ClaimRequest,
    now: Millis,
) -> Step<Option<JobClaim>, X> {
    sweep(x, now).await?;
    loop {
        let Some((id, attempts)) = x.next_queued_job(&req).await? else {
            return Ok(None);
        };
        if attempts >= req.max_attempts {
            settle(x, id, JobState::Dead, now).await?;
            continue;
        }
        let lease_until = now.saturating_add(req.lease_ms);
        x.claim_job(id, &req.worker, lease_until, now).await?;
        x.wake(Wake::Jobs);
        let JobRow { job, fence } = load(x, id).await?;
        return Ok(Some(JobClaim {
            job,
            fence,
            lease_until,
        }));
    }
}

pub async fn start<X: Executor>(x: &mut X, id: JobId, fence: i64, now: Millis) -> Step<(), X> {
    let job = held(x, id, fence).await?;
    if job.state != JobState::Claimed {
        return Err(refuse(&job, "started").into());
    }
    x.mark_job_running(id, now).await?;
    x.wake(Wake::Jobs);
    Ok(())
}

/// Extends the lease of a job still held, and tells the worker the job's state (a cancelled
/// job's worker learns it here and stops).
pub async fn heartbeat<X: Executor>(
    x: &mut X,
    id: JobId,
    fence: i64,
    lease_ms: i64,
    now: Millis,
) -> Step<JobState, X> {
    let job = held(x, id, fence).await?;
    if job.state.is_held() {
        x.extend_job_lease(id, now.saturating_add(lease_ms), now)
            .await?;
    }
    Ok(job.state)
}

pub async fn finish<X: Executor>(
    x: &mut X,
    id: JobId,
    fence: i64,
    outcome: JobOutcome,
    now: Millis,
) -> Step<JobView, X> {
    let job = held(x, id, fence).await?;
    if !job.state.is_held() {
        return Err(refuse(&job, "finished").into());
    }
    let (state, result, error, branch) = match &outcome {
        JobOutcome::Completed { result, branch } => (
            JobState::Completed,
            Some(result.as_str()),
            None,
            branch.as_deref(),
        ),
        JobOutcome::Failed { error } => (JobState::Failed, None, Some(error.as_str()), None),
    };
    let run = RunOutcome {
        result,
        error,
        branch,
    };
    x.record_job_outcome(id, run).await?;
    settle(x, id, state, now).await?;
    Ok(load(x, id).await?.job)
}

/// Gives a job back unrun (its worker is shutting down): not a failed attempt.
pub async fn release<X: Executor>(x: &mut X, id: JobId, fence: i64, now: Millis) -> Step<(), X> {
    let job = held(x, id, fence).await?;
    if !job.state.is_held() {
        return Err(refuse(&job, "released").into());
    }
    x.return_job(id, now).await?;
    x.wake(Wake::Jobs);
    Ok(())
}

pub async fn cancel<X: Executor>(x: &mut X, id: JobId, now: Millis) -> Step<JobView, X> {
    sweep(x, now).await?;
    let job = lock(x, id).await?.job;
    if job.state.action() != Some(JobAction::Cancel) {
        return Err(refuse(&job, "cancelled").into());
    }
    settle(x, id, JobState::Cancelled, now).await?;
    Ok(load(x, id).await?.job)
}

/// Queues a job that ended without completing, as a fresh start.
pub async fn requeue<X: Executor>(x: &mut X, id: JobId, now: Millis) -> Step<JobView, X> {
    sweep(x, now).await?;
    let job = lock(x, id).await?.job;
    // Retry and recover both queue again; which verb a person must use is the callers' check
    // ([`JobAction::check`]), not a difference here.
    if !matches!(
        job.state.action(),
        Some(JobAction::Retry | JobAction::Recover)
    ) {
        return Err(refuse(&job, "queued again").into());
    }
    x.restart_job(id, now).await?;
    x.wake(Wake::Jobs);
    Ok(load(x, id).await?.job)
}

/// Jobs matching the query, after the sweep; naming a dispatcher that does not exist is the
/// caller's mistake, not an empty list.
pub async fn list<X: Executor>(x: &mut X, query: JobQuery, now: Millis) -> Step<Vec<JobView>, X> {
    sweep(x, now).await?;
    let found = x.list_jobs(&query).await?;
    if let Some(dispatcher) = query.dispatcher
        && found.is_empty()
    {
        peers::require(x, dispatcher).await?;
    }
    Ok(found)
}

/// Applies what time alone decides: a claim whose lease ran out is requeued — or, for a write
/// job, parked in `needs_recovery`, never re-run silently — and a queued job past its TTL
/// expires.
async fn sweep<X: Executor>(x: &mut X, now: Millis) -> Step<(), X> {
    for (id, write) in x.lapsed_jobs(now).await? {
        if write {
            settle(x, id, JobState::NeedsRecovery, now).await?;
        } else {
            x.requeue_lapsed_job(id, now).await?;
            x.wake(Wake::Jobs);
        }
    }
    for id in x.expired_jobs(now).await? {
        settle(x, id, JobState::Expired, now).await?;
    }
    Ok(())
}

/// Puts a job in a final state and tells its dispatcher, with the id and the state only.
async fn settle<X: Executor>(x: &mut X, id: JobId, state: JobState, now: Millis) -> Step<(), X> {
    let settled = x.settle_job(id, state, now).await?;
    let text = crate::notice::job_settled(id, &settled.agent, state);
    let n = Notice {
        kind: ItemKind::Job,
        from: settled.dispatcher,
        to: settled.dispatcher,
        text: &text,
        reply_to: None,
        expires_at: now.saturating_add(settled.ttl.max(0)),
    };
    notice(x, &n, now).await?;
    x.wake(Wake::Jobs);
    Ok(())
}
