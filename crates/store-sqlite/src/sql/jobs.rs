//! The `jobs` table: one row per job, its state, its claim and how it ended.
//!
//! No statement here locks or skips a row: the one writer thread keeps every other write out
//! until the commit, so what a procedure read of a job still holds when it writes it.

use rusqlite::params;

use switchboard_core::seam::columns::int;
use switchboard_core::seam::settled;
use switchboard_core::seam::{
    JOB_COLUMNS, JOB_FROM, JobRow, JobStatements, RunOutcome, globs_text,
};
use switchboard_core::seam::{SETTLED_COLUMNS, Settled, job, job_view, lapsed_job, queued_job};
use switchboard_core::{ClaimRequest, JobQuery, NewJob, PeerId};
use switchboard_proto::{JobId, JobState, JobView, Millis};

use crate::fault::OpResult;
use crate::tx::LiteTx;

impl JobStatements for LiteTx {
    async fn job_by_request(&mut self, from: PeerId, request: &str) -> OpResult<Option<JobId>> {
        // `request_id IS NOT NULL` is the condition of the partial index `jobs_by_request`.
        let sql = "SELECT id FROM jobs
             WHERE dispatcher_id = ?1 AND request_id = ?2 AND request_id IS NOT NULL";
        self.opt(sql, params![from, request], int)
    }

    async fn job_by_id(&mut self, id: JobId) -> OpResult<Option<JobRow>> {
        let sql = format!("SELECT {JOB_COLUMNS} {JOB_FROM} WHERE j.id = ?1");
        self.opt(&sql, [id], job)
    }

    // No lock: the one writer thread already keeps every other write out until the commit.
    async fn lock_job(&mut self, id: JobId) -> OpResult<Option<JobRow>> {
        self.job_by_id(id).await
    }

    async fn insert_job(&mut self, job: &NewJob, now: Millis) -> OpResult<JobId> {
        self.conn
            .prepare_cached(
                "INSERT INTO jobs (dispatcher_id, agent, prompt, model, write_access, request_id,
                     state, created_at, updated_at, expires_at, reserve_repo, reserve_globs)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                job.dispatcher,
                job.agent,
                job.prompt,
                job.model,
                job.write,
                job.request_id,
                now,
                job.expires_at,
                job.reserve.as_ref().map(|r| r.repo.as_str()),
                job.reserve.as_ref().map(|r| globs_text(&r.paths)),
            ])?;
        Ok(self.conn.last_insert_rowid().into())
    }

    // The single writer: the job found is the one claimed, no other worker can take it between.
    async fn next_queued_job(&mut self, claim: &ClaimRequest) -> OpResult<Option<(JobId, u32)>> {
        let sql = "SELECT id, attempts FROM jobs
             WHERE agent = ?1 AND state = 'queued' AND (write_access = 0 OR ?2)
             ORDER BY id LIMIT 1";
        self.opt(sql, params![claim.agent, claim.allow_writes], queued_job)
    }

    async fn claim_job(&mut self, id: JobId, by: &str, until: Millis, now: Millis) -> OpResult<()> {
        let sql = "UPDATE jobs SET state = 'claimed', attempts = attempts + 1, fence = fence + 1,
                 worker = ?2, lease_until = ?3, updated_at = ?4
             WHERE id = ?1";
        self.exec(sql, params![id, by, until, now])?;
        Ok(())
    }

    async fn mark_job_running(&mut self, id: JobId, now: Millis) -> OpResult<()> {
        let sql = "UPDATE jobs SET state = 'running', updated_at = ?2 WHERE id = ?1";
        self.exec(sql, params![id, now])?;
        Ok(())
    }

    async fn extend_job_lease(&mut self, id: JobId, until: Millis, now: Millis) -> OpResult<()> {
        let sql = "UPDATE jobs SET lease_until = ?2, updated_at = ?3 WHERE id = ?1";
        self.exec(sql, params![id, until, now])?;
        Ok(())
    }

    async fn record_job_outcome(&mut self, id: JobId, o: RunOutcome<'_>) -> OpResult<()> {
        let sql = "UPDATE jobs SET result = ?2, error = ?3, branch = ?4, lease_until = NULL
             WHERE id = ?1";
        self.exec(sql, params![id, o.result, o.error, o.branch])?;
        Ok(())
    }

    // SQLite's two-argument MAX is Postgres's GREATEST.
    async fn return_job(&mut self, id: JobId, now: Millis) -> OpResult<()> {
        let sql = "UPDATE jobs SET state = 'queued', attempts = MAX(attempts - 1, 0),
                 worker = NULL, lease_until = NULL, updated_at = ?2
             WHERE id = ?1";
        self.exec(sql, params![id, now])?;
        Ok(())
    }

    async fn requeue_lapsed_job(&mut self, id: JobId, now: Millis) -> OpResult<()> {
        let sql = "UPDATE jobs SET state = 'queued', worker = NULL, lease_until = NULL,
                 updated_at = ?2
             WHERE id = ?1";
        self.exec(sql, params![id, now])?;
        Ok(())
    }

    async fn restart_job(&mut self, id: JobId, now: Millis) -> OpResult<()> {
        let sql = "UPDATE jobs SET state = 'queued', attempts = 0, worker = NULL,
                 lease_until = NULL, result = NULL, error = NULL, updated_at = ?2,
                 expires_at = MAX(expires_at, ?2 + (expires_at - created_at))
             WHERE id = ?1";
        self.exec(sql, params![id, now])?;
        Ok(())
    }

    async fn settle_job(&mut self, id: JobId, state: JobState, now: Millis) -> OpResult<Settled> {
        let sql = format!(
            "UPDATE jobs SET state = ?2, lease_until = NULL, updated_at = ?3 WHERE id = ?1
             RETURNING {SETTLED_COLUMNS}"
        );
        self.one(&sql, params![id, state.as_str(), now], settled)
    }

    // Nothing to skip: no other transaction is changing jobs while the writer runs this one.
    async fn lapsed_jobs(&mut self, now: Millis) -> OpResult<Vec<(JobId, bool)>> {
        let sql = "SELECT id, write_access FROM jobs
             WHERE state IN ('claimed', 'running') AND lease_until <= ?1";
        self.all(sql, [now], lapsed_job)
    }

    async fn expired_jobs(&mut self, now: Millis) -> OpResult<Vec<JobId>> {
        self.all(EXPIRED_JOBS, [now], int)
    }

    async fn list_jobs(&mut self, q: &JobQuery) -> OpResult<Vec<JobView>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} {JOB_FROM}
             WHERE (?1 IS NULL OR j.dispatcher_id = ?1) AND (?2 IS NULL OR j.agent = ?2)
               AND (NOT ?3 OR j.state IN ('queued', 'claimed', 'running'))
             ORDER BY j.id DESC LIMIT ?4"
        );
        let params = params![q.dispatcher, q.agent, q.active_only, q.limit];
        self.all(&sql, params, job_view)
    }
}

/// Queued jobs past their expiry, found by `jobs_by_expiry` (every claim's sweep runs this).
const EXPIRED_JOBS: &str = "SELECT id FROM jobs WHERE state = 'queued' AND expires_at <= ?1";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::EXPIRED_JOBS;

    #[test]
    fn a_claims_sweep_finds_the_expired_jobs_without_walking_every_queued_one_regression() {
        let steps = crate::sql::query_plan(EXPIRED_JOBS, [1]);
        assert!(
            steps
                .iter()
                .any(|s| s.contains("jobs_by_expiry (state=? AND expires_at<?)")),
            "a range over the expiry: {steps:?}"
        );
    }
}
