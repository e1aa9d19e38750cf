//! Peers and sessions: registration, reclaiming a name, presence and reaping dead sessions.
//!
//! A session belongs to the process (relay replica) that opened it, named by the advisory lock
//! that process holds on its own connection for as long as it lives (see [`crate::holder`]).
//! Whoever can take that lock knows the owner is gone.

use tokio_postgres::Row;

use switchboard_core::{
    NamePolicy, OpenSession, PeerId, PeerRecord, Rejection, SessionId, SessionRecord, Wake,
};
use switchboard_proto::{Millis, PeerInfo, PeerKind, PeerName};

use super::{Conn, col, exec, one, opt, parse, rows};
use crate::fault::OpResult;

const SELECT_PEER: &str = "SELECT p.id, p.name, p.kind, p.client_kind, p.client_version, p.host,
    p.cwd, p.git_root, p.git_branch, p.summary, p.created_at, p.last_seen_at,
    EXISTS(SELECT 1 FROM sessions s WHERE s.peer_id = p.id AND s.ended_at IS NULL)
    FROM peers p";

fn peer_row(r: &Row) -> OpResult<PeerRecord> {
    Ok(PeerRecord {
        id: col(r, 0)?,
        name: col(r, 1)?,
        kind: parse(r, 2)?,
        info: PeerInfo {
            client_kind: col(r, 3)?,
            client_version: col(r, 4)?,
            host: col(r, 5)?,
            cwd: col(r, 6)?,
            git_root: col(r, 7)?,
            git_branch: col(r, 8)?,
        },
        summary: col(r, 9)?,
        created_at: col(r, 10)?,
        last_seen_at: col(r, 11)?,
        online: col(r, 12)?,
    })
}

pub async fn by_name(c: &Conn, name: &str) -> OpResult<Option<PeerRecord>> {
    let sql = format!("{SELECT_PEER} WHERE p.name = $1");
    opt(c, &sql, &[&name])
        .await?
        .as_ref()
        .map(peer_row)
        .transpose()
}

/// The peer with this id; an id that names no peer is the caller's mistake (a relay's room
/// token names peers by id), so it reads as an unknown peer, not as a broken store.
pub async fn by_id(c: &Conn, id: PeerId) -> OpResult<PeerRecord> {
    let sql = format!("{SELECT_PEER} WHERE p.id = $1");
    match opt(c, &sql, &[&id]).await? {
        Some(row) => peer_row(&row),
        None => Err(Rejection::UnknownPeerId { id }.into()),
    }
}

/// Whether a peer with this id exists.
pub async fn exists(c: &Conn, id: PeerId) -> OpResult<bool> {
    let row = one(
        c,
        "SELECT EXISTS(SELECT 1 FROM peers WHERE id = $1)",
        &[&id],
    )
    .await?;
    col(&row, 0)
}

/// Passes when the peer exists; otherwise the caller named an unknown peer.
pub async fn require(c: &Conn, id: PeerId) -> OpResult<()> {
    if exists(c, id).await? {
        Ok(())
    } else {
        Err(Rejection::UnknownPeerId { id }.into())
    }
}

pub async fn all(c: &Conn) -> OpResult<Vec<PeerRecord>> {
    let sql = format!("{SELECT_PEER} ORDER BY p.name");
    rows(c, &sql, &[]).await?.iter().map(peer_row).collect()
}

pub async fn ensure(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    name: &PeerName,
    kind: PeerKind,
    now: Millis,
) -> OpResult<PeerRecord> {
    match by_name(c, name.as_str()).await? {
        Some(p) if p.kind != kind => Err(Rejection::NameTaken {
            name: name.to_string(),
        }
        .into()),
        Some(p) => {
            touch(c, &[p.id], now).await?;
            by_id(c, p.id).await
        }
        None => {
            let id = insert(c, name, kind, &PeerInfo::default(), now).await?;
            wakes.push(Wake::Room);
            by_id(c, id).await
        }
    }
}

/// Inserts a peer. Two transactions inserting one name at once: the loser fails on the unique
/// key and is run again, finding the winner's row.
async fn insert(
    c: &Conn,
    name: &PeerName,
    kind: PeerKind,
    info: &PeerInfo,
    now: Millis,
) -> OpResult<PeerId> {
    let row = one(
        c,
        "INSERT INTO peers (name, kind, client_kind, client_version, host, cwd, git_root,
             git_branch, summary, created_at, last_seen_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '', $9, $9) RETURNING id",
        &[
            &name.as_str(),
            &kind.as_str(),
            &info.client_kind,
            &info.client_version,
            &info.host,
            &info.cwd,
            &info.git_root,
            &info.git_branch,
            &now,
        ],
    )
    .await?;
    col(&row, 0)
}

async fn touch(c: &Conn, peers: &[PeerId], now: Millis) -> OpResult<()> {
    exec(
        c,
        "UPDATE peers SET last_seen_at = GREATEST(last_seen_at, $2) WHERE id = ANY($1)",
        &[&peers, &now],
    )
    .await?;
    Ok(())
}

/// Most `name-N` candidates tried before giving up on a free name.
const MAX_SUFFIX: u32 = 99;

pub async fn open_session(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    process_key: i64,
    req: &OpenSession,
    now: Millis,
) -> OpResult<SessionRecord> {
    reap(c, wakes, now).await?;
    let peer = claim_name(c, req, now).await?;
    let pid = req.client_pid.map(i64::from);
    let row = one(
        c,
        "INSERT INTO sessions (peer_id, process_key, started_at, client_pid)
         VALUES ($1, $2, $3, $4) RETURNING id",
        &[&peer, &process_key, &now, &pid],
    )
    .await?;
    wakes.push(Wake::Room);
    Ok(SessionRecord {
        id: col(&row, 0)?,
        peer: by_id(c, peer).await?,
    })
}

