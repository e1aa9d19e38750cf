//! Upkeep: what `gc` and time do to records (TTL expiry, retention).

use std::time::Duration;

use switchboard_core::{Error, Exchange, Outgoing, Rejection, SentQuery};
use switchboard_proto::DeliveryState;

use super::jobs::job;
use super::{only_sent, state_of, world};
use crate::{Backend, roomy_limits};

pub async fn ttl_expiry_is_honest_before_and_after_gc(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let mut out = Outgoing::to_peer("bob", "short-lived");
    out.ttl = Some(Duration::from_secs(1));
    let sent = w.mailbox.send(alice.peer.id, out).await.unwrap();
    w.clock.advance_ms(2000);
    assert_eq!(
        state_of(&only_sent(&w, alice.peer.id, sent.id).await, "bob"),
        DeliveryState::Expired
    );
    assert!(w.pull(&bob).await.is_empty());
    let report = w.mailbox.gc().await.unwrap();
    assert_eq!(report.expired, 1);
    assert_eq!(w.mailbox.stats().await.unwrap().expired, 1);
    let mut too_long = Outgoing::to_peer("bob", "forever");
    too_long.ttl = Some(w.mailbox.limits().retention + Duration::from_secs(1));
    assert!(matches!(
        w.mailbox.send(alice.peer.id, too_long).await,
        Err(Error::TtlTooLong { .. })
    ));
}

pub async fn retention_deletes_old_records(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let old = w
        .mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "old"))
        .await
        .unwrap();
    w.mailbox.ack(bob.peer.id, &[old.id]).await.unwrap();
    w.clock
        .advance_ms(switchboard_core::policy::ms(w.mailbox.limits().retention) + 1);
    let fresh = w
        .mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "fresh"))
        .await
        .unwrap();
    let report = w.mailbox.gc().await.unwrap();
    assert_eq!(report.messages_deleted, 1);
    let left = w
        .mailbox
        .sent(alice.peer.id, SentQuery::Recent(10))
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![fresh.id]
    );

    // A finished job is kept for the retention window, then deleted with its request id.
    let mut d = job("codex", "old");
    d.request_id = Some("once".into());
    let old_job = w.mailbox.dispatch(alice.peer.id, d.clone()).await.unwrap();
    w.mailbox.cancel_job(old_job.id).await.unwrap();
    w.clock
        .advance_ms(switchboard_core::policy::ms(w.mailbox.limits().retention) + 1);
    w.mailbox.gc().await.unwrap();
    assert!(matches!(
        w.mailbox.job(old_job.id).await,
        Err(Error::Rejected(Rejection::UnknownJob { .. }))
    ));
    let again = w.mailbox.dispatch(alice.peer.id, d).await.unwrap();
    assert!(
        !again.duplicate,
        "the request id is free again after retention"
    );
}

pub async fn stats_count_jobs_by_state(b: &dyn Backend) {
    use switchboard_core::{JobCounts, Run, op};
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    assert_eq!(w.mailbox.stats().await.unwrap().jobs, JobCounts::default());
    for prompt in ["one", "two", "three"] {
        w.mailbox
            .dispatch(alice.peer.id, job("codex", prompt))
            .await
            .unwrap();
    }
    let claimed = w
        .mailbox
        .run(op::Claim::new("codex", "w1"))
        .await
        .unwrap()
        .expect("a job");
    let cancelled = w
        .mailbox
        .dispatch(alice.peer.id, job("codex", "four"))
        .await
        .unwrap();
    w.mailbox.cancel_job(cancelled.id).await.unwrap();
    let jobs = w.mailbox.stats().await.unwrap().jobs;
    assert_eq!(
        jobs,
        JobCounts {
            queued: 2,
            claimed: 1,
            cancelled: 1,
            ..JobCounts::default()
        },
        "after claiming job {}",
        claimed.job.id
    );
    assert_eq!(jobs.each().map(|(_, n)| n).sum::<u64>(), 4);
}

/// This area's stories, expanded by [`conformance_suite!`](crate::conformance_suite). A new
/// story is a `pub async fn` above and one line in this list.
#[doc(hidden)]
#[macro_export]
macro_rules! conformance_upkeep {
    ($backend:expr) => {
        $crate::conformance_stories!($backend; upkeep;
            ttl_expiry_is_honest_before_and_after_gc,
            retention_deletes_old_records,
            stats_count_jobs_by_state,
        );
    };
}
