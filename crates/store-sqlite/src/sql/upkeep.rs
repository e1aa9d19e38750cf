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

/// The peers idle since the cut-off that nothing refers to. No index finds a peer's messages
/// as recipient, nor (since v13, copies keyed by message first) its copies: a correlated check
/// per peer would read both tables whole for each idle peer, in the writer, every gc. Each
/// `NOT IN` list is read once per statement instead, and only if some peer is idle that long
/// with no session (no column in them holds NULL, which `NOT IN` would take for "maybe").
const DELETE_IDLE_PEERS: &str = "DELETE FROM peers AS p
     WHERE p.last_seen_at < ?1
       AND NOT EXISTS(SELECT 1 FROM sessions s WHERE s.peer_id = p.id)
       AND NOT EXISTS(SELECT 1 FROM jobs j WHERE j.dispatcher_id = p.id)
       AND p.id NOT IN (SELECT sender_id FROM messages)
       AND p.id NOT IN (SELECT recipient_id FROM messages WHERE recipient_id IS NOT NULL)
       AND p.id NOT IN (SELECT recipient_id FROM deliveries)";

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
        self.tidy(DELETE_IDLE_PEERS, before)
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

#[cfg(test)]
mod tests {
    use super::DELETE_IDLE_PEERS;

    /// Until v13 the copies were found by recipient through their key; keyed by message, a
    /// check per idle peer would read every copy (and every message, which no index finds by
    /// recipient) once per peer. Read once per statement, whatever the number of idle peers.
    #[test]
    fn idle_peers_are_checked_against_each_table_once_not_once_a_peer_regression() {
        let steps = crate::sql::query_plan(DELETE_IDLE_PEERS, [1]);
        assert!(
            !steps.iter().any(|s| s.contains("CORRELATED")
                && (s.contains("messages") || s.contains("deliveries"))),
            "{steps:?}"
        );
        assert_eq!(
            steps
                .iter()
                .filter(|s| s.starts_with("LIST SUBQUERY"))
                .count(),
            3,
            "{steps:?}"
        );
    }
}
