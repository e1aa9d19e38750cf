//! The `sessions` table: who is online, owned by which process.
//!
//! A session belongs to the process (relay replica) that opened it, named by the advisory lock
//! that process holds on its own connection for as long as it lives (see [`crate::holder`]).
//! Whoever can take that lock knows the owner is gone.

use switchboard_core::seam::{NewSession, SessionStatements};
use switchboard_core::{PeerId, SessionId};
use switchboard_proto::Millis;

use switchboard_core::seam::columns::{flag, int, int_pair};

use crate::fault::OpResult;
use crate::tx::PgTx;

impl SessionStatements for PgTx {
    async fn has_live_session(&mut self, id: PeerId) -> OpResult<bool> {
        let sql = "SELECT EXISTS(SELECT 1 FROM sessions WHERE peer_id = $1 AND ended_at IS NULL)";
        self.one(sql, &[&id], flag).await
    }

    async fn insert_session(&mut self, s: NewSession) -> OpResult<SessionId> {
        let (key, pid) = (self.process_key, s.client_pid.map(i64::from));
        let sql = "INSERT INTO sessions (peer_id, process_key, started_at, client_pid)
             VALUES ($1, $2, $3, $4) RETURNING id";
        self.one(sql, &[&s.peer, &key, &s.now, &pid], int).await
    }

    async fn end_session(&mut self, id: SessionId, now: Millis) -> OpResult<Option<PeerId>> {
        let sql = "UPDATE sessions SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL
             RETURNING peer_id";
        self.opt(sql, &[&id, &now], int).await
    }

    // The lock is taken for this transaction only: it is given back at once at the commit.
    async fn end_dead_sessions(&mut self, now: Millis) -> OpResult<Vec<(SessionId, PeerId)>> {
        let sql = "UPDATE sessions SET ended_at = $1
             WHERE ended_at IS NULL AND pg_try_advisory_xact_lock(process_key)
             RETURNING id, peer_id";
        self.all(sql, &[&now], int_pair).await
    }

    async fn live_peer_of_client(&mut self, pid: u32) -> OpResult<Option<PeerId>> {
        let sql = "SELECT peer_id FROM sessions WHERE client_pid = $1 AND ended_at IS NULL
             ORDER BY id DESC LIMIT 1";
        self.opt(sql, &[&i64::from(pid)], int).await
    }
}
