//! The statements on the `reservations` table.

use std::future::Future;

use switchboard_proto::{Glob, Millis, Reservation, ReservationId};

use super::columns::{Col, ColumnError, Columns};
use super::{Statements, Step};
use crate::store::{NewReservation, PeerId, SessionId};

/// The columns [`reservation`] decodes, in order, from `reservations r JOIN peers p ON p.id =
/// r.peer_id`.
pub const RESERVATION_COLUMNS: &str = "r.id, r.repo, p.name, r.mode, r.globs, r.reason,
    r.created_at, r.expires_at, r.session_id IS NOT NULL";

/// Where [`RESERVATION_COLUMNS`] are read from.
pub const RESERVATION_FROM: &str = "reservations r JOIN peers p ON p.id = r.peer_id";

/// The patterns as one column: one per line (a pattern holds no control character).
pub fn globs_text(globs: &[Glob]) -> String {
    globs
        .iter()
        .map(Glob::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A reservation read with [`RESERVATION_COLUMNS`].
pub fn reservation(r: &dyn Columns) -> Col<Reservation> {
    let globs = r
        .text(4)?
        .lines()
        .map(Glob::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ColumnError {
            index: 4,
            detail: e.to_string(),
        })?;
    Ok(Reservation {
        id: r.int(0)?,
        repo: r.text(1)?,
        holder: r.text(2)?,
        mode: r.parsed(3)?,
        globs,
        reason: r.text(5)?,
        created_at: r.int(6)?,
        expires_at: r.int(7)?,
        session_bound: r.flag(8)?,
    })
}

pub trait ReservationStatements: Statements {
    /// Holds back every other transaction that reserves in `repo` until this one ends, so two
    /// conflicting reservations cannot both see the other absent.
    fn lock_repo(&mut self, repo: &str) -> impl Future<Output = Step<(), Self>> + Send;

    /// The reservations neither released nor past their TTL at `now`, with their holders: of
    /// `repo`, or of every repository.
    fn live_reservations(
        &mut self,
        repo: Option<&str>,
        now: Millis,
    ) -> impl Future<Output = Step<Vec<Reservation>, Self>> + Send;

    fn insert_reservation(
        &mut self,
        r: &NewReservation,
        now: Millis,
    ) -> impl Future<Output = Step<ReservationId, Self>> + Send;

    /// Ends the live reservations of `peer` among `ids`; returns how many.
    fn release_reservations(
        &mut self,
        peer: PeerId,
        ids: &[ReservationId],
        now: Millis,
    ) -> impl Future<Output = Step<u64, Self>> + Send;

    /// Ends the live reservations of `peer` in `repo`, or in every repository.
    fn release_peer_reservations(
        &mut self,
        peer: PeerId,
        repo: Option<&str>,
        now: Millis,
    ) -> impl Future<Output = Step<u64, Self>> + Send;

    /// Ends the live reservations held by these sessions (which have ended).
    fn release_session_reservations(
        &mut self,
        sessions: &[SessionId],
        now: Millis,
    ) -> impl Future<Output = Step<u64, Self>> + Send;

    /// Deletes the records of reservations that ended (released or expired) before `before`.
    fn delete_old_reservations(
        &mut self,
        before: Millis,
    ) -> impl Future<Output = Step<u64, Self>> + Send;
}
