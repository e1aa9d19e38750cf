//! Durable jobs: dispatch, claims under a lease and a fencing token, heartbeats, the end of a
//! run, and the sweeps that requeue, park (`needs_recovery`), expire or bury jobs. Every final
//! state sends the dispatcher a notice that holds the job's id and state, never its payload.
//!
//! Replicas claim side by side: the next queued job is taken `FOR UPDATE SKIP LOCKED`, so two
//! workers never wait on, or both take, one job; a worker-side change locks the job's row and
//! checks the fence.

use tokio_postgres::Row;

use switchboard_core::{ClaimRequest, JobOutcome, JobQuery, NewJob, Rejection, Wake};
use switchboard_proto::{ItemKind, JobClaim, JobId, JobState, JobView, Millis};

use super::mail;
use super::{Conn, big, col, exec, one, opt, parse, rows, small};
use crate::fault::{OpError, OpResult};

const SELECT_JOB: &str = "SELECT j.id, j.agent, p.name, j.prompt, j.model, j.write_access,
        j.request_id, j.state, j.attempts, j.created_at, j.updated_at, j.expires_at, j.result,
        j.error, j.branch, j.fence
    FROM jobs j JOIN peers p ON p.id = j.dispatcher_id";

fn view_row(r: &Row) -> OpResult<(JobView, i64)> {
    Ok((
        JobView {
            id: col(r, 0)?,
            agent: col(r, 1)?,
            dispatcher: col(r, 2)?,
            prompt: col(r, 3)?,
            model: col(r, 4)?,
            write: col(r, 5)?,
            request_id: col(r, 6)?,
            state: parse(r, 7)?,
            attempts: small(col(r, 8)?),
            created_at: col(r, 9)?,
            updated_at: col(r, 10)?,
            expires_at: col(r, 11)?,
            result: col(r, 12)?,
            error: col(r, 13)?,
            branch: col(r, 14)?,
            duplicate: false,
        },
        col(r, 15)?,
    ))
}

async fn load(c: &Conn, id: JobId) -> OpResult<(JobView, i64)> {
    fetch(c, id, "").await
}

/// The job with its row locked until the transaction ends.
async fn lock(c: &Conn, id: JobId) -> OpResult<(JobView, i64)> {
    fetch(c, id, "FOR UPDATE OF j").await
}

async fn fetch(c: &Conn, id: JobId, locking: &str) -> OpResult<(JobView, i64)> {
    let sql = format!("{SELECT_JOB} WHERE j.id = $1 {locking}");
    match opt(c, &sql, &[&id]).await? {
        Some(r) => view_row(&r),
        None => Err(Rejection::UnknownJob { id }.into()),
    }
}

pub async fn view(c: &Conn, wakes: &mut Vec<Wake>, id: JobId, now: Millis) -> OpResult<JobView> {
    sweep(c, wakes, now).await?;
    Ok(load(c, id).await?.0)
}

pub async fn dispatch(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    job: &NewJob,
    now: Millis,
) -> OpResult<JobView> {
    if let Some(request) = &job.request_id {
        let original = opt(
            c,
            "SELECT id FROM jobs WHERE dispatcher_id = $1 AND request_id = $2",
            &[&job.dispatcher, request],
        )
        .await?;
        if let Some(row) = original {
            let mut v = load(c, col(&row, 0)?).await?.0;
            v.duplicate = true;
            return Ok(v);
        }
    }
    super::peers::require(c, job.dispatcher).await?;
    let row = one(
        c,
        "INSERT INTO jobs (dispatcher_id, agent, prompt, model, write_access, request_id, state,
             created_at, updated_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $7, $8) RETURNING id",
        &[
            &job.dispatcher,
            &job.agent,
            &job.prompt,
            &job.model,
            &job.write,
            &job.request_id,
            &now,
            &job.expires_at,
        ],
    )
    .await?;
    wakes.push(Wake::Jobs);
    Ok(load(c, col(&row, 0)?).await?.0)
}

