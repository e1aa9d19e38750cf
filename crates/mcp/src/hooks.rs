//! Agent-client hooks: the way mail reaches a Claude Code or Codex session on every path
//! that needs no channel.
//!
//! - `SessionStart` and `UserPromptSubmit` add new mail to the model's context
//!   (`hookSpecificOutput.additionalContext` on stdout, exit 0) — both clients read it;
//! - `Wait` (Claude Code, run with `"async": true, "asyncRewake": true` at `SessionStart` and
//!   at `Stop`) waits while the session is idle and exits 2 with new mail on stderr, which wakes
//!   the session;
//! - `Stop` (Codex, run as the turn ends) keeps the turn going with new mail
//!   (`decision: "block"` and the mail as the reason), and lets it end when there is none.
//!
//! A hook is a separate process, so it first finds its peer: the live session whose client
//! process is one of the hook's ancestors (both are children of the same client; the server's
//! session mark says one is starting, `crate::idle`), else `SWITCHBOARD_NAME`, else the name
//! the server would have derived from the directory.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use switchboard_core::delivery::{self, DeliveryError};
use switchboard_core::{Exchange, LogQuery, NamePolicy, OpenSession, PeerRecord, Run, op};
use switchboard_proto::{InboxItem, MessageId, PeerKind, PeerName};

use crate::framing;
use crate::identity::Identity;
use crate::idle;

/// Set by the launcher alias that starts Claude Code with the channel flag: the session's
/// server then offers the initialize-based protocol, on which Claude Code's channels work, and
/// pushes mid-turn. The `Stop` hook still wakes the idle session (`crate::idle`).
pub const CHANNELS_ENV: &str = "SWITCHBOARD_CHANNELS";

pub fn channels_enabled() -> bool {
    std::env::var(CHANNELS_ENV).is_ok_and(|v| v == "1")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    SessionStart,
    UserPromptSubmit,
    /// Claude Code's async waiter: wakes an idle session when mail comes.
    Wait,
    /// Codex's end of turn: new mail keeps the turn going.
    Stop,
}

impl Event {
    fn name(self) -> &'static str {
        match self {
            Self::SessionStart => "SessionStart",
            Self::UserPromptSubmit => "UserPromptSubmit",
            Self::Wait | Self::Stop => "Stop",
        }
    }
}

/// The fields of a hook's input we use (Claude Code and Codex send the same ones); the rest
/// is ignored.
#[derive(Debug, Default, Deserialize)]
pub struct Input {
    pub cwd: Option<PathBuf>,
    /// The session's transcript (JSON lines): what the model has been shown so far.
    pub transcript_path: Option<PathBuf>,
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
    #[error("cannot print the hook's answer: {0}")]
    Output(std::io::Error),
}

/// Where and how long a hook works.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long `Stop` waits for mail.
    pub wait: Duration,
    /// Where this machine's session marks live (`crate::idle`).
    pub run_dir: PathBuf,
    /// The name the client gives itself in MCP (`claude-code`, `codex-mcp-client`): the peer
    /// name is derived from it when no live session is found.
    pub client: &'static str,
    /// The peer the hook acts for when its credentials say so (a relay peer token): then
    /// nothing is looked up or guessed.
    pub peer: Option<String>,
}

