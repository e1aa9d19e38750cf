//! Pins the stored schema (SPEC 7): every table and column that can hold data is named here, so
//! adding a field is a visible, reviewed change to this file. No catch-all columns.

#![allow(clippy::unwrap_used)]

use switchboard_store_sqlite::{DB_FILE, SqliteStore, migrate};

const EXPECTED: &[(&str, &[&str])] = &[
    ("answer_sources", &["answer_id", "position", "source"]),
    (
        "deliveries",
        &[
            "message_id",
            "recipient_id",
            "state",
            "attempts",
            "lease_session",
            "lease_until",
            "delivered_at",
            "read_at",
        ],
    ),
    (
        "jobs",
        &[
            "id",
            "dispatcher_id",
            "agent",
            "prompt",
            "model",
            "write_access",
            "request_id",
            "state",
            "attempts",
            "fence",
            "worker",
            "lease_until",
            "result",
            "error",
            "branch",
            "created_at",
            "updated_at",
            "expires_at",
            "reserve_repo",
            "reserve_globs",
        ],
    ),
    (
        "messages",
        &[
            "id",
            "sender_id",
            "recipient_id",
            "scope",
            "body",
            "reply_to",
            "idempotency_key",
            "created_at",
            "expires_at",
            "kind",
            "sender_seq",
        ],
    ),
    (
        "peers",
        &[
            "id",
            "name",
            "kind",
            "client_kind",
            "client_version",
            "host",
            "cwd",
            "git_root",
            "git_branch",
            "summary",
            "created_at",
            "last_seen_at",
            "queued",
            "sent_seq",
        ],
    ),
    (
        "questions",
        &[
            "message_id",
            "context_hint",
            "state",
            "reply_id",
            "basis",
            "closed_at",
        ],
    ),
    (
        "reservations",
        &[
            "id",
            "repo",
            "peer_id",
            "session_id",
            "mode",
            "globs",
            "reason",
            "created_at",
            "expires_at",
            "released_at",
        ],
    ),
    ("schema_version", &["version"]),
    (
        "sessions",
        &[
            "id",
            "peer_id",
            "process_key",
            "started_at",
            "ended_at",
            "client_pid",
        ],
    ),
];

const FORBIDDEN: &[&str] = &[
    "metadata", "payload", "blob", "data", "extra", "json", "attrs",
];

#[test]
fn schema_columns_are_exactly_the_declared_fields() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected_tables: Vec<&str> = EXPECTED.iter().map(|(t, _)| *t).collect();
    assert_eq!(tables, expected_tables);
    for (table, columns) in EXPECTED {
        let found: Vec<String> = conn
            .prepare(&format!(
                "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
            ))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(&found, columns, "columns of {table}");
        for column in &found {
            assert!(
                !FORBIDDEN.contains(&column.as_str()),
                "{table}.{column} is a catch-all column"
            );
        }
    }
}

#[test]
fn a_store_from_an_older_version_is_migrated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            .unwrap();
        conn.execute_batch(migrate::MIGRATIONS[0]).unwrap();
        conn.execute_batch(
            "INSERT INTO schema_version VALUES (1);
             INSERT INTO peers (name, kind, created_at, last_seen_at) VALUES ('old', 'agent', 1, 1);",
        )
        .unwrap();
    }
    drop(SqliteStore::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(migrate::current(&conn).unwrap(), migrate::latest());
    let kept: String = conn
        .query_row("SELECT name FROM peers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, "old", "data survives the migration");
}

/// SQLite's own check of a store file after a migration edited it: every index matches its
/// table, every page is where it belongs.
fn assert_intact(conn: &rusqlite::Connection) {
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
}

/// A store file at `path` as version `version` of the schema left it, opened raw.
fn store_at_version(path: &std::path::Path, version: usize) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        .unwrap();
    for (i, sql) in migrate::MIGRATIONS[..version].iter().enumerate() {
        conn.execute_batch(sql).unwrap();
        conn.execute(
            "INSERT INTO schema_version VALUES (?1)",
            [i64::try_from(i + 1).unwrap()],
        )
        .unwrap();
    }
    conn
}

