//! The housekeeping statements that span tables: expiry and retention for `gc`, and the counts
//! `status` shows. Each deletion is one statement, so the procedure decides their order
//! (children before the rows they point at).

use std::future::Future;

use switchboard_proto::Millis;

use super::columns::{Col, Columns};
use super::{Statements, Step};

/// The counts [`counts`] decodes, in order (a `SELECT` of subqueries, from no table).
pub const COUNTS_COLUMNS: &str = "(SELECT COUNT(*) FROM peers),
    (SELECT COUNT(DISTINCT peer_id) FROM sessions WHERE ended_at IS NULL),
    (SELECT COUNT(*) FROM messages)";

/// The counts read with [`COUNTS_COLUMNS`].
pub fn counts(r: &dyn Columns) -> Col<Counts> {
    Ok(Counts {
        peers: r.total(0)?,
        peers_online: r.total(1)?,
        messages: r.total(2)?,
    })
}

/// Jobs by state, decoded with [`state_count`]: the same text for both backends.
pub const COUNT_JOBS: &str = "SELECT state, COUNT(*) FROM jobs GROUP BY state";

/// A state and how many deliveries (or jobs) are in it: `state, COUNT(*)`.
pub fn state_count(r: &dyn Columns) -> Col<(String, u64)> {
    Ok((r.text(0)?, r.total(1)?))
}

/// The schema version (`MAX(version)`, 0 when none).
pub fn version(r: &dyn Columns) -> Col<u32> {
    r.count(0)
}

/// The rows `status` counts in one read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub peers: u64,
    /// Peers with a session that has not ended.
    pub peers_online: u64,
    pub messages: u64,
}

pub trait UpkeepStatements: Statements {
    /// Expires the queued deliveries of messages past their TTL; returns how many.
    fn expire_deliveries(&mut self, now: Millis) -> impl Future<Output = Step<u64, Self>> + Send;

    /// Deletes the sources cited by answers created before `before`.
    fn delete_old_answer_sources(
        &mut self,
        before: Millis,
    ) -> impl Future<Output = Step<u64, Self>> + Send;

    /// Deletes the question records whose question or reply was created before `before`.
    fn delete_old_questions(
        &mut self,
        before: Millis,
    ) -> impl Future<Output = Step<u64, Self>> + Send;

    /// Deletes the deliveries of messages created before `before`.
    fn delete_old_deliveries(
        &mut self,
        before: Millis,
    ) -> impl Future<Output = Step<u64, Self>> + Send;

    /// Deletes the messages created before `before`; returns how many.
    fn delete_old_messages(
        &mut self,
        before: Millis,
    ) -> impl Future<Output = Step<u64, Self>> + Send;

    /// Deletes jobs in a final state last changed before `before`, their request ids with them.
    fn delete_finished_jobs(
        &mut self,
        before: Millis,
    ) -> impl Future<Output = Step<u64, Self>> + Send;

    /// Deletes the sessions that ended before `before`; returns how many.
    fn delete_ended_sessions(
        &mut self,
        before: Millis,
    ) -> impl Future<Output = Step<u64, Self>> + Send;

    /// Deletes the peers unseen since `before` that nothing refers to any more (no session,
    /// message, delivery or job); returns how many.
    fn delete_idle_peers(&mut self, before: Millis)
    -> impl Future<Output = Step<u64, Self>> + Send;

    /// The schema version the store is at.
    fn schema_version(&mut self) -> impl Future<Output = Step<u32, Self>> + Send;

    fn count_rows(&mut self) -> impl Future<Output = Step<Counts, Self>> + Send;

    /// How many deliveries are in each state, as stored.
    fn count_deliveries(&mut self) -> impl Future<Output = Step<Vec<(String, u64)>, Self>> + Send;

    /// How many jobs are in each state, as stored ([`COUNT_JOBS`]).
    fn count_jobs(&mut self) -> impl Future<Output = Step<Vec<(String, u64)>, Self>> + Send;
}
