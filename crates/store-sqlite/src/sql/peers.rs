//! The `peers` table: who is in the room.

use rusqlite::{OptionalExtension, params};

use switchboard_core::seam::columns::{flag, int};
use switchboard_core::seam::{NewPeer, PARTY_COLUMNS, PEER_COLUMNS, Party, PeerStatements};
use switchboard_core::seam::{id_kind, info_values, party, peer};
use switchboard_core::{BroadcastPlace as Place, PeerId, PeerRecord};
use switchboard_proto::{Millis, PeerInfo, PeerKind, PeerName};

use super::columns::read;
use crate::fault::OpResult;
use crate::tx::LiteTx;

impl PeerStatements for LiteTx {
    async fn peer_by_name(&mut self, name: &str) -> OpResult<Option<PeerRecord>> {
        let sql = format!("SELECT {PEER_COLUMNS} FROM peers p WHERE p.name = ?1");
        self.opt(&sql, [name], peer)
    }

    async fn peer_id_by_name(&mut self, name: &str) -> OpResult<Option<PeerId>> {
        self.opt("SELECT id FROM peers WHERE name = ?1", [name], int)
    }

    async fn peer_by_id(&mut self, id: PeerId) -> OpResult<Option<PeerRecord>> {
        let sql = format!("SELECT {PEER_COLUMNS} FROM peers p WHERE p.id = ?1");
        self.opt(&sql, [id], peer)
    }

    async fn peer_exists(&mut self, id: PeerId) -> OpResult<bool> {
        self.one(
            "SELECT EXISTS(SELECT 1 FROM peers WHERE id = ?1)",
            [id],
            flag,
        )
    }

    async fn all_peers(&mut self) -> OpResult<Vec<PeerRecord>> {
        let sql = format!("SELECT {PEER_COLUMNS} FROM peers p ORDER BY p.name");
        self.all(&sql, [], peer)
    }

    // No lock: the one writer thread already keeps every other write out until the commit.
    async fn lock_peer_name(&mut self, name: &str) -> OpResult<Option<(PeerId, PeerKind)>> {
        self.opt(
            "SELECT id, kind FROM peers WHERE name = ?1",
            [name],
            id_kind,
        )
    }

    async fn insert_peer(&mut self, p: NewPeer<'_>) -> OpResult<PeerId> {
        let [a, b, c, d, e, f] = info_values(p.info);
        let (name, kind) = (p.name.as_str(), p.kind.as_str());
        let sql = "INSERT INTO peers (name, kind, client_kind, client_version, host, cwd, git_root,
                 git_branch, summary, created_at, last_seen_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '', ?9, ?9) RETURNING id";
        self.one(sql, params![name, kind, a, b, c, d, e, f, p.now], int)
    }

    async fn touch_peers(&mut self, ids: &[PeerId], now: Millis) -> OpResult<()> {
        // SQLite binds no arrays: one statement per peer.
        let mut stmt = self.conn.prepare_cached(
            "UPDATE peers SET last_seen_at = MAX(last_seen_at, ?2) WHERE id = ?1",
        )?;
        for id in ids {
            stmt.execute(params![id, now])?;
        }
        Ok(())
    }

    async fn describe_peer(&mut self, id: PeerId, info: &PeerInfo, now: Millis) -> OpResult<()> {
        let [a, b, c, d, e, f] = info_values(info);
        let sql = "UPDATE peers SET client_kind = ?2, client_version = ?3, host = ?4, cwd = ?5,
                 git_root = ?6, git_branch = ?7, last_seen_at = ?8
             WHERE id = ?1";
        self.exec(sql, params![id, a, b, c, d, e, f, now])?;
        Ok(())
    }

    async fn rename_peer(&mut self, id: PeerId, name: &PeerName, now: Millis) -> OpResult<()> {
        let sql = "UPDATE peers SET name = ?2, last_seen_at = ?3 WHERE id = ?1";
        self.exec(sql, params![id, name.as_str(), now])?;
        Ok(())
    }

    async fn set_peer_summary(&mut self, id: PeerId, summary: &str, now: Millis) -> OpResult<u64> {
        let sql = "UPDATE peers SET summary = ?2, last_seen_at = ?3 WHERE id = ?1";
        self.exec(sql, params![id, summary, now])
    }

    // No lock: the one writer thread serialises every send, so the limits read here stay
    // true until the commit. SQLite binds no arrays: one peer at a time.
    async fn lock_parties(&mut self, ids: &[PeerId]) -> OpResult<Vec<Party>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {PARTY_COLUMNS} FROM peers WHERE id = ?1"))?;
        let mut found = Vec::with_capacity(ids.len());
        for &id in ids {
            if let Some(p) = stmt.query_row([id], read(party)).optional()? {
                found.push(p);
            }
        }
        Ok(found)
    }

    async fn broadcast_recipients(&mut self, from: PeerId, to: &Place) -> OpResult<Vec<PeerId>> {
        // The column is one of the rule's fixed names, never the caller's text.
        let sql = format!(
            "SELECT p.id FROM peers p WHERE p.id <> ?1
               AND EXISTS(SELECT 1 FROM sessions s WHERE s.peer_id = p.id AND s.ended_at IS NULL)
               AND (?2 IS NULL OR p.{column} = ?2)
             ORDER BY p.id",
            column = to.column
        );
        self.all(&sql, params![from, to.value], int)
    }
}