/// v6 keeps the pending cap's counter on the peer and numbers each sender's messages: a store
/// migrated from v5 starts with both right, and the triggers keep the counter right after.
#[test]
fn a_v5_store_gets_its_queued_counters_and_send_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    {
        let conn = store_at_version(&path, 5);
        conn.execute_batch(
            "INSERT INTO peers (id, name, kind, created_at, last_seen_at)
                 VALUES (1, 'a', 'agent', 1, 1), (2, 'b', 'agent', 1, 1);
             INSERT INTO messages (id, sender_id, recipient_id, body, created_at, expires_at)
                 VALUES (10, 1, 2, 'x', 1, 9), (11, 2, 1, 'y', 2, 9), (12, 1, 2, 'z', 3, 9);
             INSERT INTO deliveries (message_id, recipient_id, state)
                 VALUES (10, 2, 'queued'), (11, 1, 'read'), (12, 2, 'queued');",
        )
        .unwrap();
    }
    drop(SqliteStore::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let queued = |id: i64| -> i64 {
        conn.query_row("SELECT queued FROM peers WHERE id = ?1", [id], |r| r.get(0))
            .unwrap()
    };
    assert_eq!((queued(1), queued(2)), (0, 2), "counted on migration");
    let seqs: Vec<(i64, i64)> = conn
        .prepare("SELECT id, sender_seq FROM messages ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(seqs, [(10, 1), (11, 1), (12, 2)], "numbered per sender");
    conn.execute_batch(
        "UPDATE deliveries SET state = 'delivered' WHERE message_id = 10;
         UPDATE deliveries SET state = 'queued' WHERE message_id = 11;
         DELETE FROM deliveries WHERE message_id = 12;",
    )
    .unwrap();
    assert_eq!((queued(1), queued(2)), (1, 0), "kept by the triggers");
}

/// v8 rewrites three CHECKs from `IN` lists to comparisons by editing the stored schema: a v7
/// store ends with the new text, still refuses what it refused, and keeps its rows.
#[test]
fn a_v7_store_keeps_its_checks_as_comparisons() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    {
        let conn = store_at_version(&path, 7);
        conn.execute_batch(
            "INSERT INTO peers (id, name, kind, created_at, last_seen_at) VALUES (1, 'a', 'agent', 1, 1);
             INSERT INTO messages (id, sender_id, recipient_id, body, created_at, expires_at)
                 VALUES (10, 1, 1, 'x', 1, 9);
             INSERT INTO deliveries (message_id, recipient_id, state) VALUES (10, 1, 'queued');",
        )
        .unwrap();
    }
    drop(SqliteStore::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(migrate::current(&conn).unwrap(), migrate::latest());
    let schema: String = conn
        .query_row(
            "SELECT group_concat(sql, ';') FROM sqlite_schema WHERE name IN ('messages', 'deliveries')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!schema.contains(" IN ("), "no IN list left: {schema}");
    assert!(schema.contains("state = 'dead'") && schema.contains("kind = 'job'"));
    let refused = |sql: &str| conn.execute_batch(sql).is_err();
    assert!(refused("UPDATE deliveries SET state = 'lost'"));
    assert!(refused(
        "INSERT INTO messages (sender_id, recipient_id, body, created_at, expires_at, kind)
             VALUES (1, 1, 'y', 1, 9, 'memo')"
    ));
    assert!(refused(
        "INSERT INTO messages (sender_id, scope, body, created_at, expires_at)
             VALUES (1, 'everywhere', 'y', 1, 9)"
    ));
    conn.execute_batch("UPDATE deliveries SET state = 'read'")
        .unwrap();
    assert_intact(&conn);
}

/// v10 keeps only the copies in flight (queued, handed over) in the (recipient, state,
/// message) index. It held every copy, so each read copy was one more entry at the end of a
/// part of the index that grew with the store: a v9 store's read copies leave it on migration,
/// and a copy read afterwards is taken out rather than moved.
#[test]
fn a_read_copy_leaves_the_in_flight_index_regression() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    {
        let conn = store_at_version(&path, 9);
        conn.execute_batch(
            "INSERT INTO peers (id, name, kind, created_at, last_seen_at) VALUES (1, 'a', 'agent', 1, 1);
             INSERT INTO messages (id, sender_id, recipient_id, body, created_at, expires_at)
                 VALUES (10, 1, 1, 'x', 1, 9), (11, 1, 1, 'y', 1, 9), (12, 1, 1, 'z', 1, 9);
             INSERT INTO deliveries (message_id, recipient_id, state)
                 VALUES (10, 1, 'read'), (11, 1, 'delivered'), (12, 1, 'queued');",
        )
        .unwrap();
    }
    drop(SqliteStore::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    // Entries, not rows: the cells of the index's leaf pages, as SQLite's `dbstat` counts them.
    let entries = || -> i64 {
        conn.query_row(
            "SELECT COALESCE(SUM(ncell), 0) FROM dbstat
             WHERE name = 'deliveries_in_flight' AND pagetype = 'leaf'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(
        entries(),
        2,
        "the handed-over and the queued copy, not the read one"
    );
    conn.execute_batch("UPDATE deliveries SET state = 'read' WHERE message_id = 11")
        .unwrap();
    assert_eq!(entries(), 1, "a copy read is taken out of the index");
    assert_intact(&conn);
}

/// v13 rebuilds the copies' table keyed by (message, recipient) and keeps each sender's newest
/// number on its row: a v12 store keeps every copy as it was and every recipient's count of
/// queued copies, its senders' newest numbers are on their rows, and the triggers, made again
/// on the new table, still count.
#[test]
fn a_v12_store_keeps_its_copies_counts_and_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let copies = "SELECT message_id, recipient_id, state, attempts, lease_session, lease_until,
                      delivered_at, read_at
                  FROM deliveries ORDER BY message_id, recipient_id";
    type Copy = (
        i64,
        i64,
        String,
        i64,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    let read = |conn: &rusqlite::Connection| -> Vec<Copy> {
        conn.prepare(copies)
            .unwrap()
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let before = {
        let conn = store_at_version(&path, 12);
        conn.execute_batch(
            "INSERT INTO peers (id, name, kind, created_at, last_seen_at)
                 VALUES (1, 'a', 'agent', 1, 1), (2, 'b', 'agent', 1, 1), (3, 'c', 'agent', 1, 1);
             INSERT INTO messages (id, sender_id, recipient_id, scope, body, created_at,
                     expires_at, sender_seq)
                 VALUES (10, 1, 2, NULL, 'x', 1, 9, 1), (11, 1, NULL, 'room', 'y', 2, 9, 2),
                        (12, 2, 1, NULL, 'z', 3, 9, 1), (13, 1, 3, NULL, 'notice', 4, 9, NULL);
             INSERT INTO deliveries (message_id, recipient_id, state, attempts, lease_session,
                     lease_until, delivered_at, read_at)
                 VALUES (10, 2, 'read', 1, NULL, NULL, 5, 6),
                        (11, 2, 'queued', 1, 7, 8, NULL, NULL),
                        (11, 3, 'delivered', 1, NULL, NULL, 5, NULL),
                        (12, 1, 'queued', 0, NULL, NULL, NULL, NULL),
                        (13, 3, 'queued', 0, NULL, NULL, NULL, NULL);
             UPDATE peers SET queued = 1;",
        )
        .unwrap();
        read(&conn)
    };
    drop(SqliteStore::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(read(&conn), before, "every copy as it was");
    let peer = |column: &str| -> Vec<i64> {
        conn.prepare(&format!("SELECT {column} FROM peers ORDER BY id"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        peer("queued"),
        [1, 1, 1],
        "the counts of queued copies kept"
    );
    assert_eq!(peer("sent_seq"), [2, 1, 0], "each sender's newest number");
    let pk: String = conn
        .query_row(
            "SELECT group_concat(name, ', ') FROM (SELECT name
                 FROM pragma_table_info('deliveries') WHERE pk > 0 ORDER BY pk)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(pk, "message_id, recipient_id", "keyed by message first");
    conn.execute_batch(
        "UPDATE deliveries SET state = 'read' WHERE message_id = 12;
         DELETE FROM deliveries WHERE message_id = 13;",
    )
    .unwrap();
    assert_eq!(peer("queued"), [0, 1, 0], "kept by the triggers after");
    assert_intact(&conn);
}

#[test]
fn the_token_file_holds_ids_grants_and_hashes_only() {
    let dir = tempfile::tempdir().unwrap();
    drop(switchboard_store_sqlite::SqliteTokens::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join("tokens.db")).unwrap();
    let found: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('tokens') ORDER BY cid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        found,
        [
            "id",
            "kind",
            "room",
            "peer",
            "label",
            "secret_hash",
            "created_at",
            "revoked_at"
        ]
    );
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1, "the token file has one table");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("tokens.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "tokens.db is private to its owner");
    }
}
