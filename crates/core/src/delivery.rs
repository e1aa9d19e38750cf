//! Delivery: getting items of a peer's inbox in front of one of its sessions, by the contract
//! of SPEC 5. This module owns the protocol every front end follows, written once:
//!
//! - **what a take includes** ([`Take`]): an automatic path (push, piggyback, hook context)
//!   takes only items never handed to any session, so it never shows an item twice; an
//!   explicit pull (the `inbox` tool, resource and prompt, the CLI's `inbox`) takes every unread
//!   item, those handed over before marked `seen_before`, so nothing a dropped push missed is
//!   lost; a session whose client may have dropped pushes recovers those first;
//! - **how many** ([`AUTOMATIC`], [`LISTING`], [`PULL_DEFAULT`], [`PULL_MAX`], [`pull_size`]);
//! - **leasing**, with an optional wait for something to arrive;
//! - **the hand-over** once the front end's `show` step says what reached its reader, and the
//!   seen-before rule for it ([`hand_over`]);
//! - **the optional acknowledgement** of what was shown.
//!
//! Front ends supply only `show` — write channel notifications, put a block atop a tool
//! result, print hook output, print to a terminal — to [`deliver`]. Everything goes through
//! the [`Exchange`], so the same protocol runs against a local store and through a relay.
//!
//! The order is what makes delivery at-least-once without loss: the items are leased before
//! they are shown and recorded as handed over only after; a front end that dies in between
//! leaves its lease to lapse (or to end with its session), and the next session of the peer
//! gets the items again.

use std::collections::HashSet;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use switchboard_proto::{InboxItem, MessageId};

use crate::error::Error;
use crate::exchange::{Exchange, Run, Session};
use crate::op;

/// Most items one automatic delivery (push, piggyback, a hook) takes; the rest follow on the
/// next one. Small, because they land in an agent's context unasked.
pub const AUTOMATIC: u32 = 20;
/// Most items a pull that cannot say how many (the inbox resource, the inbox prompt) takes.
pub const LISTING: u32 = 100;
/// Items an explicit pull takes when its caller names no number (the `inbox` tool, the CLI).
pub const PULL_DEFAULT: u32 = 50;
/// Most items one explicit pull takes, whatever its caller asks for: one answer stays a size
/// a client (and a model's context) can take.
pub const PULL_MAX: u32 = 200;

/// The size of an explicit pull that asked for `requested` items (none: the default).
pub fn pull_size(requested: Option<u32>) -> u32 {
    requested.unwrap_or(PULL_DEFAULT).clamp(1, PULL_MAX)
}

/// Which items a take includes.
#[derive(Clone, Copy)]
pub enum Take<'a> {
    /// An automatic path: only items never handed to any session, at most [`AUTOMATIC`].
    Automatic,
    /// An automatic path of a session whose client may drop pushes unseen (Claude Code's
    /// channel): first the items handed over before that `reached` says never reached the
    /// reader, else what [`Take::Automatic`] takes.
    Recovering(&'a (dyn Fn(&InboxItem) -> bool + Sync)),
    /// An explicit pull of up to this many items: every unread item, including those handed
    /// over before (marked `seen_before`).
    Pull(u32),
}

impl std::fmt::Debug for Take<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Automatic => f.write_str("Automatic"),
            Self::Recovering(_) => f.write_str("Recovering"),
            Self::Pull(n) => f.debug_tuple("Pull").field(n).finish(),
        }
    }
}

/// One delivery: what to take, how long to wait for it, and whether to acknowledge it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub take: Take<'a>,
    /// How long to wait for an item when there is none; zero looks once.
    pub wait: Duration,
    /// Acknowledge what was shown (→ `read`) after the hand-over: for a reader who has seen it
    /// for certain, like a human at a terminal. Agents ack on their own, when they handled it.
    pub ack: bool,
}

