//! The `sessions` table: who is online, owned by which process.

use rusqlite::params;

use switchboard_core::seam::columns::{flag, int, int_pair, text};
use switchboard_core::seam::{NewSession, SessionStatements};
use switchboard_core::{PeerId, SessionId, StoreError};
use switchboard_proto::Millis;

use crate::fault::{OpError, OpResult};
use crate::tx::LiteTx;

impl SessionStatements for LiteTx {
    async fn has_live_session(&mut self, id: PeerId) -> OpResult<bool> {
        let sql = "SELECT EXISTS(SELECT 1 FROM sessions WHERE peer_id = ?1 AND ended_at IS NULL)";
        self.one(sql, [id], flag)
    }

    // The session is stored under this process's key, whose lock file is taken first: from then
    // on, any process can tell whether this one still lives.
    async fn insert_session(&mut self, s: NewSession) -> OpResult<SessionId> {
        self.live
            .claim()
            .map_err(|e| OpError::Store(StoreError::Backend(e.to_string())))?;
        let sql = "INSERT INTO sessions (peer_id, process_key, started_at, client_pid)
             VALUES (?1, ?2, ?3, ?4) RETURNING id";
        self.one(
            sql,
            params![s.peer, self.live.key(), s.now, s.client_pid],
            int,
        )
    }

    async fn end_session(&mut self, id: SessionId, now: Millis) -> OpResult<Option<PeerId>> {
        let sql = "UPDATE sessions SET ended_at = ?2 WHERE id = ?1 AND ended_at IS NULL
             RETURNING peer_id";
        self.opt(sql, params![id, now], int)
    }

    // A process is dead when its lock file can be taken (see `crate::liveness`): SQLite cannot
    // ask that in SQL, so the keys are read and tried here, one by one.
    async fn end_dead_sessions(&mut self, now: Millis) -> OpResult<Vec<(SessionId, PeerId)>> {
        let sql = "SELECT DISTINCT process_key FROM sessions WHERE ended_at IS NULL";
        let keys = self.all(sql, [], text)?;
        let sql = "UPDATE sessions SET ended_at = ?2 WHERE process_key = ?1 AND ended_at IS NULL
             RETURNING id, peer_id";
        let mut ended = Vec::new();
        for key in keys.iter().filter(|k| !self.live.is_alive(k)) {
            ended.extend(self.all(sql, params![key, now], int_pair)?);
        }
        Ok(ended)
    }

    async fn live_peer_of_client(&mut self, pid: u32) -> OpResult<Option<PeerId>> {
        let sql = "SELECT peer_id FROM sessions WHERE client_pid = ?1 AND ended_at IS NULL
             ORDER BY id DESC LIMIT 1";
        self.opt(sql, [pid], int)
    }
}
