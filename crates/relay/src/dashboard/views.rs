//! What the dashboard shows, read through the caller's [`Guard`]: the same checks as `/v1`, so
//! the page can show a token nothing its API calls could not already read. Each reader returns
//! rows ready for a template (times formatted, absent fields as empty strings); nothing here
//! knows HTML. (The jobs' rows are read in [`super::jobs`], with their actions.)

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use switchboard_core::{Error, Exchange, LogQuery, PeerId, Run, SentQuery, op};
use switchboard_proto::{LogEntry, MessageId, Millis, RecipientState, SentMessage};

use crate::guard::Guard;

/// How many messages and jobs a view shows: the newest, never the whole history.
pub(crate) const NEWEST: u32 = 50;

/// The widest stretch of the log read to find a peer token's newest mail; older mail is not
/// shown. Bounds the work of one refresh however long the room's history is.
const WIDEST: i64 = 12_800;

pub(crate) struct PeerRow {
    pub name: String,
    pub kind: String,
    pub online: bool,
    pub last_seen: String,
    pub last_seen_ago: String,
    pub client: String,
    pub host: String,
    pub cwd: String,
    pub git_root: String,
    pub git_branch: String,
    pub summary: String,
    /// The paths it holds, one line per reservation.
    pub reserved: Vec<ReservedRow>,
}

pub(crate) struct ReservedRow {
    pub id: switchboard_proto::ReservationId,
    pub paths: String,
    pub exclusive: bool,
    pub reason: String,
    pub until: String,
    pub until_ago: String,
}

pub(crate) struct MessageRow {
    pub id: MessageId,
    pub kind: String,
    pub from: String,
    pub to: String,
    pub text: String,
    pub at: String,
    pub ago: String,
    /// Each recipient's copy, where the caller may see it (empty otherwise).
    pub copies: Vec<CopyRow>,
}

pub(crate) struct CopyRow {
    pub peer: String,
    pub state: String,
    pub attempts: u32,
    pub when: String,
}

