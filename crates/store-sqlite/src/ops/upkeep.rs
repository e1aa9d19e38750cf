//! Housekeeping: expiry, retention and the counts `status` shows.

use rusqlite::{Connection, params};

use switchboard_core::{GcPolicy, GcReport, StoreStats, Wake};
use switchboard_proto::Millis;

use super::peers;
use crate::fault::OpResult;
use crate::liveness::Liveness;
use crate::migrate;

pub fn gc(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    live: &Liveness,
    policy: GcPolicy,
    now: Millis,
) -> OpResult<GcReport> {
    let dead_sessions = peers::reap(conn, wakes, live, now)?;
    let expired = conn.execute(
        "UPDATE deliveries SET state = 'expired', lease_session = NULL, lease_until = NULL
         WHERE state = 'queued'
           AND message_id IN (SELECT id FROM messages WHERE expires_at <= ?1)",
        [now],
    )? as u64;
    let cutoff = policy.delete_before;
    // Children first: sources, question records, deliveries, then the messages themselves.
    conn.execute(
        "DELETE FROM answer_sources
         WHERE answer_id IN (SELECT id FROM messages WHERE created_at < ?1)",
        [cutoff],
    )?;
    conn.execute(
        "DELETE FROM questions
         WHERE message_id IN (SELECT id FROM messages WHERE created_at < ?1)
            OR reply_id IN (SELECT id FROM messages WHERE created_at < ?1)",
        [cutoff],
    )?;
    conn.execute(
        "DELETE FROM deliveries
         WHERE message_id IN (SELECT id FROM messages WHERE created_at < ?1)",
        [cutoff],
    )?;
    let messages_deleted =
        conn.execute("DELETE FROM messages WHERE created_at < ?1", [cutoff])? as u64;
    // Finished jobs go with their retention window, and their request ids with them.
    conn.execute(
        "DELETE FROM jobs WHERE updated_at < ?1
           AND state NOT IN ('queued', 'claimed', 'running')",
        [cutoff],
    )?;
    let sessions_deleted = conn.execute(
        "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?1",
        [cutoff],
    )? as u64;
    let peers_deleted = conn.execute(
        "DELETE FROM peers AS p
         WHERE p.last_seen_at < ?1
           AND NOT EXISTS(SELECT 1 FROM sessions s WHERE s.peer_id = p.id)
           AND NOT EXISTS(SELECT 1 FROM messages m WHERE m.sender_id = p.id OR m.recipient_id = p.id)
           AND NOT EXISTS(SELECT 1 FROM deliveries d WHERE d.recipient_id = p.id)
           AND NOT EXISTS(SELECT 1 FROM jobs j WHERE j.dispatcher_id = p.id)",
        params![cutoff],
    )? as u64;
    Ok(GcReport {
        expired,
        dead_sessions,
        messages_deleted,
        sessions_deleted,
        peers_deleted,
    })
}

/// The counts `status` shows. Reap first where the store is writable, so `peers_online` is true.
pub fn counts(conn: &Connection, backend: String) -> OpResult<StoreStats> {
    let count = |sql: &str| -> rusqlite::Result<u64> {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
    };
    let mut stats = StoreStats {
        backend,
        schema_version: migrate::current(conn)?,
        peers: count("SELECT COUNT(*) FROM peers")?,
        peers_online: count("SELECT COUNT(DISTINCT peer_id) FROM sessions WHERE ended_at IS NULL")?,
        messages: count("SELECT COUNT(*) FROM messages")?,
        ..StoreStats::default()
    };
    let mut stmt = conn.prepare("SELECT state, COUNT(*) FROM deliveries GROUP BY state")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (state, n) = row?;
        let n = u64::try_from(n).unwrap_or(0);
        stats.count_deliveries(&state, n);
    }
    Ok(stats)
}
