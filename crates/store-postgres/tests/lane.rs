//! The write lane: a row lock held elsewhere holds up only the writes that need that row (the
//! lane sets them aside rather than wait with the whole batch behind them), a commit waits
//! for the notification queue's lock however long another replica holds it, and the writes to
//! one peer's copies that share a batch run one after another. That concurrent writes share
//! commits is a matter of speed, shown by the benchmark, not here.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::Notify;

use switchboard_conformance::{T0, World, roomy_limits};
use switchboard_core::seam::{Access, Backend};
use switchboard_core::{Exchange, LeaseRequest, NamePolicy, Outgoing, Session, Store};
use switchboard_proto::{InboxItem, MessageId, PeerKind};
use switchboard_store_postgres::migrate::room_schema;
use switchboard_store_postgres::{Database, PgOptions, PgStore};
use switchboard_testkit::scratch::Scratch;
use tokio_postgres::NoTls;

async fn world(scratch: &Scratch) -> World {
    world_and_store(scratch).await.0
}

/// A world on a room, and the room's store itself, for writes the tests queue on its lane.
async fn world_and_store(scratch: &Scratch) -> (World, PgStore) {
    let db = Database::connect(&PgOptions::new(&scratch.url))
        .await
        .expect("connect to scratch db");
    let store = db.room("lane", T0).await.expect("open room");
    (World::new(Arc::new(store.clone()), roomy_limits()), store)
}

/// Holds the store's lane: a write that, once the lane runs it, waits for [`Held::free`].
/// What is queued meanwhile goes into the lane's next batch, together.
struct Held {
    free: Arc<Notify>,
    done: tokio::task::JoinHandle<()>,
}

impl Held {
    async fn lane(store: &PgStore) -> Self {
        let (running, free) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let done = {
            let (store, running, free) = (store.clone(), running.clone(), free.clone());
            tokio::spawn(async move {
                store
                    .transact(Access::Write, move |_| {
                        let (running, free) = (running.clone(), free.clone());
                        Box::pin(async move {
                            running.notify_one();
                            free.notified().await;
                            Ok(())
                        })
                    })
                    .await
                    .expect("the holding write commits");
            })
        };
        running.notified().await;
        Self { free, done }
    }

    async fn free(self) {
        self.free.notify_one();
        self.done.await.unwrap();
    }
}

/// Queues a write (the store's future, polled once: it queues its job before it first
/// waits) and returns it, to be awaited once the lane is free.
async fn queued<F: Future + Unpin>(mut write: F) -> F {
    std::future::poll_fn(|cx| {
        assert!(
            std::pin::Pin::new(&mut write).poll(cx).is_pending(),
            "a write answers only after its batch commits"
        );
        Poll::Ready(())
    })
    .await;
    write
}

/// A room where ann writes to bob, who has two sessions of one peer.
struct Bobs {
    scratch: Scratch,
    w: World,
    store: PgStore,
    ann: Session,
    bob_a: Session,
    bob_b: Session,
}

impl Bobs {
    /// `None`, said, without a Postgres server.
    async fn meet(db: &str) -> Option<Self> {
        let Some(scratch) = Scratch::create(db).await else {
            eprintln!("SKIPPED: no Postgres server reachable");
            return None;
        };
        let (w, store) = world_and_store(&scratch).await;
        let ann = w.agent("ann").await;
        let bob_a = w.session("bob", PeerKind::Operator, NamePolicy::Join).await;
        let bob_b = w.session("bob", PeerKind::Operator, NamePolicy::Join).await;
        Some(Self {
            scratch,
            w,
            store,
            ann,
            bob_a,
            bob_b,
        })
    }
}

fn lease_of(s: &Session) -> LeaseRequest {
    LeaseRequest {
        peer: s.peer.id,
        session: s.id,
        limit: 10,
        lease_ms: 60_000,
        include_seen: false,
        max_attempts: 5,
    }
}

