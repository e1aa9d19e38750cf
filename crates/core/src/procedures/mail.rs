//! Messages and delivery records: send, lease, hand-over, acknowledgement, and the views of
//! sender, recipient and observer.

use switchboard_proto::{
    DeliveryState, Grounding, InboxItem, ItemKind, LogEntry, MessageId, Millis, Scope, SentMessage,
    Target,
};

use super::{peers, questions};
use crate::error::Rejection;
use crate::rules::{BroadcastPlace, LeaseStep, fresh_sent};
use crate::seam::{
    AdmitTo, Admitting, Executor, Handover, LeaseCandidate, Leasing, MessageRow, Party, Step,
};
use crate::store::{
    Admission, LeaseRequest, LogQuery, NewMessage, NewTarget, PeerId, SentQuery, SessionId,
};
use crate::wake::Wake;

/// Sends a message (see [`submit`]).
pub async fn send<X: Executor>(
    x: &mut X,
    msg: NewMessage,
    adm: Admission,
    now: Millis,
) -> Step<SentMessage, X> {
    submit(x, &msg, adm, now).await
}

/// Stores a message with a queued delivery per recipient and wakes them. The checks run in
/// this order, and the first that fails decides the refusal:
///
/// 1. idempotency: a key the sender already used returns that message, checking nothing else
///    (a retry must not be refused for limits its first try passed);
/// 2. the parties: the recipients are resolved (a name to its peer, a broadcast to the live
///    peers of the sender's place), then the sender and recipients must exist, the sender
///    named first. They are locked, in id order, so the limits below count every send
///    committed before this one;
/// 3. the sender's rate;
/// 4. each recipient's pending cap, in id order;
/// 5. `reply_to`: a message the sender got or sent, which the reply marks read.
pub(crate) async fn submit<X: Executor>(
    x: &mut X,
    msg: &NewMessage,
    adm: Admission,
    now: Millis,
) -> Step<SentMessage, X> {
    let mut key = msg.idempotency_key.as_deref();
    let broadcast: Vec<PeerId>;
    let to = match &msg.target {
        NewTarget::Peer(p) => AdmitTo::Peers(std::slice::from_ref(p)),
        NewTarget::Name(name) => AdmitTo::Name(name.as_str()),
        NewTarget::Broadcast(scope) => {
            // A broadcast's recipients are found (and dead sessions ended) only once its key
            // is known to be new.
            if let Some(k) = key.take()
                && let Some(id) = x.message_by_key(msg.sender, k).await?
            {
                return duplicate(x, id, now).await;
            }
            broadcast = broadcast_recipients(x, msg.sender, *scope, now).await?;
            AdmitTo::Peers(&broadcast)
        }
    };
    let admitted = x
        .admit(Admitting {
            sender: msg.sender,
            key,
            to,
            rate_nth: (adm.rate_limit > 0).then_some(adm.rate_limit),
        })
        .await?;
    if let Some(id) = admitted.duplicate {
        return duplicate(x, id, now).await;
    }
    let named;
    let ids: &[PeerId] = match (to, admitted.named) {
        (AdmitTo::Peers(ids), _) => ids,
        (AdmitTo::Name(_), Some(id)) => {
            named = id;
            std::slice::from_ref(&named)
        }
        (AdmitTo::Name(name), None) => {
            return Err(unknown_peer(x, name, msg.sender, now).await?.into());
        }
    };
    let recipients = parties(msg.sender, ids, &admitted.parties)?;
    check_rate(admitted.nth_newest, adm, now)?;
    for party in &recipients {
        check_pending(party, adm.pending_cap)?;
    }
    if let Some(parent) = msg.reply_to {
        answer(x, msg.sender, parent, now).await?;
    }
    let (recipient, scope, to) = match &msg.target {
        NewTarget::Peer(_) | NewTarget::Name(_) => {
            (Some(ids[0]), None, Target::Peer(recipients[0].name.clone()))
        }
        NewTarget::Broadcast(s) => (None, Some(s.as_str()), Target::Broadcast(*s)),
    };
    let id = x
        .insert_message(MessageRow {
            kind: msg.kind,
            sender: msg.sender,
            recipient,
            scope,
            body: &msg.text,
            reply_to: msg.reply_to,
            idempotency_key: msg.idempotency_key.as_deref(),
            created_at: now,
            expires_at: msg.expires_at,
            counted: true,
            copies_to: ids,
        })
        .await?;
    for r in ids {
        x.wake(Wake::Inbox(*r));
    }
    let names = recipients.into_iter().map(|p| p.name).collect();
    Ok(fresh_sent(id, to, msg, now, names))
}

/// Who receives a broadcast: every live peer in its place (after ending the sessions of dead
/// processes, which no longer count as live).
async fn broadcast_recipients<X: Executor>(
    x: &mut X,
    sender: PeerId,
    scope: Scope,
    now: Millis,
) -> Step<Vec<PeerId>, X> {
    peers::reap(x, now).await?;
    let from = peers::by_id(x, sender).await?;
    let place = BroadcastPlace::of(scope, &from.info)?;
    x.broadcast_recipients(sender, &place).await
}

