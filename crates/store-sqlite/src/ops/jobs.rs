//! Durable jobs: dispatch, claims under a lease and a fencing token, heartbeats, the end of a
//! run, and the sweeps that requeue, park (`needs_recovery`), expire or bury jobs. Every final
//! state sends the dispatcher a notice that holds the job's id and state, never its payload.

use rusqlite::{Connection, OptionalExtension, Row, params};

use switchboard_core::{ClaimRequest, JobOutcome, JobQuery, NewJob, Rejection, Wake};
use switchboard_proto::{ItemKind, JobClaim, JobId, JobState, JobView, Millis};

use super::{mail, parse_col, peers};
use crate::fault::OpResult;

const SELECT_JOB: &str = "SELECT j.id, j.agent, p.name, j.prompt, j.model, j.write_access,
        j.request_id, j.state, j.attempts, j.created_at, j.updated_at, j.expires_at, j.result,
        j.error, j.branch, j.fence
    FROM jobs j JOIN peers p ON p.id = j.dispatcher_id";

fn view_row(r: &Row<'_>) -> rusqlite::Result<(JobView, i64)> {
    Ok((
        JobView {
            id: r.get(0)?,
            agent: r.get(1)?,
            dispatcher: r.get(2)?,
            prompt: r.get(3)?,
            model: r.get(4)?,
            write: r.get(5)?,
            request_id: r.get(6)?,
            state: parse_col(r, 7)?,
            attempts: r.get(8)?,
            created_at: r.get(9)?,
            updated_at: r.get(10)?,
            expires_at: r.get(11)?,
            result: r.get(12)?,
            error: r.get(13)?,
            branch: r.get(14)?,
            duplicate: false,
        },
        r.get(15)?,
    ))
}

fn load(conn: &Connection, id: JobId) -> OpResult<(JobView, i64)> {
    conn.prepare_cached(&format!("{SELECT_JOB} WHERE j.id = ?1"))?
        .query_row([id], view_row)
        .optional()?
        .ok_or_else(|| Rejection::UnknownJob { id }.into())
}

pub fn view(conn: &Connection, wakes: &mut Vec<Wake>, id: JobId, now: Millis) -> OpResult<JobView> {
    sweep(conn, wakes, now)?;
    Ok(load(conn, id)?.0)
}

pub fn dispatch(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    job: &NewJob,
    now: Millis,
) -> OpResult<JobView> {
    if let Some(request) = &job.request_id {
        let original: Option<JobId> = conn
            .prepare_cached(
                "SELECT id FROM jobs
                 WHERE dispatcher_id = ?1 AND request_id = ?2 AND request_id IS NOT NULL",
            )?
            .query_row(params![job.dispatcher, request], |r| r.get(0))
            .optional()?;
        if let Some(id) = original {
            let mut v = load(conn, id)?.0;
            v.duplicate = true;
            return Ok(v);
        }
    }
    peers::require(conn, job.dispatcher)?;
    conn.prepare_cached(
        "INSERT INTO jobs (dispatcher_id, agent, prompt, model, write_access, request_id, state,
             created_at, updated_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?7, ?8)",
    )?
    .execute(params![
        job.dispatcher,
        job.agent,
        job.prompt,
        job.model,
        job.write,
        job.request_id,
        now,
        job.expires_at
    ])?;
    wakes.push(Wake::Jobs);
    Ok(load(conn, conn.last_insert_rowid())?.0)
}

