//! Peers and sessions: registration, reclaiming a name, presence and reaping dead sessions.

use rusqlite::{Connection, OptionalExtension, Row, params};

use switchboard_core::{
    NamePolicy, OpenSession, PeerId, PeerRecord, Rejection, SessionId, SessionRecord, Wake,
};
use switchboard_proto::{Millis, PeerInfo, PeerKind, PeerName};

use super::parse_col;
use crate::fault::{OpError, OpResult};
use crate::liveness::Liveness;

const SELECT_PEER: &str = "SELECT p.id, p.name, p.kind, p.client_kind, p.client_version, p.host,
    p.cwd, p.git_root, p.git_branch, p.summary, p.created_at, p.last_seen_at,
    EXISTS(SELECT 1 FROM sessions s WHERE s.peer_id = p.id AND s.ended_at IS NULL)
    FROM peers p";

fn peer_row(r: &Row<'_>) -> rusqlite::Result<PeerRecord> {
    Ok(PeerRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: parse_col(r, 2)?,
        info: PeerInfo {
            client_kind: r.get(3)?,
            client_version: r.get(4)?,
            host: r.get(5)?,
            cwd: r.get(6)?,
            git_root: r.get(7)?,
            git_branch: r.get(8)?,
        },
        summary: r.get(9)?,
        created_at: r.get(10)?,
        last_seen_at: r.get(11)?,
        online: r.get(12)?,
    })
}

pub fn by_name(conn: &Connection, name: &str) -> OpResult<Option<PeerRecord>> {
    let sql = format!("{SELECT_PEER} WHERE p.name = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([name], peer_row)
        .optional()?)
}

/// The peer with this id; an id that names no peer is the caller's mistake (a relay's room
/// token names peers by id), so it reads as an unknown peer, not as a broken store.
pub fn by_id(conn: &Connection, id: PeerId) -> OpResult<PeerRecord> {
    let sql = format!("{SELECT_PEER} WHERE p.id = ?1");
    conn.prepare_cached(&sql)?
        .query_row([id], peer_row)
        .optional()?
        .ok_or_else(|| Rejection::UnknownPeerId { id }.into())
}

/// Whether a peer with this id exists.
pub fn exists(conn: &Connection, id: PeerId) -> OpResult<bool> {
    Ok(conn
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM peers WHERE id = ?1)")?
        .query_row([id], |r| r.get(0))?)
}

/// Passes when the peer exists; otherwise the caller named an unknown peer.
pub fn require(conn: &Connection, id: PeerId) -> OpResult<()> {
    if exists(conn, id)? {
        Ok(())
    } else {
        Err(Rejection::UnknownPeerId { id }.into())
    }
}

pub fn all(conn: &Connection) -> OpResult<Vec<PeerRecord>> {
    let sql = format!("{SELECT_PEER} ORDER BY p.name");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], peer_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn ensure(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    name: &PeerName,
    kind: PeerKind,
    now: Millis,
) -> OpResult<PeerRecord> {
    match by_name(conn, name.as_str())? {
        Some(p) if p.kind != kind => Err(Rejection::NameTaken {
            name: name.to_string(),
        }
        .into()),
        Some(p) => {
            touch(conn, p.id, now)?;
            by_id(conn, p.id)
        }
        None => {
            let id = insert(conn, name, kind, &PeerInfo::default(), now)?;
            wakes.push(Wake::Room);
            by_id(conn, id)
        }
    }
}

fn insert(
    conn: &Connection,
    name: &PeerName,
    kind: PeerKind,
    info: &PeerInfo,
    now: Millis,
) -> OpResult<PeerId> {
    conn.prepare_cached(
        "INSERT INTO peers (name, kind, client_kind, client_version, host, cwd, git_root,
             git_branch, summary, created_at, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '', ?9, ?9)",
    )?
    .execute(params![
        name.as_str(),
        kind.as_str(),
        info.client_kind,
        info.client_version,
        info.host,
        info.cwd,
        info.git_root,
        info.git_branch,
        now
    ])?;
    Ok(conn.last_insert_rowid())
}

fn touch(conn: &Connection, peer: PeerId, now: Millis) -> OpResult<()> {
    conn.prepare_cached("UPDATE peers SET last_seen_at = MAX(last_seen_at, ?2) WHERE id = ?1")?
        .execute(params![peer, now])?;
    Ok(())
}

/// Most `name-N` candidates tried before giving up on a free name.
const MAX_SUFFIX: u32 = 99;

