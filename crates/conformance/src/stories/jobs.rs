//! Durable jobs: claims, leases and fencing, recovery, expiry and cancellation.

use std::time::Duration;

use switchboard_core::{Error, Exchange, Limits, Rejection, Run, op};
use switchboard_proto::JobId;

use super::world;
use crate::{Backend, World, roomy_limits};

pub(super) fn job(agent: &str, prompt: &str) -> switchboard_core::Dispatch {
    switchboard_core::Dispatch::new(agent, prompt)
}

pub(super) fn lapse(w: &World) {
    w.clock
        .advance_ms(switchboard_core::policy::ms(w.mailbox.limits().job_lease) + 1);
}

pub async fn a_job_runs_once_and_its_dispatcher_gets_only_id_and_state(b: &dyn Backend) {
    use switchboard_core::JobOutcome;
    use switchboard_proto::{ItemKind, JobState};
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let d = w
        .mailbox
        .dispatch(alice.peer.id, job("codex", "review the diff"))
        .await
        .unwrap();
    assert_eq!(d.state, JobState::Queued);
    let claim = w
        .mailbox
        .run(op::Claim::new("codex", "w1"))
        .await
        .unwrap()
        .expect("a job");
    assert_eq!(claim.job.id, d.id);
    assert_eq!(claim.job.prompt, "review the diff");
    assert!(
        w.mailbox
            .run(op::Claim::new("codex", "w2"))
            .await
            .unwrap()
            .is_none(),
        "claimed once"
    );
    w.mailbox.start_job(&claim).await.unwrap();
    assert_eq!(
        w.mailbox.heartbeat(&claim).await.unwrap(),
        JobState::Running
    );
    let done = w
        .mailbox
        .finish_job(
            &claim,
            JobOutcome::Completed {
                result: "LGTM, 2 nits".into(),
                branch: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.result.as_deref(), Some("LGTM, 2 nits"));
    let notices = w.lease(&alice).await;
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].kind, ItemKind::Job);
    assert!(
        notices[0].text.contains(&format!("#{}", d.id)) && notices[0].text.contains("completed")
    );
    assert!(!notices[0].text.contains("LGTM"), "never the job's payload");
}

pub async fn a_repeated_request_id_creates_one_job(b: &dyn Backend) {
    use switchboard_core::JobQuery;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let mut d = job("codex", "once");
    d.request_id = Some("req-7".into());
    let first = w.mailbox.dispatch(alice.peer.id, d.clone()).await.unwrap();
    let second = w.mailbox.dispatch(alice.peer.id, d).await.unwrap();
    assert!(second.duplicate && !first.duplicate);
    assert_eq!(second.id, first.id);
    let all = JobQuery {
        dispatcher: None,
        agent: None,
        active_only: false,
        limit: 10,
    };
    assert_eq!(w.mailbox.jobs(all).await.unwrap().len(), 1);
}

pub async fn a_lapsed_read_only_job_is_requeued_and_a_stale_worker_is_fenced_off(b: &dyn Backend) {
    use switchboard_core::JobOutcome;
    use switchboard_proto::JobState;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let d = w
        .mailbox
        .dispatch(alice.peer.id, job("codex", "read only"))
        .await
        .unwrap();
    let stale = w
        .mailbox
        .run(op::Claim::new("codex", "w1"))
        .await
        .unwrap()
        .unwrap();
    w.mailbox.start_job(&stale).await.unwrap();
    lapse(&w);
    let fresh = w
        .mailbox
        .run(op::Claim::new("codex", "w2"))
        .await
        .unwrap()
        .expect("requeued");
    assert_eq!(fresh.job.id, d.id);
    assert!(fresh.fence > stale.fence);
    let err = w
        .mailbox
        .finish_job(
            &stale,
            JobOutcome::Completed {
                result: "late".into(),
                branch: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Rejected(Rejection::StaleClaim { .. })),
        "{err:?}"
    );
    assert!(matches!(
        w.mailbox.heartbeat(&stale).await,
        Err(Error::Rejected(Rejection::StaleClaim { .. }))
    ));
    w.mailbox
        .finish_job(
            &fresh,
            JobOutcome::Completed {
                result: "on time".into(),
                branch: None,
            },
        )
        .await
        .unwrap();
    let view = w.mailbox.job(d.id).await.unwrap();
    assert_eq!(view.state, JobState::Completed);
    assert_eq!(view.result.as_deref(), Some("on time"));
    assert_eq!(view.attempts, 2);
}

