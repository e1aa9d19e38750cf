//! Claude Code end to end: the pinned `claude` set up by `switchboard setup claude-code
//! --write`, as a user would, then driven in print mode (`-p`) and interactively on a
//! pseudo-terminal (through `script`), against the fake Messages API.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::model::{Dialect, ModelApi};
use crate::harness::{BIN, Home, wait_until};
use crate::relay::Relay;

/// How long a message may take from `send` to a model request in these tests: the product's
/// figure is hundreds of milliseconds (docs/benchmarks.md); this bound only has to hold on a
/// loaded 2-core machine.
const WITHIN: Duration = Duration::from_secs(30);

/// One developer's machine: Claude Code's home (as after its onboarding), a project
/// directory, switchboard's store, and the fake model API Claude Code talks to.
struct Machine {
    store: Home,
    user: tempfile::TempDir,
    work: PathBuf,
    api: ModelApi,
    claude: PathBuf,
}

impl Machine {
    fn new(claude: &Path) -> Self {
        let user = tempfile::tempdir().unwrap();
        let work = user.path().join("webapp");
        std::fs::create_dir_all(&work).unwrap();
        // What Claude Code records once a person has onboarded, trusted the project and
        // accepted an API key: without it the first start asks on the terminal.
        let key = "sk-ant-switchboard-test";
        let state = json!({
            "hasCompletedOnboarding": true,
            "theme": "dark",
            "customApiKeyResponses": { "approved": [&key[key.len() - 20..]], "rejected": [] },
            "projects": { work.display().to_string(): { "hasTrustDialogAccepted": true } },
        });
        std::fs::write(user.path().join(".claude.json"), state.to_string()).unwrap();
        Self {
            store: Home::new(),
            user,
            work,
            api: ModelApi::start(Dialect::Anthropic),
            claude: claude.to_owned(),
        }
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("HOME", self.user.path())
            .env("SWITCHBOARD_HOME", self.store.path())
            .env_remove("SWITCHBOARD_NAME")
            .env_remove("SWITCHBOARD_CHANNELS")
            .env_remove("SWITCHBOARD_RELAY")
            .env_remove("SWITCHBOARD_TOKEN")
            .env("ANTHROPIC_BASE_URL", &self.api.url)
            .env("ANTHROPIC_API_KEY", "sk-ant-switchboard-test")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("DISABLE_AUTOUPDATER", "1")
            // Otherwise MCP tools hide behind a search tool.
            .env("ENABLE_TOOL_SEARCH", "false")
            .current_dir(&self.work);
    }

    /// `switchboard` as the user runs it on this machine.
    fn switchboard(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        self.env(&mut cmd);
        cmd.env("SWITCHBOARD_OPERATOR", "human")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.switchboard(args);
        assert!(
            out.status.success(),
            "switchboard {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn claude(&self) -> Command {
        let mut cmd = Command::new(&self.claude);
        self.env(&mut cmd);
        cmd
    }

    /// The peers that are online, by name.
    fn online(&self) -> Vec<String> {
        let out = self.switchboard(&["--json", "peers"]);
        let peers: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        peers
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["online"] == true)
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect()
    }

    fn await_online(&self, peer: &str) {
        wait_until(&format!("{peer} online"), || {
            self.online().iter().any(|p| p == peer)
        });
    }

