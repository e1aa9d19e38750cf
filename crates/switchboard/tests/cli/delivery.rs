//! Messages between processes: live watch, crash between lease and ack, idempotent resend.

use std::io::Read;
use std::process::{ChildStdout, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use serde_json::Value;

use crate::harness::{Home, PATIENCE, spawn};

#[test]
fn two_processes_exchange_messages_and_watch_prints_each() {
    let home = Home::new();
    home.json("alice", &["status"]);
    // The receiver must exist before anyone can write to it.
    home.json("bob", &["inbox"]);
    let mut watch = home.cmd("observer");
    watch.args([
        "--json", "watch", "--peer", "bob", "--since", "0", "--count", "3",
    ]);
    let (mut child, lines, _err) = spawn(watch);

    for i in 0..3 {
        let text = format!("message {i}");
        let sent = home.json("alice", &["send", "bob", &text]);
        let line = lines.next(PATIENCE).expect("watch prints the message");
        let entry: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(entry["id"], sent["id"]);
        assert_eq!(entry["from"], "alice");
        assert_eq!(entry["text"], text.as_str());
    }
    assert!(
        child.wait().unwrap().success(),
        "watch --count 3 exits after three"
    );

    let inbox = home.json("bob", &["inbox"]);
    let texts: Vec<&str> = inbox
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["message 0", "message 1", "message 2"]);
    let sent = home.json("alice", &["sent"]);
    for m in sent.as_array().unwrap() {
        assert_eq!(m["recipients"][0]["state"], "read");
    }
    assert_eq!(home.json("bob", &["inbox"]), Value::Array(vec![]));
}

/// Mail after the first message: more than a pipe's buffer holds (64 KiB on Linux, at most
/// that elsewhere), so a receiver whose output is not read cannot finish printing it.
const FILLERS: usize = 4;
const FILLER_BYTES: usize = 60_000;

#[test]
fn receiver_killed_between_lease_and_ack_gets_the_message_again_once() {
    let home = Home::new();
    home.json("bob", &["inbox"]);
    let sent = home.json("alice", &["send", "bob", "do not lose me"]);
    let id = sent["id"].as_i64().unwrap();
    let filler = "x".repeat(FILLER_BYTES);
    for _ in 0..FILLERS {
        home.json("alice", &["send", "bob", &filler]);
    }

    // The receiver prints to a pipe this test stops reading once the first message is on it:
    // the rest cannot be written, so the process is held in its show step — the mail leased
    // and on the screen, neither handed over nor acknowledged — until it is killed there.
    let mut inbox = home.cmd("bob");
    inbox
        .args(["--json", "inbox"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = inbox.spawn().unwrap();
    let (shown, _unread) = read_until(child.stdout.take().unwrap(), "do not lose me");
    assert!(shown.contains(&format!("\"id\":{id}")), "{shown}");

    let during = home.json("alice", &["sent", &id.to_string()]);
    assert_eq!(
        during[0]["recipients"][0]["state"], "queued",
        "shown but not handed over: the sender must not be told otherwise"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let again = home.json("bob", &["inbox"]);
    let again = again.as_array().unwrap();
    assert_eq!(
        again.len(),
        1 + FILLERS,
        "delivered again to the next session"
    );
    assert_eq!(again[0]["id"], id);
    assert_eq!(
        again[0]["seen_before"], false,
        "never recorded as handed over"
    );
    assert_eq!(
        home.json("bob", &["inbox"]),
        Value::Array(vec![]),
        "and only once"
    );

    let after = home.json("alice", &["sent", &id.to_string()]);
    let copy = &after[0]["recipients"][0];
    assert_eq!(copy["state"], "read");
    assert_eq!(copy["attempts"], 2);
    let peers = home.json("observer", &["peers", "--online"]);
    assert_eq!(
        peers,
        Value::Array(vec![]),
        "the killed session left no ghost"
    );
}

/// Reads `stream` until `needle` has appeared, then stops reading; returns what was read and
/// the stream, which is kept open (unread) for as long as the caller holds it.
fn read_until(mut stream: ChildStdout, needle: &str) -> (String, ChildStdout) {
    let (tx, rx) = mpsc::channel();
    let wanted = needle.to_owned();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
            let text = String::from_utf8_lossy(&seen).into_owned();
            if text.contains(&wanted) {
                let _ = tx.send((text, stream));
                return;
            }
        }
    });
    rx.recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("no output containing {needle:?} within {PATIENCE:?}"))
}

#[test]
fn resending_with_the_same_idempotency_key_returns_the_original() {
    let home = Home::new();
    home.json("bob", &["inbox"]);
    let first = home.json("alice", &["send", "bob", "once", "--key", "deploy-42"]);
    assert_eq!(first["duplicate"], false);
    let before = home.messages();
    let second = home.json("alice", &["send", "bob", "once", "--key", "deploy-42"]);
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["id"], first["id"]);
    assert_eq!(home.messages(), before, "a duplicate stores nothing");
    let human = home.run("alice", &["send", "bob", "once", "--key", "deploy-42"]);
    assert!(String::from_utf8_lossy(&human.stdout).contains("duplicate"));
}

#[test]
fn broadcast_reaches_live_peers_and_mail_outlives_sessions() {
    let home = Home::new();
    home.json("carol", &["inbox"]);
    // A waiting inbox is a live session of bob.
    let mut waiting = home.cmd("bob");
    waiting.args(["--json", "inbox", "--wait", "30s"]);
    let (mut child, out, _err) = spawn(waiting);
    let deadline = Instant::now() + PATIENCE;
    while home
        .json("observer", &["peers", "--online"])
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "bob never came online");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let sent = home.json("alice", &["broadcast", "standup in 5"]);
    let to: Vec<&str> = sent["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["peer"].as_str().unwrap())
        .collect();
    assert_eq!(to, ["bob"], "only live peers receive a broadcast");
    let line = out.expect("standup in 5", PATIENCE);
    assert!(line.contains("\"broadcast\":\"room\""), "{line}");
    assert!(child.wait().unwrap().success());

    // carol is offline, but direct mail waits for her.
    home.json("alice", &["send", "carol", "see you later"]);
    let mail = home.json("carol", &["inbox"]);
    assert_eq!(mail[0]["text"], "see you later");
}