pub async fn claim(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    req: &ClaimRequest,
    now: Millis,
) -> OpResult<Option<JobClaim>> {
    sweep(c, wakes, now).await?;
    loop {
        let next = opt(
            c,
            "SELECT id, attempts FROM jobs
             WHERE agent = $1 AND state = 'queued' AND (NOT write_access OR $2)
             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
            &[&req.agent, &req.allow_writes],
        )
        .await?;
        let Some(row) = next else {
            return Ok(None);
        };
        let id: JobId = col(&row, 0)?;
        if small(col(&row, 1)?) >= req.max_attempts {
            settle(c, wakes, id, JobState::Dead, now).await?;
            continue;
        }
        let lease_until = now.saturating_add(req.lease_ms);
        exec(
            c,
            "UPDATE jobs SET state = 'claimed', attempts = attempts + 1, fence = fence + 1,
                 worker = $2, lease_until = $3, updated_at = $4
             WHERE id = $1",
            &[&id, &req.worker, &lease_until, &now],
        )
        .await?;
        wakes.push(Wake::Jobs);
        let (job, fence) = load(c, id).await?;
        return Ok(Some(JobClaim {
            job,
            fence,
            lease_until,
        }));
    }
}

/// The job as its claim holder may change it: locked, and the fence must be current.
async fn held(c: &Conn, id: JobId, fence: i64) -> OpResult<JobView> {
    let (job, current) = lock(c, id).await?;
    if current != fence {
        return Err(Rejection::StaleClaim { id }.into());
    }
    Ok(job)
}

fn refuse(job: &JobView, action: &'static str) -> OpError {
    Rejection::JobState {
        id: job.id,
        state: job.state.to_string(),
        action: action.into(),
    }
    .into()
}

fn is_live(state: JobState) -> bool {
    matches!(state, JobState::Claimed | JobState::Running)
}

pub async fn start(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    id: JobId,
    fence: i64,
    now: Millis,
) -> OpResult<()> {
    let job = held(c, id, fence).await?;
    if job.state != JobState::Claimed {
        return Err(refuse(&job, "started"));
    }
    exec(
        c,
        "UPDATE jobs SET state = 'running', updated_at = $2 WHERE id = $1",
        &[&id, &now],
    )
    .await?;
    wakes.push(Wake::Jobs);
    Ok(())
}

pub async fn heartbeat(
    c: &Conn,
    id: JobId,
    fence: i64,
    lease_ms: i64,
    now: Millis,
) -> OpResult<JobState> {
    let job = held(c, id, fence).await?;
    if is_live(job.state) {
        exec(
            c,
            "UPDATE jobs SET lease_until = $2, updated_at = $3 WHERE id = $1",
            &[&id, &now.saturating_add(lease_ms), &now],
        )
        .await?;
    }
    Ok(job.state)
}

pub async fn finish(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    id: JobId,
    fence: i64,
    outcome: &JobOutcome,
    now: Millis,
) -> OpResult<JobView> {
    let job = held(c, id, fence).await?;
    if !is_live(job.state) {
        return Err(refuse(&job, "finished"));
    }
    let (state, result, error, branch) = match outcome {
        JobOutcome::Completed { result, branch } => {
            (JobState::Completed, Some(result), None, branch.as_ref())
        }
        JobOutcome::Failed { error } => (JobState::Failed, None, Some(error), None),
    };
    exec(
        c,
        "UPDATE jobs SET result = $2, error = $3, branch = $4, lease_until = NULL WHERE id = $1",
        &[&id, &result, &error, &branch],
    )
    .await?;
    settle(c, wakes, id, state, now).await?;
    Ok(load(c, id).await?.0)
}

pub async fn release(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    id: JobId,
    fence: i64,
    now: Millis,
) -> OpResult<()> {
    let job = held(c, id, fence).await?;
    if !is_live(job.state) {
        return Err(refuse(&job, "released"));
    }
    // Given back unrun by a worker shutting down: not a failed attempt.
    exec(
        c,
        "UPDATE jobs SET state = 'queued', attempts = GREATEST(attempts - 1, 0), worker = NULL,
             lease_until = NULL, updated_at = $2
         WHERE id = $1",
        &[&id, &now],
    )
    .await?;
    wakes.push(Wake::Jobs);
    Ok(())
}

pub async fn cancel(c: &Conn, wakes: &mut Vec<Wake>, id: JobId, now: Millis) -> OpResult<JobView> {
    sweep(c, wakes, now).await?;
    let (job, _) = lock(c, id).await?;
    if job.state.is_final() {
        return Err(refuse(&job, "cancelled"));
    }
    settle(c, wakes, id, JobState::Cancelled, now).await?;
    Ok(load(c, id).await?.0)
}