pub fn claim(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    req: &ClaimRequest,
    now: Millis,
) -> OpResult<Option<JobClaim>> {
    sweep(conn, wakes, now)?;
    let mut next = conn.prepare_cached(
        "SELECT id, attempts FROM jobs
         WHERE agent = ?1 AND state = 'queued' AND (write_access = 0 OR ?2)
         ORDER BY id LIMIT 1",
    )?;
    loop {
        let Some((id, attempts)) = next
            .query_row(params![req.agent, req.allow_writes], |r| {
                Ok((r.get::<_, JobId>(0)?, r.get::<_, u32>(1)?))
            })
            .optional()?
        else {
            return Ok(None);
        };
        if attempts >= req.max_attempts {
            settle(conn, wakes, id, JobState::Dead, now)?;
            continue;
        }
        let lease_until = now.saturating_add(req.lease_ms);
        conn.prepare_cached(
            "UPDATE jobs SET state = 'claimed', attempts = attempts + 1, fence = fence + 1,
                 worker = ?2, lease_until = ?3, updated_at = ?4
             WHERE id = ?1",
        )?
        .execute(params![id, req.worker, lease_until, now])?;
        wakes.push(Wake::Jobs);
        let (job, fence) = load(conn, id)?;
        return Ok(Some(JobClaim {
            job,
            fence,
            lease_until,
        }));
    }
}

/// The job as its claim holder may change it: the fence must be current.
fn held(conn: &Connection, id: JobId, fence: i64) -> OpResult<JobView> {
    let (job, current) = load(conn, id)?;
    if current != fence {
        return Err(Rejection::StaleClaim { id }.into());
    }
    Ok(job)
}

fn refuse(job: &JobView, action: &'static str) -> crate::fault::OpError {
    Rejection::JobState {
        id: job.id,
        state: job.state.to_string(),
        action: action.into(),
    }
    .into()
}

