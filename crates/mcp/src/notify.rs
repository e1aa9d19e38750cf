//! Opt-in desktop notifications: a human whose agent cannot be pushed to (Claude Desktop,
//! Codex) learns that mail arrived and can fetch it. Native notifications go through
//! notify-rust (Linux needs a notification daemon at run time); `--notify-command` runs any
//! program instead, with the details in `SWITCHBOARD_NOTIFY_*` variables.

use switchboard_proto::LogEntry;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notifier {
    Desktop,
    /// A shell command line; it gets `SWITCHBOARD_NOTIFY_TITLE`, `_BODY`, `_FROM`, `_TO`.
    Command(String),
}

/// Longest preview of a message in a notification.
const PREVIEW_CHARS: usize = 140;

impl Notifier {
    /// Tells the human about new mail for `peer`. Failures are logged, never fatal: a missing
    /// notification daemon must not take the agent's session down.
    pub async fn announce(&self, peer: &str, entries: &[LogEntry]) {
        let Some(last) = entries.last() else { return };
        let title = if entries.len() == 1 {
            format!("switchboard: {} → {peer}", last.from)
        } else {
            format!("switchboard: {} new messages for {peer}", entries.len())
        };
        let body: String = last.text.chars().take(PREVIEW_CHARS).collect();
        let outcome = match self {
            Self::Desktop => desktop(title, body).await,
            Self::Command(cmd) => command(cmd, &title, &body, &last.from, peer).await,
        };
        if let Err(e) = outcome {
            tracing::warn!("cannot show a notification: {e}");
        }
    }
}

async fn desktop(title: String, body: String) -> Result<(), String> {
    tokio::task::spawn_blocking(move || {
        notify_rust::Notification::new()
            .appname("switchboard")
            .summary(&title)
            .body(&body)
            .show()
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

async fn command(cmd: &str, title: &str, body: &str, from: &str, to: &str) -> Result<(), String> {
    let mut child = if cfg!(windows) {
        let mut c = tokio::process::Command::new("cmd");
        c.args(["/C", cmd]);
        c
    } else {
        let mut c = tokio::process::Command::new("sh");
        c.args(["-c", cmd]);
        c
    };
    let status = child
        .env("SWITCHBOARD_NOTIFY_TITLE", title)
        .env("SWITCHBOARD_NOTIFY_BODY", body)
        .env("SWITCHBOARD_NOTIFY_FROM", from)
        .env("SWITCHBOARD_NOTIFY_TO", to)
        .stdin(std::process::Stdio::null())
        // stdout belongs to JSON-RPC: the command's output must never reach it.
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .map_err(|e| format!("cannot run the notify command: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the notify command exited with {status}"))
    }
}
