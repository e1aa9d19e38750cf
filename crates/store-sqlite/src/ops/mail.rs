//! Messages and delivery records: send, lease, hand-over, acknowledgement, and the views of
//! sender, recipient and observer.

use rusqlite::{Connection, OptionalExtension, Row, params};

use switchboard_core::rules::LeaseStep;
use switchboard_core::{
    Admission, BroadcastPlace, LeaseRequest, LogQuery, NewMessage, NewTarget, PeerId, Rejection,
    SentQuery, SessionId, Wake,
};
use switchboard_proto::{
    DeliveryState, Grounding, InboxItem, ItemKind, LogEntry, MessageId, Millis, RecipientState,
    SentMessage, Target,
};

use super::{count_up_to, parse_col, peers};
use crate::fault::OpResult;
use crate::liveness::Liveness;

pub fn send(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    live: &Liveness,
    msg: &NewMessage,
    adm: Admission,
    now: Millis,
) -> OpResult<SentMessage> {
    if let Some(key) = &msg.idempotency_key {
        let original: Option<MessageId> = conn
            .prepare_cached(
                "SELECT id FROM messages
                 WHERE sender_id = ?1 AND idempotency_key = ?2 AND idempotency_key IS NOT NULL",
            )?
            .query_row(params![msg.sender, key], |r| r.get(0))
            .optional()?;
        if let Some(id) = original {
            let mut sent = load_sent(conn, id, now)?;
            sent.duplicate = true;
            return Ok(sent);
        }
    }
    check_rate(conn, msg.sender, adm, now)?;
    let recipients = recipients(conn, wakes, live, msg, now)?;
    for (id, name) in &recipients {
        check_pending(conn, *id, name, adm.pending_cap)?;
    }
    if let Some(parent) = msg.reply_to {
        answer(conn, msg.sender, parent, now)?;
    }
    let (recipient, scope, to) = match msg.target {
        NewTarget::Peer(p) => (Some(p), None, Target::Peer(recipients[0].1.clone())),
        NewTarget::Broadcast(s) => (None, Some(s.as_str()), Target::Broadcast(s)),
    };
    conn.prepare_cached(
        "INSERT INTO messages (sender_id, recipient_id, scope, body, reply_to, idempotency_key,
             created_at, expires_at, kind)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        msg.sender,
        recipient,
        scope,
        msg.text,
        msg.reply_to,
        msg.idempotency_key,
        now,
        msg.expires_at,
        msg.kind.as_str()
    ])?;
    let id = conn.last_insert_rowid();
    let mut insert = conn.prepare_cached(
        "INSERT INTO deliveries (message_id, recipient_id, state) VALUES (?1, ?2, 'queued')",
    )?;
    for (r, _) in &recipients {
        insert.execute(params![id, r])?;
        wakes.push(Wake::Inbox(*r));
    }
    let names = recipients.into_iter().map(|(_, name)| name).collect();
    Ok(switchboard_core::rules::fresh_sent(id, to, msg, now, names))
}

fn check_rate(conn: &Connection, sender: PeerId, adm: Admission, now: Millis) -> OpResult<()> {
    let since = now.saturating_sub(adm.rate_window_ms);
    let recent = count_up_to(
        conn,
        "SELECT COUNT(*) FROM (SELECT 1 FROM messages
             WHERE sender_id = ?1 AND created_at > ?2 LIMIT ?3)",
        params![sender, since, adm.rate_limit],
    )?;
    if recent < adm.rate_limit {
        return Ok(());
    }
    // The window frees a slot when its oldest message ages out.
    let oldest: Millis = conn
        .prepare_cached(
            "SELECT MIN(created_at) FROM messages WHERE sender_id = ?1 AND created_at > ?2",
        )?
        .query_row(params![sender, since], |r| r.get(0))?;
    Err(Rejection::RateLimited {
        limit: adm.rate_limit,
        window_secs: u64::try_from(adm.rate_window_ms / 1000).unwrap_or(0),
        retry_after_ms: (oldest + adm.rate_window_ms - now).max(1),
    }
    .into())
}

