//! Codex CLI end to end: the pinned `codex` set up by `switchboard setup codex --write`, as a
//! user would (the hooks run because setup trusted them, never through
//! `--dangerously-bypass-hook-trust`), then driven with `codex exec` against the fake
//! Responses API.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::model::{Dialect, ModelApi};
use crate::harness::{BIN, Home, wait_until};

/// The bound on one `codex exec` run, and on a request the test waits for: the run takes a
/// few seconds; this only has to hold on a loaded 2-core machine.
const WITHIN: Duration = Duration::from_secs(90);

/// One developer's machine: Codex's home pointed at the fake model, a project directory,
/// switchboard's store, and the fake Responses API.
struct Machine {
    store: Home,
    user: tempfile::TempDir,
    work: PathBuf,
    api: ModelApi,
    codex: PathBuf,
}

/// The peer a Codex session in the project `api` gets.
const PEER: &str = "codex-api";

impl Machine {
    fn new(codex: &Path) -> Self {
        let user = tempfile::tempdir().unwrap();
        let work = user.path().join("api");
        std::fs::create_dir_all(&work).unwrap();
        let codex_home = user.path().join(".codex");
        std::fs::create_dir_all(&codex_home).unwrap();
        let api = ModelApi::start(Dialect::OpenAi);
        // A custom provider speaks plain HTTP at once (the built-in one tries a WebSocket
        // first, for seconds); the project is trusted as `codex exec --trust` would record.
        let config = format!(
            "model = \"fake-model\"\n\
             model_provider = \"fake\"\n\n\
             [model_providers.fake]\n\
             name = \"Fake\"\n\
             base_url = \"{}/v1\"\n\
             env_key = \"SWITCHBOARD_TEST_MODEL_KEY\"\n\
             wire_api = \"responses\"\n\n\
             [projects.\"{}\"]\n\
             trust_level = \"trusted\"\n",
            api.url,
            work.display()
        );
        std::fs::write(codex_home.join("config.toml"), config).unwrap();
        let machine = Self {
            store: Home::new(),
            user,
            work,
            api,
            codex: codex.to_owned(),
        };
        machine.ok(&["setup", "codex", "--write"]);
        machine
    }

    fn codex_home(&self) -> PathBuf {
        self.user.path().join(".codex")
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("HOME", self.user.path())
            .env("CODEX_HOME", self.codex_home())
            .env("SWITCHBOARD_HOME", self.store.path())
            .env_remove("SWITCHBOARD_NAME")
            .env_remove("SWITCHBOARD_CHANNELS")
            .env_remove("SWITCHBOARD_RELAY")
            .env_remove("SWITCHBOARD_TOKEN")
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .env("SWITCHBOARD_TEST_MODEL_KEY", "sk-switchboard-test")
            .current_dir(&self.work)
            .stdin(Stdio::null());
    }

    /// `switchboard` as the user runs it on this machine.
    fn switchboard(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        self.env(&mut cmd);
        cmd.env("SWITCHBOARD_OPERATOR", "human")
            .args(args)
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

    /// The peers `peers --online` lists, by name.
    fn online(&self) -> Vec<String> {
        let out = self.switchboard(&["--json", "peers", "--online"]);
        let peers: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        peers
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect()
    }

    /// Waits until `peers --online` lists the Codex session's peer.
    fn await_online(&self) {
        wait_until(&format!("{PEER} online"), || {
            self.online().iter().any(|p| p == PEER)
        });
    }

    /// The delivery state of the message sent with `text`.
    fn state_of(&self, text: &str) -> String {
        let sent: Value = serde_json::from_str(&self.ok(&["--json", "sent"])).unwrap();
        sent.as_array()
            .unwrap()
            .iter()
            .find(|m| m["text"] == text)
            .map(|m| m["recipients"][0]["state"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    /// Starts `codex exec` with `prompt`.
    fn exec(&self, prompt: &str) -> Running {
        let mut cmd = Command::new(&self.codex);
        self.env(&mut cmd);
        cmd.args(["exec", "--skip-git-repo-check", "--color", "never", prompt])
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
    let machine = Machine::new(&clients.codex);
    // A first session makes the peer known (mail to an unknown name is refused); its turn
    // waits until the session's server has registered, however slow a fresh store is.
    machine.api.hold_reply(1);
    let first = machine.exec("Good morning.");
    assert!(machine.api.wait_turns(1, WITHIN), "codex sent no request");
    machine.await_online();
    machine.api.release();
    first.finish();
    assert_eq!(machine.api.turns().len(), 1, "one turn, nothing to show");

    let text = "The staging database moves to db-7 tonight (marker 41c9).";
    machine.ok(&["send", PEER, text]);
    assert_eq!(machine.state_of(text), "queued");

    let out = machine.exec("What changed overnight?").finish();
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
    let machine = Machine::new(&clients.codex);
    machine.api.hold_reply(1);
    let run = machine.exec("Refactor the billing module.");
    assert!(
        machine.api.wait_turns(1, WITHIN),
        "codex sent no model request"
    );
    // While the model "thinks", `peers --online` shows the session.
    machine.await_online();
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
