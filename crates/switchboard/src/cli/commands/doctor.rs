//! `switchboard doctor`: what is configured, what is missing, and how to fix it.

use std::path::PathBuf;

use serde_json::json;
use switchboard_core::Store;
use switchboard_store_sqlite::SqliteStore;

use crate::agent_config::{self, Found};
use crate::settings::Settings;

use super::super::{CliError, output};
use super::relay_data::{DbChoice, RelayData};
use super::setup::{cli_name, exe};

pub async fn run(
    settings: &Settings,
    database_url: Option<&str>,
    as_json: bool,
) -> Result<(), CliError> {
    let exe = exe()?;
    let mut checks = Vec::new();

    if let Some(url) = database_url.filter(|u| !u.is_empty()) {
        checks.extend(database(settings, url).await);
    }

    checks.push(match SqliteStore::open(&settings.home) {
        Ok(store) => match store.stats(0).await {
            Ok(s) => Check::new(
                "store",
                Status::Ok,
                format!(
                    "{} (schema v{}, {} peers, {} online)",
                    s.backend, s.schema_version, s.peers, s.peers_online
                ),
            ),
            Err(e) => Check::new("store", Status::Problem, e.to_string()),
        },
        Err(e) => Check::new("store", Status::Problem, e.to_string()),
    });

    // The stored login: which relay the commands and client set-ups use, and whether it is up.
    let login = crate::login::load()?;
    checks.push(match &login {
        None => Check::new(
            "relay login",
            Status::Info,
            "none: commands use this machine's store",
        ),
        Some(l) => {
            let timeout = std::time::Duration::from_secs(3);
            match switchboard_relay_client::ping(&l.relay, l.ca.as_deref(), timeout).await {
                Ok(()) => Check::new("relay login", Status::Ok, format!("{} (answers)", l.relay)),
                Err(e) => Check::new("relay login", Status::Problem, format!("{}: {e}", l.relay)),
            }
        }
    });
    // Clients are checked against what `setup` would write now: for the stored login's relay
    // when there is one.
    let launch = agent_config::Launch {
        exe: exe.clone(),
        relay: login.map(|l| agent_config::RelaySetup {
            url: l.relay,
            token_env: agent_config::TOKEN_ENV.into(),
            from_login: true,
            http: false,
        }),
    };

    for client in agent_config::AgentClient::ALL {
        let targets =
            agent_config::targets(client).map_err(|e| CliError::BadInput(e.to_string()))?;
        for target in targets {
            let fix = format!("switchboard setup {} --write", cli_name(client));
            let (status, detail) = match agent_config::inspect(&target, &launch) {
                Ok(Found::Configured) => (Status::Ok, "set up".to_owned()),
                Ok(Found::Different) => (
                    Status::Stale,
                    format!("set up for another switchboard binary or version; fix: {fix}"),
                ),
                Ok(Found::Missing) => (
                    Status::Missing,
                    format!("not set up; if you use {}: {fix}", client.label()),
                ),
                Ok(Found::NoFile) => (
                    Status::Missing,
                    format!("no such file; if you use {}: {fix}", client.label()),
                ),
                Err(e) => (Status::Problem, e.to_string()),
            };
            checks.push(Check {
                file: Some(target.path),
                ..Check::new(client.label(), status, detail)
            });
        }
    }
    checks.push(Check::new(
        "Claude Code delivery",
        Status::Info,
        claude_delivery(switchboard_mcp::hooks::channels_enabled()),
    ));

    if as_json {
        let checks: Vec<_> = checks.iter().map(Check::json).collect();
        output::json(&json!({ "binary": exe, "checks": checks }))?;
    } else {
        output::line(format!("binary    {exe}"))?;
        for c in &checks {
            let file = c
                .file
                .as_ref()
                .map(|f| format!(" ({})", f.display()))
                .unwrap_or_default();
            output::line(format!(
                "{:<8} {}{file}: {}",
                c.status.as_str(),
                c.name,
                c.detail
            ))?;
        }
    }
    if checks.iter().any(|c| c.status == Status::Problem) {
        return Err(CliError::Quiet(1));
    }
    Ok(())
}

