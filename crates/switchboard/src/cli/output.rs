//! How results are shown: JSON for scripts (`--json`), short readable text for people.

use std::io::Write;

use serde::Serialize;
use switchboard_proto::{InboxItem, ItemKind, LogEntry, Millis, PeerView, SentMessage, Target};

use super::CliError;

pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value).map_err(std::io::Error::other)?;
    writeln!(out)?;
    Ok(())
}

pub fn line(text: impl std::fmt::Display) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(())
}

/// A UTC timestamp to the second.
pub fn when(ms: Millis) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Indents continuation lines so a multi-line message stays visibly one message.
fn indented(text: &str) -> String {
    text.lines().collect::<Vec<_>>().join("\n    ")
}

pub fn peer(p: &PeerView) -> String {
    let status = if p.online { "online " } else { "offline" };
    let client = match (&p.info.client_kind, &p.info.client_version) {
        (Some(k), Some(v)) => format!("{k} {v}"),
        (Some(k), None) => k.clone(),
        _ => p.kind.to_string(),
    };
    let place = p.info.cwd.as_deref().unwrap_or("-");
    let mut row = format!("{:<32} {status}  {client:<20} {place}", p.name);
    if !p.summary.is_empty() {
        row.push_str(&format!("\n    {}", indented(&p.summary)));
    }
    row
}

fn target(t: &Target) -> String {
    match t {
        Target::Peer(name) => name.clone(),
        Target::Broadcast(scope) => format!("*{scope}"),
    }
}

/// An inbox item framed as agents see it (an answer's basis and sources first), then when.
pub fn inbox_item(i: &InboxItem) -> String {
    format!(
        "{}\n  sent {}",
        switchboard_mcp::framing::item(i),
        when(i.created_at)
    )
}

pub fn log_entry(e: &LogEntry) -> String {
    let reply = e.reply_to.map(|r| format!(" re #{r}")).unwrap_or_default();
    let kind = match e.kind {
        ItemKind::Message => String::new(),
        other => format!(" [{}]", other.as_str()),
    };
    format!(
        "#{} {} {} -> {}{kind}{reply}: {}",
        e.id,
        when(e.created_at),
        e.from,
        target(&e.to),
        indented(&e.text)
    )
}

pub fn sent(m: &SentMessage) -> String {
    let states = if m.recipients.is_empty() {
        "no recipients".to_owned()
    } else if let (Target::Peer(_), [only]) = (&m.to, m.recipients.as_slice()) {
        only.state.to_string()
    } else {
        m.recipients
            .iter()
            .map(|r| format!("{} {}", r.peer, r.state))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let dup = if m.duplicate {
        " (duplicate: the original, nothing new stored)"
    } else {
        ""
    };
    let preview: String = m.text.chars().take(60).collect();
    let more = if m.text.chars().count() > 60 {
        "…"
    } else {
        ""
    };
    format!(
        "#{} -> {}: {states}{dup}\n    {}{more}",
        m.id,
        target(&m.to),
        indented(&preview)
    )
}
