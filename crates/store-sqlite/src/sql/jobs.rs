//! The `jobs` table: one row per job, its state, its claim and how it ended.
//!
//! No statement here locks or skips a row: the one writer thread keeps every other write out
//! until the commit, so what a procedure read of a job still holds when it writes it.

use rusqlite::{OptionalExtension, Row, params};

use switchboard_core::seam::{JobRow, JobStatements, RunOutcome, Settled};
use switchboard_core::{ClaimRequest, JobQuery, NewJob, PeerId};
use switchboard_proto::{JobId, JobState, JobView, Millis};

use super::parse_col;
use crate::fault::OpResult;
use crate::tx::LiteTx;

const SELECT_JOB: &str = "SELECT j.id, j.agent, p.name, j.prompt, j.model, j.write_access,
        j.request_id, j.state, j.attempts, j.created_at, j.updated_at, j.expires_at, j.result,
        j.error, j.branch, j.fence
    FROM jobs j JOIN peers p ON p.id = j.dispatcher_id";

fn job_row(r: &Row<'_>) -> rusqlite::Result<JobRow> {
    let job = JobView {
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
    };
    Ok(JobRow {
        job,
        fence: r.get(15)?,
    })
}

impl JobStatements for LiteTx {
    async fn job_by_request(&mut self, from: PeerId, request: &str) -> OpResult<Option<JobId>> {
        // `request_id IS NOT NULL` is the condition of the partial index `jobs_by_request`.
        let sql = "SELECT id FROM jobs
             WHERE dispatcher_id = ?1 AND request_id = ?2 AND request_id IS NOT NULL";
        Ok(self
            .conn
            .prepare_cached(sql)?
            .query_row(params![from, request], |r| r.get(0))
            .optional()?)
    }

    async fn job_by_id(&mut self, id: JobId) -> OpResult<Option<JobRow>> {
        let sql = format!("{SELECT_JOB} WHERE j.id = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([id], job_row)
            .optional()?)
    }

    // No lock: the one writer thread already keeps every other write out until the commit.
    async fn lock_job(&mut self, id: JobId) -> OpResult<Option<JobRow>> {
        self.job_by_id(id).await
    }

    async fn insert_job(&mut self, job: &NewJob, now: Millis) -> OpResult<JobId> {
        self.conn
            .prepare_cached(
                "INSERT INTO jobs (dispatcher_id, agent, prompt, model, write_access, request_id,
                     state, created_at, updated_at, expires_at)
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
        Ok(self.conn.last_insert_rowid())
    }

    // The single writer: the job found is the one claimed, no other worker can take it between.
    async fn next_queued_job(&mut self, claim: &ClaimRequest) -> OpResult<Option<(JobId, u32)>> {
        let sql = "SELECT id, attempts FROM jobs
             WHERE agent = ?1 AND state = 'queued' AND (write_access = 0 OR ?2)
             ORDER BY id LIMIT 1";
        Ok(self
            .conn
            .prepare_cached(sql)?
            .query_row(params![claim.agent, claim.allow_writes], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
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
        let sql = "UPDATE jobs SET state = ?2, lease_until = NULL, updated_at = ?3 WHERE id = ?1
             RETURNING dispatcher_id, agent, expires_at - created_at";
        Ok(self
            .conn
            .prepare_cached(sql)?
            .query_row(params![id, state.as_str(), now], |r| {
                Ok(Settled {
                    dispatcher: r.get(0)?,
                    agent: r.get(1)?,
                    ttl: r.get(2)?,
                })
            })?)
    }

    // Nothing to skip: no other transaction is changing jobs while the writer runs this one.
    async fn lapsed_jobs(&mut self, now: Millis) -> OpResult<Vec<(JobId, bool)>> {
        let sql = "SELECT id, write_access FROM jobs
             WHERE state IN ('claimed', 'running') AND lease_until <= ?1";
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn expired_jobs(&mut self, now: Millis) -> OpResult<Vec<JobId>> {
        let sql = "SELECT id FROM jobs WHERE state = 'queued' AND expires_at <= ?1";
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map([now], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn list_jobs(&mut self, q: &JobQuery) -> OpResult<Vec<JobView>> {
        let sql = format!(
            "{SELECT_JOB}
             WHERE (?1 IS NULL OR j.dispatcher_id = ?1) AND (?2 IS NULL OR j.agent = ?2)
               AND (NOT ?3 OR j.state IN ('queued', 'claimed', 'running'))
             ORDER BY j.id DESC LIMIT ?4"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![q.dispatcher, q.agent, q.active_only, q.limit],
            |r| job_row(r).map(|row| row.job),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