fn check_pending(conn: &Connection, recipient: PeerId, name: &str, cap: u32) -> OpResult<()> {
    let queued = count_up_to(
        conn,
        "SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
             WHERE recipient_id = ?1 AND state = 'queued' LIMIT ?2)",
        params![recipient, cap],
    )?;
    if queued < cap {
        return Ok(());
    }
    Err(Rejection::InboxFull {
        peer: name.to_owned(),
        cap,
    }
    .into())
}

/// Who receives a message, with their names: the named peer, or every live peer in the
/// broadcast's scope.
fn recipients(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    live: &Liveness,
    msg: &NewMessage,
    now: Millis,
) -> OpResult<Vec<(PeerId, String)>> {
    // Both parties must exist: ids come from callers, and the recipient, resolved by name
    // before this transaction, may have been removed by `gc` since.
    let scope = match msg.target {
        NewTarget::Peer(p) => {
            peers::require(conn, msg.sender)?;
            let name: Option<String> = conn
                .prepare_cached("SELECT name FROM peers WHERE id = ?1")?
                .query_row([p], |r| r.get(0))
                .optional()?;
            let name = name.ok_or(Rejection::UnknownPeerId { id: p })?;
            return Ok(vec![(p, name)]);
        }
        NewTarget::Broadcast(scope) => scope,
    };
    peers::reap(conn, wakes, live, now)?;
    let sender = peers::by_id(conn, msg.sender)?;
    let place = BroadcastPlace::of(scope, &sender.info)?;
    let column = place.column;
    let sql = format!(
        "SELECT p.id, p.name FROM peers p WHERE p.id <> ?1
           AND EXISTS(SELECT 1 FROM sessions s WHERE s.peer_id = p.id AND s.ended_at IS NULL)
           AND (?2 IS NULL OR p.{column} = ?2)
         ORDER BY p.id"
    );
    let ids = conn
        .prepare_cached(&sql)?
        .query_map(params![msg.sender, place.value], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// A reply counts as reading what it answers; the parent must be a message the replier got or
/// sent.
fn answer(conn: &Connection, replier: PeerId, parent: MessageId, now: Millis) -> OpResult<()> {
    let known: bool = conn
        .prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM deliveries WHERE recipient_id = ?1 AND message_id = ?2)
                 OR EXISTS(SELECT 1 FROM messages WHERE id = ?2 AND sender_id = ?1)",
        )?
        .query_row(params![replier, parent], |r| r.get(0))?;
    if !known {
        return Err(Rejection::UnknownReplyTo { id: parent }.into());
    }
    mark_read(conn, replier, parent, now)?;
    Ok(())
}

fn mark_read(conn: &Connection, peer: PeerId, id: MessageId, now: Millis) -> OpResult<usize> {
    Ok(conn
        .prepare_cached(
            "UPDATE deliveries SET state = 'read', read_at = ?3,
                 delivered_at = COALESCE(delivered_at, ?3), lease_session = NULL, lease_until = NULL
             WHERE recipient_id = ?1 AND message_id = ?2 AND state IN ('queued', 'delivered')",
        )?
        .execute(params![peer, id, now])?)
}

// The planner may prefer the primary key (recipient, message), which walks a recipient's whole
// history past every read item to find the unread ones: name the (recipient, state, message)
// index so a lease costs what is unread, however much mail the peer ever had.
const SELECT_ITEM: &str = "SELECT m.id, s.name, r.name, m.scope, m.body, m.reply_to,
        m.created_at, d.state, d.attempts, m.kind, q.context_hint, a.basis, d.lease_session,
        d.lease_until
    FROM deliveries d INDEXED BY deliveries_by_state
    JOIN messages m ON m.id = d.message_id
    JOIN peers s ON s.id = m.sender_id
    LEFT JOIN peers r ON r.id = m.recipient_id
    LEFT JOIN questions q ON q.message_id = m.id
    LEFT JOIN questions a ON a.reply_id = m.id";

