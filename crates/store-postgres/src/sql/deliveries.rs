//! The `deliveries` table: one row per message and recipient, with its state and lease.
//!
//! A statement on a set of messages binds them as one array (`ANY($2)`).
//!
//! A statement that takes copies out of the queue counts them out of their recipients'
//! `queued` (the pending cap's counter) itself, in the same round trip ([`UNCOUNT_ONE`]).

use std::sync::LazyLock;

use switchboard_core::seam::columns::{int, total};
use switchboard_core::seam::{CANDIDATE_COLUMNS, CANDIDATE_JOINS, DeliveryStatements};
use switchboard_core::seam::{Handover, recipient_state};
use switchboard_core::seam::{LeaseCandidate, Leasing, RECIPIENT_COLUMNS, candidate};
use switchboard_core::{PeerId, SessionId};
use switchboard_proto::{MessageId, Millis, RecipientState};

use super::big;
use crate::fault::OpResult;
use crate::tx::PgTx;

/// The end of a statement that takes copies out of the queue, whose CTE `left_queue` has a row
/// (`recipient_id`) for each copy it took out, all of one recipient: its `queued` goes down by
/// as many, in the same statement (no row is written when none left). The statement answers
/// with the number of copies in `changed`. A hand-over, a read and a burial each change the
/// copies of one recipient; `gc`'s expiry, across many, ends in [`UNCOUNT_MANY`].
///
/// Room v3 to v8 kept the count by an update trigger on `deliveries`, which every update of a
/// copy fired (a lease, a renewal, a read of a copy already handed over) to find, most times,
/// that none had left the queue.
const UNCOUNT_ONE: &str = "counted AS (
         UPDATE peers SET queued = queued - (SELECT COUNT(*) FROM left_queue)
         WHERE id = (SELECT recipient_id FROM left_queue LIMIT 1))
     SELECT COUNT(*) FROM changed";

/// [`UNCOUNT_ONE`] for copies of many recipients: their rows are locked in id order, as a
/// send's admission locks its parties, so a sweep across many peers cannot deadlock with a
/// send.
pub(super) const UNCOUNT_MANY: &str = "uncounted AS (
         SELECT recipient_id AS id, COUNT(*) AS n FROM left_queue GROUP BY recipient_id),
     locked AS (
         SELECT p.id FROM peers p JOIN uncounted u USING (id) ORDER BY p.id FOR NO KEY UPDATE),
     counted AS (
         UPDATE peers p SET queued = p.queued - u.n
         FROM uncounted u WHERE p.id = u.id AND p.id IN (SELECT id FROM locked))
     SELECT COUNT(*) FROM changed";

/// The session's leased copies handed over: every one was queued. Found by their key: the
/// session's peer is the recipient (without it, each message's copies to every recipient were
/// read and filtered by the lease).
static MARK_DELIVERED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH changed AS (
             UPDATE deliveries SET state = 'delivered', delivered_at = $3,
                 lease_session = NULL, lease_until = NULL
             WHERE recipient_id = $4 AND message_id = ANY($2) AND lease_session = $1
               AND state = 'queued'
             RETURNING recipient_id),
         left_queue AS (SELECT recipient_id FROM changed),
         {UNCOUNT_ONE}"
    )
});

/// The peer's copies read, queued or handed over. An update returns only the new row, so the
/// copies still queued are found first and locked (most reads are of copies handed over, and
/// lock nothing): `was_queued` runs to its end before the update begins (the update's
/// `(SELECT COUNT(*) ...)` is an init plan, evaluated once before its first row). A copy a
/// hand-over committed meanwhile is not locked as queued, and the update, which finds it in
/// its newest version, reads it without counting it out of the queue again.
static MARK_READ: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH was_queued AS (
             SELECT message_id FROM deliveries
             WHERE recipient_id = $1 AND message_id = ANY($2) AND state = 'queued'
             FOR UPDATE),
         changed AS (
             UPDATE deliveries SET state = 'read', read_at = $3,
                 delivered_at = COALESCE(delivered_at, $3), lease_session = NULL,
                 lease_until = NULL
             WHERE recipient_id = $1 AND message_id = ANY($2)
               AND state IN ('queued', 'delivered')
               AND (SELECT COUNT(*) FROM was_queued) >= 0
             RETURNING recipient_id, message_id),
         left_queue AS (
             SELECT recipient_id FROM changed JOIN was_queued USING (message_id)),
         {UNCOUNT_ONE}"
    )
});