/// The copies of the room whose lease is set though they are no longer queued.
async fn leased_but_not_queued(scratch: &Scratch) -> i64 {
    raw(scratch)
        .await
        .query_one(
            &format!(
                "SELECT count(*) FROM {}.deliveries \
                 WHERE lease_session IS NOT NULL AND state <> 'queued'",
                room_schema("lane")
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// A plain connection of the test's own, outside the store.
async fn raw(scratch: &Scratch) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&scratch.url, NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

/// A transaction of the test's own that holds `peer`'s row, as another replica's batch would,
/// until the test commits it.
async fn holding_the_row_of(scratch: &Scratch, peer: &Session) -> tokio_postgres::Client {
    let holder = raw(scratch).await;
    holder
        .batch_execute(&format!(
            "BEGIN; SET LOCAL search_path TO {}; \
             SELECT 1 FROM peers WHERE id = {} FOR UPDATE",
            room_schema("lane"),
            peer.peer.id
        ))
        .await
        .unwrap();
    holder
}

/// Waits until some backend waits for a lock: the event the test needs, polled.
async fn until_a_lock_wait(client: &tokio_postgres::Client) {
    for _ in 0..6000 {
        let row = client
            .query_one("SELECT count(*) FROM pg_locks WHERE NOT granted", &[])
            .await
            .unwrap();
        if row.get::<_, i64>(0) > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no transaction ever waited for the held row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_locked_elsewhere_holds_up_only_the_sends_that_need_it() {
    let Some(scratch) = Scratch::create("lane").await else {
        eprintln!("SKIPPED: no Postgres server reachable");
        return;
    };
    let w = world(&scratch).await;
    let (ann, ben) = (w.agent("ann").await, w.agent("ben").await);
    let (cat, dan) = (w.agent("cat").await, w.agent("dan").await);
    let holder = holding_the_row_of(&scratch, &ben).await;
    let to_ben = {
        let mailbox = w.mailbox.clone();
        tokio::spawn(async move {
            mailbox
                .send(ann.peer.id, Outgoing::to_peer("ben", "held up"))
                .await
        })
    };
    until_a_lock_wait(&raw(&scratch).await).await;
    // Later writes through the same lane pass the held-up one.
    let to_cat = (0..3).map(|i| {
        w.mailbox
            .send(dan.peer.id, Outgoing::to_peer("cat", format!("n{i}")))
    });
    cat_lands_then_ben(&w, [&cat, &ben], to_cat, holder, to_ben).await;
}

/// The end of the held-row tests: each send to cat lands, once, while ben's row is held and
/// the send to ben waits; that one lands once `holder` commits.
async fn cat_lands_then_ben<T, E: std::fmt::Debug>(
    w: &World,
    [cat, ben]: [&Session; 2],
    to_cat: impl IntoIterator<Item = impl Future<Output = Result<T, E>>>,
    holder: tokio_postgres::Client,
    to_ben: tokio::task::JoinHandle<Result<T, E>>,
) {
    for send in to_cat {
        // Bounded so that a lane stuck behind the held row fails here rather than hanging.
        tokio::time::timeout(Duration::from_secs(60), send)
            .await
            .expect("a send that needs no held row is not stuck behind one that does")
            .expect("a send that needs no held row goes through");
    }
    assert_eq!(w.lease(cat).await.len(), 3, "each lands once");
    assert!(!to_ben.is_finished(), "ben's row is still held");
    holder.batch_execute("COMMIT").await.unwrap();
    to_ben
        .await
        .unwrap()
        .expect("the held-up send lands once the row is free");
    assert_eq!(w.lease(ben).await.len(), 1);
}

/// Regression: the lane's short `lock_timeout` (meant for row locks) also bounded the wait for
/// the lock every notifying commit holds until its WAL flush is done, so behind another
/// replica's commit on a slow disk a whole batch failed `Busy` at its commit (seen as a claim
/// failing in `concurrent_workers_never_share_a_job` while the machine was loaded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_commits_behind_another_replicas_notify_instead_of_failing_busy_regression() {
    let Some(scratch) = Scratch::create("lane_notify").await else {
        eprintln!("SKIPPED: no Postgres server reachable");
        return;
    };
    let w = world(&scratch).await;
    let (ann, ben) = (w.agent("ann").await, w.agent("ben").await);
    // Other replicas' commits that write and notify, each holding the queue's lock through a
    // WAL flush that `commit_delay` stretches to 100 ms (a commit that wrote nothing is not
    // flushed at once, so would not wait); queued behind one another, they hold it for about
    // half a second, far past the lane's 10 ms.
    raw(&scratch)
        .await
        .batch_execute("CREATE TABLE lane_notify_test (x int)")
        .await
        .unwrap();
    let mut holders = Vec::new();
    for _ in 0..5 {
        let holder = raw(&scratch).await;
        holders.push(tokio::spawn(async move {
            holder
                .batch_execute(
                    "SET commit_delay = 100000; SET commit_siblings = 0; BEGIN; \
                     INSERT INTO lane_notify_test VALUES (1); NOTIFY lane_notify_test; COMMIT",
                )
                .await
        }));
    }
    until_the_notify_lock_is_held(&raw(&scratch).await).await;
    // A send wakes its recipient: the lane's commit notifies too.
    w.mailbox
        .send(ann.peer.id, Outgoing::to_peer("ben", "after the others"))
        .await
        .expect("the commit waits for the queue's lock instead of failing");
    for h in holders {
        h.await.unwrap().unwrap();
    }
    assert_eq!(w.lease(&ben).await.len(), 1);
}

/// Waits until a backend holds the lock Postgres takes to commit a notification (a lock on
/// "database 0"), polled without pause: each holder keeps it for only 100 ms.
async fn until_the_notify_lock_is_held(client: &tokio_postgres::Client) {
    for _ in 0..100_000 {
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'object' \
                 AND classid = 'pg_database'::regclass AND objid = 0 AND granted",
                &[],
            )
            .await
            .unwrap();
        if row.get::<_, i64>(0) > 0 {
            return;
        }
    }
    panic!("no commit ever held the notification queue's lock");
}

/// Two sessions of one peer lease in the same batch. In one transaction the row locks that
/// keep two leases apart across transactions hold nothing back: run side by side, both read
/// the same queued copies and both took them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_leases_of_one_peer_in_one_batch_never_hand_out_a_copy_twice() {
    let Some(Bobs {
        w,
        store,
        ann,
        bob_a,
        bob_b,
        // Held to the end: dropped, the database goes.
        scratch: _database,
    }) = Bobs::meet("lane_leases").await
    else {
        return;
    };
    for i in 0..5 {
        w.mailbox
            .send(ann.peer.id, Outgoing::to_peer("bob", format!("n{i}")))
            .await
            .unwrap();
    }
    let held = Held::lane(&store).await;
    let a = queued(store.lease(lease_of(&bob_a), T0)).await;
    let b = queued(store.lease(lease_of(&bob_b), T0)).await;
    held.free().await;
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let ids = |items: &[InboxItem]| -> Vec<MessageId> { items.iter().map(|i| i.id).collect() };
    let (mut all, a_ids) = (ids(&a), ids(&a));
    all.extend(ids(&b));
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        a.len() + b.len(),
        "one copy leased to both sessions: {a_ids:?} and {:?}",
        ids(&b)
    );
    assert_eq!(all.len(), 5, "between them the two leases took every copy");
}

/// A session's read of a copy whose lease has run out, in the same batch as another
/// session's lease that takes that copy. Side by side, the read came between the lease's
/// look at the queued copies and its taking of them, and the copy, read, was leased again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_and_a_read_of_one_copy_in_one_batch_run_one_after_the_other() {
    let Some(Bobs {
        scratch,
        w,
        store,
        ann,
        bob_a,
        bob_b,
    }) = Bobs::meet("lane_lease_read").await
    else {
        return;
    };
    let mut sent = Vec::new();
    for text in ["warm", "once"] {
        let to_bob = Outgoing::to_peer("bob", text);
        sent.push(w.mailbox.send(ann.peer.id, to_bob).await.unwrap().id);
    }
    assert_eq!(store.lease(lease_of(&bob_a), T0).await.unwrap().len(), 2);
    // A read first, so that the lane's connection has its statements prepared: a statement's
    // first use waits a round trip for its preparation, and the read's then fell after the
    // lease's take.
    store.ack(bob_a.peer.id, &sent[..1], T0).await.unwrap();
    // bob_a's lease runs out; bob_b may take the copy, and bob_a still reads it.
    let later = T0 + 60_001;
    let held = Held::lane(&store).await;
    let lease = queued(store.lease(lease_of(&bob_b), later)).await;
    let read = queued(store.ack(bob_a.peer.id, &sent[1..], later)).await;
    held.free().await;
    lease.await.unwrap();
    assert_eq!(read.await.unwrap(), 1, "the copy is read");
    assert_eq!(
        leased_but_not_queued(&scratch).await,
        0,
        "a copy read is leased to no session"
    );
}

