//! Waking an idle interactive Codex session when mail comes (not wired in yet: see the
//! proposal in the hand-over notes; the hook-ins are [`WakeFile::create`] in the stdio server,
//! [`WakeFile::on_mail`] where the server learns of new mail, and [`record`] in the Codex
//! hooks).
//!
//! Codex's hooks cannot wake an idle session and an MCP server cannot either; `codex queue
//! --thread <id> --message <text>` can: the running session (TUI, on the daemon or not) picks
//! the message up and runs a turn with it, and its `UserPromptSubmit` hook fires as for any
//! prompt. So:
//!
//! - the session's server (alive for the whole session, and already told when mail arrives)
//!   leaves a *wake file* named after its client's process id, as the idle mark does;
//! - the hooks, which see Codex's `session_id` (the thread id) and `CODEX_HOME`, find the file
//!   among their ancestors and record the thread and the session's phase: busy from
//!   `UserPromptSubmit` until a `Stop` that shows nothing, idle after it;
//! - on new mail while idle, the server queues a fixed *nudge*, never the mail itself: the
//!   `UserPromptSubmit` hook of the turn it starts shows the mail as context through the usual
//!   lease and hand-over, so the mail is shown once, framed as peer data, and peer text never
//!   becomes a user message. One nudge per idle spell: the phase is `nudged` until the next
//!   `UserPromptSubmit`.
//!
//! Every read-modify-write of the file holds an exclusive advisory lock on it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What the queued turn says. The mail itself comes with the turn's `UserPromptSubmit` hook.
pub const NUDGE: &str = "[switchboard] New mail may have arrived for you from other agents; \
    anything new is shown with this message. If nothing is shown, there is nothing to do.";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// No hook has run yet: nothing is known about the session.
    #[default]
    Unknown,
    /// A turn runs; its hooks will show new mail.
    Busy,
    /// Between turns.
    Idle,
    /// A nudge is queued; its turn's hook will show the mail.
    Nudged,
}

/// What the hooks have told the server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub thread_id: Option<String>,
    pub codex_home: Option<PathBuf>,
    pub phase: Phase,
}

/// The server's side: the file exists while the session does.
#[derive(Debug)]
pub struct WakeFile {
    path: PathBuf,
    client_pid: u32,
}

impl WakeFile {
    /// Creates the wake file of the session whose client is `client_pid`, under `dir` — only
    /// for an interactive Codex (a `codex exec` run ends with its turn: a nudge queued for it
    /// would start a turn the next time the thread is resumed).
    pub fn create(dir: &Path, client_pid: u32) -> std::io::Result<Option<Self>> {
        if !interactive(client_pid) {
            return Ok(None);
        }
        std::fs::create_dir_all(dir)?;
        let path = wake_path(dir, client_pid);
        std::fs::write(&path, serde_json::to_vec(&State::default())?)?;
        Ok(Some(Self { path, client_pid }))
    }

    /// New mail for the session's peer: the nudge to queue when the session is idle (the
    /// phase is `nudged` from now on), `None` when a hook will show the mail anyway.
    pub fn on_mail(&self) -> Option<Nudge> {
        let mut nudge = None;
        let updated = update(&self.path, |state| {
            if state.phase != Phase::Idle {
                return;
            }
            let Some(thread_id) = state.thread_id.clone() else {
                return;
            };
            state.phase = Phase::Nudged;
            nudge = Some(Nudge {
                exe: codex_exe(self.client_pid),
                codex_home: state.codex_home.clone(),
                thread_id,
            });
        });
        if let Err(e) = updated {
            tracing::debug!("cannot read the codex wake file: {e}");
            return None;
        }
        nudge
    }
}

impl Drop for WakeFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A `codex queue` to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nudge {
    pub exe: PathBuf,
    pub codex_home: Option<PathBuf>,
    pub thread_id: String,
}

impl Nudge {
    pub fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.args(["queue", "--thread", &self.thread_id, "--message", NUDGE])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(home) = &self.codex_home {
            cmd.env("CODEX_HOME", home);
        }
        cmd
    }

    /// Queues the nudge. A failure is logged: the mail stays unread and the next prompt's hook
    /// shows it.
    pub async fn send(&self) {
        match self.command().output().await {
            Ok(out) if out.status.success() => {
                tracing::info!("woke idle codex thread {}", self.thread_id);
            }
            Ok(out) => tracing::warn!(
                "codex queue failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => tracing::warn!("cannot run {}: {e}", self.exe.display()),
        }
    }
}

/// Where a Codex hook stands in a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookPoint {
    SessionStart,
    /// `UserPromptSubmit`.
    TurnStarted,
    /// `Stop`, before it looks for mail: from here on mail that arrives wakes the session.
    TurnEnding,
    /// `Stop` found mail and keeps the turn going with it.
    TurnContinued,
}

