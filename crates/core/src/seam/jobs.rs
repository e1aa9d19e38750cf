//! The statements on the `jobs` table: one row per job, its state, its claim (worker, lease,
//! fencing token) and how it ended.

use std::future::Future;

use switchboard_proto::{Glob, JobId, JobReservation, JobState, JobView, Millis};

use super::columns::{Col, Columns};
use super::{Statements, Step};
use crate::store::{ClaimRequest, JobQuery, NewJob, PeerId};

/// The columns [`job`] decodes, in order, from [`JOB_FROM`].
pub const JOB_COLUMNS: &str = "j.id, j.agent, p.name, j.prompt, j.model, j.write_access,
    j.request_id, j.state, j.attempts, j.created_at, j.updated_at, j.expires_at, j.result,
    j.error, j.branch, j.fence, j.worker, j.reserve_repo, j.reserve_globs";

/// A job with its dispatcher `p`.
pub const JOB_FROM: &str = "FROM jobs j JOIN peers p ON p.id = j.dispatcher_id";

/// A job read with [`JOB_COLUMNS`].
pub fn job(r: &dyn Columns) -> Col<JobRow> {
    let state: JobState = r.parsed(7)?;
    // The column keeps the last claimant after the job settles (no statement that settles a
    // job needs to remember to clear it); the view names a worker only while one holds it.
    let worker = if state.is_held() {
        r.opt_text(16)?
    } else {
        None
    };
    let job = JobView {
        id: r.int(0)?,
        agent: r.text(1)?,
        dispatcher: r.text(2)?,
        prompt: r.text(3)?,
        model: r.opt_text(4)?,
        write: r.flag(5)?,
        request_id: r.opt_text(6)?,
        state,
        attempts: r.count(8)?,
        created_at: r.int(9)?,
        updated_at: r.int(10)?,
        expires_at: r.int(11)?,
        result: r.opt_text(12)?,
        error: r.opt_text(13)?,
        branch: r.opt_text(14)?,
        duplicate: false,
        worker,
        reserve: job_reservation(r, 17)?,
    };
    Ok(JobRow {
        job,
        fence: r.int(15)?,
    })
}

/// The paths a job reserves, from its repository and patterns columns (both NULL if none).
fn job_reservation(r: &dyn Columns, at: usize) -> Col<Option<JobReservation>> {
    let (Some(repo), Some(globs)) = (r.opt_text(at)?, r.opt_text(at + 1)?) else {
        return Ok(None);
    };
    let paths = globs
        .lines()
        .map(Glob::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| super::ColumnError {
            index: at + 1,
            detail: e.to_string(),
        })?;
    Ok(Some(JobReservation { repo, paths }))
}

/// A job's view alone, read with [`JOB_COLUMNS`].
pub fn job_view(r: &dyn Columns) -> Col<JobView> {
    job(r).map(|row| row.job)
}

/// A job a claim may take: `id, attempts`.
pub fn queued_job(r: &dyn Columns) -> Col<(JobId, u32)> {
    Ok((r.int(0)?, r.count(1)?))
}

/// A lapsed job: `id, write_access`.
pub fn lapsed_job(r: &dyn Columns) -> Col<(JobId, bool)> {
    Ok((r.int(0)?, r.flag(1)?))
}

/// The columns [`settled`] decodes, in order, from `jobs` (a `RETURNING` list).
pub const SETTLED_COLUMNS: &str = "dispatcher_id, agent, expires_at - created_at";

/// A settled job read with [`SETTLED_COLUMNS`].
pub fn settled(r: &dyn Columns) -> Col<Settled> {
    Ok(Settled {
        dispatcher: r.int(0)?,
        agent: r.text(1)?,
        ttl: r.int(2)?,
    })
}

/// A job as read for a change, with the fencing token of its current claim: a worker's change
/// is refused unless it names this token.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub job: JobView,
    pub fence: i64,
}

/// What a run left, in the job's columns: a completed run's result (and the branch holding
/// its work), or a failed run's error.
#[derive(Debug, Clone, Copy)]
pub struct RunOutcome<'a> {
    pub result: Option<&'a str>,
    pub error: Option<&'a str>,
    pub branch: Option<&'a str>,
}

