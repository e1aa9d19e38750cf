//! Driving the real clients as a person would: a machine with Claude Code set up against the
//! fake model API, and an interactive session on a pseudo-terminal (through `script`). Shared
//! by the end-to-end tests and the benchmark (`benches/figures/clients.rs`), which include
//! this file by path.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::model::{Dialect, ModelApi};

/// The pinned clients' native binaries.
#[derive(Debug, Clone)]
pub struct Clients {
    pub claude: PathBuf,
    pub codex: PathBuf,
}

/// The clients `.ci/run` installs (`.ci/clients`), or why they are not there.
pub fn find() -> Result<Clients, String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the workspace root")
        .to_path_buf();
    let modules = workspace.join(".ci/clients/node_modules");
    let claude = modules.join("@anthropic-ai/claude-code-linux-x64/claude");
    let codex = modules.join("@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex");
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Err("the pinned clients are the linux-x64 builds".into());
    }
    for binary in [&claude, &codex] {
        if !binary.is_file() {
            return Err(format!("{} is not installed", binary.display()));
        }
    }
    Ok(Clients { claude, codex })
}

/// The Python of the venv `.ci/run` installs the official Python MCP SDK in.
pub fn python_sdk() -> Result<PathBuf, String> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the workspace root")
        .join(".ci/clients/venv/bin/python");
    let found = Command::new(&python)
        .args(["-c", "import mcp.client.client"])
        .status()
        .is_ok_and(|s| s.success());
    if found {
        Ok(python)
    } else {
        Err(format!(
            "{} with the `mcp` package is not installed",
            python.display()
        ))
    }
}

fn switchboard_bin() -> &'static str {
    env!("CARGO_BIN_EXE_switchboard")
}

/// A 0700 directory for a store, as switchboard would create it.
fn private_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod 700");
    }
    dir
}

/// Claude Code's debug line once the synchronous SessionStart hook has run: mail sent after it
/// can only reach an idle session by the waiter.
pub const CONTEXT_HOOK_DONE: &str = "hook claude session-start] finished";

/// Claude Code's debug line each time a turn ends and its Stop hooks start.
pub const STOP_HOOK_RAN: &str = "Hooks: Stop [";

/// Polls `check` until it holds; panics with `what` after a minute (a bound for a loaded
/// machine, not a measurement).
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Which client a machine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    ClaudeCode,
    Codex,
}

/// One developer's machine: the client's home (as after its onboarding, pointed at the fake
/// model), a project directory, switchboard's store, and the fake model API.
pub struct Machine {
    store: tempfile::TempDir,
    pub user: tempfile::TempDir,
    pub work: PathBuf,
    pub api: ModelApi,
    client: Client,
    binary: PathBuf,
}

impl Machine {
    /// Claude Code, in the project `webapp` (its peer: `claude-webapp`).
    pub fn new(claude: &Path) -> Self {
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
            store: private_dir(),
            user,
            work,
            api: ModelApi::start(Dialect::Anthropic),
            client: Client::ClaudeCode,
            binary: claude.to_owned(),
        }
    }

    /// Codex, in the project `api` (its peer: `codex-api`).
    pub fn codex(codex: &Path) -> Self {
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
        Self {
            store: private_dir(),
            user,
            work,
            api,
            client: Client::Codex,
            binary: codex.to_owned(),
        }
    }

    pub fn codex_home(&self) -> PathBuf {
        self.user.path().join(".codex")
    }

    /// The environment the user's shell gives every program on this machine.
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("HOME", self.user.path())
            .env("SWITCHBOARD_HOME", self.store.path())
            .env_remove("SWITCHBOARD_NAME")
            .env_remove("SWITCHBOARD_CHANNELS")
            .env_remove("SWITCHBOARD_RELAY")
            .env_remove("SWITCHBOARD_TOKEN")
            .current_dir(&self.work);
        match self.client {
            Client::ClaudeCode => {
                cmd.env("ANTHROPIC_BASE_URL", &self.api.url)
                    .env("ANTHROPIC_API_KEY", "sk-ant-switchboard-test")
                    .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
                    .env("DISABLE_AUTOUPDATER", "1")
                    // Otherwise MCP tools hide behind a search tool.
                    .env("ENABLE_TOOL_SEARCH", "false");
            }
            Client::Codex => {
                cmd.env("CODEX_HOME", self.codex_home())
                    .env_remove("OPENAI_API_KEY")
                    .env_remove("OPENAI_BASE_URL")
                    .env("SWITCHBOARD_TEST_MODEL_KEY", "sk-switchboard-test");
            }
        }
    }

    /// The client's own binary, in this machine's environment.
    pub fn client(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        self.env(&mut cmd);
        cmd
    }

    /// `switchboard` as the user runs it on this machine.
    pub fn switchboard(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(switchboard_bin());
        self.env(&mut cmd);
        cmd.env("SWITCHBOARD_OPERATOR", "human")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.switchboard(args);
        assert!(
            out.status.success(),
            "switchboard {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The peers that are online, by name.
    pub fn online(&self) -> Vec<String> {
        let out = self.switchboard(&["--json", "peers", "--online"]);
        let peers: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        peers
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["online"] == true)
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect()
    }

    pub fn await_online(&self, peer: &str) {
        wait_until(&format!("{peer} online"), || {
            self.online().iter().any(|p| p == peer)
        });
    }

    /// The delivery state of the message sent with `text`, to its one recipient.
    pub fn state_of(&self, text: &str) -> String {
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
pub struct Interactive {
    child: Child,
    debug_log: PathBuf,
}

impl Interactive {
    pub fn start(machine: &Machine, args: &[&str], env: &[(&str, &str)]) -> Self {
        let debug_log = machine.user.path().join("claude-debug.log");
        let mut line = format!(
            "{} --debug-file {}",
            machine.binary.display(),
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
    pub fn type_line(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{text}\r").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    pub fn debug(&self) -> String {
        std::fs::read_to_string(&self.debug_log).unwrap_or_default()
    }

    /// What Claude Code logged of hooks and of switchboard: a failure explains itself.
    pub fn diagnose(&self) -> String {
        self.debug()
            .lines()
            .filter(|l| l.contains("Hook") || l.contains("switchboard") || l.contains("turn"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until Claude Code's debug log holds `needle` at least `n` times (one per turn for
    /// a hook's line, say).
    pub fn await_count(&self, needle: &str, n: usize) {
        wait_until(&format!("{n} debug log lines {needle:?}"), || {
            self.debug().matches(needle).count() >= n
        });
    }

    /// Waits for a line of Claude Code's debug log containing `needle`.
    pub fn await_debug(&self, needle: &str) -> String {
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
