//! Claude Code end to end: the pinned `claude` set up by `switchboard setup claude-code
//! --write`, as a user would, then driven in print mode (`-p`) and interactively on a
//! pseudo-terminal (through `script`), against the fake Messages API.

use std::time::Duration;

use super::drive::{CONTEXT_HOOK_DONE, Interactive, Machine, STOP_HOOK_RAN};
use crate::relay::Relay;

/// How long a message may take from `send` to a model request in these tests: the product's
/// figure is hundreds of milliseconds (docs/benchmarks.md); this bound only has to hold on a
/// loaded 2-core machine.
const WITHIN: Duration = Duration::from_secs(30);

/// A machine with Claude Code set up by `setup claude-code --write`, as a user would; `None`
/// when the test is skipped.
fn set_up(test: &str) -> Option<Machine> {
    let machine = Machine::new(&super::clients(test)?.claude);
    machine.ok(&["setup", "claude-code", "--write"]);
    Some(machine)
}

/// Sends `text` to `peer` from this machine's CLI and insists it reaches the model's next
/// request, once, with nobody typing: `how` says by which path, for the failure message.
fn wakes(machine: &Machine, session: &Interactive, peer: &str, text: &str, how: &str) {
    machine.ok(&["send", peer, text]);
    assert!(
        machine.api.wait_for(text, WITHIN).is_some(),
        "{how}:\n{}",
        session.diagnose()
    );
    assert_eq!(machine.api.times_shown(text), 1, "{how}: nothing twice");
}