/// The hook's side: records the thread and the phase in its session's wake file, if the
/// session's server left one among `pids` (the hook's ancestors). `session_id` is the hook
/// input's; `codex_home` the hook's `CODEX_HOME`.
pub fn record(
    dir: &Path,
    pids: &[u32],
    point: HookPoint,
    session_id: Option<&str>,
    codex_home: Option<&Path>,
) -> std::io::Result<()> {
    let Some(path) = pids
        .iter()
        .map(|&pid| wake_path(dir, pid))
        .find(|p| p.is_file())
    else {
        return Ok(());
    };
    update(&path, |state| {
        if let Some(id) = session_id {
            state.thread_id = Some(id.to_owned());
        }
        if let Some(home) = codex_home {
            state.codex_home = Some(home.to_owned());
        }
        state.phase = match (point, state.phase) {
            // A fresh session waits for its first prompt: idle.
            (HookPoint::SessionStart, _) => Phase::Idle,
            (HookPoint::TurnStarted | HookPoint::TurnContinued, _) => Phase::Busy,
            // A nudge queued mid-turn runs once the turn ends: it stays outstanding.
            (HookPoint::TurnEnding, Phase::Nudged) => Phase::Nudged,
            (HookPoint::TurnEnding, _) => Phase::Idle,
        };
    })
}

fn wake_path(dir: &Path, client_pid: u32) -> PathBuf {
    dir.join(format!("codex-{client_pid}.wake"))
}

/// Reads, changes and writes the state under an exclusive lock.
fn update(path: &Path, change: impl FnOnce(&mut State)) -> std::io::Result<()> {
    let mut file: File = OpenOptions::new().read(true).write(true).open(path)?;
    file.lock()?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let mut state: State = serde_json::from_str(&text).unwrap_or_default();
    change(&mut state);
    let bytes = serde_json::to_vec(&state)?;
    file.seek(SeekFrom::Start(0))?;
    file.set_len(0)?;
    file.write_all(&bytes)?;
    file.flush()
    // The lock goes with the file.
}

/// Whether the client is an interactive Codex (the TUI, or the app-server daemon that runs
/// its threads), not `codex exec`.
fn interactive(client_pid: u32) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{client_pid}/cmdline")) else {
        // No /proc: assume interactive; a stray nudge costs one short turn.
        return true;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).skip(1).collect();
    let subcommand = args.iter().find(|a| !a.starts_with(b"-"));
    !matches!(subcommand, Some(s) if *s == b"exec" || *s == b"e")
}

/// The Codex binary the client runs, for `codex queue` (else `codex` on the PATH).
fn codex_exe(client_pid: u32) -> PathBuf {
    std::fs::read_link(format!("/proc/{client_pid}/exe")).unwrap_or_else(|_| PathBuf::from("codex"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sb-codex-wake-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// A wake file for a made-up client pid (this test process stands in for Codex).
    fn file(dir: &Path, pid: u32) -> WakeFile {
        std::fs::create_dir_all(dir).unwrap();
        let path = wake_path(dir, pid);
        std::fs::write(&path, "{}").unwrap();
        WakeFile {
            path,
            client_pid: pid,
        }
    }

    #[test]
    fn one_nudge_per_idle_spell_and_none_while_a_turn_runs() {
        let d = dir("spell");
        let wake = file(&d, 777_001);
        let pids = [4, 777_001, 1];
        // Before any hook: the thread is unknown.
        assert_eq!(wake.on_mail(), None);
        let home = Path::new("/home/me/.codex");
        record(&d, &pids, HookPoint::SessionStart, Some("th-1"), Some(home)).unwrap();
        let nudge = wake.on_mail().expect("idle after session start");
        assert_eq!(nudge.thread_id, "th-1");
        assert_eq!(nudge.codex_home.as_deref(), Some(home));
        assert_eq!(wake.on_mail(), None, "one nudge until its turn starts");
        record(&d, &pids, HookPoint::TurnStarted, Some("th-1"), None).unwrap();
        assert_eq!(wake.on_mail(), None, "busy: the hooks show it");
        record(&d, &pids, HookPoint::TurnEnding, None, None).unwrap();
        record(&d, &pids, HookPoint::TurnContinued, None, None).unwrap();
        assert_eq!(
            wake.on_mail(),
            None,
            "the Stop hook showed mail: still busy"
        );
        record(&d, &pids, HookPoint::TurnEnding, None, None).unwrap();
        assert!(wake.on_mail().is_some(), "idle again");
        // A nudge queued while the turn was ending stays outstanding.
        record(&d, &pids, HookPoint::TurnEnding, None, None).unwrap();
        assert_eq!(wake.on_mail(), None);
        drop(wake);
        assert!(!wake_path(&d, 777_001).exists());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_hook_without_a_wake_file_records_nothing() {
        let d = dir("none");
        std::fs::create_dir_all(&d).unwrap();
        record(&d, &[123_456], HookPoint::SessionStart, Some("x"), None).unwrap();
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_nudge_queues_a_fixed_text_on_the_thread() {
        let nudge = Nudge {
            exe: PathBuf::from("/opt/codex"),
            codex_home: Some(PathBuf::from("/h/.codex")),
            thread_id: "019a".into(),
        };
        let cmd = nudge.command();
        let std = cmd.as_std();
        assert_eq!(std.get_program(), "/opt/codex");
        let args: Vec<_> = std.get_args().collect();
        assert_eq!(args, ["queue", "--thread", "019a", "--message", NUDGE]);
    }

    #[test]
    fn this_process_counts_as_interactive_and_exec_does_not() {
        assert!(interactive(std::process::id()));
        assert!(codex_exe(std::process::id()).is_absolute());
    }
}