/// The message the sender already sent under a send's key, marked as the duplicate it is.
async fn duplicate<X: Executor>(x: &mut X, id: MessageId, now: Millis) -> Step<SentMessage, X> {
    let mut sent = load_sent(x, id, now).await?;
    sent.duplicate = true;
    Ok(sent)
}

/// The refusal of a name nobody has, with the names the sender could have meant.
async fn unknown_peer<X: Executor>(
    x: &mut X,
    name: &str,
    sender: PeerId,
    now: Millis,
) -> Step<Rejection, X> {
    let known = peers::list(x, now)
        .await?
        .into_iter()
        .filter(|p| p.id != sender)
        .map(|p| p.name)
        .collect();
    Ok(Rejection::UnknownPeer {
        name: name.to_owned(),
        known,
    })
}

/// The recipients as parties, in the order given, from the parties the admission locked. Both
/// sender and recipients must exist: ids come from callers (a question's addressee is resolved
/// by name before its transaction), and may have been removed by `gc` since.
fn parties(
    sender: PeerId,
    recipients: &[PeerId],
    found: &[Party],
) -> Result<Vec<Party>, Rejection> {
    let party = |id: PeerId| found.iter().find(|p| p.id == id).cloned();
    if party(sender).is_none() {
        return Err(Rejection::UnknownPeerId { id: sender });
    }
    recipients
        .iter()
        .map(|&id| party(id).ok_or(Rejection::UnknownPeerId { id }))
        .collect()
}

/// At most `rate_limit` counted messages in any `rate_window`: refused while the sender's
/// `rate_limit`th newest message (`nth`, read by the admission after the lock: one indexed
/// lookup, however many messages the window holds) is still inside the window, until it ages
/// out.
fn check_rate(nth: Option<Millis>, adm: Admission, now: Millis) -> Result<(), Rejection> {
    let nth = match adm.rate_limit {
        // A limit of 0 stops every send; the window is all there is to wait for.
        0 => Some(now),
        _ => nth,
    };
    let Some(nth) = nth else {
        return Ok(());
    };
    let frees_at = nth.saturating_add(adm.rate_window_ms);
    if frees_at <= now {
        return Ok(());
    }
    Err(Rejection::RateLimited {
        limit: adm.rate_limit,
        window_secs: u64::try_from(adm.rate_window_ms / 1000).unwrap_or(0),
        retry_after_ms: frees_at - now,
    })
}

/// The recipient's queued copies, read from the counter on its locked row.
fn check_pending(party: &Party, cap: u32) -> Result<(), Rejection> {
    if party.queued < cap {
        return Ok(());
    }
    Err(Rejection::InboxFull {
        peer: party.name.clone(),
        cap,
    })
}

/// A reply counts as reading what it answers; the parent must be a message the replier got or
/// sent.
async fn answer<X: Executor>(
    x: &mut X,
    replier: PeerId,
    parent: MessageId,
    now: Millis,
) -> Step<(), X> {
    if !x.knows_message(replier, parent).await? {
        return Err(Rejection::UnknownReplyTo { id: parent }.into());
    }
    x.mark_read(replier, &[parent], now).await?;
    Ok(())
}

/// Hands the peer's session what is in its inbox: queued items it may lease (each under the
/// rule of attempts, [`LeaseStep`]), and with `include_seen` those handed over before and not
/// acknowledged. The peer's own questions that expired unanswered become notices first, so
/// this lease carries them.
pub async fn lease<X: Executor>(
    x: &mut X,
    req: LeaseRequest,
    now: Millis,
) -> Step<Vec<InboxItem>, X> {
    questions::expire_asked_by(x, req.peer, now).await?;
    let lease = Leasing {
        peer: req.peer,
        session: req.session,
        now,
        until: now.saturating_add(req.lease_ms),
        limit: req.limit,
    };
    let mut found = x.lease_candidates(&lease).await?;
    if req.include_seen {
        found.extend(x.seen_deliveries(req.peer, req.limit).await?);
        found.sort_by_key(|c| c.item.id);
        found.truncate(req.limit as usize);
    }
    let buried = take_leases(x, &req, &lease, &found).await?;
    let mut out = Vec::with_capacity(found.len());
    for c in found {
        if c.state == DeliveryState::Queued && buried.contains(&c.item.id) {
            continue;
        }
        out.push(inbox_item(x, c).await?);
    }
    if out.is_empty() {
        // Nothing to lease, or no such peer: only an empty answer costs the lookup.
        peers::require(x, req.peer).await?;
    }
    Ok(out)
}

