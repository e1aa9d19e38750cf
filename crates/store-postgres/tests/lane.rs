//! The write lane: a row lock held elsewhere holds up only the writes that need that row (the
//! lane sets them aside rather than wait with the whole batch behind them), and a commit
//! waits for the notification queue's lock however long another replica holds it. That
//! concurrent writes share commits is a matter of speed, shown by the benchmark, not here.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use switchboard_conformance::{T0, World, roomy_limits};
use switchboard_core::{Exchange, Outgoing};
use switchboard_store_postgres::migrate::room_schema;
use switchboard_store_postgres::{Database, PgOptions};
use switchboard_testkit::scratch::Scratch;
use tokio_postgres::NoTls;

async fn world(scratch: &Scratch) -> World {
    let db = Database::connect(&PgOptions::new(&scratch.url))
        .await
        .expect("connect to scratch db");
    let store = db.room("lane", T0).await.expect("open room");
    World::new(Arc::new(store), roomy_limits())
}

/// A plain connection of the test's own, outside the store.
async fn raw(scratch: &Scratch) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&scratch.url, NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
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
    // Another transaction holds ben's row, as another replica's batch would.
    let holder = raw(&scratch).await;
    holder
        .batch_execute(&format!(
            "BEGIN; SET LOCAL search_path TO {}; \
             SELECT 1 FROM peers WHERE id = {} FOR UPDATE",
            room_schema("lane"),
            ben.peer.id
        ))
        .await
        .unwrap();
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
    for i in 0..3 {
        let send = w
            .mailbox
            .send(dan.peer.id, Outgoing::to_peer("cat", format!("n{i}")));
        // Bounded so that a lane stuck behind the held row fails here rather than hanging.
        tokio::time::timeout(Duration::from_secs(60), send)
            .await
            .expect("a send that needs no held row is not stuck behind one that does")
            .expect("a send that needs no held row goes through");
    }
    assert_eq!(w.lease(&cat).await.len(), 3);
    assert!(!to_ben.is_finished(), "ben's row is still held");
    holder.batch_execute("COMMIT").await.unwrap();
    to_ben
        .await
        .unwrap()
        .expect("the held-up send lands once the row is free");
    assert_eq!(w.lease(&ben).await.len(), 1);
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
