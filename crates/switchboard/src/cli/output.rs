//! How results are shown: JSON for scripts (`--json`), readable text for people — tables with
//! headers, local and relative times, and colour on a terminal.
//!
//! Everything goes through `anstream`, which drops the colour when stdout is not a terminal or
//! when `NO_COLOR` is set (and keeps it for `CLICOLOR_FORCE`): commands write styled text and
//! never decide about colour themselves.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anstyle::{AnsiColor, Style};
use serde::Serialize;
use switchboard_proto::{
    DeliveryState, InboxItem, ItemKind, JobState, JobView, LogEntry, Millis, PeerView,
    QuestionState, QuestionView, Reservation, ReservationMode, SentMessage, Target, human,
};

use super::CliError;

pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value).map_err(std::io::Error::other)?;
    writeln!(out)?;
    Ok(())
}

pub fn line(text: impl std::fmt::Display) -> Result<(), CliError> {
    let mut out = anstream::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(())
}

/// One line on stderr about what the command is doing (waiting, retrying), so a person at a
/// silent terminal knows it has not hung. Styled dim; plain where colour is off.
pub fn progress(text: impl std::fmt::Display) {
    let mut err = anstream::stderr().lock();
    let _ = writeln!(err, "{DIM}{text}{DIM:#}");
}

/// A warning on stderr: the command did what was asked, but the person should know this.
pub fn warn(text: impl std::fmt::Display) {
    let mut err = anstream::stderr().lock();
    let _ = writeln!(err, "{WARN}warning:{WARN:#} {text}");
}

const DIM: Style = Style::new().dimmed();
const BOLD: Style = Style::new().bold();
const WARN: Style = Style::new()
    .bold()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));
const GOOD: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Green)));
const BAD: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)));
const BUSY: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Cyan)));