/// Applies the rule of attempts to the queued candidates, one statement per kind of step:
/// renewals by the session already holding them, burials of those that used up their
/// attempts, and new leases. Returns the ids buried.
async fn take_leases<X: Executor>(
    x: &mut X,
    req: &LeaseRequest,
    lease: &Leasing,
    found: &[LeaseCandidate],
) -> Step<Vec<MessageId>, X> {
    let (mut buried, mut renewed, mut leased) = (Vec::new(), Vec::new(), Vec::new());
    for c in found.iter().filter(|c| c.state == DeliveryState::Queued) {
        match LeaseStep::of(
            c.attempts,
            c.lease,
            req.session,
            req.max_attempts,
            lease.now,
        ) {
            LeaseStep::Bury => buried.push(c.item.id),
            LeaseStep::Renew => renewed.push(c.item.id),
            LeaseStep::Take => leased.push(c.item.id),
        }
    }
    if !renewed.is_empty() {
        x.renew_leases(lease, &renewed).await?;
    }
    if !buried.is_empty() {
        x.bury_deliveries(req.peer, &buried).await?;
        x.wake(Wake::Copies);
    }
    if !leased.is_empty() {
        x.take_leases(lease, &leased).await?;
    }
    Ok(buried)
}

/// The item as its recipient sees it: whether it was handed over before, and an answer's
/// basis with its sources.
async fn inbox_item<X: Executor>(x: &mut X, c: LeaseCandidate) -> Step<InboxItem, X> {
    let mut item = c.item;
    item.seen_before = c.state == DeliveryState::Delivered;
    item.grounding = match c.basis {
        Some(basis) if item.kind == ItemKind::Answer => Some(Grounding {
            basis,
            sources: x.answer_sources(item.id).await?,
        }),
        _ => None,
    };
    Ok(item)
}

pub async fn mark_delivered<X: Executor>(
    x: &mut X,
    peer: PeerId,
    session: SessionId,
    ids: Vec<MessageId>,
    now: Millis,
) -> Step<u64, X> {
    let ids = &ids;
    let handed = x
        .mark_delivered(Handover {
            peer,
            session,
            ids,
            now,
        })
        .await?;
    copies_changed(x, handed);
    Ok(handed)
}

/// Tells those who show copy states (the dashboard) that `n` copies changed.
pub(super) fn copies_changed<X: Executor>(x: &mut X, n: u64) {
    if n > 0 {
        x.wake(Wake::Copies);
    }
}

/// Marks the messages read; every one must be in the peer's inbox, or nothing changes.
pub async fn ack<X: Executor>(
    x: &mut X,
    peer: PeerId,
    ids: Vec<MessageId>,
    now: Millis,
) -> Step<u64, X> {
    let missing = x.missing_deliveries(peer, &ids).await?;
    if !missing.is_empty() {
        peers::require(x, peer).await?;
        return Err(Rejection::NotInInbox { ids: missing }.into());
    }
    let read = x.mark_read(peer, &ids, now).await?;
    copies_changed(x, read);
    Ok(read)
}

pub async fn sent<X: Executor>(
    x: &mut X,
    sender: PeerId,
    query: SentQuery,
    now: Millis,
) -> Step<Vec<SentMessage>, X> {
    let ids = match query {
        SentQuery::One(id) => {
            if !x.sent_by(id, sender).await? {
                peers::require(x, sender).await?;
                return Err(Rejection::UnknownMessage { id }.into());
            }
            vec![id]
        }
        SentQuery::Recent(n) => x.recent_sent(sender, n).await?,
    };
    if ids.is_empty() {
        peers::require(x, sender).await?;
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(load_sent(x, id, now).await?);
    }
    Ok(out)
}

/// The sender's view of one message. A queued copy past its TTL reads as expired even before
/// `gc` records it, so the sender never sees a hopeful state that cannot come true.
async fn load_sent<X: Executor>(x: &mut X, id: MessageId, now: Millis) -> Step<SentMessage, X> {
    let mut sent = x.sent_message(id).await?;
    let expired = sent.expires_at <= now;
    sent.recipients = x.recipient_states(id).await?;
    for r in &mut sent.recipients {
        if expired && r.state == DeliveryState::Queued {
            r.state = DeliveryState::Expired;
        }
    }
    Ok(sent)
}

pub async fn log<X: Executor>(x: &mut X, q: LogQuery) -> Step<Vec<LogEntry>, X> {
    let Some(peer) = q.peer else {
        return x.log(q.after, q.limit).await;
    };
    let entries = x.log_to(peer, q.after, q.limit).await?;
    if entries.is_empty() {
        peers::require(x, peer).await?;
    }
    Ok(entries)
}

pub async fn last_message_id<X: Executor>(x: &mut X) -> Step<MessageId, X> {
    x.last_message_id().await
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
pub async fn notice<X: Executor>(x: &mut X, n: &Notice<'_>, now: Millis) -> Step<MessageId, X> {
    let id = x
        .insert_message(MessageRow {
            kind: n.kind,
            sender: n.from,
            recipient: Some(n.to),
            scope: None,
            body: n.text,
            reply_to: n.reply_to,
            idempotency_key: None,
            created_at: now,
            expires_at: n.expires_at,
            counted: false,
            copies_to: &[n.to],
        })
        .await?;
    x.wake(Wake::Inbox(n.to));
    Ok(id)
}
