//! Claude Code hooks: the way mail reaches a Claude Code session without the research-preview
//! channel flag.
//!
//! - `SessionStart` and `UserPromptSubmit` add new mail to the model's context
//!   (`hookSpecificOutput.additionalContext` on stdout, exit 0);
//! - `Stop`, run with `"async": true, "asyncRewake": true`, waits for new mail after a turn and
//!   exits 2 with it on stderr, which wakes the idle session.
//!
//! A hook is a separate process, so it first finds its peer: the live session whose client
//! process is one of the hook's ancestors (both are children of the same Claude Code), else
//! `SWITCHBOARD_NAME`, else the name the server would have derived from the directory.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use switchboard_core::{Exchange, NamePolicy, OpenSession, PeerRecord};
use switchboard_proto::{InboxItem, PeerKind, PeerName};

use crate::framing;
use crate::identity::Identity;
use crate::tools::hand_over;

/// Set by the launcher alias that starts Claude Code with the channel flag: push carries the
/// mail, so the `Stop` hook need not wait for it.
pub const CHANNELS_ENV: &str = "SWITCHBOARD_CHANNELS";

pub fn channels_enabled() -> bool {
    std::env::var(CHANNELS_ENV).is_ok_and(|v| v == "1")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    SessionStart,
    UserPromptSubmit,
    Stop,
}

impl Event {
    fn name(self) -> &'static str {
        match self {
            Self::SessionStart => "SessionStart",
            Self::UserPromptSubmit => "UserPromptSubmit",
            Self::Stop => "Stop",
        }
    }
}

/// The fields of Claude Code's hook input we use; the rest is ignored.
#[derive(Debug, Default, Deserialize)]
pub struct Input {
    pub cwd: Option<PathBuf>,
    #[serde(default)]
    pub stop_hook_active: bool,
}

/// What the hook process prints and how it exits.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub code: u8,
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("hook input is not the JSON Claude Code sends: {0}")]
    Input(#[from] serde_json::Error),
    #[error(transparent)]
    Core(#[from] switchboard_core::Error),
}

/// Runs one hook. `wait` bounds how long `Stop` waits for mail.
pub async fn run(
    mailbox: &dyn Exchange,
    event: Event,
    input: &str,
    wait: Duration,
) -> Result<Outcome, HookError> {
    let input: Input = if input.trim().is_empty() {
        Input::default()
    } else {
        serde_json::from_str(input)?
    };
    if event == Event::Stop && (input.stop_hook_active || channels_enabled()) {
        // Already continuing because of a stop hook, or push delivers: never loop, never wait.
        return Ok(Outcome::default());
    }
    let Some(peer) = find_peer(mailbox, &input).await? else {
        return Ok(Outcome::default());
    };
    let items = take(mailbox, &peer, event, wait).await?;
    if items.is_empty() {
        return Ok(Outcome::default());
    }
    let block = framing::block(&items);
    Ok(match event {
        Event::Stop => Outcome {
            stdout: None,
            stderr: Some(block),
            code: 2,
        },
        Event::SessionStart | Event::UserPromptSubmit => Outcome {
            stdout: Some(
                json!({
                    "hookSpecificOutput": {
                        "hookEventName": event.name(),
                        "additionalContext": block,
                    }
                })
                .to_string(),
            ),
            stderr: None,
            code: 0,
        },
    })
}

/// New mail for the peer, handed over through a short session of its own. Like every
/// automatic path it takes only items never handed to any session.
async fn take(
    mailbox: &dyn Exchange,
    peer: &PeerRecord,
    event: Event,
    wait: Duration,
) -> Result<Vec<InboxItem>, HookError> {
    let req = OpenSession {
        name: PeerName::parse(&peer.name).map_err(switchboard_core::Error::from)?,
        kind: PeerKind::Agent,
        info: peer.info.clone(),
        policy: NamePolicy::Join,
        client_pid: None,
    };
    let session = mailbox.open_session(req).await?;
    let items = match event {
        Event::Stop => mailbox.lease_wait(&session, 20, false, wait).await,
        _ => mailbox.lease(&session, 20, false).await,
    };
    let result = match items {
        Ok(items) => hand_over(mailbox, &session, &items).await.map(|()| items),
        Err(e) => Err(e),
    };
    // Closing releases any lease at once, even when the hand-over failed.
    mailbox.close_session(session.id).await?;
    Ok(result?)
}

async fn find_peer(mailbox: &dyn Exchange, input: &Input) -> Result<Option<PeerRecord>, HookError> {
    if let Some(peer) = mailbox.peer_of_client(&ancestors()).await? {
        return Ok(Some(peer));
    }
    let mut identity = Identity::from_env(None);
    if let Some(cwd) = &input.cwd {
        identity.cwd = Some(cwd.clone());
    }
    let Ok(name) = identity.peer_name("claude-code") else {
        return Ok(None);
    };
    match mailbox.peer(name.as_str()).await {
        Ok(peer) => Ok(Some(peer)),
        Err(switchboard_core::Error::Rejected(switchboard_core::Rejection::UnknownPeer {
            ..
        })) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// This process's ancestors, nearest first (parent, grandparent, …).
fn ancestors() -> Vec<u32> {
    let mut out = Vec::new();
    let mut pid = std::process::id();
    for _ in 0..16 {
        match parent_of(pid) {
            Some(parent) if parent > 1 && !out.contains(&parent) => {
                out.push(parent);
                pid = parent;
            }
            _ => break,
        }
    }
    out
}

#[cfg(target_os = "linux")]
fn parent_of(pid: u32) -> Option<u32> {
    // Field 4 of /proc/<pid>/stat, counted after the parenthesised command name, which may
    // itself contain spaces and parentheses.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(all(unix, not(target_os = "linux")))]
fn parent_of(pid: u32) -> Option<u32> {
    let out = std::process::Command::new("ps")
        .args(["-o", "ppid=", "-p", &pid.to_string()])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

#[cfg(not(unix))]
fn parent_of(_pid: u32) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_start_with_our_parent() {
        let found = ancestors();
        #[cfg(target_os = "linux")]
        assert_eq!(
            found.first().copied(),
            Some(std::os::unix::process::parent_id())
        );
        assert!(!found.contains(&std::process::id()));
    }

    #[test]
    fn recorded_inputs_parse() {
        let stop: Input = serde_json::from_str(
            r#"{"session_id":"abc","transcript_path":"/t.jsonl","cwd":"/w","hook_event_name":"Stop","stop_hook_active":true}"#,
        )
        .unwrap();
        assert!(stop.stop_hook_active);
        let prompt: Input = serde_json::from_str(
            r#"{"session_id":"abc","cwd":"/w","hook_event_name":"UserPromptSubmit","prompt":"hi"}"#,
        )
        .unwrap();
        assert!(!prompt.stop_hook_active);
        assert_eq!(prompt.cwd, Some(PathBuf::from("/w")));
    }
}