pub fn start(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    id: JobId,
    fence: i64,
    now: Millis,
) -> OpResult<()> {
    let job = held(conn, id, fence)?;
    if job.state != JobState::Claimed {
        return Err(refuse(&job, "started"));
    }
    conn.prepare_cached("UPDATE jobs SET state = 'running', updated_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    wakes.push(Wake::Jobs);
    Ok(())
}

pub fn heartbeat(
    conn: &Connection,
    id: JobId,
    fence: i64,
    lease_ms: i64,
    now: Millis,
) -> OpResult<JobState> {
    let job = held(conn, id, fence)?;
    if matches!(job.state, JobState::Claimed | JobState::Running) {
        conn.prepare_cached("UPDATE jobs SET lease_until = ?2, updated_at = ?3 WHERE id = ?1")?
            .execute(params![id, now.saturating_add(lease_ms), now])?;
    }
    Ok(job.state)
}

pub fn finish(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    id: JobId,
    fence: i64,
    outcome: &JobOutcome,
    now: Millis,
) -> OpResult<JobView> {
    let job = held(conn, id, fence)?;
    if !matches!(job.state, JobState::Claimed | JobState::Running) {
        return Err(refuse(&job, "finished"));
    }
    let (state, result, error, branch) = match outcome {
        JobOutcome::Completed { result, branch } => {
            (JobState::Completed, Some(result), None, branch.as_ref())
        }
        JobOutcome::Failed { error } => (JobState::Failed, None, Some(error), None),
    };
    conn.prepare_cached(
        "UPDATE jobs SET result = ?2, error = ?3, branch = ?4, lease_until = NULL WHERE id = ?1",
    )?
    .execute(params![id, result, error, branch])?;
    settle(conn, wakes, id, state, now)?;
    Ok(load(conn, id)?.0)
}

pub fn release(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    id: JobId,
    fence: i64,
    now: Millis,
) -> OpResult<()> {
    let job = held(conn, id, fence)?;
    if !matches!(job.state, JobState::Claimed | JobState::Running) {
        return Err(refuse(&job, "released"));
    }
    // Given back unrun by a worker shutting down: not a failed attempt.
    conn.prepare_cached(
        "UPDATE jobs SET state = 'queued', attempts = MAX(attempts - 1, 0), worker = NULL,
             lease_until = NULL, updated_at = ?2
         WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    wakes.push(Wake::Jobs);
    Ok(())
}

pub fn cancel(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    id: JobId,
    now: Millis,
) -> OpResult<JobView> {
    sweep(conn, wakes, now)?;
    let (job, _) = load(conn, id)?;
    if job.state.is_final() {
        return Err(refuse(&job, "cancelled"));
    }
    settle(conn, wakes, id, JobState::Cancelled, now)?;
    Ok(load(conn, id)?.0)
}

pub fn requeue(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    id: JobId,
    now: Millis,
) -> OpResult<JobView> {
    sweep(conn, wakes, now)?;
    let (job, _) = load(conn, id)?;
    if !job.state.is_final() || job.state == JobState::Completed {
        return Err(refuse(&job, "queued again"));
    }
    // A fresh start: attempts from zero, and as much time to wait as the job first had.
    conn.prepare_cached(
        "UPDATE jobs SET state = 'queued', attempts = 0, worker = NULL, lease_until = NULL,
             result = NULL, error = NULL, updated_at = ?2,
             expires_at = MAX(expires_at, ?2 + (expires_at - created_at))
         WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    wakes.push(Wake::Jobs);
    Ok(load(conn, id)?.0)
}

pub fn list(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    q: &JobQuery,
    now: Millis,
) -> OpResult<Vec<JobView>> {
    sweep(conn, wakes, now)?;
    let sql = format!(
        "{SELECT_JOB}
         WHERE (?1 IS NULL OR j.dispatcher_id = ?1) AND (?2 IS NULL OR j.agent = ?2)
           AND (NOT ?3 OR j.state IN ('queued', 'claimed', 'running'))
         ORDER BY j.id DESC LIMIT ?4"
    );
    let rows: Vec<JobView> = conn
        .prepare_cached(&sql)?
        .query_map(
            params![q.dispatcher, q.agent, q.active_only, q.limit],
            view_row,
        )?
        .map(|r| r.map(|(v, _)| v))
        .collect::<Result<_, _>>()?;
    if let Some(dispatcher) = q.dispatcher
        && rows.is_empty()
    {
        peers::require(conn, dispatcher)?;
    }
    Ok(rows)
}

/// Applies what time alone decides: a claim whose lease ran out is requeued — or, for a write
/// job, parked in `needs_recovery`, never re-run silently — and a queued job past its TTL
/// expires.
pub fn sweep(conn: &Connection, wakes: &mut Vec<Wake>, now: Millis) -> OpResult<()> {
    let lapsed: Vec<(JobId, bool)> = conn
        .prepare_cached(
            "SELECT id, write_access FROM jobs
             WHERE state IN ('claimed', 'running') AND lease_until <= ?1",
        )?
        .query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, write) in lapsed {
        if write {
            settle(conn, wakes, id, JobState::NeedsRecovery, now)?;
        } else {
            conn.prepare_cached(
                "UPDATE jobs SET state = 'queued', worker = NULL, lease_until = NULL,
                     updated_at = ?2
                 WHERE id = ?1",
            )?
            .execute(params![id, now])?;
            wakes.push(Wake::Jobs);
        }
    }
    let expired: Vec<JobId> = conn
        .prepare_cached("SELECT id FROM jobs WHERE state = 'queued' AND expires_at <= ?1")?
        .query_map([now], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in expired {
        settle(conn, wakes, id, JobState::Expired, now)?;
    }
    Ok(())
}

/// Puts a job in a final state and tells its dispatcher, with the id and the state only.
fn settle(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    id: JobId,
    state: JobState,
    now: Millis,
) -> OpResult<()> {
    conn.prepare_cached(
        "UPDATE jobs SET state = ?2, lease_until = NULL, updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![id, state.as_str(), now])?;
    let (dispatcher, agent, ttl): (i64, String, i64) = conn
        .prepare_cached(
            "SELECT dispatcher_id, agent, expires_at - created_at FROM jobs WHERE id = ?1",
        )?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let text = switchboard_core::notice::job_settled(id, &agent, state);
    mail::notice(
        conn,
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
    )?;
    wakes.push(Wake::Jobs);
    Ok(())
}