struct Candidate {
    item: InboxItem,
    queued: bool,
    attempts: u32,
    /// The session holding the item's lease, and until when.
    lease: Option<(SessionId, Millis)>,
}

fn target(r: &Row<'_>, name_idx: usize, scope_idx: usize) -> rusqlite::Result<Target> {
    match r.get::<_, Option<String>>(name_idx)? {
        Some(name) => Ok(Target::Peer(name)),
        None => Ok(Target::Broadcast(parse_col(r, scope_idx)?)),
    }
}

fn candidate(r: &Row<'_>) -> rusqlite::Result<Candidate> {
    let state: DeliveryState = parse_col(r, 7)?;
    let kind: ItemKind = parse_col(r, 9)?;
    let basis: Option<String> = r.get(11)?;
    Ok(Candidate {
        item: InboxItem {
            id: r.get(0)?,
            kind,
            from: r.get(1)?,
            to: target(r, 2, 3)?,
            text: r.get(4)?,
            reply_to: r.get(5)?,
            created_at: r.get(6)?,
            seen_before: state == DeliveryState::Delivered,
            context_hint: r.get(10)?,
            // Sources are filled in after the row is read: they live in their own table.
            grounding: match basis {
                Some(b) if kind == ItemKind::Answer => Some(Grounding {
                    basis: b.parse().map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(
                            11,
                            rusqlite::types::Type::Text,
                            Box::new(e),
                        )
                    })?,
                    sources: Vec::new(),
                }),
                _ => None,
            },
        },
        queued: state == DeliveryState::Queued,
        attempts: r.get(8)?,
        lease: match (r.get(12)?, r.get(13)?) {
            (Some(session), Some(until)) => Some((session, until)),
            _ => None,
        },
    })
}

pub fn lease(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    req: &LeaseRequest,
    now: Millis,
) -> OpResult<Vec<InboxItem>> {
    super::questions::expire_asked_by(conn, wakes, req.peer, now)?;
    let queued_sql = format!(
        "{SELECT_ITEM} WHERE d.recipient_id = ?1 AND d.state = 'queued' AND m.expires_at > ?2
           AND (d.lease_until IS NULL OR d.lease_until <= ?2 OR d.lease_session = ?3)
         ORDER BY d.message_id LIMIT ?4"
    );
    let mut found: Vec<Candidate> = conn
        .prepare_cached(&queued_sql)?
        .query_map(params![req.peer, now, req.session, req.limit], candidate)?
        .collect::<Result<_, _>>()?;
    if req.include_seen {
        let seen_sql = format!(
            "{SELECT_ITEM} WHERE d.recipient_id = ?1 AND d.state = 'delivered'
             ORDER BY d.message_id LIMIT ?2"
        );
        let seen = conn
            .prepare_cached(&seen_sql)?
            .query_map(params![req.peer, req.limit], candidate)?
            .collect::<Result<Vec<_>, _>>()?;
        found.extend(seen);
        found.sort_by_key(|c| c.item.id);
        found.truncate(req.limit as usize);
    }
    let mut out = Vec::with_capacity(found.len());
    for mut c in found {
        if c.queued && !take_lease(conn, req, &c, now)? {
            continue;
        }
        if let Some(g) = &mut c.item.grounding {
            g.sources = super::questions::sources(conn, c.item.id)?;
        }
        out.push(c.item);
    }
    if out.is_empty() {
        // Nothing to lease, or no such peer: only an empty answer costs the lookup.
        peers::require(conn, req.peer)?;
    }
    Ok(out)
}