/// Finds the peer this session acts as: the wanted name if free or offline (reclaiming its
/// mail), else per the policy. The candidate's row is locked before its liveness is read, so
/// two sessions opening at once cannot both take one offline name.
async fn claim_name(c: &Conn, req: &OpenSession, now: Millis) -> OpResult<PeerId> {
    for n in 1..=MAX_SUFFIX {
        let name = if n == 1 {
            req.name.clone()
        } else {
            req.name.with_suffix(n)
        };
        let found = opt(
            c,
            "SELECT id, kind FROM peers WHERE name = $1 FOR NO KEY UPDATE",
            &[&name.as_str()],
        )
        .await?;
        let Some(row) = found else {
            return insert(c, &name, req.kind, &req.info, now).await;
        };
        let id: PeerId = col(&row, 0)?;
        let kind: PeerKind = parse(&row, 1)?;
        let usable =
            kind == req.kind && (req.policy == NamePolicy::Join || !is_online(c, id).await?);
        if usable {
            refresh_info(c, id, &req.info, now).await?;
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

async fn is_online(c: &Conn, peer: PeerId) -> OpResult<bool> {
    let row = one(
        c,
        "SELECT EXISTS(SELECT 1 FROM sessions WHERE peer_id = $1 AND ended_at IS NULL)",
        &[&peer],
    )
    .await?;
    col(&row, 0)
}

async fn refresh_info(c: &Conn, peer: PeerId, info: &PeerInfo, now: Millis) -> OpResult<()> {
    exec(
        c,
        "UPDATE peers SET client_kind = $2, client_version = $3, host = $4, cwd = $5,
             git_root = $6, git_branch = $7, last_seen_at = $8
         WHERE id = $1",
        &[
            &peer,
            &info.client_kind,
            &info.client_version,
            &info.host,
            &info.cwd,
            &info.git_root,
            &info.git_branch,
            &now,
        ],
    )
    .await?;
    Ok(())
}

pub async fn close_session(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    session: SessionId,
    now: Millis,
) -> OpResult<()> {
    let ended = rows(
        c,
        "UPDATE sessions SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL
         RETURNING id, peer_id",
        &[&session, &now],
    )
    .await?;
    settle_ended(c, wakes, &ended, now).await?;
    Ok(())
}

/// Releases the leases of sessions just ended and marks their peers seen.
async fn settle_ended(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    ended: &[Row],
    now: Millis,
) -> OpResult<u64> {
    if ended.is_empty() {
        return Ok(0);
    }
    let sessions: Vec<SessionId> = ended.iter().map(|r| col(r, 0)).collect::<OpResult<_>>()?;
    let peers: Vec<PeerId> = ended.iter().map(|r| col(r, 1)).collect::<OpResult<_>>()?;
    exec(
        c,
        "UPDATE deliveries SET lease_session = NULL, lease_until = NULL
         WHERE lease_session = ANY($1)",
        &[&sessions],
    )
    .await?;
    touch(c, &peers, now).await?;
    wakes.push(Wake::Room);
    Ok(sessions.len() as u64)
}

/// Ends every session whose owning process has died: its advisory lock is free to take.
pub async fn reap(c: &Conn, wakes: &mut Vec<Wake>, now: Millis) -> OpResult<u64> {
    let ended = rows(
        c,
        "UPDATE sessions SET ended_at = $1
         WHERE ended_at IS NULL AND pg_try_advisory_xact_lock(process_key)
         RETURNING id, peer_id",
        &[&now],
    )
    .await?;
    settle_ended(c, wakes, &ended, now).await
}

pub async fn rename(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    peer: PeerId,
    name: &PeerName,
    now: Millis,
) -> OpResult<PeerRecord> {
    require(c, peer).await?;
    if by_name(c, name.as_str())
        .await?
        .is_some_and(|p| p.id != peer)
    {
        return Err(Rejection::NameTaken {
            name: name.to_string(),
        }
        .into());
    }
    exec(
        c,
        "UPDATE peers SET name = $2, last_seen_at = $3 WHERE id = $1",
        &[&peer, &name.as_str(), &now],
    )
    .await?;
    wakes.push(Wake::Room);
    by_id(c, peer).await
}

pub async fn set_summary(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    peer: PeerId,
    summary: &str,
    now: Millis,
) -> OpResult<PeerRecord> {
    let changed = exec(
        c,
        "UPDATE peers SET summary = $2, last_seen_at = $3 WHERE id = $1",
        &[&peer, &summary, &now],
    )
    .await?;
    if changed == 0 {
        return Err(Rejection::UnknownPeerId { id: peer }.into());
    }
    wakes.push(Wake::Room);
    by_id(c, peer).await
}

pub async fn by_client_pid(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    pids: &[u32],
    now: Millis,
) -> OpResult<Option<PeerRecord>> {
    reap(c, wakes, now).await?;
    for pid in pids {
        let found = opt(
            c,
            "SELECT peer_id FROM sessions WHERE client_pid = $1 AND ended_at IS NULL
             ORDER BY id DESC LIMIT 1",
            &[&i64::from(*pid)],
        )
        .await?;
        if let Some(row) = found {
            return by_id(c, col(&row, 0)?).await.map(Some);
        }
    }
    Ok(None)
}