/// Every peer of the room, online ones first, then by name.
pub(crate) async fn peers(guard: &Guard, now: Millis) -> Result<Vec<PeerRow>, Error> {
    let mut peers = guard.peers().await?;
    peers.sort_by(|a, b| b.online.cmp(&a.online).then_with(|| a.name.cmp(&b.name)));
    let held = guard.run(op::Reservations { repo: None }).await?;
    Ok(peers
        .into_iter()
        .map(|p| {
            let client = match (p.info.client_kind, p.info.client_version) {
                (Some(kind), Some(version)) => format!("{kind} {version}"),
                (Some(kind), None) => kind,
                (None, Some(version)) => version,
                (None, None) => String::new(),
            };
            let reserved = held
                .iter()
                .filter(|r| r.holder == p.name)
                .map(|r| ReservedRow {
                    id: r.id,
                    paths: r
                        .globs
                        .iter()
                        .map(|g| g.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    exclusive: r.mode == switchboard_proto::ReservationMode::Exclusive,
                    reason: r.reason.clone(),
                    until: time(r.expires_at),
                    until_ago: format!("in {}", span(now, r.expires_at)),
                })
                .collect();
            PeerRow {
                name: p.name,
                kind: p.kind.to_string(),
                online: p.online,
                last_seen: time(p.last_seen_at),
                last_seen_ago: ago(p.last_seen_at, now),
                client,
                host: p.info.host.unwrap_or_default(),
                cwd: p.info.cwd.unwrap_or_default(),
                git_root: p.info.git_root.unwrap_or_default(),
                git_branch: p.info.git_branch.unwrap_or_default(),
                summary: p.summary,
                reserved,
            }
        })
        .collect())
}

/// The room's newest messages, newest first, each with the state of every copy (a room token
/// may read any sender's `sent`).
pub(crate) async fn room_log(guard: &Guard, now: Millis) -> Result<Vec<MessageRow>, Error> {
    let entries = newest(guard).await?;
    let ids: HashMap<String, PeerId> = guard
        .peers()
        .await?
        .into_iter()
        .map(|p| (p.name, p.id))
        .collect();
    let mut rows = Vec::with_capacity(entries.len());
    for entry in entries {
        let copies = match ids.get(&entry.from) {
            Some(sender) => copies_of(guard, *sender, entry.id).await,
            None => Vec::new(),
        };
        rows.push(message_row(entry, copies, now));
    }
    Ok(rows)
}

/// A peer token's inbox: the newest messages addressed to it (the guard narrows the log to
/// them). Empty while the peer has not joined the room.
pub(crate) async fn inbox(guard: &Guard, now: Millis) -> Result<Vec<MessageRow>, Error> {
    if guard.me().await?.is_none() {
        return Ok(Vec::new());
    }
    let entries = newest(guard).await?;
    Ok(entries
        .into_iter()
        .map(|e| message_row(e, Vec::new(), now))
        .collect())
}

/// What a peer token's peer sent, newest first, with each copy's state.
pub(crate) async fn sent(guard: &Guard, now: Millis) -> Result<Vec<MessageRow>, Error> {
    let Some(me) = guard.me().await? else {
        return Ok(Vec::new());
    };
    let sent = guard.sent(me, SentQuery::Recent(NEWEST)).await?;
    let from = guard.caller().grant.peer().unwrap_or_default().to_owned();
    Ok(sent.into_iter().map(|s| sent_row(&from, s, now)).collect())
}

/// The newest [`NEWEST`] entries of the log the guard lets the caller read, newest first.
/// The log reads forward from a cursor, so this reads the last stretch of ids, widening it
/// (for a peer token, whose entries are sparse) until it has enough or reaches [`WIDEST`].
async fn newest(guard: &Guard) -> Result<Vec<LogEntry>, Error> {
    let last = guard.last_message_id().await?.0;
    let mut width = i64::from(NEWEST);
    loop {
        let after = (last - width).max(0);
        let limit = u32::try_from(width)
            .unwrap_or(u32::MAX)
            .saturating_add(NEWEST);
        let query = LogQuery {
            after: MessageId(after),
            peer: None,
            limit,
        };
        let mut entries = guard.log(query).await?;
        if entries.len() >= NEWEST as usize || after == 0 || width >= WIDEST {
            entries.reverse();
            entries.truncate(NEWEST as usize);
            return Ok(entries);
        }
        width *= 4;
    }
}

/// The copies of one message; none when the caller may not see them or they are gone.
async fn copies_of(guard: &Guard, sender: PeerId, id: MessageId) -> Vec<CopyRow> {
    match guard.sent(sender, SentQuery::One(id)).await {
        Ok(mut sent) => sent
            .pop()
            .map(|s| s.recipients.into_iter().map(copy_row).collect())
            .unwrap_or_default(),
        Err(e) => {
            // Deleted by retention between the two reads, or a notice: shown without states.
            tracing::debug!("no copy states for message {id}: {e}");
            Vec::new()
        }
    }
}

fn message_row(e: LogEntry, copies: Vec<CopyRow>, now: Millis) -> MessageRow {
    MessageRow {
        id: e.id,
        kind: e.kind.to_string(),
        from: e.from,
        to: e.to.to_string(),
        text: e.text,
        at: time(e.created_at),
        ago: ago(e.created_at, now),
        copies,
    }
}

fn sent_row(from: &str, s: SentMessage, now: Millis) -> MessageRow {
    MessageRow {
        id: s.id,
        kind: "message".into(),
        from: from.to_owned(),
        to: s.to.to_string(),
        text: s.text,
        at: time(s.created_at),
        ago: ago(s.created_at, now),
        copies: s.recipients.into_iter().map(copy_row).collect(),
    }
}

fn copy_row(r: RecipientState) -> CopyRow {
    let when = r.read_at.or(r.delivered_at).map(time).unwrap_or_default();
    CopyRow {
        peer: r.peer,
        state: r.state.to_string(),
        attempts: r.attempts,
        when,
    }
}

/// A stored instant as UTC, to the second (`2025-01-02T03:04:05Z`).
pub(crate) fn time(ms: Millis) -> String {
    let Ok(ms) = u64::try_from(ms) else {
        return String::new();
    };
    let at = UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// How long before `now`, roughly (`4s ago`, `3m ago`, `2h ago`, `5d ago`).
pub(crate) fn ago(then: Millis, now: Millis) -> String {
    format!("{} ago", span(then, now))
}

/// How long from `from` to `to`, roughly, in its largest whole unit (`4s`, `3m`, `2h`, `5d`).
pub(crate) fn span(from: Millis, to: Millis) -> String {
    let secs = (to - from).max(0) / 1000;
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::{ago, time};

    #[test]
    fn times_read_as_utc_and_ages_round_down() {
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
        assert_eq!(time(-1), "");
        assert_eq!(ago(0, 59_999), "59s ago");
        assert_eq!(ago(0, 3_600_000), "1h ago");
        assert_eq!(ago(10, 0), "0s ago");
    }
}