/// Leases one queued item under the rule of attempts ([`LeaseStep`]), or declares it dead when
/// it has used them up. Returns whether the item was leased.
fn take_lease(conn: &Connection, req: &LeaseRequest, c: &Candidate, now: Millis) -> OpResult<bool> {
    let until = now.saturating_add(req.lease_ms);
    match LeaseStep::of(c.attempts, c.lease, req.session, req.max_attempts, now) {
        LeaseStep::Bury => {
            conn.prepare_cached(
                "UPDATE deliveries SET state = 'dead', lease_session = NULL, lease_until = NULL
                 WHERE recipient_id = ?1 AND message_id = ?2",
            )?
            .execute(params![req.peer, c.item.id])?;
            return Ok(false);
        }
        LeaseStep::Renew => {
            conn.prepare_cached(
                "UPDATE deliveries SET lease_until = ?3 WHERE recipient_id = ?1 AND message_id = ?2",
            )?
            .execute(params![req.peer, c.item.id, until])?;
        }
        LeaseStep::Take => {
            conn.prepare_cached(
                "UPDATE deliveries SET attempts = attempts + 1, lease_session = ?3, lease_until = ?4
                 WHERE recipient_id = ?1 AND message_id = ?2",
            )?
            .execute(params![req.peer, c.item.id, req.session, until])?;
        }
    }
    Ok(true)
}

pub fn mark_delivered(
    conn: &Connection,
    session: SessionId,
    ids: &[MessageId],
    now: Millis,
) -> OpResult<u64> {
    let mut stmt = conn.prepare_cached(
        "UPDATE deliveries SET state = 'delivered', delivered_at = ?3,
             lease_session = NULL, lease_until = NULL
         WHERE lease_session = ?1 AND message_id = ?2 AND state = 'queued'",
    )?;
    let mut changed = 0;
    for &id in ids {
        changed += stmt.execute(params![session, id, now])? as u64;
    }
    Ok(changed)
}

pub fn ack(conn: &Connection, peer: PeerId, ids: &[MessageId], now: Millis) -> OpResult<u64> {
    let mut exists = conn.prepare_cached(
        "SELECT EXISTS(SELECT 1 FROM deliveries WHERE recipient_id = ?1 AND message_id = ?2)",
    )?;
    let mut missing = Vec::new();
    for &id in ids {
        if !exists.query_row(params![peer, id], |r| r.get::<_, bool>(0))? {
            missing.push(id);
        }
    }
    if !missing.is_empty() {
        peers::require(conn, peer)?;
        return Err(Rejection::NotInInbox { ids: missing }.into());
    }
    let mut changed = 0;
    for &id in ids {
        changed += mark_read(conn, peer, id, now)? as u64;
    }
    Ok(changed)
}

pub fn sent(
    conn: &Connection,
    sender: PeerId,
    query: SentQuery,
    now: Millis,
) -> OpResult<Vec<SentMessage>> {
    let ids: Vec<MessageId> = match query {
        SentQuery::One(id) => {
            let mine: bool = conn
                .prepare_cached(
                    "SELECT EXISTS(SELECT 1 FROM messages WHERE id = ?1 AND sender_id = ?2)",
                )?
                .query_row(params![id, sender], |r| r.get(0))?;
            if !mine {
                peers::require(conn, sender)?;
                return Err(Rejection::UnknownMessage { id }.into());
            }
            vec![id]
        }
        SentQuery::Recent(n) => conn
            .prepare_cached(
                "SELECT id FROM messages WHERE sender_id = ?1 ORDER BY id DESC LIMIT ?2",
            )?
            .query_map(params![sender, n], |r| r.get(0))?
            .collect::<Result<_, _>>()?,
    };
    if ids.is_empty() {
        peers::require(conn, sender)?;
    }
    ids.into_iter().map(|id| load_sent(conn, id, now)).collect()
}

