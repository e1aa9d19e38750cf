//! The storage conformance suite: stories about peers, sessions and delivery that every
//! [`Store`] backend must pass, written against the trait alone.
//!
//! A backend's test file implements [`Backend`] and expands [`conformance_suite!`] once; every
//! story becomes its own `#[tokio::test]`, so SQLite and Postgres run the very same tests.

// This crate is a test suite: a panic is how a story fails.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use switchboard_core::{
    Exchange, Limits, Mailbox, ManualClock, NamePolicy, OpenSession, Outgoing, Run, Session, Store,
    op,
};
use switchboard_proto::{InboxItem, MessageId, PeerId, PeerInfo, PeerKind, PeerName};

pub mod panics;
pub mod stories;

/// A fresh, empty data set of one backend, which can be opened as many times as a test needs.
pub trait Backend: Send + Sync {
    /// A new handle on this data set, as a separate process would open it. Dropping a handle
    /// must end the liveness of every session it opened, as a process's death does.
    fn open(&self) -> Pin<Box<dyn Future<Output = Arc<dyn Store>> + Send + '_>>;
}

/// Wall-clock start for the manual clocks of the stories: a fixed, realistic instant.
pub const T0: i64 = 1_790_000_000_000;

/// What a story works with: a handle, a mailbox over it on a manual clock, and the clock.
pub struct World {
    pub store: Arc<dyn Store>,
    pub mailbox: Mailbox,
    pub clock: ManualClock,
}

impl World {
    /// Leases up to ten unread items to `session`, at once: the stories' usual look at an inbox.
    pub async fn lease(&self, session: &Session) -> Vec<InboxItem> {
        self.mailbox
            .run(op::Lease::new(session, 10))
            .await
            .expect("lease")
    }

    /// An explicit pull of up to ten items to `session`: unread ones, and those handed over
    /// before but never acknowledged.
    pub async fn pull(&self, session: &Session) -> Vec<InboxItem> {
        let pull = op::Lease {
            include_seen: true,
            ..op::Lease::new(session, 10)
        };
        self.mailbox.run(pull).await.expect("pull")
    }

    pub fn new(store: Arc<dyn Store>, limits: Limits) -> Self {
        let clock = ManualClock::new(T0);
        let mailbox = Mailbox::with_clock(Arc::clone(&store), limits, Arc::new(clock.clone()));
        Self {
            store,
            mailbox,
            clock,
        }
    }

    /// Another world on a second handle of the same data, sharing this world's clock.
    pub fn sibling(&self, store: Arc<dyn Store>) -> Self {
        let mailbox = Mailbox::with_clock(
            Arc::clone(&store),
            self.mailbox.limits().clone(),
            Arc::new(self.clock.clone()),
        );
        Self {
            store,
            mailbox,
            clock: self.clock.clone(),
        }
    }

    /// Sends `n` messages to bob at once, each a task of its own, the `i`th from
    /// `senders[i % len]`; their outcomes, in the order they finished.
    pub async fn race_to_bob(
        &self,
        senders: &[PeerId],
        n: usize,
    ) -> Vec<Result<MessageId, switchboard_core::Error>> {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let (mailbox, from) = (self.mailbox.clone(), senders[i % senders.len()]);
            tasks.spawn(async move {
                mailbox
                    .send(from, Outgoing::to_peer("bob", format!("n{i}")))
                    .await
                    .map(|sent| sent.id)
            });
        }
        let mut out = Vec::new();
        while let Some(r) = tasks.join_next().await {
            out.push(r.expect("a send task"));
        }
        out
    }

    pub async fn agent(&self, name: &str) -> Session {
        self.session(name, PeerKind::Agent, NamePolicy::Suffix)
            .await
    }

    pub async fn session(&self, name: &str, kind: PeerKind, policy: NamePolicy) -> Session {
        self.mailbox
            .open_session(OpenSession {
                name: PeerName::parse(name).expect("valid test name"),
                kind,
                info: PeerInfo {
                    client_kind: Some("test".into()),
                    cwd: Some(format!("/work/{name}")),
                    ..PeerInfo::default()
                },
                policy,
                client_pid: None,
            })
            .await
            .expect("open session")
    }
}

/// Limits loose enough that only the story under test hits one.
pub fn roomy_limits() -> Limits {
    Limits {
        rate_limit: 100_000,
        pending_cap: 100_000,
        ..Limits::default()
    }
}

/// Expands every story as a `#[tokio::test]` for a backend. `$backend` is an async expression
/// yielding a fresh value implementing [`Backend`] (or `None` to skip, with a reason printed).
/// Each area of [`stories`] lists its own stories, so adding one touches only its area's file.
#[macro_export]
macro_rules! conformance_suite {
    ($backend:expr) => {
        $crate::conformance_mail!($backend);
        $crate::conformance_sessions!($backend);
        $crate::conformance_events!($backend);
        $crate::conformance_questions!($backend);
        $crate::conformance_jobs!($backend);
        $crate::conformance_upkeep!($backend);
        $crate::conformance_reservations!($backend);
        $crate::conformance_refusals!($backend);
    };
}

/// One `#[tokio::test]` per story of one area, named as the story (the names the backends'
/// test runs print).
#[doc(hidden)]
#[macro_export]
macro_rules! conformance_stories {
    ($backend:expr; $area:ident; $($story:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $story() {
                let Some(backend) = $backend.await else { return };
                $crate::stories::$area::$story(&backend).await;
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    /// Every area file, as `conformance_suite!` expands it.
    const AREAS: [(&str, &str); 8] = [
        ("mail", include_str!("stories/mail.rs")),
        ("sessions", include_str!("stories/sessions.rs")),
        ("events", include_str!("stories/events.rs")),
        ("questions", include_str!("stories/questions.rs")),
        ("jobs", include_str!("stories/jobs.rs")),
        ("upkeep", include_str!("stories/upkeep.rs")),
        ("refusals", include_str!("stories/refusals.rs")),
        ("reservations", include_str!("stories/reservations.rs")),
    ];

    /// A story that is written but missing from its area's list would never run, and the
    /// compiler cannot tell: each area's list must name exactly the stories its file defines.
    #[test]
    fn each_area_lists_exactly_its_stories() {
        for (area, text) in AREAS {
            let mut defined: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("pub async fn "))
                .map(|l| l.split('(').next().unwrap())
                .collect();
            let head = format!("$crate::conformance_stories!($backend; {area};");
            let list = text
                .split_once(&head)
                .unwrap_or_else(|| panic!("{area}: no story list naming the area"))
                .1;
            let list = list.split_once(");").expect("the list ends").0;
            let mut listed: Vec<&str> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            defined.sort_unstable();
            listed.sort_unstable();
            assert!(!defined.is_empty(), "{area}: no stories found");
            assert_eq!(listed, defined, "{area}: listed vs defined stories");
        }
    }
}
