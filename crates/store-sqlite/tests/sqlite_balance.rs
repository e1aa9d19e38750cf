//! The SQLite this store links is carried with one fix (`patches/libsqlite3-sys/PATCHES.md`):
//! when the B-tree's rebalancing swaps two pages' numbers, it swaps through the first number
//! past the end of the database instead of the lock-byte page's, so a commit's truncate of the
//! page cache no longer walks every cached page. The fix changes a temporary key in the page
//! cache; what it must never do is lose, mix up or corrupt a page. This drives many rebalances
//! whose pages come out of order (pages freed by deletes come back from the free list in any
//! order), inside savepoints that are rolled back or released, with a page cache small enough
//! that pages are spilled and read back mid-transaction, and checks the file and every row
//! after each round.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use rusqlite::{Connection, params};
use switchboard_testkit::rng::Rng;

fn value(rng: &mut Rng) -> Vec<u8> {
    // From a few bytes to more than a page, so cells overflow now and then.
    let len = match rng.below(10) {
        0 => 3_000 + rng.below(3_000),
        _ => 20 + rng.below(400),
    };
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

fn apply(conn: &Connection, model: &mut BTreeMap<String, Vec<u8>>, rng: &mut Rng, ops: usize) {
    for _ in 0..ops {
        let key = format!("k{:06}", rng.below(4_000));
        if rng.below(3) == 0 {
            conn.execute("DELETE FROM t WHERE k = ?1", params![key])
                .unwrap();
            model.remove(&key);
        } else {
            let v = value(rng);
            conn.execute(
                "INSERT INTO t (k, v) VALUES (?1, ?2)
                 ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                params![key, v],
            )
            .unwrap();
            model.insert(key, v);
        }
    }
}

/// Every row of the table, read back from the file.
fn rows(conn: &Connection) -> BTreeMap<String, Vec<u8>> {
    conn.prepare("SELECT k, v FROM t")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn check(conn: &Connection, model: &BTreeMap<String, Vec<u8>>, round: usize) {
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(verdict, "ok", "round {round}: the file is damaged");
    let rows = rows(conn);
    assert!(
        rows == *model,
        "round {round}: {} rows read back, {} expected, or a value differs",
        rows.len(),
        model.len()
    );
}

#[test]
fn balance_swaps_through_the_first_page_past_the_end_keep_the_store_intact() {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("balance.db")).unwrap();
    // As the store opens its file (WAL, full sync), with a cache of 64 pages instead of 32 MB.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = 64;
         CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT NOT NULL UNIQUE, v BLOB NOT NULL);
         CREATE INDEX t_by_len ON t (length(v), k);",
    )
    .unwrap();
    let mut rng = Rng(0x5eed_5717_c4b0_a4d1);
    let mut model = BTreeMap::new();
    for round in 0..40 {
        let committed = model.clone();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        apply(&conn, &mut model, &mut rng, 150);
        // A savepoint undone: the pages its balances numbered are given back.
        let before = model.clone();
        conn.execute_batch("SAVEPOINT s").unwrap();
        apply(&conn, &mut model, &mut rng, 150);
        if round % 3 == 0 {
            conn.execute_batch("ROLLBACK TO s").unwrap();
            model = before;
        }
        conn.execute_batch("RELEASE s").unwrap();
        apply(&conn, &mut model, &mut rng, 100);
        if round % 7 == 6 {
            // A whole transaction undone: the rows are the last commit's again.
            conn.execute_batch("ROLLBACK").unwrap();
            model = committed;
        } else {
            conn.execute_batch("COMMIT").unwrap();
        }
        check(&conn, &model, round);
    }
    assert!(
        model.len() > 1_000,
        "the table stayed too small to rebalance much"
    );
}
