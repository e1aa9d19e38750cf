//! Bad input gets a specific error and exit code, and writes nothing.

use crate::harness::{Home, stderr};

const BAD_INPUT: i32 = 2;
const NOT_FOUND: i32 = 3;
const LIMIT: i32 = 4;

fn setup() -> Home {
    let home = Home::new();
    home.json("bob", &["inbox"]);
    home.json("alice", &["send", "bob", "first"]);
    home
}

#[test]
fn unknown_peer_names_the_peers_there_are() {
    let home = setup();
    let before = home.messages();
    let out = home.run("alice", &["send", "bobby", "hi"]);
    assert_eq!(out.status.code(), Some(NOT_FOUND));
    assert!(
        stderr(&out).contains("no peer named 'bobby'; peers are: bob"),
        "{}",
        stderr(&out)
    );
    assert_eq!(home.messages(), before);
}

#[test]
fn oversize_text_is_refused_with_the_limit() {
    let home = setup();
    let before = home.messages();
    let out = home.run_fed("alice", &["send", "bob", "-"], &vec![b'x'; 64 * 1024 + 1]);
    assert_eq!(out.status.code(), Some(BAD_INPUT));
    assert!(
        stderr(&out).contains("message text is 65537 bytes; the limit is 65536 bytes"),
        "{}",
        stderr(&out)
    );
    assert_eq!(home.messages(), before);
}

#[test]
fn invalid_names_are_refused_before_anything_is_written() {
    let home = setup();
    let before = home.messages();
    let out = home.run("alice", &["send", "Bob", "hi"]);
    assert_eq!(out.status.code(), Some(BAD_INPUT));
    assert!(
        stderr(&out).contains("peer name 'Bob' has the character 'B'"),
        "{}",
        stderr(&out)
    );
    let out = home.run("Not A Name", &["send", "bob", "hi"]);
    assert_eq!(out.status.code(), Some(BAD_INPUT));
    assert!(
        stderr(&out).contains("peer name 'Not A Name'"),
        "{}",
        stderr(&out)
    );
    let peers = home.json("observer", &["peers"]);
    assert_eq!(peers.as_array().unwrap().len(), 2, "no peer was created");
    assert_eq!(home.messages(), before);
}

#[test]
fn empty_text_is_refused() {
    let home = setup();
    let out = home.run("alice", &["send", "bob", "   "]);
    assert_eq!(out.status.code(), Some(BAD_INPUT));
    assert!(
        stderr(&out).contains("message text is empty"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn full_inbox_names_the_pending_cap() {
    let home = setup();
    let before = home.messages();
    let out = home
        .cmd("alice")
        .env("SWITCHBOARD_PENDING_CAP", "1")
        .args(["send", "bob", "second"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(LIMIT));
    assert!(
        stderr(&out).contains("peer 'bob' already has 1 unread messages waiting (the pending cap"),
        "{}",
        stderr(&out)
    );
    assert_eq!(home.messages(), before);
}

#[test]
fn rate_limit_names_the_limit_and_when_to_retry() {
    let home = setup();
    let before = home.messages();
    let out = home
        .cmd("alice")
        .env("SWITCHBOARD_RATE_LIMIT", "1")
        .args(["send", "bob", "second"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(LIMIT));
    let err = stderr(&out);
    assert!(
        err.contains("rate limit: at most 1 messages per 1 min"),
        "{err}"
    );
    assert!(err.contains("try again in"), "{err}");
    assert_eq!(home.messages(), before);
}

#[test]
fn acking_is_never_partial_for_unknown_reply_targets() {
    let home = setup();
    let before = home.messages();
    let out = home.run("bob", &["send", "alice", "re", "--reply-to", "999"]);
    assert_eq!(out.status.code(), Some(NOT_FOUND));
    assert!(stderr(&out).contains("reply_to 999"), "{}", stderr(&out));
    assert_eq!(home.messages(), before);
}

#[test]
fn bad_settings_say_where_the_mistake_is() {
    let home = setup();
    let out = home
        .cmd("alice")
        .env("SWITCHBOARD_RATE_LIMIT", "lots")
        .args(["status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(BAD_INPUT));
    assert!(stderr(&out).contains("SWITCHBOARD_RATE_LIMIT: 'lots' is not a whole number"));
    std::fs::write(home.path().join("config.toml"), "pending_kap = 3\n").unwrap();
    let out = home.run("alice", &["status"]);
    assert_eq!(out.status.code(), Some(BAD_INPUT));
    assert!(stderr(&out).contains("pending_kap"), "{}", stderr(&out));
}

#[test]
fn unknown_watch_peer_is_refused() {
    let home = setup();
    let out = home.run("observer", &["watch", "--peer", "nobody"]);
    assert_eq!(out.status.code(), Some(NOT_FOUND));
    assert!(stderr(&out).contains("no peer named 'nobody'"));
}