/// What a job that reached a final state leaves for the notice to its dispatcher.
#[derive(Debug, Clone)]
pub struct Settled {
    pub dispatcher: PeerId,
    pub agent: String,
    /// How long the job was given to wait when dispatched; its notice lives as long.
    pub ttl: Millis,
}

pub trait JobStatements: Statements {
    /// The job a dispatcher already sent with this request id, if any.
    fn job_by_request(
        &mut self,
        dispatcher: PeerId,
        request: &str,
    ) -> impl Future<Output = Step<Option<JobId>, Self>> + Send;

    fn job_by_id(&mut self, id: JobId) -> impl Future<Output = Step<Option<JobRow>, Self>> + Send;

    /// The job, kept from other changes until the commit: what is checked of it (state, fence)
    /// still holds when it is written.
    fn lock_job(&mut self, id: JobId) -> impl Future<Output = Step<Option<JobRow>, Self>> + Send;

    /// Inserts a queued job; returns its id.
    fn insert_job(
        &mut self,
        job: &NewJob,
        now: Millis,
    ) -> impl Future<Output = Step<JobId, Self>> + Send;

    /// The oldest queued job this claim may take (its agent, and a write job only when the
    /// worker allows writes), with its attempts so far; a job another transaction is taking is
    /// passed over.
    fn next_queued_job(
        &mut self,
        claim: &ClaimRequest,
    ) -> impl Future<Output = Step<Option<(JobId, u32)>, Self>> + Send;

    /// Gives the job to a worker: one more attempt, a new fencing token, a lease until then.
    fn claim_job(
        &mut self,
        id: JobId,
        worker: &str,
        lease_until: Millis,
        now: Millis,
    ) -> impl Future<Output = Step<(), Self>> + Send;

    fn mark_job_running(
        &mut self,
        id: JobId,
        now: Millis,
    ) -> impl Future<Output = Step<(), Self>> + Send;

    fn extend_job_lease(
        &mut self,
        id: JobId,
        lease_until: Millis,
        now: Millis,
    ) -> impl Future<Output = Step<(), Self>> + Send;

    /// Records what a run produced (a result and branch, or an error) and ends its lease; the
    /// state is set by [`settle_job`](Self::settle_job).
    fn record_job_outcome(
        &mut self,
        id: JobId,
        outcome: RunOutcome<'_>,
    ) -> impl Future<Output = Step<(), Self>> + Send;

    /// Queues a job its worker gave back unrun: the attempt it took is returned.
    fn return_job(&mut self, id: JobId, now: Millis)
    -> impl Future<Output = Step<(), Self>> + Send;

    /// Queues a job whose lease ran out; the attempt counts.
    fn requeue_lapsed_job(
        &mut self,
        id: JobId,
        now: Millis,
    ) -> impl Future<Output = Step<(), Self>> + Send;

    /// Queues a finished job afresh: attempts from zero, no result or error, and at least as
    /// long to wait as it was first given.
    fn restart_job(
        &mut self,
        id: JobId,
        now: Millis,
    ) -> impl Future<Output = Step<(), Self>> + Send;

    /// Puts the job in a final state and ends its lease.
    fn settle_job(
        &mut self,
        id: JobId,
        state: JobState,
        now: Millis,
    ) -> impl Future<Output = Step<Settled, Self>> + Send;

    /// Claimed or running jobs whose lease has run out, with whether each may write; jobs
    /// another transaction is changing are left to it.
    fn lapsed_jobs(
        &mut self,
        now: Millis,
    ) -> impl Future<Output = Step<Vec<(JobId, bool)>, Self>> + Send;

    /// Queued jobs past their TTL; jobs another transaction is changing are left to it.
    fn expired_jobs(&mut self, now: Millis) -> impl Future<Output = Step<Vec<JobId>, Self>> + Send;

    /// Jobs matching the query, newest first.
    fn list_jobs(
        &mut self,
        query: &JobQuery,
    ) -> impl Future<Output = Step<Vec<JobView>, Self>> + Send;
}