pub fn open_session(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    live: &Liveness,
    req: &OpenSession,
    now: Millis,
) -> OpResult<SessionRecord> {
    live.claim()
        .map_err(|e| OpError::Store(switchboard_core::StoreError::Backend(e.to_string())))?;
    reap(conn, wakes, live, now)?;
    let peer = claim_name(conn, req, now)?;
    conn.prepare_cached(
        "INSERT INTO sessions (peer_id, process_key, started_at, client_pid)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![peer, live.key(), now, req.client_pid])?;
    let id = conn.last_insert_rowid();
    wakes.push(Wake::Room);
    Ok(SessionRecord {
        id,
        peer: by_id(conn, peer)?,
    })
}

/// Finds the peer this session acts as: the wanted name if free or offline (reclaiming its
/// mail), else per the policy.
fn claim_name(conn: &Connection, req: &OpenSession, now: Millis) -> OpResult<PeerId> {
    for n in 1..=MAX_SUFFIX {
        let name = if n == 1 {
            req.name.clone()
        } else {
            req.name.with_suffix(n)
        };
        let usable = match by_name(conn, name.as_str())? {
            None => return insert(conn, &name, req.kind, &req.info, now),
            Some(p) if p.kind != req.kind => None,
            Some(p) if p.online && req.policy == NamePolicy::Suffix => None,
            Some(p) => Some(p),
        };
        if let Some(p) = usable {
            refresh_info(conn, p.id, &req.info, now)?;
            return Ok(p.id);
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

fn refresh_info(conn: &Connection, peer: PeerId, info: &PeerInfo, now: Millis) -> OpResult<()> {
    conn.prepare_cached(
        "UPDATE peers SET client_kind = ?2, client_version = ?3, host = ?4, cwd = ?5,
             git_root = ?6, git_branch = ?7, last_seen_at = ?8
         WHERE id = ?1",
    )?
    .execute(params![
        peer,
        info.client_kind,
        info.client_version,
        info.host,
        info.cwd,
        info.git_root,
        info.git_branch,
        now
    ])?;
    Ok(())
}

pub fn close_session(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    session: SessionId,
    now: Millis,
) -> OpResult<()> {
    let peer: Option<PeerId> = conn
        .prepare_cached(
            "UPDATE sessions SET ended_at = ?2 WHERE id = ?1 AND ended_at IS NULL
             RETURNING peer_id",
        )?
        .query_row(params![session, now], |r| r.get(0))
        .optional()?;
    if let Some(peer) = peer {
        release_leases(conn, session)?;
        touch(conn, peer, now)?;
        wakes.push(Wake::Room);
    }
    Ok(())
}

fn release_leases(conn: &Connection, session: SessionId) -> OpResult<()> {
    conn.prepare_cached(
        "UPDATE deliveries SET lease_session = NULL, lease_until = NULL WHERE lease_session = ?1",
    )?
    .execute([session])?;
    Ok(())
}

/// Ends every session whose owning process has died.
pub fn reap(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    live: &Liveness,
    now: Millis,
) -> OpResult<u64> {
    let keys: Vec<String> = conn
        .prepare_cached("SELECT DISTINCT process_key FROM sessions WHERE ended_at IS NULL")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut ended = 0;
    for key in keys.iter().filter(|k| !live.is_alive(k)) {
        let sessions: Vec<SessionId> = conn
            .prepare_cached("SELECT id FROM sessions WHERE process_key = ?1 AND ended_at IS NULL")?
            .query_map([key], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for s in sessions {
            close_session(conn, wakes, s, now)?;
            ended += 1;
        }
    }
    Ok(ended)
}

pub fn rename(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    peer: PeerId,
    name: &PeerName,
    now: Millis,
) -> OpResult<PeerRecord> {
    require(conn, peer)?;
    if by_name(conn, name.as_str())?.is_some_and(|p| p.id != peer) {
        return Err(Rejection::NameTaken {
            name: name.to_string(),
        }
        .into());
    }
    conn.prepare_cached("UPDATE peers SET name = ?2, last_seen_at = ?3 WHERE id = ?1")?
        .execute(params![peer, name.as_str(), now])?;
    wakes.push(Wake::Room);
    by_id(conn, peer)
}

pub fn set_summary(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    peer: PeerId,
    summary: &str,
    now: Millis,
) -> OpResult<PeerRecord> {
    let changed = conn
        .prepare_cached("UPDATE peers SET summary = ?2, last_seen_at = ?3 WHERE id = ?1")?
        .execute(params![peer, summary, now])?;
    if changed == 0 {
        return Err(Rejection::UnknownPeerId { id: peer }.into());
    }
    wakes.push(Wake::Room);
    by_id(conn, peer)
}

pub fn by_client_pid(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    live: &Liveness,
    pids: &[u32],
    now: Millis,
) -> OpResult<Option<PeerRecord>> {
    reap(conn, wakes, live, now)?;
    let mut stmt = conn.prepare_cached(
        "SELECT peer_id FROM sessions WHERE client_pid = ?1 AND ended_at IS NULL
         ORDER BY id DESC LIMIT 1",
    )?;
    for pid in pids {
        let found: Option<PeerId> = stmt.query_row([pid], |r| r.get(0)).optional()?;
        if let Some(peer) = found {
            return by_id(conn, peer).map(Some);
        }
    }
    Ok(None)
}
