//! Housekeeping: expiry, retention and the counts `status` shows.

use switchboard_core::{GcPolicy, GcReport, StoreStats, Wake};
use switchboard_proto::Millis;

use super::{Conn, col, exec, one, peers, rows};
use crate::fault::OpResult;

pub async fn gc(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    policy: GcPolicy,
    now: Millis,
) -> OpResult<GcReport> {
    let dead_sessions = peers::reap(c, wakes, now).await?;
    let expired = exec(
        c,
        "UPDATE deliveries SET state = 'expired', lease_session = NULL, lease_until = NULL
         WHERE state = 'queued'
           AND message_id IN (SELECT id FROM messages WHERE expires_at <= $1)",
        &[&now],
    )
    .await?;
    let cutoff = policy.delete_before;
    // Children first: sources, question records, deliveries, then the messages themselves.
    let old = "SELECT id FROM messages WHERE created_at < $1";
    exec(
        c,
        &format!("DELETE FROM answer_sources WHERE answer_id IN ({old})"),
        &[&cutoff],
    )
    .await?;
    exec(
        c,
        &format!("DELETE FROM questions WHERE message_id IN ({old}) OR reply_id IN ({old})"),
        &[&cutoff],
    )
    .await?;
    exec(
        c,
        &format!("DELETE FROM deliveries WHERE message_id IN ({old})"),
        &[&cutoff],
    )
    .await?;
    let messages_deleted =
        exec(c, "DELETE FROM messages WHERE created_at < $1", &[&cutoff]).await?;
    // Finished jobs go with their retention window, and their request ids with them.
    exec(
        c,
        "DELETE FROM jobs WHERE updated_at < $1
           AND state NOT IN ('queued', 'claimed', 'running')",
        &[&cutoff],
    )
    .await?;
    let sessions_deleted = exec(
        c,
        "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < $1",
        &[&cutoff],
    )
    .await?;
    let peers_deleted = exec(
        c,
        "DELETE FROM peers p
         WHERE p.last_seen_at < $1
           AND NOT EXISTS(SELECT 1 FROM sessions s WHERE s.peer_id = p.id)
           AND NOT EXISTS(SELECT 1 FROM messages m WHERE m.sender_id = p.id OR m.recipient_id = p.id)
           AND NOT EXISTS(SELECT 1 FROM deliveries d WHERE d.recipient_id = p.id)
           AND NOT EXISTS(SELECT 1 FROM jobs j WHERE j.dispatcher_id = p.id)",
        &[&cutoff],
    )
    .await?;
    Ok(GcReport {
        expired,
        dead_sessions,
        messages_deleted,
        sessions_deleted,
        peers_deleted,
    })
}

/// The counts `status` shows.
pub async fn counts(c: &Conn, backend: String, schema_version: u32) -> OpResult<StoreStats> {
    let row = one(
        c,
        "SELECT (SELECT COUNT(*) FROM peers),
                (SELECT COUNT(DISTINCT peer_id) FROM sessions WHERE ended_at IS NULL),
                (SELECT COUNT(*) FROM messages)",
        &[],
    )
    .await?;
    let n = |i: usize| -> OpResult<u64> { Ok(u64::try_from(col::<i64>(&row, i)?).unwrap_or(0)) };
    let mut stats = StoreStats {
        backend,
        schema_version,
        peers: n(0)?,
        peers_online: n(1)?,
        messages: n(2)?,
        ..StoreStats::default()
    };
    for r in rows(
        c,
        "SELECT state, COUNT(*) FROM deliveries GROUP BY state",
        &[],
    )
    .await?
    {
        let state: &str = col(&r, 0)?;
        let n = u64::try_from(col::<i64>(&r, 1)?).unwrap_or(0);
        stats.count_deliveries(state, n);
    }
    Ok(stats)
}