pub async fn requeue(c: &Conn, wakes: &mut Vec<Wake>, id: JobId, now: Millis) -> OpResult<JobView> {
    sweep(c, wakes, now).await?;
    let (job, _) = lock(c, id).await?;
    if !job.state.is_final() || job.state == JobState::Completed {
        return Err(refuse(&job, "queued again"));
    }
    // A fresh start: attempts from zero, and as much time to wait as the job first had.
    exec(
        c,
        "UPDATE jobs SET state = 'queued', attempts = 0, worker = NULL, lease_until = NULL,
             result = NULL, error = NULL, updated_at = $2,
             expires_at = GREATEST(expires_at, $2 + (expires_at - created_at))
         WHERE id = $1",
        &[&id, &now],
    )
    .await?;
    wakes.push(Wake::Jobs);
    Ok(load(c, id).await?.0)
}

pub async fn list(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    q: &JobQuery,
    now: Millis,
) -> OpResult<Vec<JobView>> {
    sweep(c, wakes, now).await?;
    let sql = format!(
        "{SELECT_JOB}
         WHERE ($1::bigint IS NULL OR j.dispatcher_id = $1)
           AND ($2::text IS NULL OR j.agent = $2)
           AND (NOT $3 OR j.state IN ('queued', 'claimed', 'running'))
         ORDER BY j.id DESC LIMIT $4"
    );
    let found = rows(
        c,
        &sql,
        &[&q.dispatcher, &q.agent, &q.active_only, &big(q.limit)],
    )
    .await?;
    if let Some(dispatcher) = q.dispatcher
        && found.is_empty()
    {
        super::peers::require(c, dispatcher).await?;
    }
    found.iter().map(|r| view_row(r).map(|(v, _)| v)).collect()
}

/// Applies what time alone decides: a claim whose lease ran out is requeued — or, for a write
/// job, parked in `needs_recovery`, never re-run silently — and a queued job past its TTL
/// expires. Rows another transaction holds are left to it.
pub async fn sweep(c: &Conn, wakes: &mut Vec<Wake>, now: Millis) -> OpResult<()> {
    let lapsed = rows(
        c,
        "SELECT id, write_access FROM jobs
         WHERE state IN ('claimed', 'running') AND lease_until <= $1
         FOR UPDATE SKIP LOCKED",
        &[&now],
    )
    .await?;
    for row in lapsed {
        let id: JobId = col(&row, 0)?;
        if col::<bool>(&row, 1)? {
            settle(c, wakes, id, JobState::NeedsRecovery, now).await?;
        } else {
            exec(
                c,
                "UPDATE jobs SET state = 'queued', worker = NULL, lease_until = NULL,
                     updated_at = $2
                 WHERE id = $1",
                &[&id, &now],
            )
            .await?;
            wakes.push(Wake::Jobs);
        }
    }
    let expired = rows(
        c,
        "SELECT id FROM jobs WHERE state = 'queued' AND expires_at <= $1 FOR UPDATE SKIP LOCKED",
        &[&now],
    )
    .await?;
    for row in expired {
        settle(c, wakes, col(&row, 0)?, JobState::Expired, now).await?;
    }
    Ok(())
}

/// Puts a job in a final state and tells its dispatcher, with the id and the state only.
async fn settle(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    id: JobId,
    state: JobState,
    now: Millis,
) -> OpResult<()> {
    let row = one(
        c,
        "UPDATE jobs SET state = $2, lease_until = NULL, updated_at = $3 WHERE id = $1
         RETURNING dispatcher_id, agent, expires_at - created_at",
        &[&id, &state.as_str(), &now],
    )
    .await?;
    let (dispatcher, agent, ttl): (i64, String, i64) =
        (col(&row, 0)?, col(&row, 1)?, col(&row, 2)?);
    let text = switchboard_core::notice::job_settled(id, &agent, state);
    mail::notice(
        c,
        wakes,
        &mail::Notice {
            kind: ItemKind::Job,
            from: dispatcher,
            to: dispatcher,
            text: &text,
            reply_to: None,
            expires_at: now.saturating_add(ttl.max(0)),
        },
        now,
    )
    .await?;
    wakes.push(Wake::Jobs);
    Ok(())
}
