//! The statements on the `peers` table.

use std::future::Future;

use switchboard_proto::{Millis, PeerInfo, PeerKind, PeerName};

use super::{Statements, Step};
use crate::rules::BroadcastPlace;
use crate::store::{PeerId, PeerRecord};

pub trait PeerStatements: Statements {
    fn peer_by_name(
        &mut self,
        name: &str,
    ) -> impl Future<Output = Step<Option<PeerRecord>, Self>> + Send;

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

    fn insert_peer(
        &mut self,
        name: &PeerName,
        kind: PeerKind,
        info: &PeerInfo,
        now: Millis,
    ) -> impl Future<Output = Step<PeerId, Self>> + Send;

    /// Moves the peers' last-seen time forward to `now` (never back).
    fn touch_peers(
        &mut self,
        ids: &[PeerId],
        now: Millis,
    ) -> impl Future<Output = Step<(), Self>> + Send;

    fn refresh_peer_info(
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

    /// The parties of a send, with their names, in id order; an id with no peer is left out.
    /// Keeps other sends to or from them waiting until the commit, so the limits a send checks
    /// count every send committed before it.
    fn lock_parties(
        &mut self,
        ids: &[PeerId],
    ) -> impl Future<Output = Step<Vec<(PeerId, String)>, Self>> + Send;

    /// The peers a broadcast from `sender` reaches: every other peer with a live session in
    /// the place, in id order.
    fn broadcast_recipients(
        &mut self,
        sender: PeerId,
        place: &BroadcastPlace,
    ) -> impl Future<Output = Step<Vec<PeerId>, Self>> + Send;
}
