//! Housekeeping: expiry, retention (`gc`) and the counts `status` shows.

use switchboard_proto::Millis;

use super::peers;
use crate::seam::{Executor, Step};
use crate::store::{GcPolicy, GcReport, StoreStats};

/// Ends the sessions of dead processes, expires what passed its TTL, and deletes what is older
/// than the policy keeps.
pub async fn gc<X: Executor>(x: &mut X, policy: GcPolicy, now: Millis) -> Step<GcReport, X> {
    let dead_sessions = peers::reap(x, now).await?;
    let expired = x.expire_deliveries(now).await?;
    super::mail::copies_changed(x, expired);
    let before = policy.delete_before;
    // Children first: sources, question records, deliveries, then the messages themselves.
    x.delete_old_answer_sources(before).await?;
    x.delete_old_questions(before).await?;
    x.delete_old_deliveries(before).await?;
    let messages_deleted = x.delete_old_messages(before).await?;
    // Finished jobs go with their retention window, and their request ids with them.
    x.delete_finished_jobs(before).await?;
    x.delete_old_reservations(before).await?;
    let sessions_deleted = x.delete_ended_sessions(before).await?;
    // Last: a peer is deleted only once nothing above refers to it.
    let peers_deleted = x.delete_idle_peers(before).await?;
    Ok(GcReport {
        expired,
        dead_sessions,
        messages_deleted,
        sessions_deleted,
        peers_deleted,
    })
}

/// The counts `status` shows, after ending the sessions of dead processes where the store can
/// be written (so `peers_online` is true); a read-only store reports what is recorded. Where
/// the data lives (`backend`) is left empty: the backend describes itself, not its data.
pub async fn stats<X: Executor>(x: &mut X, now: Millis) -> Step<StoreStats, X> {
    peers::reap(x, now).await?;
    let counts = x.count_rows().await?;
    let mut stats = StoreStats {
        backend: String::new(),
        schema_version: x.schema_version().await?,
        peers: counts.peers,
        peers_online: counts.peers_online,
        messages: counts.messages,
        ..StoreStats::default()
    };
    for (state, n) in x.count_deliveries().await? {
        stats.count_deliveries(&state, n);
    }
    for (state, n) in x.count_jobs().await? {
        stats.jobs.count_stored(&state, n);
    }
    Ok(stats)
}
