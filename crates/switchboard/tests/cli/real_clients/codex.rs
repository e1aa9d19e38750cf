//! Codex CLI end to end: the pinned `codex` set up by `switchboard setup codex --write`, as a
//! user would (the hooks run because setup trusted them, never through
//! `--dangerously-bypass-hook-trust`), then driven with `codex exec` against the fake
//! Responses API.

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::drive::Machine;

/// The bound on one `codex exec` run, and on a request the test waits for: the run takes a
/// few seconds; this only has to hold on a loaded 2-core machine.
const WITHIN: Duration = Duration::from_secs(90);

/// The peer a Codex session in the project `api` gets.
const PEER: &str = "codex-api";

/// A machine with Codex set up by `switchboard setup codex --write`, as a user would.
fn machine(codex: &std::path::Path) -> Machine {
    let machine = Machine::codex(codex);
    machine.ok(&["setup", "codex", "--write"]);
    machine
}

/// Starts `codex exec` with `prompt`.
fn exec(machine: &Machine, prompt: &str) -> Running {
    let mut cmd = machine.client();
    cmd.args(["exec", "--skip-git-repo-check", "--color", "never", prompt])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("start codex exec");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    Running { pid, done: rx }
}

/// A `codex exec` under way.
struct Running {
    pid: u32,
    done: mpsc::Receiver<std::io::Result<Output>>,
}

impl Running {
    /// Waits for the run to end and insists it succeeded; kills it (by its PID) after
    /// [`WITHIN`].
    fn finish(self) -> Output {
        let out = match self.done.recv_timeout(WITHIN) {
            Ok(out) => out.expect("codex exec output"),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-9", &self.pid.to_string()])
                    .status();
                panic!("codex exec did not end within {WITHIN:?}");
            }
        };
        assert!(
            out.status.success(),
            "codex exec failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

/// Mail waiting when a session starts reaches the model's first request (through the
/// SessionStart or UserPromptSubmit hook), and nothing shows it again for the rest of the run.
#[test]
fn codex_sees_mail_sent_before_its_session_in_its_first_request_once() {
    let Some(clients) = super::clients("codex_sees_mail_sent_before_its_session") else {
        return;
    };
    let machine = machine(&clients.codex);
    // A first session makes the peer known (mail to an unknown name is refused); its turn
    // waits until the session's server has registered, however slow a fresh store is.
    machine.api.hold_reply(1);
    let first = exec(&machine, "Good morning.");
    assert!(machine.api.wait_turns(1, WITHIN), "codex sent no request");
    machine.await_online(PEER);
    machine.api.release();
    first.finish();
    assert_eq!(machine.api.turns().len(), 1, "one turn, nothing to show");

    let text = "The staging database moves to db-7 tonight (marker 41c9).";
    machine.ok(&["send", PEER, text]);
    assert_eq!(machine.state_of(text), "queued");

    let out = exec(&machine, "What changed overnight?").finish();
    let turns = machine.api.turns();
    assert_eq!(
        turns.len(),
        2,
        "one request for the second turn: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = &turns[1];
    assert!(
        first.text.contains(text),
        "the first request shows the mail"
    );
    let developer = first.body["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["role"] == "developer")
        .any(|i| i.to_string().contains("marker 41c9"));
    assert!(developer, "as hook context (a developer message)");
    assert_eq!(machine.api.times_shown("marker 41c9"), 1);
    assert_eq!(machine.state_of(text), "delivered");
}

/// Mail that arrives while a turn runs is shown by the Stop hook: the same turn goes on with
/// it, once, and ends. Meanwhile the session's server is online as the peer.
#[test]
fn codex_stop_hook_continues_the_turn_with_mail_that_came_during_it() {
    let Some(clients) = super::clients("codex_stop_hook_continues_the_turn") else {
        return;
    };
    let machine = machine(&clients.codex);
    machine.api.hold_reply(1);
    let run = exec(&machine, "Refactor the billing module.");
    assert!(
        machine.api.wait_turns(1, WITHIN),
        "codex sent no model request"
    );
    // While the model "thinks", `peers --online` shows the session.
    machine.await_online(PEER);
    let text = "Heads up: billing tests are red on main (marker 9d02).";
    let sent_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    machine.ok(&["send", PEER, text]);
    machine.api.release();
    let out = run.finish();

    let turns = machine.api.turns();
    assert_eq!(
        turns.len(),
        2,
        "the Stop hook continued the turn once, then let it end: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(turns.iter().all(|t| t.path == "/v1/responses"));
    assert!(!turns[0].text.contains("marker 9d02"));
    assert!(turns[1].at_ms >= sent_at, "asked after the mail came");
    let input = turns[1].body["input"].as_array().unwrap();
    let last = input.last().unwrap();
    assert_eq!(last["role"], "user", "the hook's reason is a user message");
    assert!(last.to_string().contains("marker 9d02"), "{last}");
    assert!(
        last.to_string().contains("hook_prompt"),
        "put there by a hook: {last}"
    );
    let turn_id = |i: usize| turns[i].body["client_metadata"]["turn_id"].clone();
    assert!(turn_id(0).is_string());
    assert_eq!(turn_id(0), turn_id(1), "the same turn went on");
    assert_eq!(machine.api.times_shown("marker 9d02"), 1);
    assert_eq!(machine.state_of(text), "delivered");
    assert!(
        !machine.online().iter().any(|p| p == PEER),
        "the session ended with codex"
    );
}
