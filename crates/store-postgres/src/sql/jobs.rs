//! The `jobs` table: one row per job, its state, its claim and how it ended.
//!
//! Replicas claim side by side: the next queued job is taken `FOR UPDATE SKIP LOCKED`, so two
//! workers never wait on, or both take, one job; a worker-side change locks the job's row
//! before its fence is checked, and the sweeps leave rows another transaction holds to it.

use switchboard_core::seam::columns::int;
use switchboard_core::seam::settled;
use switchboard_core::seam::{
    JOB_COLUMNS, JOB_FROM, JobRow, JobStatements, RunOutcome, globs_text,
};
use switchboard_core::seam::{SETTLED_COLUMNS, Settled, job, job_view, lapsed_job, queued_job};
use switchboard_core::{ClaimRequest, JobQuery, NewJob, PeerId};
use switchboard_proto::{JobId, JobState, JobView, Millis};

use super::{Params, big};
use crate::fault::OpResult;
use crate::tx::PgTx;

impl JobStatements for PgTx {
    async fn job_by_request(&mut self, from: PeerId, request: &str) -> OpResult<Option<JobId>> {
        // `request_id IS NOT NULL` is the condition of the partial index `jobs_by_request`.
        let sql = "SELECT id FROM jobs
             WHERE dispatcher_id = $1 AND request_id = $2 AND request_id IS NOT NULL";
        self.opt(sql, &[&from, &request], int).await
    }

    async fn job_by_id(&mut self, id: JobId) -> OpResult<Option<JobRow>> {
        let sql = format!("SELECT {JOB_COLUMNS} {JOB_FROM} WHERE j.id = $1");
        self.opt(&sql, &[&id], job).await
    }

    // Only the job's row is locked, not its dispatcher's.
    async fn lock_job(&mut self, id: JobId) -> OpResult<Option<JobRow>> {
        let sql = format!("SELECT {JOB_COLUMNS} {JOB_FROM} WHERE j.id = $1 FOR UPDATE OF j");
        self.opt(&sql, &[&id], job).await
    }

