//! Peers and sessions: registration, reclaiming a name, presence and reaping dead sessions.

use switchboard_proto::{Millis, PeerInfo, PeerKind, PeerName};

use crate::error::Rejection;
use crate::seam::{Executor, NewPeer, NewSession, Step};
use crate::store::{NamePolicy, OpenSession, PeerId, PeerRecord, SessionId, SessionRecord};
use crate::wake::Wake;

/// Most `name-N` candidates tried before giving up on a free name.
const MAX_SUFFIX: u32 = 99;

/// The peer with this id; an id that names no peer is the caller's mistake (a relay's room
/// token names peers by id), so it reads as an unknown peer, not as a broken store.
pub async fn by_id<X: Executor>(x: &mut X, id: PeerId) -> Step<PeerRecord, X> {
    match x.peer_by_id(id).await? {
        Some(p) => Ok(p),
        None => Err(Rejection::UnknownPeerId { id }.into()),
    }
}

/// Passes when the peer exists; otherwise the caller named an unknown peer.
pub async fn require<X: Executor>(x: &mut X, id: PeerId) -> Step<(), X> {
    if x.peer_exists(id).await? {
        Ok(())
    } else {
        Err(Rejection::UnknownPeerId { id }.into())
    }
}

pub async fn find<X: Executor>(x: &mut X, name: String) -> Step<Option<PeerRecord>, X> {
    x.peer_by_name(&name).await
}

/// Every peer with its liveness, after ending the sessions of dead processes.
pub async fn list<X: Executor>(x: &mut X, now: Millis) -> Step<Vec<PeerRecord>, X> {
    reap(x, now).await?;
    x.all_peers().await
}

pub async fn ensure<X: Executor>(
    x: &mut X,
    name: PeerName,
    kind: PeerKind,
    now: Millis,
) -> Step<PeerRecord, X> {
    match x.peer_by_name(name.as_str()).await? {
        Some(p) if p.kind != kind => Err(Rejection::NameTaken {
            name: name.to_string(),
        }
        .into()),
        Some(p) => {
            x.touch_peers(&[p.id], now).await?;
            by_id(x, p.id).await
        }
        None => {
            let info = PeerInfo::default();
            let new = NewPeer {
                name: &name,
                kind,
                info: &info,
                now,
            };
            let id = x.insert_peer(new).await?;
            x.wake(Wake::Room);
            by_id(x, id).await
        }
    }
}

pub async fn open_session<X: Executor>(
    x: &mut X,
    req: OpenSession,
    now: Millis,
) -> Step<SessionRecord, X> {
    reap(x, now).await?;
    let peer = claim_name(x, &req, now).await?;
    let id = x
        .insert_session(NewSession {
            peer,
            client_pid: req.client_pid,
            now,
        })
        .await?;
    x.wake(Wake::Room);
    Ok(SessionRecord {
        id,
        peer: by_id(x, peer).await?,
    })
}

/// Finds the peer this session acts as: the wanted name if free or offline (reclaiming its
/// mail), else per the policy. The name is locked before its liveness is read, so two sessions
/// opening at once cannot both take one offline name.
async fn claim_name<X: Executor>(x: &mut X, req: &OpenSession, now: Millis) -> Step<PeerId, X> {
    for n in 1..=MAX_SUFFIX {
        let name = if n == 1 {
            req.name.clone()
        } else {
            req.name.with_suffix(n)
        };
        let Some((id, kind)) = x.lock_peer_name(name.as_str()).await? else {
            return x
                .insert_peer(NewPeer {
                    name: &name,
                    kind: req.kind,
                    info: &req.info,
                    now,
                })
                .await;
        };
        let usable =
            kind == req.kind && (req.policy == NamePolicy::Join || !x.has_live_session(id).await?);
        if usable {
            x.describe_peer(id, &req.info, now).await?;
            return Ok(id);
        }
        if req.policy == NamePolicy::Join {
            break;
        }
    }
    Err(Rejection::NameTaken {
        name: req.name.to_string(),
    }
    .into())
}

pub async fn close_session<X: Executor>(x: &mut X, session: SessionId, now: Millis) -> Step<(), X> {
    if let Some(peer) = x.end_session(session, now).await? {
        settle_ended(x, &[(session, peer)], now).await?;
    }
    Ok(())
}

/// Releases the leases of sessions just ended and marks their peers seen.
async fn settle_ended<X: Executor>(
    x: &mut X,
    ended: &[(SessionId, PeerId)],
    now: Millis,
) -> Step<u64, X> {
    if ended.is_empty() {
        return Ok(0);
    }
    let sessions: Vec<SessionId> = ended.iter().map(|(s, _)| *s).collect();
    let peers: Vec<PeerId> = ended.iter().map(|(_, p)| *p).collect();
    x.release_leases(&sessions).await?;
    // A reservation bound to a session ends with it, however the session ended.
    x.release_session_reservations(&sessions, now).await?;
    x.touch_peers(&peers, now).await?;
    x.wake(Wake::Room);
    Ok(sessions.len() as u64)
}

/// Ends every session whose owning process has died, when the store can be written (a
/// read-only store reports what is recorded). Returns how many ended.
pub async fn reap<X: Executor>(x: &mut X, now: Millis) -> Step<u64, X> {
    if !x.writable() {
        return Ok(0);
    }
    let ended = x.end_dead_sessions(now).await?;
    settle_ended(x, &ended, now).await
}

pub async fn rename<X: Executor>(
    x: &mut X,
    peer: PeerId,
    name: PeerName,
    now: Millis,
) -> Step<PeerRecord, X> {
    require(x, peer).await?;
    if x.peer_by_name(name.as_str())
        .await?
        .is_some_and(|p| p.id != peer)
    {
        return Err(Rejection::NameTaken {
            name: name.to_string(),
        }
        .into());
    }
    x.rename_peer(peer, &name, now).await?;
    x.wake(Wake::Room);
    by_id(x, peer).await
}

pub async fn set_summary<X: Executor>(
    x: &mut X,
    peer: PeerId,
    summary: String,
    now: Millis,
) -> Step<PeerRecord, X> {
    if x.set_peer_summary(peer, &summary, now).await? == 0 {
        return Err(Rejection::UnknownPeerId { id: peer }.into());
    }
    x.wake(Wake::Room);
    by_id(x, peer).await
}

pub async fn by_client_pid<X: Executor>(
    x: &mut X,
    pids: Vec<u32>,
    now: Millis,
) -> Step<Option<PeerRecord>, X> {
    reap(x, now).await?;
    for pid in pids {
        if let Some(peer) = x.live_peer_of_client(pid).await? {
            return by_id(x, peer).await.map(Some);
        }
    }
    Ok(None)
}
