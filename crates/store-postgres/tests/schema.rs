//! Pins the indexes of a room's mail tables: each one costs every send (or every update of a
//! copy) an entry, so adding one, or widening what one holds, is a visible, reviewed change to
//! this file. The embedded store pins the same in its plan tests.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use switchboard_conformance::{T0, World, roomy_limits};
use switchboard_core::{Dispatch, Exchange, Outgoing, Run, op};
use switchboard_store_postgres::{Database, PgOptions};
use switchboard_testkit::scratch::Scratch;
use tokio_postgres::NoTls;

const ROOM: &str = "pins";

/// The indexes of `messages` and `deliveries`, by name, and the rows each holds (`None`:
/// every row).
const EXPECTED: &[(&str, Option<&str>)] = &[
    ("deliveries_by_message", None),
    (
        "deliveries_in_flight",
        Some("(state = ANY (ARRAY['queued'::text, 'delivered'::text]))"),
    ),
    ("deliveries_pkey", None),
    ("messages_by_sender_seq", None),
    ("messages_created", None),
    ("messages_expires", None),
    (
        "messages_idempotency",
        Some("(idempotency_key IS NOT NULL)"),
    ),
    ("messages_pkey", None),
];

/// A scratch database with a world on the room `pins`, and a connection of its own to read the
/// schema with; `None` (said on stderr) when no server is reachable outside CI. The scratch
/// database is dropped with the first value, after the others.
async fn pins_room() -> Option<(Scratch, World, tokio_postgres::Client)> {
    let Some(scratch) = Scratch::create("schema").await else {
        eprintln!("SKIPPED: no Postgres server reachable");
        return None;
    };
    let db = Database::connect(&PgOptions::new(&scratch.url))
        .await
        .expect("connect to scratch db");
    let store = db.room(ROOM, T0).await.expect("open room");
    let (client, conn) = tokio_postgres::connect(&scratch.url, NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    Some((scratch, World::new(Arc::new(store), roomy_limits()), client))
}

/// v5 (the embedded store's v9 and v10): no second index on the sender, and the index a lease
/// reads holds the copies in flight only. Before, every read copy took one more entry in an
/// index that grew with the store, and every send one more in `messages_sender_time`.
#[tokio::test]
async fn a_rooms_mail_indexes_hold_only_what_their_statements_read_regression() {
    let Some((_scratch, w, client)) = pins_room().await else {
        return;
    };

    let rows = client
        .query(
            "SELECT i.indexname::text,
                    pg_get_expr(x.indpred, x.indrelid)
             FROM pg_indexes i
             JOIN pg_class c ON c.relname = i.indexname
             JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = i.schemaname
             JOIN pg_index x ON x.indexrelid = c.oid
             WHERE i.schemaname = $1 AND i.tablename IN ('messages', 'deliveries')
             ORDER BY 1",
            &[&format!("room_{ROOM}")],
        )
        .await
        .unwrap();
    let found: Vec<(String, Option<String>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let expected: Vec<(String, Option<String>)> = EXPECTED
        .iter()
        .map(|(n, p)| ((*n).to_owned(), p.map(str::to_owned)))
        .collect();
    assert_eq!(found, expected);
    // v6: new idempotency keys (time-ordered) join that index at its end, whoever sends them.
    let definition: String = client
        .query_one(
            "SELECT pg_get_indexdef(to_regclass($1))",
            &[&format!("room_{ROOM}.messages_idempotency")],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        definition.contains("(idempotency_key, sender_id)"),
        "key first: {definition}"
    );
    // v7: a new copy is counted by the statement that inserts it; the triggers count only the
    // copies that change state or go.
    let triggers: Vec<String> = client
        .query(
            "SELECT tgname::text FROM pg_trigger
             WHERE tgrelid = to_regclass($1) AND NOT tgisinternal ORDER BY 1",
            &[&format!("room_{ROOM}.deliveries")],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // v9: and a copy leaving the queue is counted by the statement that moves it.
    assert_eq!(triggers, ["deliveries_queued_delete"]);

    // The lease and the list of copies handed over but unacknowledged still find their copies
    // through it, and a read copy is gone from what they see.
    let (ann, ben) = (w.agent("ann").await, w.agent("ben").await);
    let mut sent = Vec::new();
    for body in ["one", "two"] {
        let m = w.mailbox.send(ann.peer.id, Outgoing::to_peer("ben", body));
        sent.push(m.await.expect("send").id);
    }
    assert_eq!(w.lease(&ben).await.len(), 2);
    let handed = op::MarkDelivered {
        session: ben.clone(),
        ids: sent.clone(),
    };
    assert_eq!(w.mailbox.run(handed).await.expect("hand over"), 2);
    w.mailbox.ack(ben.peer.id, &sent[..1]).await.expect("ack");
    let seen: Vec<_> = w.pull(&ben).await.iter().map(|i| i.id).collect();
    assert_eq!(
        seen,
        sent[1..],
        "only the unacknowledged copy is still in flight"
    );
}

/// v9: taking a lease changes no indexed column of a copy and finds room on its page, so each
/// copy's new row version is heap-only (no index entry written). With `deliveries_leased`
/// every lease wrote an entry in each of the table's four indexes.
#[tokio::test]
async fn taking_a_lease_writes_no_index_entry_regression() {
    let Some((_scratch, w, client)) = pins_room().await else {
        return;
    };
    let (ann, ben) = (w.agent("ann").await, w.agent("ben").await);
    for body in ["one", "two", "three"] {
        let m = w.mailbox.send(ann.peer.id, Outgoing::to_peer("ben", body));
        m.await.expect("send");
    }
    assert_eq!(w.lease(&ben).await.len(), 3);
    // The store's connections report their counts to the statistics a moment after their
    // transactions end: wait until the three updates show.
    let sql = "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
         WHERE schemaname = $1 AND relname = 'deliveries'";
    let schema = format!("room_{ROOM}");
    let counts = async || {
        // A statistics snapshot is cached per transaction: each look is a new one.
        client
            .batch_execute("SELECT pg_stat_clear_snapshot()")
            .await
            .unwrap();
        let row = client.query_one(sql, &[&schema]).await.unwrap();
        let (updated, heap_only): (i64, i64) = (row.get(0), row.get(1));
        (updated >= 3).then_some((updated, heap_only))
    };
    let what = "the lease's updates never reached the statistics";
    let (updated, heap_only) = within_a_minute(what, counts).await;
    assert_eq!(
        (updated, heap_only),
        (3, 3),
        "every lease's update heap-only"
    );
}

/// A room's `queued` counts (the pending cap's) after each step of a delivery, read from the
/// peers' rows.
async fn queued(client: &tokio_postgres::Client, names: &[&str]) -> Vec<i64> {
    let mut counts = Vec::new();
    for name in names {
        let sql = format!("SELECT queued FROM room_{ROOM}.peers WHERE name = $1");
        counts.push(client.query_one(&sql, &[name]).await.unwrap().get(0));
    }
    counts
}

/// The queued count moves only for a statement that moved a copy into or out of the queue
/// (v8's update trigger; since v9 the statements themselves): not for a lease taking copies
/// or an acknowledgement of copies already handed over, and for one that did, whichever way
/// (a hand-over, an acknowledgement straight from the queue), for each recipient apart.
#[tokio::test]
async fn the_queued_count_moves_only_when_a_copy_enters_or_leaves_the_queue() {
    let Some((_scratch, w, client)) = pins_room().await else {
        return;
    };
    let (ann, ben, cy) = (
        w.agent("ann").await,
        w.agent("ben").await,
        w.agent("cy").await,
    );
    let mut to_ben = Vec::new();
    for body in ["one", "two", "three"] {
        let m = w.mailbox.send(ann.peer.id, Outgoing::to_peer("ben", body));
        to_ben.push(m.await.expect("send").id);
    }
    let to_cy = w.mailbox.send(ann.peer.id, Outgoing::to_peer("cy", "four"));
    let to_cy = to_cy.await.expect("send").id;
    assert_eq!(queued(&client, &["ben", "cy"]).await, [3, 1]);

    // Taking the leases moves nothing out of the queue.
    assert_eq!(w.lease(&ben).await.len(), 3);
    assert_eq!(queued(&client, &["ben", "cy"]).await, [3, 1]);
    // Two handed over leave it; the third stays.
    let handed = op::MarkDelivered {
        session: ben.clone(),
        ids: to_ben[..2].to_vec(),
    };
    assert_eq!(w.mailbox.run(handed).await.expect("hand over"), 2);
    assert_eq!(queued(&client, &["ben", "cy"]).await, [1, 1]);
    // Acknowledging what was handed over moves nothing; acknowledging straight from the queue
    // does, for the recipient it belongs to only.
    w.mailbox.ack(ben.peer.id, &to_ben[..2]).await.expect("ack");
    assert_eq!(queued(&client, &["ben", "cy"]).await, [1, 1]);
    w.mailbox.ack(ben.peer.id, &to_ben[2..]).await.expect("ack");
    w.mailbox.ack(cy.peer.id, &[to_cy]).await.expect("ack");
    assert_eq!(queued(&client, &["ben", "cy"]).await, [0, 0]);

    // `gc`'s expiry takes copies of several recipients out at once, each counted apart.
    for (to, n) in [("ben", 2), ("cy", 1)] {
        for _ in 0..n {
            let mut short = Outgoing::to_peer(to, "short-lived");
            short.ttl = Some(std::time::Duration::from_secs(1));
            w.mailbox.send(ann.peer.id, short).await.expect("send");
        }
    }
    assert_eq!(queued(&client, &["ben", "cy"]).await, [2, 1]);
    w.clock.advance_ms(2000);
    assert_eq!(w.mailbox.gc().await.expect("gc").expired, 3);
    assert_eq!(queued(&client, &["ben", "cy"]).await, [0, 0]);
}

/// v9: a read counts out of the queue only the copies it finds queued. A hand-over by another
/// replica that holds a copy when its recipient acknowledges it counts it out first; the read
/// waits for it, then reads the copy handed over and must not count it out again (nor miss
/// it: a read that chose its copies by the state it saw before the wait would).
#[tokio::test]
async fn a_read_racing_another_replicas_hand_over_counts_the_copy_once_regression() {
    let Some((scratch, w, client)) = pins_room().await else {
        return;
    };
    let (ann, ben) = (w.agent("ann").await, w.agent("ben").await);
    let sent = w
        .mailbox
        .send(ann.peer.id, Outgoing::to_peer("ben", "racing"));
    let id = sent.await.expect("send").id;
    assert_eq!(queued(&client, &["ben"]).await, [1]);

    // The other replica's hand-over, as its statement writes it, not yet committed.
    let (other, conn) = tokio_postgres::connect(&scratch.url, NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let handed = format!(
        "BEGIN;
         UPDATE room_{ROOM}.deliveries SET state = 'delivered', delivered_at = 1
             WHERE message_id = {id};
         UPDATE room_{ROOM}.peers SET queued = queued - 1 WHERE name = 'ben';"
    );
    other.batch_execute(&handed).await.unwrap();
    let mailbox = w.mailbox.clone();
    let reader = ben.peer.id;
    let read = tokio::spawn(async move { mailbox.ack(reader, &[id]).await });
    // Wait until the read waits for the hand-over's lock, then let the hand-over commit.
    let waiting = async || {
        let sql = "SELECT COUNT(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'";
        let n: i64 = client.query_one(sql, &[]).await.unwrap().get(0);
        (n > 0).then_some(())
    };
    within_a_minute("the read never waited for the hand-over", waiting).await;
    other.batch_execute("COMMIT").await.unwrap();
    let read = read.await.unwrap().expect("ack");
    assert_eq!(read, 1, "the copy handed over meanwhile is read");
    assert_eq!(queued(&client, &["ben"]).await, [0], "counted out once");
}

/// A new room's statements are planned once its tables hold a handful of rows, and Postgres
/// keeps those generic plans until a table they read is analyzed: without autovacuum (this
/// project's test server runs without it), an acknowledgement's check of which copies exist
/// went on hashing every copy the recipient ever had. The process that inserts a room's
/// messages analyzes its tables as the newest id reaches 1,024 and each doubling after; and its
/// `jobs` as the newest job id does.
#[tokio::test]
async fn a_growing_room_has_its_planner_statistics_refreshed_regression() {
    let Some((_scratch, w, client)) = pins_room().await else {
        return;
    };
    let ann = w.agent("ann").await;
    w.agent("ben").await;
    let send = |i: i64| {
        w.mailbox
            .send(ann.peer.id, Outgoing::to_peer("ben", format!("{i}")))
    };
    grow_until_analyzed(
        &client,
        "messages",
        &["deliveries", "messages", "peers"],
        send,
    )
    .await;
    // A room's jobs grow on their own: the claim reads them by agent and state.
    let dispatch = |i: i64| {
        w.mailbox
            .dispatch(ann.peer.id, Dispatch::new("ben", format!("{i}")))
    };
    grow_until_analyzed(&client, "jobs", &["jobs"], dispatch).await;
}

/// Grows `table` of the `pins` room to its 1,023rd row with `insert(i)` (64 at a time, so the
/// write lane takes them in batches), then inserts the 1,024th and waits until each of
/// `analyzed` has been analyzed once more than before it.
async fn grow_until_analyzed<T, E: std::fmt::Debug, F: Future<Output = Result<T, E>>>(
    client: &tokio_postgres::Client,
    table: &str,
    analyzed: &[&str],
    insert: impl Fn(i64) -> F,
) {
    let inserts = async |from: i64, n: i64| {
        let all = futures_util::future::join_all((from..from + n).map(&insert)).await;
        for inserted in all {
            inserted.expect("insert");
        }
    };
    let newest = format!("SELECT COALESCE(MAX(id), 0) FROM room_{ROOM}.{table}");
    loop {
        let have: i64 = client.query_one(&newest, &[]).await.unwrap().get(0);
        let n = (1023 - have).min(64);
        if n <= 0 {
            assert_eq!(have, 1023, "the ids run one by one");
            break;
        }
        inserts(have, n).await;
    }
    let count = async || -> Vec<i64> {
        // A statistics snapshot is cached per transaction: each look is a new one.
        client
            .batch_execute("SELECT pg_stat_clear_snapshot()")
            .await
            .unwrap();
        let sql = "SELECT analyze_count + autoanalyze_count FROM pg_stat_user_tables
             WHERE schemaname = $1 AND relname = ANY($2) ORDER BY relname";
        let rows = client
            .query(sql, &[&format!("room_{ROOM}"), &analyzed])
            .await
            .unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    };
    // Autovacuum, where the server runs it, may have analyzed them meanwhile: the count is
    // what is compared.
    let before = count().await;
    inserts(1023, 1).await;
    // The refresh runs beside the lane after the commit: wait for it.
    let analyzed_again = async || {
        let now = count().await;
        (now.len() == analyzed.len() && now.iter().zip(&before).all(|(n, b)| n > b)).then_some(())
    };
    let what = format!(
        "{analyzed:?} not analyzed after the 1,024th row of {table} (counts before: {before:?})"
    );
    within_a_minute(&what, analyzed_again).await;
}

/// Polls `look` until it gives a value, for at most a minute (then fails, saying `what` did
/// not happen): what these tests wait for is another connection's work reaching the server.
async fn within_a_minute<T>(what: &str, mut look: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(found) = look().await {
            return found;
        }
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