    async fn insert_job(&mut self, job: &NewJob, now: Millis) -> OpResult<JobId> {
        let reserve_repo = job.reserve.as_ref().map(|r| r.repo.as_str());
        let reserve_globs = job.reserve.as_ref().map(|r| globs_text(&r.paths));
        let id = self
            .one(
                "INSERT INTO jobs (dispatcher_id, agent, prompt, model, write_access, request_id,
                 state, created_at, updated_at, expires_at, reserve_repo, reserve_globs)
             VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $7, $8, $9, $10) RETURNING id",
                &[
                    &job.dispatcher,
                    &job.agent,
                    &job.prompt,
                    &job.model,
                    &job.write,
                    &job.request_id,
                    &now,
                    &job.expires_at,
                    &reserve_repo,
                    &reserve_globs,
                ],
                int,
            )
            .await?;
        self.inserted_job(id);
        Ok(id)
    }

    // SKIP LOCKED: a job another worker is claiming right now is passed over, not waited on.
    async fn next_queued_job(&mut self, claim: &ClaimRequest) -> OpResult<Option<(JobId, u32)>> {
        let sql = "SELECT id, attempts FROM jobs
             WHERE agent = $1 AND state = 'queued' AND (NOT write_access OR $2)
             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED";
        let params: Params = &[&claim.agent, &claim.allow_writes];
        self.opt(sql, params, queued_job).await
    }

    async fn claim_job(&mut self, id: JobId, by: &str, until: Millis, now: Millis) -> OpResult<()> {
        let sql = "UPDATE jobs SET state = 'claimed', attempts = attempts + 1, fence = fence + 1,
                 worker = $2, lease_until = $3, updated_at = $4
             WHERE id = $1";
        self.exec(sql, &[&id, &by, &until, &now]).await?;
        Ok(())
    }

    async fn mark_job_running(&mut self, id: JobId, now: Millis) -> OpResult<()> {
        let sql = "UPDATE jobs SET state = 'running', updated_at = $2 WHERE id = $1";
        self.exec(sql, &[&id, &now]).await?;
        Ok(())
    }

    async fn extend_job_lease(&mut self, id: JobId, until: Millis, now: Millis) -> OpResult<()> {
        let sql = "UPDATE jobs SET lease_until = $2, updated_at = $3 WHERE id = $1";
        self.exec(sql, &[&id, &until, &now]).await?;
        Ok(())
    }

    async fn record_job_outcome(&mut self, id: JobId, o: RunOutcome<'_>) -> OpResult<()> {
        let sql = "UPDATE jobs SET result = $2, error = $3, branch = $4, lease_until = NULL
             WHERE id = $1";
        self.exec(sql, &[&id, &o.result, &o.error, &o.branch])
            .await?;
        Ok(())
    }

    // GREATEST is SQLite's two-argument MAX.
    async fn return_job(&mut self, id: JobId, now: Millis) -> OpResult<()> {
        let sql = "UPDATE jobs SET state = 'queued', attempts = GREATEST(attempts - 1, 0),
                 worker = NULL, lease_until = NULL, updated_at = $2
             WHERE id = $1";
        self.exec(sql, &[&id, &now]).await?;
        Ok(())
    }

    async fn requeue_lapsed_job(&mut self, id: JobId, now: Millis) -> OpResult<()> {
        let sql = "UPDATE jobs SET state = 'queued', worker = NULL, lease_until = NULL,
                 updated_at = $2
             WHERE id = $1";
        self.exec(sql, &[&id, &now]).await?;
        Ok(())
    }

    async fn restart_job(&mut self, id: JobId, now: Millis) -> OpResult<()> {
        let sql = "UPDATE jobs SET state = 'queued', attempts = 0, worker = NULL,
                 lease_until = NULL, result = NULL, error = NULL, updated_at = $2,
                 expires_at = GREATEST(expires_at, $2 + (expires_at - created_at))
             WHERE id = $1";
        self.exec(sql, &[&id, &now]).await?;
        Ok(())
    }

    async fn settle_job(&mut self, id: JobId, state: JobState, now: Millis) -> OpResult<Settled> {
        let sql = format!(
            "UPDATE jobs SET state = $2, lease_until = NULL, updated_at = $3 WHERE id = $1
             RETURNING {SETTLED_COLUMNS}"
        );
        self.one(&sql, &[&id, &state.as_str(), &now], settled).await
    }

    async fn lapsed_jobs(&mut self, now: Millis) -> OpResult<Vec<(JobId, bool)>> {
        let sql = "SELECT id, write_access FROM jobs
             WHERE state IN ('claimed', 'running') AND lease_until <= $1
             FOR UPDATE SKIP LOCKED";
        self.all(sql, &[&now], lapsed_job).await
    }

    async fn expired_jobs(&mut self, now: Millis) -> OpResult<Vec<JobId>> {
        let sql = "SELECT id FROM jobs WHERE state = 'queued' AND expires_at <= $1
             FOR UPDATE SKIP LOCKED";
        self.all(sql, &[&now], int).await
    }

    // Postgres must be told the type of a parameter that is only compared with NULL.
    async fn list_jobs(&mut self, q: &JobQuery) -> OpResult<Vec<JobView>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} {JOB_FROM}
             WHERE ($1::bigint IS NULL OR j.dispatcher_id = $1)
               AND ($2::text IS NULL OR j.agent = $2)
               AND (NOT $3 OR j.state IN ('queued', 'claimed', 'running'))
             ORDER BY j.id DESC LIMIT $4"
        );
        let params: Params = &[&q.dispatcher, &q.agent, &q.active_only, &big(q.limit)];
        self.all(&sql, params, job_view).await
    }
}