/// Runs one hook: `emit` puts its outcome in front of the client (prints it), and only once
/// that succeeded is the mail recorded as handed over — a hook killed before then leaves its
/// lease to lapse, and the mail comes again.
pub async fn run<E>(
    mailbox: &dyn Exchange,
    event: Event,
    input: &str,
    options: &Options,
    emit: E,
) -> Result<u8, HookError>
where
    E: FnMut(&Outcome) -> std::io::Result<()>,
{
    let input: Input = if input.trim().is_empty() {
        Input::default()
    } else {
        serde_json::from_str(input)?
    };
    // Codex continues a turn its Stop hook blocked and runs the hook again: never loop. The
    // async waiter needs no such guard (Claude Code sets the flag on a turn the waiter woke,
    // which must still be watched): it returns only with new mail.
    if event == Event::Stop && input.stop_hook_active {
        return Ok(0);
    }
    // Print mode (`claude -p`) ends after its turn and waits up to 30 s for async hooks before
    // it exits: there is no idle session to wake, and a waiter would only hold it up.
    if event == Event::Wait && print_mode() {
        return Ok(0);
    }
    // Where "new" starts for the waiter: as early as possible, before it looks for its peer
    // (its server may still be registering while mail comes in).
    let since = match event {
        Event::Wait => Some(mailbox.last_message_id().await?),
        _ => None,
    };
    let pids = ancestors();
    let (peer, mark) = find_peer(mailbox, &input, options, &pids, event).await?;
    let Some(peer) = peer else {
        return Ok(0);
    };
    // Held while the waiter waits: the session's server stands down its channel push and this
    // hook alone hands the mail to the idle session.
    let mark = mark.filter(|m| m.pushes);
    let _idle = match (event, &mark) {
        (Event::Wait, Some(mark)) => mark.hold(),
        _ => None,
    };
    // A pushing session's client may have dropped pushes unseen: look in the transcript.
    let missed = match (&mark, &input.transcript_path, event) {
        (Some(_), Some(path), Event::Wait | Event::UserPromptSubmit) => {
            Transcript::read(path, since)
        }
        _ => None,
    };
    // At session start the synchronous context hook and the waiter may both find mail that
    // was waiting: each item is leased by one of them, so it is shown once, as context or as
    // a wake.
    let taking = Taking {
        event,
        since,
        wait: options.wait,
        missed: missed.as_ref(),
    };
    deliver(mailbox, &peer, &taking, emit).await
}
/// What a hook prints for these items, in its client's terms.
fn outcome(event: Event, items: &[InboxItem]) -> Outcome {
    let block = framing::block(items);
    match event {
        Event::Wait => Outcome {
            stdout: None,
            stderr: Some(block),
            code: 2,
        },
        Event::Stop => Outcome {
            stdout: Some(json!({ "decision": "block", "reason": block }).to_string()),
            stderr: None,
            code: 0,
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
    }
}

/// What the model of a session has been shown: the tail of its transcript.
pub enum Transcript {
    Read(String),
    /// Claude Code writes the transcript with the session's first turn, and not always before
    /// the hooks of the next one start. With none yet, a waiter counts as shown what was
    /// handed over before it started (a wake of an earlier waiter, whose turn the file does
    /// not hold yet) and as missed what was handed over since (a channel push before this
    /// waiter held the session mark: the gate may have dropped it). Taking a missing file for
    /// "nothing missed" lost a session's first mail that way; taking it for "nothing shown"
    /// showed an earlier wake's mail twice.
    Unwritten {
        since: MessageId,
    },
}

/// The most of a transcript that is read: recent turns are what a lost push would have missed.
const TRANSCRIPT_TAIL: u64 = 8 << 20;

impl Transcript {
    /// The transcript at `path`; `since` is where the waiter's new mail starts (`None` for a
    /// hook that does not wait). `None` when there is nothing to go by.
    fn read(path: &std::path::Path, since: Option<MessageId>) -> Option<Self> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return since.map(|since| Self::Unwritten { since });
            }
            Err(_) => return None,
        };
        let len = file.metadata().ok()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(TRANSCRIPT_TAIL)))
            .ok()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        Some(Self::Read(String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Whether the item was put in front of the model: its framed head is in the transcript
    /// (which stores text JSON-escaped), or, with no transcript yet, it was handed over before
    /// the waiter started.
    fn shows(&self, item: &InboxItem) -> bool {
        match self {
            Self::Read(text) => {
                let head = serde_json::to_string(&framing::head(item)).unwrap_or_default();
                let escaped = head.trim_matches('"');
                !escaped.is_empty() && text.contains(escaped)
            }
            Self::Unwritten { since } => item.id <= *since,
        }
    }
}

/// How one hook takes mail.
struct Taking<'a> {
    event: Event,
    /// The newest message when the waiter started (`None` for hooks that do not wait).
    since: Option<MessageId>,
    wait: Duration,
    /// The session pushes by channel, which its client may have dropped unseen: take the
    /// items handed over but absent from this transcript first.
    missed: Option<&'a Transcript>,
}

