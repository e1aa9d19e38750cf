//! Reservations: advisory claims on paths of a repository, exclusive or shared, ending by
//! release, TTL or the holder's session.

use std::time::Duration;

use switchboard_core::{Error, Exchange, Rejection, Releasing, Run, Session, op};
use switchboard_proto::{Glob, Reservation, ReservationMode};

use super::world;
use crate::{Backend, World, roomy_limits};

const REPO: &str = "1f0c2d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d";

fn reserve(who: &Session, globs: &[&str], mode: ReservationMode, reason: &str) -> op::Reserve {
    op::Reserve {
        peer: Some(who.peer.id),
        session: Some(who.id),
        repo: REPO.into(),
        globs: globs.iter().map(|g| Glob::parse(g).unwrap()).collect(),
        mode,
        reason: reason.into(),
        ttl: None,
        wait: Duration::ZERO,
        job: None,
    }
}

async fn take(w: &World, r: op::Reserve) -> Result<Reservation, Error> {
    w.mailbox.run(r).await
}

pub async fn conflicting_exclusive_reservations_are_refused_with_who_and_why(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let held = take(
        &w,
        reserve(
            &alice,
            &["src/api/**"],
            ReservationMode::Exclusive,
            "refactoring the API",
        ),
    )
    .await
    .unwrap();
    assert_eq!(held.holder, "alice");
    assert!(held.session_bound);
    let refused = take(
        &w,
        reserve(
            &bob,
            &["src/api/routes.rs"],
            ReservationMode::Exclusive,
            "a fix",
        ),
    )
    .await;
    let Err(Error::Rejected(Rejection::Reserved {
        id,
        holder,
        reason,
        exclusive,
        left_ms,
        ..
    })) = refused
    else {
        panic!("expected a conflict, got {refused:?}");
    };
    assert_eq!(
        (id, holder.as_str(), reason.as_str()),
        (held.id, "alice", "refactoring the API")
    );
    assert!(exclusive && left_ms > 0);
    // A shared reservation of those paths conflicts with the exclusive one too.
    assert!(
        take(
            &w,
            reserve(&bob, &["src/**"], ReservationMode::Shared, "reading")
        )
        .await
        .is_err()
    );
    // Other paths are free, and the holder's own reservations never conflict with each other.
    take(
        &w,
        reserve(&bob, &["docs/"], ReservationMode::Exclusive, "docs"),
    )
    .await
    .unwrap();
    take(
        &w,
        reserve(
            &alice,
            &["src/api/mod.rs"],
            ReservationMode::Exclusive,
            "more",
        ),
    )
    .await
    .unwrap();
    let listed = w
        .mailbox
        .run(op::Reservations {
            repo: Some(REPO.into()),
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    // Released, the paths are bob's to take.
    let n = w
        .mailbox
        .run(op::Release {
            peer: Some(alice.peer.id),
            which: Releasing::Repo(REPO.into()),
        })
        .await
        .unwrap();
    assert_eq!(n, 2);
    take(
        &w,
        reserve(
            &bob,
            &["src/api/routes.rs"],
            ReservationMode::Exclusive,
            "a fix",
        ),
    )
    .await
    .unwrap();
}

/// Regression (found by the `/v1` fuzz): a repository key with a NUL reached Postgres, which
/// cannot compare one, and came back a 500. Every reservation operation refuses it first.
pub async fn a_repository_key_with_a_nul_is_refused_before_the_store(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let nul = "a\u{0}b".to_owned();
    let release = op::Release {
        peer: Some(alice.peer.id),
        which: Releasing::Repo(nul.clone()),
    };
    assert!(matches!(
        w.mailbox.run(release).await,
        Err(Error::NulChar { field: "repo" })
    ));
    let list = op::Reservations {
        repo: Some(nul.clone()),
    };
    assert!(matches!(
        w.mailbox.run(list).await,
        Err(Error::NulChar { field: "repo" })
    ));
    let mut r = reserve(&alice, &["src/"], ReservationMode::Exclusive, "x");
    r.repo = nul;
    assert!(matches!(
        take(&w, r).await,
        Err(Error::NulChar { field: "repo" })
    ));
}

pub async fn shared_reservations_coexist(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    take(
        &w,
        reserve(&alice, &["Cargo.lock"], ReservationMode::Shared, "reading"),
    )
    .await
    .unwrap();
    take(
        &w,
        reserve(&bob, &["Cargo.*"], ReservationMode::Shared, "reading too"),
    )
    .await
    .unwrap();
    let carol = w.agent("carol").await;
    let refused = take(
        &w,
        reserve(&carol, &["Cargo.lock"], ReservationMode::Exclusive, "bump"),
    )
    .await;
    assert!(
        matches!(refused, Err(Error::Rejected(Rejection::Reserved { .. }))),
        "{refused:?}"
    );
}

pub async fn a_reservation_ends_at_its_ttl(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let mut r = reserve(&alice, &["src/"], ReservationMode::Exclusive, "short");
    r.ttl = Some(Duration::from_secs(60));
    take(&w, r).await.unwrap();
    assert!(
        take(
            &w,
            reserve(&bob, &["src/x.rs"], ReservationMode::Exclusive, "x")
        )
        .await
        .is_err()
    );
    w.clock.advance_ms(60_001);
    let listed = w
        .mailbox
        .run(op::Reservations { repo: None })
        .await
        .unwrap();
    assert!(listed.is_empty(), "{listed:?}");
    take(
        &w,
        reserve(&bob, &["src/x.rs"], ReservationMode::Exclusive, "x"),
    )
    .await
    .unwrap();
}

pub async fn a_dead_holders_reservations_are_free(b: &dyn Backend) {
    let w1 = world(b, roomy_limits()).await;
    let alice = w1.agent("alice").await;
    take(
        &w1,
        reserve(&alice, &["src/"], ReservationMode::Exclusive, "mine"),
    )
    .await
    .unwrap();
    let w2 = w1.sibling(b.open().await);
    let bob = w2.agent("bob").await;
    assert!(
        take(
            &w2,
            reserve(&bob, &["src/a.rs"], ReservationMode::Exclusive, "x")
        )
        .await
        .is_err()
    );
    drop(w1);
    // Free as soon as the store learns the process died: at once for the embedded store, when
    // the server sees the connection close for Postgres.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match take(
            &w2,
            reserve(&bob, &["src/a.rs"], ReservationMode::Exclusive, "x"),
        )
        .await
        {
            Ok(_) => break,
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "still held: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn a_waiting_reservation_is_taken_when_the_holder_releases(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let held = take(
        &w,
        reserve(&alice, &["src/"], ReservationMode::Exclusive, "mine"),
    )
    .await
    .unwrap();
    let mut waiting = reserve(&bob, &["src/lib.rs"], ReservationMode::Exclusive, "next");
    waiting.wait = Duration::from_secs(30);
    let (taken, released) = tokio::join!(take(&w, waiting), async {
        w.mailbox
            .run(op::Release {
                peer: Some(alice.peer.id),
                which: Releasing::Ids(vec![held.id]),
            })
            .await
    });
    assert_eq!(released.unwrap(), 1);
    assert_eq!(taken.unwrap().holder, "bob");
}

pub async fn closing_a_session_frees_its_reservations_but_not_a_humans(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    take(
        &w,
        reserve(&alice, &["a/"], ReservationMode::Exclusive, "agent's"),
    )
    .await
    .unwrap();
    // A person's reservation from the CLI has no session: only release or TTL end it.
    let mut human = reserve(&bob, &["b/"], ReservationMode::Exclusive, "person's");
    human.session = None;
    take(&w, human).await.unwrap();
    w.mailbox.close_session(alice.id).await.unwrap();
    w.mailbox.close_session(bob.id).await.unwrap();
    let left = w
        .mailbox
        .run(op::Reservations { repo: None })
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|r| r.holder.as_str()).collect::<Vec<_>>(),
        ["bob"]
    );
    assert!(!left[0].session_bound);
}

/// This area's stories, expanded by [`conformance_suite!`](crate::conformance_suite). A new
/// story is a `pub async fn` above and one line in this list.
#[doc(hidden)]
#[macro_export]
macro_rules! conformance_reservations {
    ($backend:expr) => {
        $crate::conformance_stories!($backend; reservations;
            conflicting_exclusive_reservations_are_refused_with_who_and_why,
            a_repository_key_with_a_nul_is_refused_before_the_store,
            shared_reservations_coexist,
            a_reservation_ends_at_its_ttl,
            a_dead_holders_reservations_are_free,
            a_waiting_reservation_is_taken_when_the_holder_releases,
            closing_a_session_frees_its_reservations_but_not_a_humans,
        );
    };
}
