//! The statements on the `peers` table.

use std::future::Future;

use switchboard_proto::{Millis, PeerInfo, PeerKind, PeerName};

use super::columns::{Col, Columns};
use super::{Statements, Step};
use crate::rules::BroadcastPlace;
use crate::store::{PeerId, PeerRecord};

/// The columns [`peer`] decodes, in order, from `peers p` (with its liveness).
pub const PEER_COLUMNS: &str = "p.id, p.name, p.kind, p.client_kind, p.client_version, p.host,
    p.cwd, p.git_root, p.git_branch, p.summary, p.created_at, p.last_seen_at,
    EXISTS(SELECT 1 FROM sessions s WHERE s.peer_id = p.id AND s.ended_at IS NULL)";

/// A peer read with [`PEER_COLUMNS`].
pub fn peer(r: &dyn Columns) -> Col<PeerRecord> {
    Ok(PeerRecord {
        id: r.int(0)?,
        name: r.text(1)?,
        kind: r.parsed(2)?,
        info: PeerInfo {
            client_kind: r.opt_text(3)?,
            client_version: r.opt_text(4)?,
            host: r.opt_text(5)?,
            cwd: r.opt_text(6)?,
            git_root: r.opt_text(7)?,
            git_branch: r.opt_text(8)?,
        },
        summary: r.text(9)?,
        created_at: r.int(10)?,
        last_seen_at: r.int(11)?,
        online: r.flag(12)?,
    })
}

/// A peer's id and kind: `id, kind`.
pub fn id_kind(r: &dyn Columns) -> Col<(PeerId, PeerKind)> {
    Ok((r.int(0)?, r.parsed(1)?))
}

/// The columns [`party`] decodes, in order, from `peers`.
pub const PARTY_COLUMNS: &str = "id, name, queued";

/// A party of a send as [`PeerStatements::lock_parties`] finds it: what the send's checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub id: PeerId,
    pub name: String,
    /// Its copies waiting in the `queued` state: the counter the schema's triggers keep on the
    /// peer's row as deliveries come, change state and go, so the pending cap costs one read
    /// however long the backlog.
    pub queued: u32,
}

/// A party read with [`PARTY_COLUMNS`].
pub fn party(r: &dyn Columns) -> Col<Party> {
    Ok(Party {
        id: r.int(0)?,
        name: r.text(1)?,
        queued: r.count(2)?,
    })
}

/// A peer's description as bound to `client_kind, client_version, host, cwd, git_root,
/// git_branch`, in that order.
pub fn info_values(info: &PeerInfo) -> [Option<&str>; 6] {
    [
        info.client_kind.as_deref(),
        info.client_version.as_deref(),
        info.host.as_deref(),
        info.cwd.as_deref(),
        info.git_root.as_deref(),
        info.git_branch.as_deref(),
    ]
}

/// A peer to insert.
#[derive(Debug, Clone, Copy)]
pub struct NewPeer<'a> {
    pub name: &'a PeerName,
    pub kind: PeerKind,
    pub info: &'a PeerInfo,
    pub now: Millis,
}

pub trait PeerStatements: Statements {
    fn peer_by_name(
        &mut self,
        name: &str,
    ) -> impl Future<Output = Step<Option<PeerRecord>, Self>> + Send;

    /// The id of the peer of this name.
    fn peer_id_by_name(
        &mut self,
        name: &str,
    ) -> impl Future<Output = Step<Option<PeerId>, Self>> + Send;

    fn peer_by_id(
        &mut self,
        id: PeerId,
    ) -> impl Future<Output = Step<Option<PeerRecord>, Self>> + Send;

    fn peer_exists(&mut self, id: PeerId) -> impl Future<Output = Step<bool, Self>> + Send;

    /// Every peer, by name.
    fn all_peers(&mut self) -> impl Future<Output = Step<Vec<PeerRecord>, Self>> + Send;

    /// Finds the peer holding a name and keeps others from taking it until the commit; its
    /// kind is read with it.
    fn lock_peer_name(
        &mut self,
        name: &str,
    ) -> impl Future<Output = Step<Option<(PeerId, PeerKind)>, Self>> + Send;

    fn insert_peer(&mut self, p: NewPeer<'_>) -> impl Future<Output = Step<PeerId, Self>> + Send;

    /// Moves the peers' last-seen time forward to `now` (never back).
    fn touch_peers(
        &mut self,
        ids: &[PeerId],
        now: Millis,
    ) -> impl Future<Output = Step<(), Self>> + Send;

    /// Takes a new description of the peer, as its newest session gives it.
    fn describe_peer(
        &mut self,
        id: PeerId,
        info: &PeerInfo,
        now: Millis,
    ) -> impl Future<Output = Step<(), Self>> + Send;

    fn rename_peer(
        &mut self,
        id: PeerId,
        name: &PeerName,
        now: Millis,
    ) -> impl Future<Output = Step<(), Self>> + Send;

    /// Returns how many peers changed (0: no such peer).
    fn set_peer_summary(
        &mut self,
        id: PeerId,
        summary: &str,
        now: Millis,
    ) -> impl Future<Output = Step<u64, Self>> + Send;

    /// The parties of a send, with their names and queued copies, in id order; an id with no
    /// peer is left out. Keeps other sends to or from them waiting until the commit, so the
    /// limits a send checks count every send committed before it.
    fn lock_parties(
        &mut self,
        ids: &[PeerId],
    ) -> impl Future<Output = Step<Vec<Party>, Self>> + Send;

    /// The peers a broadcast from `sender` reaches: every other peer with a live session in
    /// the place, in id order.
    fn broadcast_recipients(
        &mut self,
        sender: PeerId,
        place: &BroadcastPlace,
    ) -> impl Future<Output = Step<Vec<PeerId>, Self>> + Send;
}