/// Delivers new mail to the peer through a short session of its own: `emit` prints the
/// outcome, and only once that succeeded is the mail recorded as handed over (by
/// `delivery::deliver`). Like every automatic path it takes items never handed to any session.
/// Returns the hook's exit code; 0 when there was nothing.
async fn deliver<E>(
    mailbox: &dyn Exchange,
    peer: &PeerRecord,
    how: &Taking<'_>,
    mut emit: E,
) -> Result<u8, HookError>
where
    E: FnMut(&Outcome) -> std::io::Result<()>,
{
    let req = OpenSession {
        name: PeerName::parse(&peer.name).map_err(switchboard_core::Error::from)?,
        kind: PeerKind::Agent,
        info: peer.info.clone(),
        policy: NamePolicy::Join,
        client_pid: None,
    };
    let reached = |i: &InboxItem| how.missed.is_some_and(|t| t.shows(i));
    let request = match how.missed {
        Some(_) => delivery::Request::recovering(&reached),
        None => delivery::Request::automatic(),
    };
    let deadline = Instant::now() + how.wait;
    // Mail after this id is new to the waiter (only a waiter waits).
    let mut after = how.since.unwrap_or_default();
    let mut first = true;
    if how.event == Event::Wait {
        tracing::info!("waiting for mail for {} after #{after}", peer.name);
    }
    loop {
        if !first {
            // Wait without a session, so a waiter holds nothing of its peer while it waits.
            let left = deadline.saturating_duration_since(Instant::now());
            if how.event != Event::Wait || left.is_zero() {
                return Ok(0);
            }
            let query = LogQuery {
                after,
                peer: Some(peer.id),
                limit: 50,
            };
            let arrived = mailbox.run(op::Log { query, wait: left }).await?;
            let Some(last) = arrived.last() else {
                return Ok(0);
            };
            after = last.id;
        }
        first = false;
        let session = mailbox.open_session(req.clone()).await?;
        let mut code = None;
        let show = |items: Vec<InboxItem>| {
            let shown = if items.is_empty() {
                Ok(items)
            } else {
                let outcome = outcome(how.event, &items);
                code = Some(outcome.code);
                emit(&outcome).map(|()| items).map_err(HookError::Output)
            };
            std::future::ready(shown)
        };
        let delivered = delivery::deliver(mailbox, &session, &request, show).await;
        // Closing releases any lease at once, even when the hand-over failed.
        mailbox.close_session(session.id).await?;
        delivered.map_err(DeliveryError::into_error::<HookError>)?;
        if let Some(code) = code {
            return Ok(code);
        }
    }
}

/// How long a hook waits for its session's server to register: the client starts hooks and
/// servers side by side, and a server may come up a second after the hooks.
const REGISTERING: Duration = Duration::from_secs(10);

