//! The `sessions` table: who is online, owned by which process.

use rusqlite::{OptionalExtension, params};

use switchboard_core::seam::{NewSession, SessionStatements};
use switchboard_core::{PeerId, SessionId, StoreError};
use switchboard_proto::Millis;

use crate::fault::{OpError, OpResult};
use crate::tx::LiteTx;

impl SessionStatements for LiteTx {
    async fn has_live_session(&mut self, id: PeerId) -> OpResult<bool> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM sessions WHERE peer_id = ?1 AND ended_at IS NULL)",
            )?
            .query_row([id], |r| r.get(0))?)
    }

    // The session is stored under this process's key, whose lock file is taken first: from then
    // on, any process can tell whether this one still lives.
    async fn insert_session(&mut self, s: NewSession) -> OpResult<SessionId> {
        self.live
            .claim()
            .map_err(|e| OpError::Store(StoreError::Backend(e.to_string())))?;
        self.conn
            .prepare_cached(
                "INSERT INTO sessions (peer_id, process_key, started_at, client_pid)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![s.peer, self.live.key(), s.now, s.client_pid])?;
        Ok(self.conn.last_insert_rowid())
    }

    async fn end_session(&mut self, id: SessionId, now: Millis) -> OpResult<Option<PeerId>> {
        Ok(self
            .conn
            .prepare_cached(
                "UPDATE sessions SET ended_at = ?2 WHERE id = ?1 AND ended_at IS NULL
                 RETURNING peer_id",
            )?
            .query_row(params![id, now], |r| r.get(0))
            .optional()?)
    }

    // A process is dead when its lock file can be taken (see `crate::liveness`): SQLite cannot
    // ask that in SQL, so the keys are read and tried here, one by one.
    async fn end_dead_sessions(&mut self, now: Millis) -> OpResult<Vec<(SessionId, PeerId)>> {
        let keys: Vec<String> = self
            .conn
            .prepare_cached("SELECT DISTINCT process_key FROM sessions WHERE ended_at IS NULL")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut ended = Vec::new();
        let mut end = self.conn.prepare_cached(
            "UPDATE sessions SET ended_at = ?2 WHERE process_key = ?1 AND ended_at IS NULL
             RETURNING id, peer_id",
        )?;
        for key in keys.iter().filter(|k| !self.live.is_alive(k)) {
            for row in end.query_map(params![key, now], |r| Ok((r.get(0)?, r.get(1)?)))? {
                ended.push(row?);
            }
        }
        Ok(ended)
    }

    async fn live_peer_of_client(&mut self, pid: u32) -> OpResult<Option<PeerId>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT peer_id FROM sessions WHERE client_pid = ?1 AND ended_at IS NULL
                 ORDER BY id DESC LIMIT 1",
            )?
            .query_row([pid], |r| r.get(0))
            .optional()?)
    }
}