#[test]
fn claude_mcp_list_shows_switchboard_connected_local_relay_and_http() {
    let Some(machine) = set_up("claude_mcp_list_shows_switchboard_connected") else {
        return;
    };
    let listed = |machine: &Machine, extra: &[(&str, &str)]| {
        let mut cmd = machine.client();
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let out = cmd.args(["mcp", "list"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let local = listed(&machine, &[]);
    assert!(
        local.contains("switchboard") && local.contains("Connected"),
        "local: {local}"
    );

    let relay = Relay::start();
    let token = relay.token(&["--room", "team", "--peer", "alice"]);
    for http in [false, true] {
        let mut args = vec![
            "--relay",
            relay.url.as_str(),
            "setup",
            "claude-code",
            "--write",
        ];
        if http {
            args.push("--http");
        }
        machine.ok(&args);
        let shown = listed(&machine, &[("SWITCHBOARD_TOKEN", &token)]);
        assert!(
            shown.contains("switchboard") && shown.contains("Connected"),
            "relay (http: {http}): {shown}"
        );
    }
}

#[test]
fn claude_print_mode_gets_waiting_mail_in_its_first_request_once() {
    let Some(machine) = set_up("claude_print_mode_gets_waiting_mail") else {
        return;
    };
    // The peer exists once a session of it has run; `-p` with an empty turn registers it.
    let first = machine.client().args(["-p", "hello"]).output().unwrap();
    assert!(first.status.success(), "{first:?}");
    let peer = "claude-webapp";
    let text = "MAIL-FOR-PRINT-MODE what is the schema?";
    machine.ok(&["send", peer, text]);
    let turns_before = machine.api.turns().len();
    let out = machine.client().args(["-p", "go on"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let turns = &machine.api.turns()[turns_before..];
    assert!(
        turns.first().is_some_and(|t| t.text.contains(text)),
        "the first request of the session carries the mail"
    );
    assert_eq!(machine.api.times_shown(text), 1, "shown once");
    assert_eq!(machine.state_of(text), "delivered");
}

#[test]
fn claude_session_is_online_before_any_tool_call_and_idle_mail_wakes_it_by_the_hook() {
    let Some(machine) = set_up("claude_idle_mail_wakes_the_session") else {
        return;
    };
    let mut session = Interactive::start(&machine, &[], &[]);
    let peer = "claude-webapp";
    // Registered from the client's first request (it speaks 2026-07-28), no tool called.
    machine.await_online(peer);
    session.await_debug("MCP server \"switchboard\": Successfully connected");
    // Mail from now on is the idle session's, not the start-up context hook's.
    session.await_debug(CONTEXT_HOOK_DONE);
    assert!(
        session.debug().contains("\"protocolEra\":\"modern\""),
        "a session without the alias keeps 2026-07-28"
    );

    // Idle before its first turn: the waiter started at SessionStart wakes it.
    let first = "IDLE-MAIL-ONE the schema is in migrations/";
    wakes(
        &machine,
        &session,
        peer,
        first,
        "a fresh idle session is woken",
    );

    // Idle after a turn the user typed (the second turn to end): the waiter started at that
    // Stop wakes it.
    session.type_line("thanks, carry on");
    machine.api.wait_for("thanks, carry on", WITHIN).unwrap();
    session.await_count(STOP_HOOK_RAN, 2);
    let second = "IDLE-MAIL-TWO and the users table has an index on email";
    wakes(
        &machine,
        &session,
        peer,
        second,
        "an idle session is woken after its turn",
    );
    assert_eq!(machine.api.times_shown(first), 1, "nothing twice");
    assert_eq!(machine.state_of(second), "delivered");
}

#[test]
fn claude_with_the_channel_alias_registers_its_channel_and_still_wakes_by_the_hook() {
    let Some(machine) = set_up("claude_with_the_channel_alias") else {
        return;
    };
    // The alias `setup claude-code` prints.
    let session = Interactive::start(
        &machine,
        &[
            "--dangerously-load-development-channels",
            "server:switchboard",
        ],
        &[("SWITCHBOARD_CHANNELS", "1")],
    );
    let peer = "claude-webapp";
    machine.await_online(peer);
    let gate = session.await_debug("MCP server \"switchboard\": Channel notifications");
    // Neither our capability nor the protocol era stops the channel; offline, Claude Code's
    // own feature gate answers, and the channel path ends here.
    assert!(
        !gate.contains("did not declare claude/channel") && !gate.contains("modern protocol"),
        "the channel was refused for a reason of ours: {gate}"
    );
    assert!(
        gate.contains("registered") || gate.contains("not currently available"),
        "{gate}"
    );
    assert!(session.debug().contains("\"protocolEra\":\"legacy\""));
    session.await_debug(CONTEXT_HOOK_DONE);

    let text = "ALIAS-MAIL the API moved to /v2";
    wakes(
        &machine,
        &session,
        peer,
        text,
        "the waiter wakes the idle session, alias on",
    );
}

#[test]
fn claude_through_a_relay_is_woken_when_idle_by_mail_from_another_machine() {
    let Some(clients) = super::clients("claude_through_a_relay_is_woken_when_idle") else {
        return;
    };
    for http in [false, true] {
        relay_wake(&clients.claude, http);
    }
}

/// Claude Code on one machine reaching the relay (through `mcp --relay`, or straight to
/// `/mcp` with `--http`), woken when idle by mail from another.
fn relay_wake(claude: &std::path::Path, http: bool) {
    let relay = Relay::start();
    let alice = relay.token(&["--room", "team", "--peer", "alice"]);
    let bob = relay.token(&["--room", "team", "--peer", "bob"]);
    let machine = Machine::new(claude);
    let mut setup = vec![
        "--relay",
        relay.url.as_str(),
        "setup",
        "claude-code",
        "--write",
    ];
    if http {
        setup.push("--http");
    }
    machine.ok(&setup);
    let session = Interactive::start(&machine, &[], &[("SWITCHBOARD_TOKEN", &alice)]);
    // A peer token names the peer: the session is alice, on the relay. (Straight to `/mcp`,
    // Claude Code speaks the stateless 2026-07-28, which holds no session: alice is never
    // "online" there, but her mail waits and her hooks find her by her token.)
    session.await_debug("MCP server \"switchboard\": Successfully connected");
    session.await_debug(CONTEXT_HOOK_DONE);
    crate::harness::wait_until("alice online on the relay", || {
        if http {
            return true;
        }
        let out = crate::relay::cli(&relay, &crate::harness::Home::new(), &bob)
            .args(["--json", "peers", "--online"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("\"alice\"")
    });
    let text = "RELAY-MAIL the staging database is back";
    let sent = crate::relay::cli(&relay, &crate::harness::Home::new(), &bob)
        .args(["send", "alice", text])
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(
        machine.api.wait_for(text, WITHIN).is_some(),
        "the waiter wakes the idle session through the relay (http: {http}):\n{}",
        session.diagnose()
    );
    assert_eq!(machine.api.times_shown(text), 1, "nothing twice");
}