/// The peer of the hook's session. A hook that must not hold up its client (the context
/// hooks) waits for a registering server only when its session mark shows one is starting; the
/// background waiter also waits for the mark to appear.
async fn find_peer(
    mailbox: &dyn Exchange,
    input: &Input,
    options: &Options,
    pids: &[u32],
    event: Event,
) -> Result<(Option<PeerRecord>, Option<idle::Found>), HookError> {
    if let Some(name) = &options.peer {
        return Ok((
            known(mailbox, name).await?,
            idle::find(&options.run_dir, pids),
        ));
    }
    // A waiter spends no more of its budget looking than it would waiting.
    let looking = match event {
        Event::Wait => REGISTERING.min(options.wait),
        _ => REGISTERING,
    };
    let until = Instant::now() + looking;
    let mut asked = false;
    loop {
        let mark = idle::find(&options.run_dir, pids);
        // Without a mark only the local file is watched: a session over HTTP has none, and a
        // relay is not to be asked forty times a second for a session that cannot appear.
        if (mark.is_some() || !asked)
            && let Some(peer) = mailbox.peer_of_client(pids).await?
        {
            return Ok((Some(peer), mark));
        }
        asked = true;
        // Guessing the peer from the directory while its server registers would make the
        // name look taken and push the server to another. Registration is another process's
        // write with no wake of its own, so look again shortly.
        let patient = mark.is_some() || event == Event::Wait;
        if !patient || Instant::now() >= until {
            return Ok((by_name(mailbox, input, options).await?, mark));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The peer the session's server would be, named from the directory (or `SWITCHBOARD_NAME`).
async fn by_name(
    mailbox: &dyn Exchange,
    input: &Input,
    options: &Options,
) -> Result<Option<PeerRecord>, HookError> {
    let mut identity = Identity::from_env(None);
    if let Some(cwd) = &input.cwd {
        identity.cwd = Some(cwd.clone());
    }
    let Ok(name) = identity.peer_name(options.client) else {
        return Ok(None);
    };
    known(mailbox, name.as_str()).await
}

/// The peer of this name, if there is one yet.
async fn known(mailbox: &dyn Exchange, name: &str) -> Result<Option<PeerRecord>, HookError> {
    match mailbox.peer(name).await {
        Ok(peer) => Ok(Some(peer)),
        Err(switchboard_core::Error::Rejected(switchboard_core::Rejection::UnknownPeer {
            ..
        })) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether the hook runs for Claude Code's print mode, which says so in the environment it
/// gives its hooks.
fn print_mode() -> bool {
    std::env::var("CLAUDE_CODE_ENTRYPOINT").is_ok_and(|e| e == "sdk-cli")
}

/// This process's ancestors, nearest first (parent, grandparent, …).
pub fn ancestors() -> Vec<u32> {
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

    fn item(id: i64, seen_before: bool) -> InboxItem {
        InboxItem {
            id: MessageId(id),
            kind: switchboard_proto::ItemKind::Message,
            from: "codex-api".into(),
            to: switchboard_proto::Target::Peer("claude-web".into()),
            text: "the API moved to /v2".into(),
            reply_to: None,
            created_at: 0,
            seen_before,
            context_hint: None,
            grounding: None,
        }
    }

    /// Seen in the bench with the real Claude Code (channel alias, gate closed): a session's
    /// first mail, pushed before its waiter held the mark, never reached the model, because
    /// with no transcript yet the waiter recovered nothing. And, in the real-client test, a
    /// waiter that took a missing transcript for "nothing shown" showed an earlier waiter's
    /// wake a second time. With no transcript, what was handed over before the waiter began
    /// counts as shown, what came after as missed; a hook that does not wait recovers nothing.
    #[test]
    fn a_transcript_not_written_yet_recovers_only_what_came_after_the_waiter_began_regression() {
        let dir = std::env::temp_dir().join(format!("sb-transcript-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("not-yet.jsonl");
        let waiter = Transcript::read(&missing, Some(MessageId(10))).expect("a waiter goes by it");
        assert!(
            waiter.shows(&item(10, true)),
            "an earlier wake's mail is not shown again"
        );
        assert!(
            !waiter.shows(&item(11, true)),
            "a push since the waiter began is recovered"
        );
        assert!(
            Transcript::read(&missing, None).is_none(),
            "a hook that does not wait has nothing to go by"
        );

        let written = dir.join("session.jsonl");
        let head = serde_json::to_string(&framing::head(&item(11, true))).unwrap();
        std::fs::write(
            &written,
            format!("{{\"content\":\"{}\"}}\n", head.trim_matches('"')),
        )
        .unwrap();
        let read = Transcript::read(&written, Some(MessageId(10))).unwrap();
        assert!(read.shows(&item(11, true)));
        assert!(!read.shows(&item(12, true)));
        let _ = std::fs::remove_dir_all(&dir);
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
