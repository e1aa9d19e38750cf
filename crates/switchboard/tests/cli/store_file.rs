//! The store file itself: permissions, a crowd of first opens, corrupt and read-only files.

use std::process::Stdio;

use crate::harness::{Home, stderr};

const STORE: i32 = 5;

#[cfg(unix)]
#[test]
fn store_is_private_to_its_user() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    let nested = home.path().join("fresh/dir");
    let out = std::process::Command::new(crate::harness::BIN)
        .args(["--home", nested.to_str().unwrap(), "status"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&nested), 0o700);
    assert_eq!(mode(&nested.join("switchboard.db")), 0o600);
}

#[test]
fn ten_processes_opening_a_fresh_store_at_once_agree_on_one_schema() {
    let home = Home::new();
    let children: Vec<_> = (0..10)
        .map(|_| {
            home.cmd("alice")
                .args(["--json", "status"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(status["schema_version"], 4);
    }
    let conn = rusqlite::Connection::open(home.db()).unwrap();
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM schema_version ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(versions, [1, 2, 3, 4], "each migration ran exactly once");
}

#[test]
fn corrupt_store_file_is_reported_and_left_alone() {
    let home = Home::new();
    std::fs::write(
        home.db(),
        b"this is not a database, it is a shopping list\n".repeat(200),
    )
    .unwrap();
    let before = std::fs::read(home.db()).unwrap();
    for args in [&["status"][..], &["send", "bob", "hi"]] {
        let out = home.run("alice", args);
        assert_eq!(out.status.code(), Some(STORE), "{args:?}");
        assert!(
            stderr(&out).contains("is not a valid switchboard database"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(
        std::fs::read(home.db()).unwrap(),
        before,
        "not a byte changed"
    );
}

#[cfg(unix)]
#[test]
fn read_only_store_file_refuses_writes_and_stays_unchanged() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    home.json("bob", &["inbox"]);
    home.json("alice", &["send", "bob", "before"]);
    std::fs::set_permissions(home.db(), std::fs::Permissions::from_mode(0o400)).unwrap();
    let before = std::fs::read(home.db()).unwrap();
    let out = home.run("alice", &["send", "bob", "after"]);
    assert_eq!(out.status.code(), Some(STORE));
    assert!(stderr(&out).contains("is read-only"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(home.db()).unwrap(),
        before,
        "not a byte changed"
    );
    let peers = home.json("observer", &["peers"]);
    assert_eq!(peers.as_array().unwrap().len(), 2, "reading still works");
}