/// A table: a header row and aligned columns, the last one left ragged. Cells are measured by
/// their display width without their style, so colour never shifts a column. Hand-written: the
/// table crates bring their own terminal and colour handling, and colour here already follows
/// `anstream`'s rules.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<(String, Style)>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<(String, Style)>) {
        self.rows.push(cells);
    }

    pub fn print(&self) -> Result<(), CliError> {
        let mut out = anstream::stdout().lock();
        // Styled always: anstream drops the styles where colour is off.
        out.write_all(self.render(true).as_bytes())?;
        Ok(())
    }

    /// The table as text, one line per row, with or without its styles.
    fn render(&self, styled: bool) -> String {
        use unicode_width::UnicodeWidthStr;
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.width()).collect();
        for row in &self.rows {
            for (i, (text, _)) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(text.width());
            }
        }
        let header: Vec<(String, Style)> = self
            .header
            .iter()
            .map(|h| ((*h).to_owned(), BOLD))
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, style)) in row.iter().enumerate().take(columns) {
                let style = if styled { *style } else { Style::new() };
                line.push_str(&format!("{style}{cell}{style:#}"));
                if i + 1 < columns.min(row.len()) {
                    line.push_str(&" ".repeat(widths[i] - cell.width() + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A table cell without a style.
pub fn cell(text: impl Into<String>) -> (String, Style) {
    (text.into(), Style::new())
}

fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A moment in the system's time zone, to the second: `2026-11-28 09:14:03`.
pub fn when(ms: Millis) -> String {
    let Ok(at) = jiff::Timestamp::from_millisecond(ms) else {
        return ms.to_string();
    };
    at.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// How long ago (or how far ahead) a moment is: `just now`, `3 min ago`, `in 2 h`.
pub fn ago(ms: Millis) -> String {
    let delta = now_ms() - ms;
    if delta.abs() < 5_000 {
        return "just now".into();
    }
    // One unit, rounded to the nearest, is enough at a glance: "1 h ago", "in 1 day".
    let secs = (delta.unsigned_abs() + 500) / 1_000;
    let round = |size: u64| (secs + size / 2) / size;
    // The unit is chosen after rounding: 23 h 59 min is "1 day", not "24 h".
    let (n, unit) = if secs < 60 {
        (secs, "s")
    } else if round(60) < 60 {
        (round(60), "min")
    } else if round(3_600) < 24 {
        (round(3_600), "h")
    } else {
        let days = round(86_400);
        (days, if days == 1 { "day" } else { "days" })
    };
    if delta > 0 {
        format!("{n} {unit} ago")
    } else {
        format!("in {n} {unit}")
    }
}

/// Both: `2026-11-28 09:14:03 (3 min ago)`.
pub fn when_ago(ms: Millis) -> String {
    format!("{} ({})", when(ms), ago(ms))
}

/// The first line of a text, cut to `max` characters with an ellipsis.
fn preview(text: &str, max: usize) -> String {
    let first = text.lines().next().unwrap_or_default();
    let cut: String = first.chars().take(max).collect();
    if cut.chars().count() < text.chars().count() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// Indents continuation lines so a multi-line message stays visibly one message.
fn indented(text: &str) -> String {
    text.lines().collect::<Vec<_>>().join("\n    ")
}

pub fn peers(list: &[PeerView], held: &[Reservation]) -> Result<(), CliError> {
    let mut t = Table::new(&[
        "NAME",
        "STATUS",
        "CLIENT",
        "LAST SEEN",
        "WHERE",
        "RESERVED",
        "SUMMARY",
    ]);
    for p in list {
        let status = if p.online {
            ("online".to_owned(), GOOD)
        } else {
            ("offline".to_owned(), DIM)
        };
        let client = match (&p.info.client_kind, &p.info.client_version) {
            (Some(k), Some(v)) => format!("{k} {v}"),
            (Some(k), None) => k.clone(),
            _ => p.kind.to_string(),
        };
        let seen = if p.online {
            "now".to_owned()
        } else {
            ago(p.last_seen_at)
        };
        t.row(vec![
            (p.name.clone(), BOLD),
            status,
            cell(client),
            cell(seen),
            cell(p.info.cwd.as_deref().unwrap_or("-")),
            cell(reserved_by(held, &p.name)),
            cell(preview(&p.summary, 48)),
        ]);
    }
    t.print()
}

/// The paths a peer holds, in every repository: `src/api/**, docs/` or `-`.
fn reserved_by(held: &[Reservation], name: &str) -> String {
    let paths: Vec<&str> = held
        .iter()
        .filter(|r| r.holder == name)
        .flat_map(|r| r.globs.iter().map(|g| g.as_str()))
        .collect();
    if paths.is_empty() {
        "-".to_owned()
    } else {
        preview(&paths.join(", "), 40)
    }
}

fn target(t: &Target) -> String {
    match t {
        Target::Peer(name) => name.clone(),
        Target::Broadcast(scope) => format!("*{scope}"),
    }
}

fn delivery_style(state: DeliveryState) -> Style {
    match state {
        DeliveryState::Read => GOOD,
        DeliveryState::Expired | DeliveryState::Dead => BAD,
        DeliveryState::Queued | DeliveryState::Delivered => BUSY,
    }
}

/// An inbox item framed as agents see it (an answer's basis and sources first), then when.
pub fn inbox_item(i: &InboxItem) -> String {
    format!(
        "{}\n  {DIM}sent {}{DIM:#}",
        switchboard_mcp::framing::item(i),
        when_ago(i.created_at)
    )
}

pub fn log_entry(e: &LogEntry) -> String {
    let reply = e.reply_to.map(|r| format!(" re #{r}")).unwrap_or_default();
    let kind = match e.kind {
        ItemKind::Message => String::new(),
        other => format!(" [{}]", other.as_str()),
    };
    format!(
        "{BOLD}#{}{BOLD:#} {DIM}{}{DIM:#} {} -> {}{kind}{reply}: {}",
        e.id,
        when(e.created_at),
        e.from,
        target(&e.to),
        indented(&e.text)
    )
}

/// Where each copy of one message stands, in words.
fn copies(m: &SentMessage) -> (String, Style) {
    if m.recipients.is_empty() {
        return ("no recipients".to_owned(), DIM);
    }
    if let (Target::Peer(_), [only]) = (&m.to, m.recipients.as_slice()) {
        return (only.state.to_string(), delivery_style(only.state));
    }
    let mut counts: Vec<(DeliveryState, usize)> = Vec::new();
    for r in &m.recipients {
        match counts.iter_mut().find(|(s, _)| *s == r.state) {
            Some((_, n)) => *n += 1,
            None => counts.push((r.state, 1)),
        }
    }
    let text = counts
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    (text, Style::new())
}

/// One message just sent: its id, where it went and where it stands.
pub fn sent(m: &SentMessage) -> String {
    let (states, style) = copies(m);
    let dup = if m.duplicate {
        " (duplicate: the original, nothing new stored)"
    } else {
        ""
    };
    format!(
        "#{} -> {}: {style}{states}{style:#}{dup}\n    {}",
        m.id,
        target(&m.to),
        indented(&preview(&m.text, 60))
    )
}

/// One message asked for by id: the text whole, then each copy with its times.
pub fn sent_detail(m: &SentMessage) -> String {
    let mut out = format!(
        "{BOLD}#{}{BOLD:#} -> {}, sent {}, expires {}",
        m.id,
        target(&m.to),
        when_ago(m.created_at),
        ago(m.expires_at)
    );
    if let Some(r) = m.reply_to {
        out.push_str(&format!(" (reply to #{r})"));
    }
    out.push_str(&format!("\n    {}", indented(&m.text)));
    for r in &m.recipients {
        let style = delivery_style(r.state);
        let mut times = Vec::new();
        if let Some(at) = r.delivered_at {
            times.push(format!("delivered {}", ago(at)));
        }
        if let Some(at) = r.read_at {
            times.push(format!("read {}", ago(at)));
        }
        let times = if times.is_empty() {
            String::new()
        } else {
            format!(" ({})", times.join(", "))
        };
        out.push_str(&format!(
            "\n  {}: {style}{}{style:#}{times}",
            r.peer, r.state
        ));
    }
    out
}

pub fn sent_table(list: &[SentMessage]) -> Result<(), CliError> {
    let mut t = Table::new(&["ID", "TO", "STATE", "SENT", "TEXT"]);
    for m in list {
        t.row(vec![
            cell(format!("#{}", m.id)),
            (target(&m.to), BOLD),
            copies(m),
            cell(ago(m.created_at)),
            cell(preview(&m.text, 60)),
        ]);
    }
    t.print()
}

fn job_style(state: JobState) -> Style {
    match state {
        JobState::Completed => GOOD,
        JobState::Failed | JobState::Dead | JobState::Expired | JobState::NeedsRecovery => BAD,
        JobState::Cancelled => DIM,
        JobState::Queued | JobState::Claimed | JobState::Running => BUSY,
    }
}

pub fn jobs(list: &[JobView]) -> Result<(), CliError> {
    let mut t = Table::new(&["ID", "AGENT", "STATE", "TRIES", "FROM", "UPDATED", "PROMPT"]);
    for j in list {
        t.row(vec![
            cell(format!("#{}", j.id)),
            (j.agent.clone(), BOLD),
            (j.state.to_string(), job_style(j.state)),
            cell(j.attempts.to_string()),
            cell(j.dispatcher.clone()),
            cell(ago(j.updated_at)),
            cell(preview(&j.prompt, 50)),
        ]);
    }
    t.print()
}

/// One job in full: state, times, worker, result or error.
pub fn job(j: &JobView) -> String {
    let style = job_style(j.state);
    let mut out = format!(
        "{BOLD}#{}{BOLD:#} for {}: {style}{}{style:#}{} (attempts {}, from {}{})",
        j.id,
        j.agent,
        j.state,
        if j.write { ", write" } else { "" },
        j.attempts,
        j.dispatcher,
        if j.duplicate {
            "; duplicate of an earlier dispatch"
        } else {
            ""
        }
    );
    out.push_str(&format!(
        "\n{DIM}dispatched{DIM:#} {}",
        when_ago(j.created_at)
    ));
    if j.updated_at != j.created_at {
        out.push_str(&format!(
            "\n{DIM}updated{DIM:#}    {}",
            when_ago(j.updated_at)
        ));
    }
    if matches!(j.state, JobState::Queued) {
        out.push_str(&format!(
            "\n{DIM}expires{DIM:#}    {}",
            when_ago(j.expires_at)
        ));
    }
    if let Some(w) = &j.worker {
        out.push_str(&format!("\n{DIM}worker{DIM:#}     {w}"));
    }
    if let Some(b) = &j.branch {
        out.push_str(&format!("\n{DIM}branch{DIM:#}     {b}"));
    }
    if let Some(r) = &j.result {
        out.push_str(&format!("\n{r}"));
    }
    if let Some(e) = &j.error {
        out.push_str(&format!("\n{BAD}error:{BAD:#} {e}"));
    }
    out
}

pub fn questions(list: &[QuestionView]) -> Result<(), CliError> {
    let mut t = Table::new(&["ID", "FROM", "TO", "STATE", "ASKED", "QUESTION"]);
    for q in list {
        let style = match q.state {
            QuestionState::Answered => GOOD,
            QuestionState::Declined | QuestionState::Expired => DIM,
            QuestionState::Open => BUSY,
        };
        t.row(vec![
            cell(format!("#{}", q.id)),
            cell(q.from.clone()),
            cell(q.to.clone()),
            (q.state.to_string(), style),
            cell(ago(q.asked_at)),
            cell(preview(&q.question, 60)),
        ]);
    }
    t.print()
}

pub fn reservations(list: &[Reservation], with_repo: bool) -> Result<(), CliError> {
    let mut header = vec!["ID", "HOLDER", "MODE", "PATHS", "UNTIL", "REASON"];
    if with_repo {
        header.push("REPO");
    }
    let mut t = Table::new(&header);
    for r in list {
        let mode = match r.mode {
            ReservationMode::Exclusive => ("exclusive".to_owned(), BUSY),
            ReservationMode::Shared => ("shared".to_owned(), DIM),
        };
        let paths: Vec<&str> = r.globs.iter().map(|g| g.as_str()).collect();
        let until = if r.session_bound {
            format!("{} or session end", ago(r.expires_at))
        } else {
            ago(r.expires_at)
        };
        let mut row = vec![
            cell(format!("#{}", r.id)),
            (r.holder.clone(), BOLD),
            mode,
            cell(paths.join(", ")),
            cell(until),
            cell(preview(&r.reason, 40)),
        ];
        if with_repo {
            row.push(cell(r.repo.chars().take(12).collect::<String>()));
        }
        t.row(row);
    }
    t.print()
}

/// A duration in a message to a person: `90 days`, `2 min 30 s`.
pub fn duration(d: Duration) -> String {
    human::duration(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_say_one_unit_each_way() {
        let now = now_ms();
        assert_eq!(ago(now), "just now");
        assert_eq!(ago(now - 3 * 60_000 - 500), "3 min ago");
        assert_eq!(ago(now - 2 * 86_400_000 - 3_600_000), "2 days ago");
        assert_eq!(ago(now + 2 * 3_600_000 + 30_000), "in 2 h");
        assert_eq!(ago(now + 86_400_000 - 1_000), "in 1 day");
        assert_eq!(ago(now - 59_700), "1 min ago");
    }

    #[test]
    fn table_columns_line_up_by_display_width_whatever_the_style() {
        let mut t = Table::new(&["NAME", "STATUS", "WHERE"]);
        t.row(vec![
            (("bob").into(), BOLD),
            ("online".into(), GOOD),
            cell("/src/api"),
        ]);
        t.row(vec![cell("日本語"), ("offline".into(), DIM), cell("-")]);
        assert_eq!(
            t.render(false),
            "NAME    STATUS   WHERE\nbob     online   /src/api\n日本語  offline  -\n"
        );
        assert!(
            t.render(true).contains("\u{1b}["),
            "styled when colour is on"
        );
    }

    #[test]
    fn a_preview_is_the_first_line_cut_with_an_ellipsis() {
        assert_eq!(preview("short", 10), "short");
        assert_eq!(preview("first\nsecond", 10), "first…");
        assert_eq!(preview("abcdefghijkl", 5), "abcde…");
    }
}
