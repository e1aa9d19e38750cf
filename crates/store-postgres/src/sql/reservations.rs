//! The `reservations` table: who holds which paths of a repository.

use switchboard_core::seam::{
    RESERVATION_COLUMNS, RESERVATION_FROM, ReservationStatements, globs_text, reservation,
};
use switchboard_core::{NewReservation, PeerId, SessionId};
use switchboard_proto::{Millis, Reservation, ReservationId};

use switchboard_core::seam::columns::int;

use crate::fault::OpResult;
use crate::tx::PgTx;

impl ReservationStatements for PgTx {
    // Two reservers of one repository (on any replica) take turns until their commits. The
    // two-key form of the advisory lock lives apart from the one-key locks that name live
    // processes (`crate::holder`), so the two can never be mistaken for each other; the room's
    // schema is the first key, so rooms do not wait for each other.
    async fn lock_repo(&mut self, repo: &str) -> OpResult<()> {
        let sql = "SELECT pg_advisory_xact_lock(hashtext(current_schema()), hashtext($1))::text";
        self.one(sql, &[&repo], |r| r.text(0)).await.map(|_| ())
    }

    async fn live_reservations(
        &mut self,
        repo: Option<&str>,
        now: Millis,
    ) -> OpResult<Vec<Reservation>> {
        let sql = format!(
            "SELECT {RESERVATION_COLUMNS} FROM {RESERVATION_FROM}
             WHERE r.released_at IS NULL AND r.expires_at > $2
               AND ($1::TEXT IS NULL OR r.repo = $1)
             ORDER BY r.id"
        );
        self.all(&sql, &[&repo, &now], reservation).await
    }

    async fn insert_reservation(
        &mut self,
        r: &NewReservation,
        now: Millis,
    ) -> OpResult<ReservationId> {
        let sql = "INSERT INTO reservations
             (repo, peer_id, session_id, mode, globs, reason, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
        let (mode, globs) = (r.mode.as_str(), globs_text(&r.globs));
        let values: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
            &r.repo,
            &r.peer,
            &r.session,
            &mode,
            &globs,
            &r.reason,
            &now,
            &r.expires_at,
        ];
        self.one(sql, &values, int).await
    }

    async fn release_reservations(
        &mut self,
        peer: PeerId,
        ids: &[ReservationId],
        now: Millis,
    ) -> OpResult<u64> {
        let sql = "UPDATE reservations SET released_at = $3
             WHERE id = ANY($1) AND peer_id = $2 AND released_at IS NULL";
        self.exec(sql, &[&ids, &peer, &now]).await
    }

    async fn release_peer_reservations(
        &mut self,
        peer: PeerId,
        repo: Option<&str>,
        now: Millis,
    ) -> OpResult<u64> {
        let sql = "UPDATE reservations SET released_at = $3
             WHERE peer_id = $1 AND released_at IS NULL AND ($2::TEXT IS NULL OR repo = $2)";
        self.exec(sql, &[&peer, &repo, &now]).await
    }

    async fn release_session_reservations(
        &mut self,
        sessions: &[SessionId],
        now: Millis,
    ) -> OpResult<u64> {
        let sql = "UPDATE reservations SET released_at = $2
             WHERE session_id = ANY($1) AND released_at IS NULL";
        self.exec(sql, &[&sessions, &now]).await
    }

    async fn delete_old_reservations(&mut self, before: Millis) -> OpResult<u64> {
        let sql = "DELETE FROM reservations WHERE COALESCE(released_at, expires_at) < $1";
        self.exec(sql, &[&before]).await
    }
}