pub async fn a_lapsed_write_job_waits_for_recovery(b: &dyn Backend) {
    use switchboard_proto::JobState;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let mut d = job("codex", "edit files");
    d.write = true;
    let d = w.mailbox.dispatch(alice.peer.id, d).await.unwrap();
    w.mailbox
        .run(op::Claim::new("codex", "w1").allowing_writes())
        .await
        .unwrap()
        .unwrap();
    lapse(&w);
    assert!(
        w.mailbox
            .run(op::Claim::new("codex", "w2").allowing_writes())
            .await
            .unwrap()
            .is_none(),
        "never re-run silently"
    );
    assert_eq!(
        w.mailbox.job(d.id).await.unwrap().state,
        JobState::NeedsRecovery
    );
    let requeued = w.mailbox.requeue_job(d.id).await.unwrap();
    assert_eq!(requeued.state, JobState::Queued);
    assert!(
        w.mailbox
            .run(op::Claim::new("codex", "w2").allowing_writes())
            .await
            .unwrap()
            .is_some()
    );
}

pub async fn write_jobs_go_only_to_workers_that_allow_writes(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let mut d = job("codex", "edit");
    d.write = true;
    w.mailbox.dispatch(alice.peer.id, d).await.unwrap();
    assert!(
        w.mailbox
            .run(op::Claim::new("codex", "ro"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        w.mailbox
            .run(op::Claim::new("codex", "rw").allowing_writes())
            .await
            .unwrap()
            .is_some()
    );
}

pub async fn a_job_that_keeps_losing_its_worker_dies(b: &dyn Backend) {
    use switchboard_proto::JobState;
    let w = world(
        b,
        Limits {
            job_max_attempts: 2,
            ..roomy_limits()
        },
    )
    .await;
    let alice = w.agent("alice").await;
    let d = w
        .mailbox
        .dispatch(alice.peer.id, job("codex", "poison"))
        .await
        .unwrap();
    for _ in 0..2 {
        w.mailbox
            .run(op::Claim::new("codex", "w"))
            .await
            .unwrap()
            .unwrap();
        lapse(&w);
    }
    assert!(
        w.mailbox
            .run(op::Claim::new("codex", "w"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(w.mailbox.job(d.id).await.unwrap().state, JobState::Dead);
}

pub async fn an_unclaimed_job_expires(b: &dyn Backend) {
    use switchboard_proto::JobState;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let mut d = job("codex", "soon");
    d.ttl = Some(Duration::from_secs(60));
    let d = w.mailbox.dispatch(alice.peer.id, d).await.unwrap();
    w.clock.advance_ms(61_000);
    assert!(
        w.mailbox
            .run(op::Claim::new("codex", "w"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(w.mailbox.job(d.id).await.unwrap().state, JobState::Expired);
    let told = w.lease(&alice).await;
    assert!(told.iter().any(|i| i.text.contains("expired")), "{told:?}");
}

pub async fn a_cancel_reaches_the_running_worker(b: &dyn Backend) {
    use switchboard_core::JobOutcome;
    use switchboard_proto::JobState;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let d = w
        .mailbox
        .dispatch(alice.peer.id, job("codex", "long"))
        .await
        .unwrap();
    let claim = w
        .mailbox
        .run(op::Claim::new("codex", "w"))
        .await
        .unwrap()
        .unwrap();
    w.mailbox.start_job(&claim).await.unwrap();
    assert_eq!(
        w.mailbox.cancel_job(d.id).await.unwrap().state,
        JobState::Cancelled
    );
    assert_eq!(
        w.mailbox.heartbeat(&claim).await.unwrap(),
        JobState::Cancelled
    );
    let err = w
        .mailbox
        .finish_job(
            &claim,
            JobOutcome::Completed {
                result: "too late".into(),
                branch: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Rejected(Rejection::JobState { state, .. }) if state == "cancelled"),
        "{err:?}"
    );
    assert!(matches!(
        w.mailbox.cancel_job(d.id).await,
        Err(Error::Rejected(Rejection::JobState { .. }))
    ));
}

pub async fn a_released_claim_does_not_count_as_an_attempt(b: &dyn Backend) {
    use switchboard_proto::JobState;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let d = w
        .mailbox
        .dispatch(alice.peer.id, job("codex", "later"))
        .await
        .unwrap();
    let claim = w
        .mailbox
        .run(op::Claim::new("codex", "w"))
        .await
        .unwrap()
        .unwrap();
    w.mailbox.release_job(&claim).await.unwrap();
    let view = w.mailbox.job(d.id).await.unwrap();
    assert_eq!((view.state, view.attempts), (JobState::Queued, 0));
}

pub async fn a_job_names_its_worker_only_while_one_holds_it(b: &dyn Backend) {
    use switchboard_core::JobOutcome;
    use switchboard_proto::JobState;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let d = w
        .mailbox
        .dispatch(alice.peer.id, job("codex", "who runs me"))
        .await
        .unwrap();
    assert_eq!(d.worker, None, "queued: nobody holds it");
    let worker_of = |id| {
        let m = &w.mailbox;
        async move { m.job(id).await.unwrap().worker }
    };

    let first = w
        .mailbox
        .run(op::Claim::new("codex", "host-a:1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.job.worker.as_deref(),
        Some("host-a:1"),
        "the claim says"
    );
    assert_eq!(
        worker_of(d.id).await.as_deref(),
        Some("host-a:1"),
        "claimed"
    );
    w.mailbox.start_job(&first).await.unwrap();
    assert_eq!(
        worker_of(d.id).await.as_deref(),
        Some("host-a:1"),
        "running"
    );
    w.mailbox.release_job(&first).await.unwrap();
    assert_eq!(worker_of(d.id).await, None, "released");

    w.mailbox
        .run(op::Claim::new("codex", "host-b:2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(worker_of(d.id).await.as_deref(), Some("host-b:2"));
    lapse(&w);
    let lapsed = w.mailbox.job(d.id).await.unwrap();
    assert_eq!(
        (lapsed.state, lapsed.worker),
        (JobState::Queued, None),
        "requeued when the lease ran out"
    );

    let third = w
        .mailbox
        .run(op::Claim::new("codex", "host-c:3"))
        .await
        .unwrap()
        .unwrap();
    let done = w
        .mailbox
        .finish_job(
            &third,
            JobOutcome::Completed {
                result: "done".into(),
                branch: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (done.state, done.worker),
        (JobState::Completed, None),
        "ended"
    );
    assert_eq!(worker_of(d.id).await, None);

    let cancelled = w
        .mailbox
        .dispatch(alice.peer.id, job("codex", "cancel me"))
        .await
        .unwrap();
    w.mailbox
        .run(op::Claim::new("codex", "host-d:4"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(worker_of(cancelled.id).await.as_deref(), Some("host-d:4"));
    let view = w.mailbox.cancel_job(cancelled.id).await.unwrap();
    assert_eq!((view.state, view.worker), (JobState::Cancelled, None));
}

pub async fn bad_dispatches_change_nothing(b: &dyn Backend) {
    use switchboard_core::JobQuery;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    assert!(matches!(
        w.mailbox.dispatch(alice.peer.id, job("codex", " ")).await,
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        w.mailbox
            .dispatch(alice.peer.id, job("codex", &"p".repeat(256 * 1024 + 1)))
            .await,
        Err(Error::TooLong {
            field: "prompt",
            ..
        })
    ));
    assert!(matches!(
        w.mailbox
            .dispatch(alice.peer.id, job("Codex CLI", "x"))
            .await,
        Err(Error::Name(_))
    ));
    assert!(matches!(
        w.mailbox.job(JobId(4242)).await,
        Err(Error::Rejected(Rejection::UnknownJob { .. }))
    ));
    let all = JobQuery {
        dispatcher: None,
        agent: None,
        active_only: false,
        limit: 10,
    };
    assert!(w.mailbox.jobs(all).await.unwrap().is_empty());
}

pub async fn concurrent_workers_never_share_a_job(b: &dyn Backend) {
    use switchboard_core::JobOutcome;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    for i in 0..60 {
        w.mailbox
            .dispatch(alice.peer.id, job("codex", &format!("job {i}")))
            .await
            .unwrap();
    }
    let other = w.sibling(b.open().await);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let mailbox = if worker % 2 == 0 {
            w.mailbox.clone()
        } else {
            other.mailbox.clone()
        };
        tasks.spawn(async move {
            let mut done = Vec::new();
            while let Some(claim) = mailbox
                .run(op::Claim::new("codex", format!("w{worker}")))
                .await
                .unwrap()
            {
                mailbox
                    .finish_job(
                        &claim,
                        JobOutcome::Completed {
                            result: "ok".into(),
                            branch: None,
                        },
                    )
                    .await
                    .unwrap();
                done.push(claim.job.id);
            }
            done
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    all.sort_unstable();
    let before = all.len();
    all.dedup();
    assert_eq!(before, 60, "every job completed");
    assert_eq!(all.len(), 60, "none twice");
}

/// This area's stories, expanded by [`conformance_suite!`](crate::conformance_suite). A new
/// story is a `pub async fn` above and one line in this list.
#[doc(hidden)]
#[macro_export]
macro_rules! conformance_jobs {
    ($backend:expr) => {
        $crate::conformance_stories!($backend; jobs;
            a_job_runs_once_and_its_dispatcher_gets_only_id_and_state,
            a_repeated_request_id_creates_one_job,
            a_lapsed_read_only_job_is_requeued_and_a_stale_worker_is_fenced_off,
            a_lapsed_write_job_waits_for_recovery,
            write_jobs_go_only_to_workers_that_allow_writes,
            a_job_that_keeps_losing_its_worker_dies,
            an_unclaimed_job_expires,
            a_cancel_reaches_the_running_worker,
            a_released_claim_does_not_count_as_an_attempt,
            a_job_names_its_worker_only_while_one_holds_it,
            bad_dispatches_change_nothing,
            concurrent_workers_never_share_a_job,
        );
    };
}
