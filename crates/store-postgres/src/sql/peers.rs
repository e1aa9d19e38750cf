//! The `peers` table: who is in the room.

use std::sync::LazyLock;

use switchboard_core::seam::columns::{flag, int};
use switchboard_core::seam::peer;
use switchboard_core::seam::{
    NewPeer, PARTY_COLUMNS, PEER_COLUMNS, Party, PeerStatements, id_kind, info_values, party,
};
use switchboard_core::{BroadcastPlace as Place, PeerId, PeerRecord};
use switchboard_proto::{Millis, PeerInfo, PeerKind, PeerName};

use super::Params;
use crate::fault::OpResult;
use crate::tx::PgTx;

impl PeerStatements for PgTx {
    async fn peer_by_name(&mut self, name: &str) -> OpResult<Option<PeerRecord>> {
        let sql = format!("SELECT {PEER_COLUMNS} FROM peers p WHERE p.name = $1");
        self.opt(&sql, &[&name], peer).await
    }

    async fn peer_id_by_name(&mut self, name: &str) -> OpResult<Option<PeerId>> {
        self.opt("SELECT id FROM peers WHERE name = $1", &[&name], int)
            .await
    }

    async fn peer_by_id(&mut self, id: PeerId) -> OpResult<Option<PeerRecord>> {
        let sql = format!("SELECT {PEER_COLUMNS} FROM peers p WHERE p.id = $1");
        self.opt(&sql, &[&id], peer).await
    }

    async fn peer_exists(&mut self, id: PeerId) -> OpResult<bool> {
        let sql = "SELECT EXISTS(SELECT 1 FROM peers WHERE id = $1)";
        self.one(sql, &[&id], flag).await
    }

    async fn all_peers(&mut self) -> OpResult<Vec<PeerRecord>> {
        let sql = format!("SELECT {PEER_COLUMNS} FROM peers p ORDER BY p.name");
        self.all(&sql, &[], peer).await
    }

    // The row lock keeps a second session from taking the same offline name before this
    // transaction commits; its liveness is read after the lock is held.
    async fn lock_peer_name(&mut self, name: &str) -> OpResult<Option<(PeerId, PeerKind)>> {
        let sql = "SELECT id, kind FROM peers WHERE name = $1 FOR NO KEY UPDATE";
        self.opt(sql, &[&name], id_kind).await
    }

    // Two transactions inserting one name at once: the loser fails on the unique key and is
    // run again, finding the winner's row.
    async fn insert_peer(&mut self, p: NewPeer<'_>) -> OpResult<PeerId> {
        let [a, b, c, d, e, f] = info_values(p.info);
        let (name, kind) = (p.name.as_str(), p.kind.as_str());
        let sql = "INSERT INTO peers (name, kind, client_kind, client_version, host, cwd, git_root,
                 git_branch, summary, created_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '', $9, $9) RETURNING id";
        let params: Params = &[&name, &kind, &a, &b, &c, &d, &e, &f, &p.now];
        self.one(sql, params, int).await
    }

    async fn touch_peers(&mut self, ids: &[PeerId], now: Millis) -> OpResult<()> {
        let sql = "UPDATE peers SET last_seen_at = GREATEST(last_seen_at, $2) WHERE id = ANY($1)";
        self.exec(sql, &[&ids, &now]).await?;
        Ok(())
    }

    async fn describe_peer(&mut self, id: PeerId, info: &PeerInfo, now: Millis) -> OpResult<()> {
        let [a, b, c, d, e, f] = info_values(info);
        let sql = "UPDATE peers SET client_kind = $2, client_version = $3, host = $4, cwd = $5,
                 git_root = $6, git_branch = $7, last_seen_at = $8
             WHERE id = $1";
        self.exec(sql, &[&id, &a, &b, &c, &d, &e, &f, &now]).await?;
        Ok(())
    }

    async fn rename_peer(&mut self, id: PeerId, name: &PeerName, now: Millis) -> OpResult<()> {
        let sql = "UPDATE peers SET name = $2, last_seen_at = $3 WHERE id = $1";
        self.exec(sql, &[&id, &name.as_str(), &now]).await?;
        Ok(())
    }

    async fn set_peer_summary(&mut self, id: PeerId, summary: &str, now: Millis) -> OpResult<u64> {
        let sql = "UPDATE peers SET summary = $2, last_seen_at = $3 WHERE id = $1";
        self.exec(sql, &[&id, &summary, &now]).await
    }

    // Serialises the sends that share a sender or a recipient, so the limits a send checks
    // count what every earlier send committed. Rows are locked in id order, so two sends never
    // deadlock.
    async fn lock_parties(&mut self, ids: &[PeerId]) -> OpResult<Vec<Party>> {
        self.all(&LOCK_PARTIES, &[&ids], party).await
    }

    async fn broadcast_recipients(&mut self, from: PeerId, to: &Place) -> OpResult<Vec<PeerId>> {
        // The column is one of the rule's fixed names, never the caller's text.
        let sql = format!(
            "SELECT p.id FROM peers p WHERE p.id <> $1
               AND EXISTS(SELECT 1 FROM sessions s WHERE s.peer_id = p.id AND s.ended_at IS NULL)
               AND ($2::text IS NULL OR p.{column} = $2)
             ORDER BY p.id",
            column = to.column
        );
        self.all(&sql, &[&from, &to.value], int).await
    }
}

/// Locks the peers whose ids are in `$1`, in id order, and reads them as parties. Made once:
/// every send prepares it by this text.
pub(super) static LOCK_PARTIES: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {PARTY_COLUMNS} FROM peers WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
});