/// A send held up by a row another replica holds, in one side with sends that need no held
/// row: it takes only itself out of the side (to a transaction of its own), the others run
/// side by side again and land, once each, and it lands when the row is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_held_up_in_a_side_leaves_the_rest_of_it_to_land() {
    let Some(scratch) = Scratch::create("lane_side_held").await else {
        eprintln!("SKIPPED: no Postgres server reachable");
        return;
    };
    let (w, store) = world_and_store(&scratch).await;
    let (ann, ben) = (w.agent("ann").await, w.agent("ben").await);
    let (cat, dan) = (w.agent("cat").await, w.agent("dan").await);
    let holder = holding_the_row_of(&scratch, &ben).await;
    let send = |from: &Session, to: &str, text: String| {
        let (mailbox, from, to) = (w.mailbox.clone(), from.peer.id, to.to_owned());
        Box::pin(async move { mailbox.send(from, Outgoing::to_peer(to, text)).await })
    };
    let held = Held::lane(&store).await;
    let to_ben = queued(send(&ann, "ben", "held up".into())).await;
    let mut to_cat = Vec::new();
    for i in 0..3 {
        to_cat.push(queued(send(&dan, "cat", format!("n{i}"))).await);
    }
    held.free().await;
    let to_ben = tokio::spawn(to_ben);
    cat_lands_then_ben(&w, [&cat, &ben], to_cat, holder, to_ben).await;
}
