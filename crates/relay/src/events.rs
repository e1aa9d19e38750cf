//! `GET /v1/events`: the caller's part of the room log as server-sent events. Each message is
//! an event whose id is its log position, so a client that reconnects with `Last-Event-ID`
//! (or `?after=`) gets exactly what it missed — no gap, no repeat. A `jobs` event (no id)
//! says jobs changed. With `?session=`, the stream also keeps that session live. The dashboard's
//! `/dashboard/events` is this same stream, opened by cookie, with a `room` event (no id) for
//! the other changes (peers coming and going) and a `copies` event when copies of messages
//! were handed over, read, buried or expired, so its page knows to look again.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use switchboard_core::{Error, Exchange, LogQuery, SessionId, Wake};
use switchboard_proto::MessageId;

use crate::app::{App, KEEP_ALIVE, error_response};
use crate::auth::Caller;
use crate::guard::Guard;
use crate::metrics::Metrics;
use crate::sessions::Attachment;

const BATCH: u32 = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    after: Option<MessageId>,
    session: Option<SessionId>,
}

pub async fn stream(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    serve(&app, &caller, q, &headers, Changes::Quiet).await
}

/// Whether a stream also says when something changed that is no log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Changes {
    /// Log entries and `jobs` only (`/v1/events`, as its clients expect).
    Quiet,
    /// Also a `room` event (no id) on every other wake, such as a peer coming or going: the
    /// dashboard re-reads its views on any event.
    Told,
}

/// The stream for `caller`, however it signed in (a bearer token on `/v1/events`, the
/// dashboard's cookie on `/dashboard/events`).
pub(crate) async fn serve(
    app: &App,
    caller: &Caller,
    q: EventsQuery,
    headers: &HeaderMap,
    changes: Changes,
) -> Response {
    match open(app, caller, q, headers, changes).await {
        Ok(state) => Sse::new(events(state))
            .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
            .into_response(),
        Err(e) => error_response(&e),
    }
}

struct Feed {
    guard: Guard,
    query: LogQuery,
    wakes: broadcast::Receiver<Wake>,
    pending: VecDeque<Event>,
    changes: Changes,
    shutdown: CancellationToken,
    _attachment: Option<Attachment>,
    _gauge: Open,
}

/// Counts the stream in the gauge while it is open.
struct Open(Metrics);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.streams.dec();
    }
}

async fn open(
    app: &App,
    caller: &Caller,
    q: EventsQuery,
    headers: &HeaderMap,
    changes: Changes,
) -> Result<Feed, Error> {
    let guard = app.guard(caller).await?;
    let room = caller.grant.room().unwrap_or_default();
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim()
                .parse::<MessageId>()
                .map_err(|_| Error::Invalid(format!("Last-Event-ID '{v}' is not an event id")))
        })
        .transpose()?;
    let (attachment, session_peer) = match q.session {
        Some(id) => {
            let (held, session) = app
                .sessions
                .attach(room, id, &caller.token_id)
                .ok_or(Error::UnknownSession)?;
            (Some(held), Some(session.peer.id))
        }
        None => (None, None),
    };
    let wakes = guard.subscribe();
    let after = match resume.or(q.after) {
        Some(after) => after,
        None => guard.last_message_id().await?,
    };
    let peer = match guard.me().await? {
        Some(me) => Some(me),
        None => session_peer,
    };
    app.metrics.streams.inc();
    Ok(Feed {
        guard,
        query: LogQuery {
            after,
            peer,
            limit: BATCH,
        },
        wakes,
        pending: VecDeque::new(),
        changes,
        // Ends with the relay, and when the caller's token is revoked.
        shutdown: app.streams.open(&caller.token_id, &app.shutdown),
        _attachment: attachment,
        _gauge: Open(app.metrics.clone()),
    })
}

fn events(feed: Feed) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(feed, |mut feed| async move {
        loop {
            if let Some(event) = feed.pending.pop_front() {
                return Some((Ok(event), feed));
            }
            match feed.guard.log(feed.query).await {
                Ok(entries) if !entries.is_empty() => {
                    for entry in entries {
                        feed.query.after = entry.id;
                        feed.guard.pushed(entry.created_at);
                        let data = serde_json::to_string(&entry).unwrap_or_default();
                        let event = Event::default()
                            .id(entry.id.to_string())
                            .event("message")
                            .data(data);
                        feed.pending.push_back(event);
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("event stream ends: {e}");
                    return None;
                }
            }
            let told = match next_wake(&mut feed).await {
                Some(Look::Jobs) => "jobs",
                Some(Look::Log) if feed.changes == Changes::Told => "room",
                Some(Look::Copies) => "copies",
                Some(Look::Log) => continue,
                None => return None,
            };
            feed.pending
                .push_back(Event::default().event(told).data("{}"));
        }
    })
}

/// What a wake asks of the stream.
enum Look {
    /// Jobs changed: say so (`jobs`).
    Jobs,
    /// The log may have grown: read it again (and, for the dashboard, say `room`).
    Log,
    /// Copies changed state: only the dashboard hears of it (`copies`), and the log is not
    /// read again for it.
    Copies,
}

/// Waits for a wake worth a look; `None` when the stream should end (shutdown, store gone).
async fn next_wake(feed: &mut Feed) -> Option<Look> {
    loop {
        let wake = tokio::select! {
            () = feed.shutdown.cancelled() => return None,
            w = tokio::time::timeout(Duration::from_secs(30), feed.wakes.recv()) => w,
        };
        match wake {
            Ok(Ok(Wake::Jobs)) => return Some(Look::Jobs),
            // A room's dashboard, or a peer's, whose sent mail may be among them. The wake
            // does not say whose copies changed: a peer's page looks again for nothing now and
            // then, and learns only that something in its room was read.
            Ok(Ok(Wake::Copies)) if feed.changes == Changes::Told => return Some(Look::Copies),
            Ok(Ok(w)) if feed.query.peer.is_none_or(|p| w.concerns(p)) && w.stirs(None) => {
                return Some(Look::Log);
            }
            Ok(Ok(_)) => continue,
            Ok(Err(RecvError::Lagged(_))) | Err(_) => return Some(Look::Log),
            Ok(Err(RecvError::Closed)) => return None,
        }
    }
}