    /// The delivery state of the message sent with `text`, to its one recipient.
    fn state_of(&self, text: &str) -> String {
        let sent: Value = serde_json::from_str(&self.ok(&["--json", "sent"])).unwrap();
        sent.as_array()
            .unwrap()
            .iter()
            .find(|m| m["text"] == text)
            .map(|m| m["recipients"][0]["state"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

/// An interactive Claude Code on a pseudo-terminal; ended by `/exit`, else killed by PID.
struct Interactive {
    child: Child,
    debug_log: PathBuf,
}

impl Interactive {
    fn start(machine: &Machine, args: &[&str], env: &[(&str, &str)]) -> Self {
        let debug_log = machine.user.path().join("claude-debug.log");
        let mut line = format!(
            "{} --debug-file {}",
            machine.claude.display(),
            debug_log.display()
        );
        for a in args {
            line.push(' ');
            line.push_str(a);
        }
        let mut cmd = Command::new("script");
        machine.env(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .env("TERM", "xterm-256color")
            .args(["-qfec", &line, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("script(1) runs Claude Code on a pseudo-terminal");
        Self { child, debug_log }
    }

    /// Types a line at the prompt, as a person would.
    fn type_line(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{text}\r").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn debug(&self) -> String {
        std::fs::read_to_string(&self.debug_log).unwrap_or_default()
    }

    /// What Claude Code logged of hooks and of switchboard: a failure explains itself.
    fn diagnose(&self) -> String {
        self.debug()
            .lines()
            .filter(|l| l.contains("Hook") || l.contains("switchboard") || l.contains("turn"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits for a line of Claude Code's debug log containing `needle`.
    fn await_debug(&self, needle: &str) -> String {
        wait_until(&format!("debug log line {needle:?}"), || {
            self.debug().contains(needle)
        });
        self.debug()
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Interactive {
    fn drop(&mut self) {
        self.type_line("/exit");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn claude_mcp_list_shows_switchboard_connected_local_relay_and_http() {
    let Some(clients) = super::clients("claude_mcp_list_shows_switchboard_connected") else {
        return;
    };
    let machine = Machine::new(&clients.claude);
    machine.ok(&["setup", "claude-code", "--write"]);
    let listed = |machine: &Machine, extra: &[(&str, &str)]| {
        let mut cmd = machine.claude();
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
    let Some(clients) = super::clients("claude_print_mode_gets_waiting_mail") else {
        return;
    };
    let machine = Machine::new(&clients.claude);
    machine.ok(&["setup", "claude-code", "--write"]);
    // The peer exists once a session of it has run; `-p` with an empty turn registers it.
    let first = machine.claude().args(["-p", "hello"]).output().unwrap();
    assert!(first.status.success(), "{first:?}");
    let peer = "claude-webapp";
    let text = "MAIL-FOR-PRINT-MODE what is the schema?";
    machine.ok(&["send", peer, text]);
    let turns_before = machine.api.turns().len();
    let out = machine.claude().args(["-p", "go on"]).output().unwrap();
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
    let Some(clients) = super::clients("claude_idle_mail_wakes_the_session") else {
        return;
    };
    let machine = Machine::new(&clients.claude);
    machine.ok(&["setup", "claude-code", "--write"]);
    let mut session = Interactive::start(&machine, &[], &[]);
    let peer = "claude-webapp";
    // Registered from the client's first request (it speaks 2026-07-28), no tool called.
    machine.await_online(peer);
    session.await_debug("MCP server \"switchboard\": Successfully connected");
    assert!(
        session.debug().contains("\"protocolEra\":\"modern\""),
        "a session without the alias keeps 2026-07-28"
    );

    // Idle before its first turn: the waiter started at SessionStart wakes it.
    let first = "IDLE-MAIL-ONE the schema is in migrations/";
    machine.ok(&["send", peer, first]);
    assert!(
        machine.api.wait_for(first, WITHIN).is_some(),
        "a fresh idle session is woken with the mail:\n{}",
        session.diagnose()
    );

    // Idle after a turn: the waiter started at Stop wakes it.
    session.type_line("thanks, carry on");
    machine.api.wait_for("thanks, carry on", WITHIN).unwrap();
    session.await_debug("Hooks: Stop");
    let second = "IDLE-MAIL-TWO and the users table has an index on email";
    machine.ok(&["send", peer, second]);
    assert!(
        machine.api.wait_for(second, WITHIN).is_some(),
        "an idle session is woken after its turn:\n{}",
        session.diagnose()
    );
    assert_eq!(machine.api.times_shown(first), 1, "nothing twice");
    assert_eq!(machine.api.times_shown(second), 1, "nothing twice");
    assert_eq!(machine.state_of(second), "delivered");
}

#[test]
fn claude_with_the_channel_alias_registers_its_channel_and_still_wakes_by_the_hook() {
    let Some(clients) = super::clients("claude_with_the_channel_alias") else {
        return;
    };
    let machine = Machine::new(&clients.claude);
    machine.ok(&["setup", "claude-code", "--write"]);
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

    let text = "ALIAS-MAIL the API moved to /v2";
    machine.ok(&["send", peer, text]);
    assert!(
        machine.api.wait_for(text, WITHIN).is_some(),
        "the hook wakes the idle session with the alias on:\n{}",
        session.diagnose()
    );
    assert_eq!(machine.api.times_shown(text), 1, "one path, not two");
}
