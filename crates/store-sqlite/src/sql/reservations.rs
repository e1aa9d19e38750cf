//! The `reservations` table: who holds which paths of a repository.

use rusqlite::params;

use switchboard_core::seam::{
    RESERVATION_COLUMNS, RESERVATION_FROM, ReservationStatements, globs_text, reservation,
};
use switchboard_core::{NewReservation, PeerId, SessionId};
use switchboard_proto::{Millis, Reservation, ReservationId};

use switchboard_core::seam::columns::int;

use crate::fault::OpResult;
use crate::tx::LiteTx;

impl ReservationStatements for LiteTx {
    // SQLite's single writer already runs one reserving transaction at a time.
    async fn lock_repo(&mut self, _repo: &str) -> OpResult<()> {
        Ok(())
    }

    async fn live_reservations(
        &mut self,
        repo: Option<&str>,
        now: Millis,
    ) -> OpResult<Vec<Reservation>> {
        let sql = format!(
            "SELECT {RESERVATION_COLUMNS} FROM {RESERVATION_FROM}
             WHERE r.released_at IS NULL AND r.expires_at > ?2 AND (?1 IS NULL OR r.repo = ?1)
             ORDER BY r.id"
        );
        self.all(&sql, params![repo, now], reservation)
    }

    async fn insert_reservation(
        &mut self,
        r: &NewReservation,
        now: Millis,
    ) -> OpResult<ReservationId> {
        let sql = "INSERT INTO reservations
             (repo, peer_id, session_id, mode, globs, reason, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id";
        let values = params![
            r.repo,
            r.peer,
            r.session,
            r.mode.as_str(),
            globs_text(&r.globs),
            r.reason,
            now,
            r.expires_at
        ];
        self.one(sql, values, int)
    }

    async fn release_reservations(
        &mut self,
        peer: PeerId,
        ids: &[ReservationId],
        now: Millis,
    ) -> OpResult<u64> {
        let sql = "UPDATE reservations SET released_at = ?3
             WHERE id = ?1 AND peer_id = ?2 AND released_at IS NULL";
        let mut ended = 0;
        for id in ids {
            ended += self.exec(sql, params![id, peer, now])?;
        }
        Ok(ended)
    }

    async fn release_peer_reservations(
        &mut self,
        peer: PeerId,
        repo: Option<&str>,
        now: Millis,
    ) -> OpResult<u64> {
        let sql = "UPDATE reservations SET released_at = ?3
             WHERE peer_id = ?1 AND released_at IS NULL AND (?2 IS NULL OR repo = ?2)";
        self.exec(sql, params![peer, repo, now])
    }

    async fn release_session_reservations(
        &mut self,
        sessions: &[SessionId],
        now: Millis,
    ) -> OpResult<u64> {
        let sql = "UPDATE reservations SET released_at = ?2
             WHERE session_id = ?1 AND released_at IS NULL";
        let mut ended = 0;
        for session in sessions {
            ended += self.exec(sql, params![session, now])?;
        }
        Ok(ended)
    }

    async fn delete_old_reservations(&mut self, before: Millis) -> OpResult<u64> {
        let sql = "DELETE FROM reservations WHERE COALESCE(released_at, expires_at) < ?1";
        self.exec(sql, [before])
    }
}
