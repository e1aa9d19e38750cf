//! Claude Code hook commands, fed recorded hook inputs, next to a live MCP session.

use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Home, PATIENCE, fed, spawn, stderr};
use crate::mcp_client::{Agent, Kind};

pub fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/claude-hooks/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap()
}

fn hook(home: &Home, event: &str, input: &str) -> Output {
    home.run_fed("observer", &["hook", "claude", event], input.as_bytes())
}

fn codex_hook(home: &Home, event: &str, input: &str) -> Output {
    home.run_fed("observer", &["hook", "codex", event], input.as_bytes())
}

/// A Claude Code session without the channel flag: the hooks' peer is found through the
/// shared parent process (this test), as a real hook finds the session of its Claude Code.
/// Mail comes from the human's CLI, so this test process is the client of one session only.
async fn setup() -> (Home, Agent) {
    let home = Home::new();
    let claude = Agent::start(&home, "claude-webapp", Kind::Codex).await;
    claude.ok("peers", json!({})).await;
    (home, claude)
}

fn send(home: &Home, text: &str) {
    home.json("alice", &["send", "claude-webapp", text]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_and_session_start_hooks_add_new_mail_as_context_once() {
    let (home, _claude) = setup().await;
    let empty = hook(&home, "user-prompt-submit", &fixture("user-prompt-submit"));
    assert_eq!(empty.status.code(), Some(0));
    assert!(empty.stdout.is_empty(), "no mail, no output");

    send(&home, "the API moved to /v2");
    let out = hook(&home, "user-prompt-submit", &fixture("user-prompt-submit"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["hookSpecificOutput"]["hookEventName"],
        "UserPromptSubmit"
    );
    let context = json["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap();
    assert!(context.contains("the API moved to /v2"), "{context}");
    assert!(context.contains("from alice"), "{context}");
    assert_eq!(
        json.as_object().unwrap().len(),
        1,
        "nothing but hookSpecificOutput"
    );

    let again = hook(&home, "user-prompt-submit", &fixture("user-prompt-submit"));
    assert!(
        again.stdout.is_empty(),
        "an automatic path never shows an item twice"
    );

    send(&home, "second");
    let start = hook(&home, "session-start", &fixture("session-start"));
    let json: Value = serde_json::from_slice(&start.stdout).unwrap();
    assert_eq!(json["hookSpecificOutput"]["hookEventName"], "SessionStart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_hook_waits_for_mail_and_wakes_the_session_with_exit_2() {
    let (home, _claude) = setup().await;
    let mut cmd = home.cmd("observer");
    cmd.args(["hook", "claude", "stop", "--wait", "60s"]);
    let child = fed(cmd, fixture("stop").as_bytes());
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(&home, "review done, 2 nits");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "exit 2 wakes the idle session");
    assert!(
        stderr(&out).contains("review done, 2 nits"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_stop_hook_never_loops_when_it_already_kept_the_turn_going() {
    let (home, _claude) = setup().await;
    send(&home, "one more thing");
    let out = codex_hook(&home, "stop", &fixture("stop-active"));
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_stop_hook_keeps_the_turn_going_with_new_mail() {
    let (home, _claude) = setup().await;
    send(&home, "the build is red");
    let out = codex_hook(&home, "stop", &fixture("stop"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["decision"], "block");
    assert!(
        json["reason"]
            .as_str()
            .unwrap()
            .contains("the build is red")
    );
}

/// Claude Code marks the turn an async waiter woke with `stop_hook_active`; the waiter after
/// that turn must still watch the idle session (it stood down, and the next message stayed
/// queued).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waiter_watches_a_turn_it_woke_too_regression() {
    let (home, _claude) = setup().await;
    let mut cmd = home.cmd("observer");
    cmd.args(["hook", "claude", "wait", "--wait", "60s"]);
    let child = fed(cmd, fixture("stop-active").as_bytes());
    send(&home, "after the rewake");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("after the rewake"));
}

/// At session start the synchronous context hook and the waiter both look at mail that was
/// waiting: one of them shows it, never both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_mail_at_session_start_is_shown_by_one_of_the_two_hooks() {
    let (home, _claude) = setup().await;
    send(&home, "waiting before the session started");
    let mut cmd = home.cmd("observer");
    cmd.args(["hook", "claude", "wait", "--wait", "2s"]);
    let waiter = fed(cmd, fixture("session-start").as_bytes());
    let start = hook(&home, "session-start", &fixture("session-start"));
    let waited = tokio::task::spawn_blocking(move || waiter.wait_with_output().unwrap())
        .await
        .unwrap();
    let as_context = String::from_utf8_lossy(&start.stdout).contains("waiting before");
    let as_wake = stderr(&waited).contains("waiting before");
    assert!(
        as_context != as_wake,
        "context: {as_context}, wake: {as_wake}"
    );
    assert_eq!(waited.status.code(), Some(if as_wake { 2 } else { 0 }));
}

#[test]
fn stop_hook_gives_up_quietly_when_no_mail_comes() {
    let home = Home::new();
    let mut cmd = home.cmd("observer");
    cmd.args(["hook", "claude", "stop", "--wait", "200ms"]);
    let (mut child, _out, _err) = spawn(cmd);
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stop hook never returned"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn malformed_hook_input_is_an_error_that_does_not_block_the_prompt() {
    let home = Home::new();
    let out = hook(&home, "user-prompt-submit", "{not json");
    assert_eq!(
        out.status.code(),
        Some(1),
        "1 reports; 2 would block the user's prompt"
    );
    assert!(stderr(&out).contains("hook input is not the JSON Claude Code sends"));
}

/// A session that pushes by channel may have had its push dropped by the client (Claude Code's
/// channel gate says no silently): the prompt hook shows a pushed item the transcript lacks,
/// and leaves alone one the transcript shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_the_transcript_lacks_is_shown_by_the_prompt_hook() {
    let home = Home::new();
    let claude =
        Agent::start_with(&home, "claude-webapp", Kind::ClaudeCode, &["--push", "on"]).await;
    claude.ok("peers", json!({})).await;
    send(&home, "pushed while the gate was closed");
    let pushed = claude.pushes(1).await;
    let id = pushed[0]["meta"]["message_id"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let transcript = dir.path().join("session.jsonl");
    let input = |path: &std::path::Path| {
        json!({
            "session_id": "s", "cwd": "/home/dev/webapp", "hook_event_name": "UserPromptSubmit",
            "prompt": "go on", "transcript_path": path,
        })
        .to_string()
    };

    std::fs::write(&transcript, "{\"type\":\"user\",\"message\":\"hello\"}\n").unwrap();
    let out = hook(&home, "user-prompt-submit", &input(&transcript));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let context = json["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap_or_default();
    assert!(
        context.contains("pushed while the gate was closed"),
        "{}",
        stderr(&out)
    );

    // Once the transcript holds it, the model saw it: nothing more.
    let seen =
        format!("{{\"content\":\"#{id} from alice\\n  | pushed while the gate was closed\"}}\n");
    std::fs::write(&transcript, seen).unwrap();
    let again = hook(&home, "user-prompt-submit", &input(&transcript));
    assert!(
        again.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}
