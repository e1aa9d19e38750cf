//! Pins the stored schema (SPEC 7): every table and column that can hold data is named here, so
//! adding a field is a visible, reviewed change to this file. No catch-all columns.

#![allow(clippy::unwrap_used)]

use switchboard_store_sqlite::{DB_FILE, SqliteStore};

const EXPECTED: &[(&str, &[&str])] = &[
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
        ],
    ),
    ("schema_version", &["version"]),
    (
        "sessions",
        &["id", "peer_id", "process_key", "started_at", "ended_at"],
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