/// How one check came out. Only a problem makes `doctor` fail; a warning is something that
/// works today but should be fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Info,
    Warning,
    /// A client is set up, but for another binary or version.
    Stale,
    /// A client is not set up (fine when that client is not used).
    Missing,
    Problem,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Info => "info",
            Status::Warning => "warning",
            Status::Stale => "stale",
            Status::Missing => "missing",
            Status::Problem => "problem",
        }
    }
}

/// One line of the report: what was checked (and in which file), how it came out, and what
/// was found or how to fix it.
struct Check {
    name: &'static str,
    file: Option<PathBuf>,
    status: Status,
    detail: String,
}

impl Check {
    fn new(name: &'static str, status: Status, detail: impl Into<String>) -> Self {
        Self {
            name,
            file: None,
            status,
            detail: detail.into(),
        }
    }

    fn json(&self) -> serde_json::Value {
        let (check, status, detail) = (self.name, self.status.as_str(), &self.detail);
        match &self.file {
            Some(file) => {
                json!({ "check": check, "file": file, "status": status, "detail": detail })
            }
            None => json!({ "check": check, "status": status, "detail": detail }),
        }
    }
}

/// Which MCP era a Claude Code session started from this shell negotiates with
/// `switchboard mcp` (the server's own rule, `Era::for_push`), and so how mail reaches it.
fn claude_delivery(channels_env: bool) -> String {
    use switchboard_mcp::{Era, PushMode};
    let hooks = "hooks add mail at session start and with each prompt, and wake an idle session";
    match Era::for_push(PushMode::Auto, channels_env) {
        Era::InitializeBased => format!(
            "SWITCHBOARD_CHANNELS=1 in this shell: sessions negotiate the initialize-based \
             protocol (2025-11-25), where Claude Code's channels work; mail is pushed mid-turn \
             when Claude Code's channel gate allows it (a claude.ai login, channels enabled); \
             {hooks}"
        ),
        Era::Modern => format!(
            "sessions negotiate MCP 2026-07-28, which has no channel push; {hooks}. For push \
             mid-turn start Claude Code with the alias `setup claude-code` prints"
        ),
    }
}

/// The relay's shared database: reachable, and at a schema this version knows; and, as a
/// warning (the relay works, but slows as it grows), whether the server vacuums.
async fn database(settings: &Settings, url: &str) -> Vec<Check> {
    let data = match RelayData::open(&settings.home, DbChoice::url(Some(url))).await {
        Ok(d) => d,
        Err(e) => return vec![Check::new("database", Status::Problem, e.to_string())],
    };
    let RelayData::Postgres(db) = &data else {
        return vec![Check::new("database", Status::Ok, data.describe())];
    };
    let checked = async {
        let server = db.check().await?;
        let rooms = db.rooms().await?.len();
        Ok::<_, switchboard_core::StoreError>((server, rooms))
    };
    let (server, rooms) = match checked.await {
        Ok(found) => found,
        Err(e) => return vec![Check::new("database", Status::Problem, e.to_string())],
    };
    let mut checks = vec![Check::new(
        "database",
        Status::Ok,
        format!(
            "{} (PostgreSQL {}, schema v{}, {rooms} rooms)",
            db.describe(),
            server.version,
            server.schema
        ),
    )];
    if !server.autovacuum {
        checks.push(Check::new(
            "database vacuum",
            Status::Warning,
            "autovacuum is off on this server: the row versions every hand-over and \
             acknowledgement leaves behind are never reclaimed, so the mail tables and their \
             indexes grow without end and every lease slows (docs/team.md, \"Vacuum\"). \
             Turn it on: ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf();",
        ));
    }
    checks
}
