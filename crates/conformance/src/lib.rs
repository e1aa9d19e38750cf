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
    Exchange, Limits, Mailbox, ManualClock, NamePolicy, OpenSession, Session, Store,
};
use switchboard_proto::{PeerInfo, PeerKind, PeerName};

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
#[macro_export]
macro_rules! conformance_suite {
    ($backend:expr) => {
        $crate::conformance_suite!(@stories $backend;
            send_lease_deliver_ack,
            unknown_peer_is_rejected_and_writes_nothing,
            idempotent_send_returns_the_original,
            pending_cap_rejects_and_names_the_limit,
            rate_limit_rejects_until_the_window_moves,
            lease_hides_an_item_from_other_sessions_until_it_expires,
            closing_a_session_releases_its_leases,
            dead_process_frees_its_name_and_its_leases,
            live_name_gets_a_suffix_and_offline_name_is_reclaimed,
            reply_marks_the_parent_read,
            ack_of_foreign_ids_is_rejected_and_writes_nothing,
            ttl_expiry_is_honest_before_and_after_gc,
            unacked_leases_end_dead_after_max_attempts,
            retention_deletes_old_records,
            broadcast_reaches_live_peers_in_scope,
            seen_items_return_only_on_explicit_pull,
            wake_crosses_handles,
            log_follows_a_cursor_and_a_peer,
            rename_keeps_mail_and_refuses_taken_names,
            concurrent_sends_are_all_durable,
            lease_wait_returns_when_mail_lands,
            client_process_finds_its_live_peer,
            question_and_grounded_answer_reach_each_side,
            a_question_is_answered_once_and_only_by_the_peer_asked,
            a_decline_tells_the_asker_why,
            an_unanswered_question_expires_and_the_asker_is_told,
            bad_questions_and_answers_change_nothing,
            questions_list_by_role_and_state,
            a_job_runs_once_and_its_dispatcher_gets_only_id_and_state,
            a_repeated_request_id_creates_one_job,
            a_lapsed_read_only_job_is_requeued_and_a_stale_worker_is_fenced_off,
            a_lapsed_write_job_waits_for_recovery,
            write_jobs_go_only_to_workers_that_allow_writes,
            a_job_that_keeps_losing_its_worker_dies,
            an_unclaimed_job_expires,
            a_cancel_reaches_the_running_worker,
            a_released_claim_does_not_count_as_an_attempt,
            bad_dispatches_change_nothing,
            concurrent_workers_never_share_a_job,
            concurrent_sessions_never_share_a_name,
            racing_answers_close_a_question_once,
            unknown_ids_are_refused_as_unknown_by_every_operation,
            a_session_leasing_again_spends_no_attempt,
        );
    };
    (@stories $backend:expr; $($story:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $story() {
                let Some(backend) = $backend.await else { return };
                $crate::stories::$story(&backend).await;
            }
        )*
    };
}
