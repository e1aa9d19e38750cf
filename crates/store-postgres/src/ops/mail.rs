//! Messages and delivery records: send, lease, hand-over, acknowledgement, and the views of
//! sender, recipient and observer.
//!
//! Concurrency: a send locks the rows of its sender and recipients (in id order, so two sends
//! never deadlock), which makes the rate limit and the pending cap exact; a lease skips
//! deliveries another session is leasing at that moment.

use tokio_postgres::Row;

use switchboard_core::rules::LeaseStep;
use switchboard_core::{
    Admission, BroadcastPlace, LeaseRequest, LogQuery, NewMessage, NewTarget, PeerId, Rejection,
    SentQuery, SessionId, Wake,
};
use switchboard_proto::{
    DeliveryState, Grounding, InboxItem, ItemKind, LogEntry, MessageId, Millis, RecipientState,
    SentMessage, Target,
};

use super::{Conn, big, col, exec, one, opt, parse, peers, rows, small};
use crate::fault::OpResult;

pub async fn send(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    msg: &NewMessage,
    adm: Admission,
    now: Millis,
) -> OpResult<SentMessage> {
    if let Some(key) = &msg.idempotency_key {
        let original = opt(
            c,
            "SELECT id FROM messages WHERE sender_id = $1 AND idempotency_key = $2",
            &[&msg.sender, key],
        )
        .await?;
        if let Some(row) = original {
            let mut sent = load_sent(c, col(&row, 0)?, now).await?;
            sent.duplicate = true;
            return Ok(sent);
        }
    }
    let mut recipients = recipients(c, wakes, msg, now).await?;
    lock_parties(c, msg.sender, &mut recipients).await?;
    check_rate(c, msg.sender, adm, now).await?;
    for (id, name) in &recipients {
        check_pending(c, *id, name, adm.pending_cap).await?;
    }
    if let Some(parent) = msg.reply_to {
        answer(c, msg.sender, parent, now).await?;
    }
    let (recipient, scope, to) = match msg.target {
        NewTarget::Peer(p) => (Some(p), None, Target::Peer(recipients[0].1.clone())),
        NewTarget::Broadcast(s) => (None, Some(s.as_str()), Target::Broadcast(s)),
    };
    let row = one(
        c,
        "INSERT INTO messages (sender_id, recipient_id, scope, body, reply_to, idempotency_key,
             created_at, expires_at, kind)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        &[
            &msg.sender,
            &recipient,
            &scope,
            &msg.text,
            &msg.reply_to,
            &msg.idempotency_key,
            &now,
            &msg.expires_at,
            &msg.kind.as_str(),
        ],
    )
    .await?;
    let id: MessageId = col(&row, 0)?;
    let ids: Vec<PeerId> = recipients.iter().map(|(r, _)| *r).collect();
    deliver(c, wakes, id, &ids).await?;
    let names = recipients.into_iter().map(|(_, name)| name).collect();
    Ok(switchboard_core::rules::fresh_sent(id, to, msg, now, names))
}

/// One queued delivery per recipient, and a wake for each.
async fn deliver(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    message: MessageId,
    recipients: &[PeerId],
) -> OpResult<()> {
    exec(
        c,
        "INSERT INTO deliveries (message_id, recipient_id, state)
         SELECT $1, r, 'queued' FROM unnest($2::bigint[]) AS r",
        &[&message, &recipients],
    )
    .await?;
    wakes.extend(recipients.iter().map(|r| Wake::Inbox(*r)));
    Ok(())
}

/// Serialises the sends that share a sender or a recipient, so the limits below count what
/// every earlier send committed; reads the recipients' names under the lock. Both parties must
/// exist: ids come from callers, and the recipient, resolved by name before this transaction,
/// may have been removed by `gc` since.
async fn lock_parties(
    c: &Conn,
    sender: PeerId,
    recipients: &mut [(PeerId, String)],
) -> OpResult<()> {
    let mut ids: Vec<PeerId> = recipients.iter().map(|(r, _)| *r).collect();
    ids.push(sender);
    let locked = rows(
        c,
        "SELECT id, name FROM peers WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
        &[&ids],
    )
    .await?;
    let mut found = Vec::with_capacity(locked.len());
    for row in &locked {
        let id: PeerId = col(row, 0)?;
        found.push(id);
        if let Some(r) = recipients.iter_mut().find(|(r, _)| *r == id) {
            r.1 = col(row, 1)?;
        }
    }
    // The sender is named first, as the embedded store does.
    let missing = std::iter::once(sender)
        .chain(recipients.iter().map(|(r, _)| *r))
        .find(|id| !found.contains(id));
    match missing {
        Some(id) => Err(Rejection::UnknownPeerId { id }.into()),
        None => Ok(()),
    }
}

