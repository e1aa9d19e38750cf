//! The housekeeping statements that span tables: expiry and retention for `gc`, and the counts
//! `status` shows.
//!
//! They run rarely, so they are not kept in the connection's cache of prepared statements,
//! where they would push out the ones every send and claim uses.

use switchboard_core::seam::version;
use switchboard_core::seam::{
    COUNT_JOBS, COUNTS_COLUMNS, Counts, UpkeepStatements, counts, state_count,
};
use switchboard_proto::Millis;

use super::columns::read;
use crate::fault::OpResult;
use crate::tx::LiteTx;

impl LiteTx {
    /// Runs one housekeeping statement, uncached, with the cut-off as `?1`; returns how many
    /// rows it changed.
    fn tidy(&self, sql: &str, before: Millis) -> OpResult<u64> {
        Ok(self.conn.execute(sql, [before])? as u64)
    }
}

impl UpkeepStatements for LiteTx {
    async fn expire_deliveries(&mut self, now: Millis) -> OpResult<u64> {
        let sql =
            "UPDATE deliveries SET state = 'expired', lease_session = NULL, lease_until = NULL
             WHERE state = 'queued'
               AND message_id IN (SELECT id FROM messages WHERE expires_at <= ?1)";
        self.tidy(sql, now)
    }

    async fn delete_old_answer_sources(&mut self, before: Millis) -> OpResult<u64> {
        let sql = "DELETE FROM answer_sources
             WHERE answer_id IN (SELECT id FROM messages WHERE created_at < ?1)";
        self.tidy(sql, before)
    }

    async fn delete_old_questions(&mut self, before: Millis) -> OpResult<u64> {
        let sql = "DELETE FROM questions
             WHERE message_id IN (SELECT id FROM messages WHERE created_at < ?1)
                OR reply_id IN (SELECT id FROM messages WHERE created_at < ?1)";
        self.tidy(sql, before)
    }

    async fn delete_old_deliveries(&mut self, before: Millis) -> OpResult<u64> {
        let sql = "DELETE FROM deliveries
             WHERE message_id IN (SELECT id FROM messages WHERE created_at < ?1)";
        self.tidy(sql, before)
    }

    async fn delete_old_messages(&mut self, before: Millis) -> OpResult<u64> {
        self.tidy("DELETE FROM messages WHERE created_at < ?1", before)
    }

    async fn delete_finished_jobs(&mut self, before: Millis) -> OpResult<u64> {
        let sql = "DELETE FROM jobs
             WHERE updated_at < ?1 AND state NOT IN ('queued', 'claimed', 'running')";
        self.tidy(sql, before)
    }

    async fn delete_ended_sessions(&mut self, before: Millis) -> OpResult<u64> {
        let sql = "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?1";
        self.tidy(sql, before)
    }

    async fn delete_idle_peers(&mut self, before: Millis) -> OpResult<u64> {
        let sql = "DELETE FROM peers AS p
             WHERE p.last_seen_at < ?1
               AND NOT EXISTS(SELECT 1 FROM sessions s WHERE s.peer_id = p.id)
               AND NOT EXISTS(SELECT 1 FROM messages m WHERE m.sender_id = p.id OR m.recipient_id = p.id)
               AND NOT EXISTS(SELECT 1 FROM deliveries d WHERE d.recipient_id = p.id)
               AND NOT EXISTS(SELECT 1 FROM jobs j WHERE j.dispatcher_id = p.id)";
        self.tidy(sql, before)
    }

    // Every store is migrated when opened (a read-only one must already be current), so the
    // table is there.
    async fn schema_version(&mut self) -> OpResult<u32> {
        let sql = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
        Ok(self.conn.query_row(sql, [], read(version))?)
    }

    async fn count_rows(&mut self) -> OpResult<Counts> {
        let sql = format!("SELECT {COUNTS_COLUMNS}");
        Ok(self.conn.query_row(&sql, [], read(counts))?)
    }

    async fn count_deliveries(&mut self) -> OpResult<Vec<(String, u64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, COUNT(*) FROM deliveries GROUP BY state")?;
        let rows = stmt.query_map([], read(state_count))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn count_jobs(&mut self) -> OpResult<Vec<(String, u64)>> {
        let mut stmt = self.conn.prepare(COUNT_JOBS)?;
        let rows = stmt.query_map([], read(state_count))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
