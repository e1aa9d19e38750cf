//! Pins the indexes of a room's mail tables: each one costs every send (or every update of a
//! copy) an entry, so adding one, or widening what one holds, is a visible, reviewed change to
//! this file. The embedded store pins the same in its plan tests.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use switchboard_conformance::{T0, World, roomy_limits};
use switchboard_core::{Exchange, Outgoing, Run, op};
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
    ("deliveries_leased", Some("(lease_session IS NOT NULL)")),
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

/// v5 (the embedded store's v9 and v10): no second index on the sender, and the index a lease
/// reads holds the copies in flight only. Before, every read copy took one more entry in an
/// index that grew with the store, and every send one more in `messages_sender_time`.
#[tokio::test]
async fn a_rooms_mail_indexes_hold_only_what_their_statements_read_regression() {
    let Some(scratch) = Scratch::create("schema").await else {
        eprintln!("SKIPPED: no Postgres server reachable");
        return;
    };
    let db = Database::connect(&PgOptions::new(&scratch.url))
        .await
        .expect("connect to scratch db");
    let store = db.room(ROOM, T0).await.expect("open room");
    let (client, conn) = tokio_postgres::connect(&scratch.url, NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);

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
    assert_eq!(
        triggers,
        ["deliveries_queued_delete", "deliveries_queued_update"]
    );

    // The lease and the list of copies handed over but unacknowledged still find their copies
    // through it, and a read copy is gone from what they see.
    let w = World::new(Arc::new(store), roomy_limits());
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