async fn check_rate(c: &Conn, sender: PeerId, adm: Admission, now: Millis) -> OpResult<()> {
    let since = now.saturating_sub(adm.rate_window_ms);
    let row = one(
        c,
        "SELECT COUNT(*), MIN(created_at) FROM (SELECT created_at FROM messages
             WHERE sender_id = $1 AND created_at > $2 ORDER BY created_at LIMIT $3) t",
        &[&sender, &since, &big(adm.rate_limit)],
    )
    .await?;
    let recent = small(col(&row, 0)?);
    if recent < adm.rate_limit {
        return Ok(());
    }
    // The window frees a slot when its oldest message ages out.
    let oldest: Millis = col::<Option<Millis>>(&row, 1)?.unwrap_or(now);
    Err(Rejection::RateLimited {
        limit: adm.rate_limit,
        window_secs: u64::try_from(adm.rate_window_ms / 1000).unwrap_or(0),
        retry_after_ms: (oldest + adm.rate_window_ms - now).max(1),
    }
    .into())
}

async fn check_pending(c: &Conn, recipient: PeerId, name: &str, cap: u32) -> OpResult<()> {
    let row = one(
        c,
        "SELECT COUNT(*) FROM (SELECT 1 FROM deliveries
             WHERE recipient_id = $1 AND state = 'queued' LIMIT $2) t",
        &[&recipient, &big(cap)],
    )
    .await?;
    if small(col(&row, 0)?) < cap {
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
async fn recipients(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    msg: &NewMessage,
    now: Millis,
) -> OpResult<Vec<(PeerId, String)>> {
    let scope = match msg.target {
        // The name is read when the row is locked (see `lock_parties`).
        NewTarget::Peer(p) => return Ok(vec![(p, String::new())]),
        NewTarget::Broadcast(scope) => scope,
    };
    peers::reap(c, wakes, now).await?;
    let sender = peers::by_id(c, msg.sender).await?;
    let place = BroadcastPlace::of(scope, &sender.info)?;
    let column = place.column;
    let sql = format!(
        "SELECT p.id, p.name FROM peers p WHERE p.id <> $1
           AND EXISTS(SELECT 1 FROM sessions s WHERE s.peer_id = p.id AND s.ended_at IS NULL)
           AND ($2::text IS NULL OR p.{column} = $2)
         ORDER BY p.id"
    );
    rows(c, &sql, &[&msg.sender, &place.value])
        .await?
        .iter()
        .map(|r| Ok((col(r, 0)?, col(r, 1)?)))
        .collect()
}

/// A reply counts as reading what it answers; the parent must be a message the replier got or
/// sent.
async fn answer(c: &Conn, replier: PeerId, parent: MessageId, now: Millis) -> OpResult<()> {
    let row = one(
        c,
        "SELECT EXISTS(SELECT 1 FROM deliveries WHERE recipient_id = $1 AND message_id = $2)
             OR EXISTS(SELECT 1 FROM messages WHERE id = $2 AND sender_id = $1)",
        &[&replier, &parent],
    )
    .await?;
    if !col::<bool>(&row, 0)? {
        return Err(Rejection::UnknownReplyTo { id: parent }.into());
    }
    mark_read(c, replier, &[parent], now).await?;
    Ok(())
}

async fn mark_read(c: &Conn, peer: PeerId, ids: &[MessageId], now: Millis) -> OpResult<u64> {
    exec(
        c,
        "UPDATE deliveries SET state = 'read', read_at = $3,
             delivered_at = COALESCE(delivered_at, $3), lease_session = NULL, lease_until = NULL
         WHERE recipient_id = $1 AND message_id = ANY($2) AND state IN ('queued', 'delivered')",
        &[&peer, &ids, &now],
    )
    .await
}

const SELECT_ITEM: &str = "SELECT m.id, s.name, r.name, m.scope, m.body, m.reply_to,
        m.created_at, d.state, d.attempts, m.kind, q.context_hint, a.basis, d.lease_session,
        d.lease_until
    FROM deliveries d
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

fn target(r: &Row, name_idx: usize, scope_idx: usize) -> OpResult<Target> {
    match col::<Option<String>>(r, name_idx)? {
        Some(name) => Ok(Target::Peer(name)),
        None => Ok(Target::Broadcast(parse(r, scope_idx)?)),
    }
}

fn candidate(r: &Row) -> OpResult<Candidate> {
    let state: DeliveryState = parse(r, 7)?;
    let kind: ItemKind = parse(r, 9)?;
    let grounding = match col::<Option<&str>>(r, 11)? {
        Some(_) if kind == ItemKind::Answer => Some(Grounding {
            basis: parse(r, 11)?,
            // Sources live in their own table and are filled in after the row is read.
            sources: Vec::new(),
        }),
        _ => None,
    };
    Ok(Candidate {
        item: InboxItem {
            id: col(r, 0)?,
            kind,
            from: col(r, 1)?,
            to: target(r, 2, 3)?,
            text: col(r, 4)?,
            reply_to: col(r, 5)?,
            created_at: col(r, 6)?,
            seen_before: state == DeliveryState::Delivered,
            context_hint: col(r, 10)?,
            grounding,
        },
        queued: state == DeliveryState::Queued,
        attempts: small(col(r, 8)?),
        lease: match (col(r, 12)?, col(r, 13)?) {
            (Some(session), Some(until)) => Some((session, until)),
            _ => None,
        },
    })
}

pub async fn lease(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    req: &LeaseRequest,
    now: Millis,
) -> OpResult<Vec<InboxItem>> {
    super::questions::expire_asked_by(c, wakes, req.peer, now).await?;
    let limit = big(req.limit);
    let queued_sql = format!(
        "{SELECT_ITEM} WHERE d.recipient_id = $1 AND d.state = 'queued' AND m.expires_at > $2
           AND (d.lease_until IS NULL OR d.lease_until <= $2 OR d.lease_session = $3)
         ORDER BY d.message_id LIMIT $4 FOR UPDATE OF d SKIP LOCKED"
    );
    let mut found: Vec<Candidate> = rows(c, &queued_sql, &[&req.peer, &now, &req.session, &limit])
        .await?
        .iter()
        .map(candidate)
        .collect::<OpResult<_>>()?;
    if req.include_seen {
        let seen_sql = format!(
            "{SELECT_ITEM} WHERE d.recipient_id = $1 AND d.state = 'delivered'
             ORDER BY d.message_id LIMIT $2"
        );
        for r in rows(c, &seen_sql, &[&req.peer, &limit]).await? {
            found.push(candidate(&r)?);
        }
        found.sort_by_key(|c| c.item.id);
        found.truncate(req.limit as usize);
    }
    let buried = take_leases(c, req, &found, now).await?;
    let mut out = Vec::with_capacity(found.len());
    for mut cand in found {
        if cand.queued && buried.contains(&cand.item.id) {
            continue;
        }
        if let Some(g) = &mut cand.item.grounding {
            g.sources = super::questions::sources(c, cand.item.id).await?;
        }
        out.push(cand.item);
    }
    if out.is_empty() {
        // Nothing to lease, or no such peer: only an empty answer costs the lookup.
        peers::require(c, req.peer).await?;
    }
    Ok(out)
}

/// Applies the rule of attempts ([`LeaseStep`]) to the queued candidates, one statement per
/// kind of step: new leases, renewals by the session already holding them, and burials of
/// those that used up their attempts. Returns the ids buried.
async fn take_leases(
    c: &Conn,
    req: &LeaseRequest,
    found: &[Candidate],
    now: Millis,
) -> OpResult<Vec<MessageId>> {
    let (mut buried, mut renewed, mut leased) = (Vec::new(), Vec::new(), Vec::new());
    for cand in found.iter().filter(|cand| cand.queued) {
        match LeaseStep::of(
            cand.attempts,
            cand.lease,
            req.session,
            req.max_attempts,
            now,
        ) {
            LeaseStep::Bury => buried.push(cand.item.id),
            LeaseStep::Renew => renewed.push(cand.item.id),
            LeaseStep::Take => leased.push(cand.item.id),
        }
    }
    let until = now.saturating_add(req.lease_ms);
    if !renewed.is_empty() {
        exec(
            c,
            "UPDATE deliveries SET lease_until = $3
             WHERE recipient_id = $1 AND message_id = ANY($2)",
            &[&req.peer, &renewed, &until],
        )
        .await?;
    }
    if !buried.is_empty() {
        exec(
            c,
            "UPDATE deliveries SET state = 'dead', lease_session = NULL, lease_until = NULL
             WHERE recipient_id = $1 AND message_id = ANY($2)",
            &[&req.peer, &buried],
        )
        .await?;
    }
    if !leased.is_empty() {
        exec(
            c,
            "UPDATE deliveries SET attempts = attempts + 1, lease_session = $3, lease_until = $4
             WHERE recipient_id = $1 AND message_id = ANY($2)",
            &[&req.peer, &leased, &req.session, &until],
        )
        .await?;
    }
    Ok(buried)
}

pub async fn mark_delivered(
    c: &Conn,
    session: SessionId,
    ids: &[MessageId],
    now: Millis,
) -> OpResult<u64> {
    exec(
        c,
        "UPDATE deliveries SET state = 'delivered', delivered_at = $3,
             lease_session = NULL, lease_until = NULL
         WHERE lease_session = $1 AND message_id = ANY($2) AND state = 'queued'",
        &[&session, &ids, &now],
    )
    .await
}

pub async fn ack(c: &Conn, peer: PeerId, ids: &[MessageId], now: Millis) -> OpResult<u64> {
    let missing: Vec<MessageId> = rows(
        c,
        "SELECT i FROM unnest($2::bigint[]) WITH ORDINALITY AS t(i, n)
         WHERE NOT EXISTS(SELECT 1 FROM deliveries WHERE recipient_id = $1 AND message_id = i)
         ORDER BY n",
        &[&peer, &ids],
    )
    .await?
    .iter()
    .map(|r| col(r, 0))
    .collect::<OpResult<_>>()?;
    if !missing.is_empty() {
        peers::require(c, peer).await?;
        return Err(Rejection::NotInInbox { ids: missing }.into());
    }
    mark_read(c, peer, ids, now).await
}

pub async fn sent(
    c: &Conn,
    sender: PeerId,
    query: SentQuery,
    now: Millis,
) -> OpResult<Vec<SentMessage>> {
    let ids: Vec<MessageId> = match query {
        SentQuery::One(id) => {
            let row = one(
                c,
                "SELECT EXISTS(SELECT 1 FROM messages WHERE id = $1 AND sender_id = $2)",
                &[&id, &sender],
            )
            .await?;
            if !col::<bool>(&row, 0)? {
                peers::require(c, sender).await?;
                return Err(Rejection::UnknownMessage { id }.into());
            }
            vec![id]
        }
        SentQuery::Recent(n) => rows(
            c,
            "SELECT id FROM messages WHERE sender_id = $1 ORDER BY id DESC LIMIT $2",
            &[&sender, &big(n)],
        )
        .await?
        .iter()
        .map(|r| col(r, 0))
        .collect::<OpResult<_>>()?,
    };
    if ids.is_empty() {
        peers::require(c, sender).await?;
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(load_sent(c, id, now).await?);
    }
    Ok(out)
}

/// The sender's view of one message. A queued copy past its TTL reads as expired even before
/// `gc` records it, so the sender never sees a hopeful state that cannot come true.
async fn load_sent(c: &Conn, id: MessageId, now: Millis) -> OpResult<SentMessage> {
    let r = one(
        c,
        "SELECT m.id, r.name, m.scope, m.body, m.reply_to, m.idempotency_key, m.created_at,
             m.expires_at
         FROM messages m LEFT JOIN peers r ON r.id = m.recipient_id WHERE m.id = $1",
        &[&id],
    )
    .await?;
    let mut sent = SentMessage {
        id: col(&r, 0)?,
        to: target(&r, 1, 2)?,
        text: col(&r, 3)?,
        reply_to: col(&r, 4)?,
        idempotency_key: col(&r, 5)?,
        created_at: col(&r, 6)?,
        expires_at: col(&r, 7)?,
        recipients: Vec::new(),
        duplicate: false,
    };
    let expired = sent.expires_at <= now;
    for r in rows(
        c,
        "SELECT p.name, d.state, d.attempts, d.delivered_at, d.read_at
         FROM deliveries d JOIN peers p ON p.id = d.recipient_id
         WHERE d.message_id = $1 ORDER BY p.name",
        &[&id],
    )
    .await?
    {
        let mut state: DeliveryState = parse(&r, 1)?;
        if expired && state == DeliveryState::Queued {
            state = DeliveryState::Expired;
        }
        sent.recipients.push(RecipientState {
            peer: col(&r, 0)?,
            state,
            attempts: small(col(&r, 2)?),
            delivered_at: col(&r, 3)?,
            read_at: col(&r, 4)?,
        });
    }
    Ok(sent)
}

const SELECT_LOG: &str = "SELECT m.id, s.name, r.name, m.scope, m.body, m.reply_to, m.created_at,
        m.kind
    FROM messages m
    JOIN peers s ON s.id = m.sender_id
    LEFT JOIN peers r ON r.id = m.recipient_id";

// Ids are handed out before commit, so under concurrent sends a message with a lower id can
// become visible just after one with a higher id, and a tail whose cursor already passed it
// skips it. Delivery never reads the log (inboxes are leased), so only an observer's view can
// miss an entry; filtering on settled transaction ids would close that gap but stall every
// tail behind any long write anywhere on the server.

fn log_row(r: &Row) -> OpResult<LogEntry> {
    Ok(LogEntry {
        id: col(r, 0)?,
        kind: parse(r, 7)?,
        from: col(r, 1)?,
        to: target(r, 2, 3)?,
        text: col(r, 4)?,
        reply_to: col(r, 5)?,
        created_at: col(r, 6)?,
    })
}

pub async fn log(c: &Conn, q: &LogQuery) -> OpResult<Vec<LogEntry>> {
    let limit = big(q.limit);
    let found = match q.peer {
        None => {
            let sql = format!("{SELECT_LOG} WHERE m.id > $1 ORDER BY m.id LIMIT $2");
            rows(c, &sql, &[&q.after, &limit]).await?
        }
        Some(peer) => {
            let sql = format!(
                "{SELECT_LOG} JOIN deliveries d ON d.message_id = m.id
                 WHERE d.recipient_id = $1 AND d.message_id > $2
                 ORDER BY d.message_id LIMIT $3"
            );
            rows(c, &sql, &[&peer, &q.after, &limit]).await?
        }
    };
    if let Some(peer) = q.peer
        && found.is_empty()
    {
        peers::require(c, peer).await?;
    }
    found.iter().map(log_row).collect()
}

pub async fn last_message_id(c: &Conn) -> OpResult<MessageId> {
    col(
        &one(c, "SELECT COALESCE(MAX(id), 0) FROM messages", &[]).await?,
        0,
    )
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
pub async fn notice(
    c: &Conn,
    wakes: &mut Vec<Wake>,
    n: &Notice<'_>,
    now: Millis,
) -> OpResult<MessageId> {
    let row = one(
        c,
        "INSERT INTO messages (sender_id, recipient_id, body, reply_to, created_at, expires_at,
             kind)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        &[
            &n.from,
            &n.to,
            &n.text,
            &n.reply_to,
            &now,
            &n.expires_at,
            &n.kind.as_str(),
        ],
    )
    .await?;
    let id: MessageId = col(&row, 0)?;
    deliver(c, wakes, id, &[n.to]).await?;
    Ok(id)
}