/// The peer's queued copies that used up their attempts, dead.
static BURY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH changed AS (
             UPDATE deliveries SET state = 'dead', lease_session = NULL, lease_until = NULL
             WHERE recipient_id = $1 AND message_id = ANY($2) AND state = 'queued'
             RETURNING recipient_id),
         left_queue AS (SELECT recipient_id FROM changed),
         {UNCOUNT_ONE}"
    )
});

impl DeliveryStatements for PgTx {
    async fn release_leases(&mut self, sessions: &[SessionId]) -> OpResult<()> {
        // A leased copy is queued: its peer's in-flight copies are where the leases are.
        let sql = "UPDATE deliveries d SET lease_session = NULL, lease_until = NULL
             FROM sessions s
             WHERE s.id = ANY($1) AND d.recipient_id = s.peer_id AND d.state = 'queued'
               AND d.lease_session = s.id";
        self.exec(sql, &[&sessions]).await?;
        Ok(())
    }

    async fn mark_read(&mut self, peer: PeerId, ids: &[MessageId], now: Millis) -> OpResult<u64> {
        self.one(&MARK_READ, &[&peer, &ids, &now], total).await
    }

    // Takes the rows it returns, skipping those another session's lease is taking right now:
    // two leases at once never hand out one item twice, and neither waits for the other.
    async fn lease_candidates(&mut self, l: &Leasing) -> OpResult<Vec<LeaseCandidate>> {
        let sql = format!(
            "SELECT {CANDIDATE_COLUMNS} FROM deliveries d {CANDIDATE_JOINS}
             WHERE d.recipient_id = $1 AND d.state = 'queued' AND m.expires_at > $2
               AND (d.lease_until IS NULL OR d.lease_until <= $2 OR d.lease_session = $3)
             ORDER BY d.message_id LIMIT $4 FOR UPDATE OF d SKIP LOCKED"
        );
        let limit = big(l.limit);
        self.all(&sql, &[&l.peer, &l.now, &l.session, &limit], candidate)
            .await
    }

    async fn seen_deliveries(&mut self, peer: PeerId, limit: u32) -> OpResult<Vec<LeaseCandidate>> {
        let sql = format!(
            "SELECT {CANDIDATE_COLUMNS} FROM deliveries d {CANDIDATE_JOINS}
             WHERE d.recipient_id = $1 AND d.state = 'delivered'
             ORDER BY d.message_id LIMIT $2"
        );
        self.all(&sql, &[&peer, &big(limit)], candidate).await
    }

    async fn renew_leases(&mut self, l: &Leasing, ids: &[MessageId]) -> OpResult<()> {
        let sql = "UPDATE deliveries SET lease_until = $3
             WHERE recipient_id = $1 AND message_id = ANY($2)";
        self.exec(sql, &[&l.peer, &ids, &l.until]).await?;
        Ok(())
    }

    async fn take_leases(&mut self, l: &Leasing, ids: &[MessageId]) -> OpResult<()> {
        let sql = "UPDATE deliveries SET attempts = attempts + 1, lease_session = $3,
                 lease_until = $4
             WHERE recipient_id = $1 AND message_id = ANY($2)";
        self.exec(sql, &[&l.peer, &ids, &l.session, &l.until])
            .await?;
        Ok(())
    }

    async fn bury_deliveries(&mut self, peer: PeerId, ids: &[MessageId]) -> OpResult<()> {
        self.one(&BURY, &[&peer, &ids], total).await?;
        Ok(())
    }

    async fn mark_delivered(&mut self, h: Handover<'_>) -> OpResult<u64> {
        self.one(
            &MARK_DELIVERED,
            &[&h.session, &h.ids, &h.now, &h.peer],
            total,
        )
        .await
    }

    async fn missing_deliveries(
        &mut self,
        peer: PeerId,
        ids: &[MessageId],
    ) -> OpResult<Vec<MessageId>> {
        let sql = "SELECT i FROM unnest($2::bigint[]) WITH ORDINALITY AS t(i, n)
             WHERE NOT EXISTS(SELECT 1 FROM deliveries WHERE recipient_id = $1 AND message_id = i)
             ORDER BY n";
        self.all(sql, &[&peer, &ids], int).await
    }

    async fn recipient_states(&mut self, message: MessageId) -> OpResult<Vec<RecipientState>> {
        let sql = format!(
            "SELECT {RECIPIENT_COLUMNS} FROM deliveries d JOIN peers p ON p.id = d.recipient_id
             WHERE d.message_id = $1 ORDER BY p.name"
        );
        self.all(&sql, &[&message], recipient_state).await
    }
}
