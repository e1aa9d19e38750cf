//! The housekeeping statements that span tables: expiry and retention for `gc`, and the counts
//! `status` shows.

use std::sync::LazyLock;

use switchboard_core::seam::columns::total;
use switchboard_core::seam::version;
use switchboard_core::seam::{
    COUNT_JOBS, COUNTS_COLUMNS, Counts, UpkeepStatements, counts, state_count,
};
use switchboard_proto::Millis;

use super::deliveries::UNCOUNT_MANY;
use crate::fault::OpResult;
use crate::tx::PgTx;

/// The queued copies of messages past their TTL, expired and counted out of the queue.
static EXPIRE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH changed AS (
             UPDATE deliveries SET state = 'expired', lease_session = NULL, lease_until = NULL
             WHERE state = 'queued'
               AND message_id IN (SELECT id FROM messages WHERE expires_at <= $1)
             RETURNING recipient_id),
         left_queue AS (SELECT recipient_id FROM changed),
         {UNCOUNT_MANY}"
    )
});

impl UpkeepStatements for PgTx {
    async fn expire_deliveries(&mut self, now: Millis) -> OpResult<u64> {
        self.one(&EXPIRE, &[&now], total).await
    }

    async fn delete_old_answer_sources(&mut self, before: Millis) -> OpResult<u64> {
        let sql = "DELETE FROM answer_sources
             WHERE answer_id IN (SELECT id FROM messages WHERE created_at < $1)";
        self.exec(sql, &[&before]).await
    }

    async fn delete_old_questions(&mut self, before: Millis) -> OpResult<u64> {
        let sql = "DELETE FROM questions
             WHERE message_id IN (SELECT id FROM messages WHERE created_at < $1)
                OR reply_id IN (SELECT id FROM messages WHERE created_at < $1)";
        self.exec(sql, &[&before]).await
    }

    async fn delete_old_deliveries(&mut self, before: Millis) -> OpResult<u64> {
        let sql = "DELETE FROM deliveries
             WHERE message_id IN (SELECT id FROM messages WHERE created_at < $1)";
        self.exec(sql, &[&before]).await
    }

    async fn delete_old_messages(&mut self, before: Millis) -> OpResult<u64> {
        let sql = "DELETE FROM messages WHERE created_at < $1";
        self.exec(sql, &[&before]).await
    }

    async fn delete_finished_jobs(&mut self, before: Millis) -> OpResult<u64> {
        let sql = "DELETE FROM jobs
             WHERE updated_at < $1 AND state NOT IN ('queued', 'claimed', 'running')";
        self.exec(sql, &[&before]).await
    }

    async fn delete_ended_sessions(&mut self, before: Millis) -> OpResult<u64> {
        let sql = "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < $1";
        self.exec(sql, &[&before]).await
    }

    async fn delete_idle_peers(&mut self, before: Millis) -> OpResult<u64> {
        let sql = "DELETE FROM peers p
             WHERE p.last_seen_at < $1
               AND NOT EXISTS(SELECT 1 FROM sessions s WHERE s.peer_id = p.id)
               AND NOT EXISTS(SELECT 1 FROM messages m WHERE m.sender_id = p.id OR m.recipient_id = p.id)
               AND NOT EXISTS(SELECT 1 FROM deliveries d WHERE d.recipient_id = p.id)
               AND NOT EXISTS(SELECT 1 FROM jobs j WHERE j.dispatcher_id = p.id)";
        self.exec(sql, &[&before]).await
    }

    // The version table lives in the room's schema, on the transaction's search path; `version`
    // is an INT there.
    async fn schema_version(&mut self) -> OpResult<u32> {
        let sql = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
        self.one(sql, &[], version).await
    }

    async fn count_rows(&mut self) -> OpResult<Counts> {
        self.one(&format!("SELECT {COUNTS_COLUMNS}"), &[], counts)
            .await
    }

    async fn count_deliveries(&mut self) -> OpResult<Vec<(String, u64)>> {
        let sql = "SELECT state, COUNT(*) FROM deliveries GROUP BY state";
        self.all(sql, &[], state_count).await
    }

    async fn count_jobs(&mut self) -> OpResult<Vec<(String, u64)>> {
        self.all(COUNT_JOBS, &[], state_count).await
    }
}