impl<'a> Request<'a> {
    /// An automatic path's take ([`Take::Automatic`]).
    pub fn automatic() -> Self {
        Self::of(Take::Automatic)
    }

    /// An automatic take that first recovers dropped pushes ([`Take::Recovering`]).
    pub fn recovering(reached: &'a (dyn Fn(&InboxItem) -> bool + Sync)) -> Self {
        Self::of(Take::Recovering(reached))
    }

    /// An explicit pull of up to `requested` items, bounded by [`pull_size`].
    pub fn pull(requested: Option<u32>) -> Self {
        Self::of(Take::Pull(pull_size(requested)))
    }

    /// An explicit pull that cannot say how many: up to [`LISTING`] items.
    pub fn listing() -> Self {
        Self::of(Take::Pull(LISTING))
    }

    /// Waits up to `wait` for an item when there is none.
    #[must_use]
    pub fn waiting(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Acknowledges what was shown once it is handed over.
    #[must_use]
    pub fn acking(mut self) -> Self {
        self.ack = true;
        self
    }

    fn of(take: Take<'a>) -> Self {
        Self {
            take,
            wait: Duration::ZERO,
            ack: false,
        }
    }
}

/// What one delivery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// The items `show` said reached the reader, oldest first.
    pub items: Vec<InboxItem>,
    /// How many of them changed to `delivered`.
    pub handed_over: u64,
    /// How many of them changed to `read`.
    pub acked: u64,
}

/// Where a delivery stopped. Whatever the step, nothing is lost: an item not recorded as
/// handed over stays queued and comes again once its lease ends.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError<E> {
    /// The inbox could not be leased: nothing was shown.
    #[error(transparent)]
    Take(Error),
    /// The front end could not show the items: nothing was recorded.
    #[error(transparent)]
    Show(E),
    /// The items reached the reader but the hand-over was not recorded; they are returned so a
    /// front end that shows after the fact (a piggyback) can still show them. Still leased to
    /// this session and queued, they may be shown again: at least once, never lost.
    #[error("{source}")]
    HandOver {
        shown: Vec<InboxItem>,
        #[source]
        source: Error,
    },
    /// Shown and handed over, but not acknowledged: they stay unread and show again on the
    /// next pull, marked `seen_before`.
    #[error(transparent)]
    Ack(Error),
}

impl<E> DeliveryError<E> {
    /// The failure as the front end's own error, which takes the exchange's errors and its
    /// show step's.
    pub fn into_error<T>(self) -> T
    where
        T: From<Error> + From<E>,
    {
        match self {
            Self::Show(e) => T::from(e),
            Self::Take(e) | Self::HandOver { source: e, .. } | Self::Ack(e) => T::from(e),
        }
    }
}

impl DeliveryError<Infallible> {
    /// The exchange's failure, for a front end whose show step cannot fail.
    pub fn into_exchange(self) -> Error {
        match self {
            Self::Show(never) => match never {},
            Self::Take(e) | Self::HandOver { source: e, .. } | Self::Ack(e) => e,
        }
    }
}

/// Runs one delivery to `session`: leases what `request` takes (waiting if asked), gives it to
/// `show` — even when empty, so a pull can say there was nothing — then records the hand-over of
/// what `show` returned (the items that actually reached the reader; items it was not given
/// are ignored) and, if asked, acknowledges them.
///
/// If `show` fails nothing is recorded: the items stay leased until the lease lapses or the
/// session ends, and are then taken again.
pub async fn deliver<S, Fut, E>(
    exchange: &dyn Exchange,
    session: &Session,
    request: &Request<'_>,
    show: S,
) -> Result<Delivered, DeliveryError<E>>
where
    S: FnOnce(Vec<InboxItem>) -> Fut,
    Fut: Future<Output = Result<Vec<InboxItem>, E>>,
{
    let taken = lease(exchange, session, request)
        .await
        .map_err(DeliveryError::Take)?;
    let offered: HashSet<MessageId> = taken.iter().map(|i| i.id).collect();
    let mut items = show(taken).await.map_err(DeliveryError::Show)?;
    // Only what this take leased can be handed over or acknowledged on its behalf.
    items.retain(|i| offered.contains(&i.id));
    let handed_over = match hand_over(exchange, session, &items).await {
        Ok(n) => n,
        Err(source) => {
            return Err(DeliveryError::HandOver {
                shown: items,
                source,
            });
        }
    };
    let acked = if request.ack && !items.is_empty() {
        let ids: Vec<MessageId> = items.iter().map(|i| i.id).collect();
        exchange
            .ack(session.peer.id, &ids)
            .await
            .map_err(DeliveryError::Ack)?
    } else {
        0
    };
    Ok(Delivered {
        items,
        handed_over,
        acked,
    })
}