/// The sender's view of one message. A queued copy past its TTL reads as expired even before
/// `gc` records it, so the sender never sees a hopeful state that cannot come true.
fn load_sent(conn: &Connection, id: MessageId, now: Millis) -> OpResult<SentMessage> {
    let mut sent = conn
        .prepare_cached(
            "SELECT m.id, r.name, m.scope, m.body, m.reply_to, m.idempotency_key, m.created_at,
                 m.expires_at
             FROM messages m LEFT JOIN peers r ON r.id = m.recipient_id WHERE m.id = ?1",
        )?
        .query_row([id], |r| {
            Ok(SentMessage {
                id: r.get(0)?,
                to: target(r, 1, 2)?,
                text: r.get(3)?,
                reply_to: r.get(4)?,
                idempotency_key: r.get(5)?,
                created_at: r.get(6)?,
                expires_at: r.get(7)?,
                recipients: Vec::new(),
                duplicate: false,
            })
        })?;
    let expired = sent.expires_at <= now;
    sent.recipients = conn
        .prepare_cached(
            "SELECT p.name, d.state, d.attempts, d.delivered_at, d.read_at
             FROM deliveries d JOIN peers p ON p.id = d.recipient_id
             WHERE d.message_id = ?1 ORDER BY p.name",
        )?
        .query_map([id], |r| {
            let mut state: DeliveryState = parse_col(r, 1)?;
            if expired && state == DeliveryState::Queued {
                state = DeliveryState::Expired;
            }
            Ok(RecipientState {
                peer: r.get(0)?,
                state,
                attempts: r.get(2)?,
                delivered_at: r.get(3)?,
                read_at: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(sent)
}

const SELECT_LOG: &str = "SELECT m.id, s.name, r.name, m.scope, m.body, m.reply_to, m.created_at,
        m.kind
    FROM messages m
    JOIN peers s ON s.id = m.sender_id
    LEFT JOIN peers r ON r.id = m.recipient_id";

fn log_row(r: &Row<'_>) -> rusqlite::Result<LogEntry> {
    Ok(LogEntry {
        id: r.get(0)?,
        kind: parse_col(r, 7)?,
        from: r.get(1)?,
        to: target(r, 2, 3)?,
        text: r.get(4)?,
        reply_to: r.get(5)?,
        created_at: r.get(6)?,
    })
}

pub fn log(conn: &Connection, q: &LogQuery) -> OpResult<Vec<LogEntry>> {
    let entries: Vec<LogEntry> = match q.peer {
        None => conn
            .prepare_cached(&format!(
                "{SELECT_LOG} WHERE m.id > ?1 ORDER BY m.id LIMIT ?2"
            ))?
            .query_map(params![q.after, q.limit], log_row)?
            .collect::<Result<_, _>>()?,
        Some(peer) => conn
            .prepare_cached(&format!(
                "{SELECT_LOG} JOIN deliveries d ON d.message_id = m.id
                 WHERE d.recipient_id = ?1 AND d.message_id > ?2
                 ORDER BY d.message_id LIMIT ?3"
            ))?
            .query_map(params![peer, q.after, q.limit], log_row)?
            .collect::<Result<_, _>>()?,
    };
    if let Some(peer) = q.peer
        && entries.is_empty()
    {
        peers::require(conn, peer)?;
    }
    Ok(entries)
}

/// A message the store itself writes on a peer's behalf (an expiry or job notice): no limits
/// apply, since refusing it would leave someone waiting for news that never comes.
pub struct Notice<'a> {
    pub kind: ItemKind,
    pub from: PeerId,
    pub to: PeerId,
    pub text: &'a str,
    pub reply_to: Option<MessageId>,
    pub expires_at: Millis,
}

/// Stores a notice with its queued delivery and wakes the recipient; returns its id.
pub fn notice(
    conn: &Connection,
    wakes: &mut Vec<Wake>,
    n: &Notice<'_>,
    now: Millis,
) -> OpResult<MessageId> {
    conn.prepare_cached(
        "INSERT INTO messages (sender_id, recipient_id, body, reply_to, created_at, expires_at,
             kind)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        n.from,
        n.to,
        n.text,
        n.reply_to,
        now,
        n.expires_at,
        n.kind.as_str()
    ])?;
    let id = conn.last_insert_rowid();
    conn.prepare_cached(
        "INSERT INTO deliveries (message_id, recipient_id, state) VALUES (?1, ?2, 'queued')",
    )?
    .execute(params![id, n.to])?;
    wakes.push(Wake::Inbox(n.to));
    Ok(id)
}
