//! The write lane: a row lock held elsewhere holds up only the writes that need that row (the
//! lane sets them aside rather than wait with the whole batch behind them). That concurrent
//! writes share commits is a matter of speed, shown by the benchmark, not here.

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