/// Leases what `request` takes to `session`, waiting up to `request.wait` for something.
pub async fn lease(
    exchange: &dyn Exchange,
    session: &Session,
    request: &Request<'_>,
) -> Result<Vec<InboxItem>, Error> {
    let (limit, include_seen) = match request.take {
        Take::Automatic => (AUTOMATIC, false),
        Take::Pull(limit) => (limit, true),
        Take::Recovering(reached) => {
            // Listing the seen-before items also leases the fresh ones among them; those are
            // kept, so nothing is leased and then left out.
            let all = op::Lease {
                session: session.clone(),
                limit: AUTOMATIC,
                include_seen: true,
                wait: Duration::ZERO,
            };
            let missed: Vec<InboxItem> = exchange
                .run(all)
                .await?
                .into_iter()
                .filter(|i| !i.seen_before || !reached(i))
                .collect();
            if !missed.is_empty() {
                return Ok(missed);
            }
            (AUTOMATIC, false)
        }
    };
    exchange
        .run(op::Lease {
            session: session.clone(),
            limit,
            include_seen,
            wait: request.wait,
        })
        .await
}

/// Records that `shown` reached the reader of `session`. Returns how many items changed to
/// `delivered`.
///
/// The seen-before rule: only items *not* seen before are handed over. A seen-before item is
/// `delivered` already and an explicit pull lists it without leasing it (a lease holds queued
/// items only), so this session has nothing of it to hand over — the store's `mark_delivered`
/// changes only items leased to the session and still queued, and would leave it alone. Marking
/// it as well (what the CLI used to do) therefore changed nothing, but claimed a hand-over that
/// did not happen and sent needless ids across a relay. A seen-before item a reader has now
/// seen for certain becomes `read` by acknowledgement, not by a second hand-over.
pub async fn hand_over(
    exchange: &dyn Exchange,
    session: &Session,
    shown: &[InboxItem],
) -> Result<u64, Error> {
    let ids: Vec<MessageId> = shown
        .iter()
        .filter(|i| !i.seen_before)
        .map(|i| i.id)
        .collect();
    if ids.is_empty() {
        return Ok(0);
    }
    exchange.mark_delivered(session, &ids).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pull_takes_what_it_asks_for_within_bounds() {
        assert_eq!(pull_size(None), PULL_DEFAULT);
        assert_eq!(pull_size(Some(7)), 7);
        assert_eq!(
            pull_size(Some(0)),
            1,
            "a pull that takes nothing hides waiting mail"
        );
        assert_eq!(pull_size(Some(10_000)), PULL_MAX);
    }

    #[test]
    fn requests_say_what_they_take() {
        assert!(matches!(Request::automatic().take, Take::Automatic));
        assert!(matches!(Request::listing().take, Take::Pull(LISTING)));
        let pull = Request::pull(Some(3))
            .waiting(Duration::from_secs(1))
            .acking();
        assert!(matches!(pull.take, Take::Pull(3)));
        assert_eq!(pull.wait, Duration::from_secs(1));
        assert!(pull.ack);
        assert!(
            !Request::automatic().ack,
            "only a reader who surely saw it acks"
        );
    }
}
