//! `switchboard doctor`: what is configured, what is missing, and how to fix it.

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
    let mut problems = 0;

    if let Some(url) = database_url.filter(|u| !u.is_empty()) {
        for (check, status, detail) in database(settings, url).await {
            if status == "problem" {
                problems += 1;
            }
            checks.push(json!({ "check": check, "status": status, "detail": detail }));
        }
    }

    let store = match SqliteStore::open(&settings.home) {
        Ok(store) => match store.stats(0).await {
            Ok(s) => (
                "ok",
                format!(
                    "{} (schema v{}, {} peers, {} online)",
                    s.backend, s.schema_version, s.peers, s.peers_online
                ),
            ),
            Err(e) => ("problem", e.to_string()),
        },
        Err(e) => ("problem", e.to_string()),
    };
    if store.0 == "problem" {
        problems += 1;
    }
    checks.push(json!({ "check": "store", "status": store.0, "detail": store.1 }));

    // The stored login: which relay the commands and client set-ups use, and whether it is up.
    let login = crate::login::load()?;
    let (status, detail) = match &login {
        None => ("info", "none: commands use this machine's store".to_owned()),
        Some(l) => {
            let timeout = std::time::Duration::from_secs(3);
            match switchboard_relay_client::ping(&l.relay, l.ca.as_deref(), timeout).await {
                Ok(()) => ("ok", format!("{} (answers)", l.relay)),
                Err(e) => {
                    problems += 1;
                    ("problem", format!("{}: {e}", l.relay))
                }
            }
        }
    };
    checks.push(json!({ "check": "relay login", "status": status, "detail": detail }));
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
                Ok(Found::Configured) => ("ok", "set up".to_owned()),
                Ok(Found::Different) => (
                    "stale",
                    format!("set up for another switchboard binary or version; fix: {fix}"),
                ),
                Ok(Found::Missing) => (
                    "missing",
                    format!("not set up; if you use {}: {fix}", client.label()),
                ),
                Ok(Found::NoFile) => (
                    "missing",
                    format!("no such file; if you use {}: {fix}", client.label()),
                ),
                Err(e) => {
                    problems += 1;
                    ("problem", e.to_string())
                }
            };
            checks.push(json!({
                "check": client.label(),
                "file": target.path,
                "status": status,
                "detail": detail,
            }));
        }
    }
    checks.push(json!({
        "check": "Claude Code delivery",
        "status": "info",
        "detail": claude_delivery(switchboard_mcp::hooks::channels_enabled()),
    }));

    if as_json {
        output::json(&json!({ "binary": exe, "checks": checks }))?;
    } else {
        output::line(format!("binary    {exe}"))?;
        for c in &checks {
            let file = c["file"]
                .as_str()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default();
            output::line(format!(
                "{:<8} {}{file}: {}",
                c["status"].as_str().unwrap_or(""),
                c["check"].as_str().unwrap_or(""),
                c["detail"].as_str().unwrap_or("")
            ))?;
        }
    }
    if problems > 0 {
        return Err(CliError::Quiet(1));
    }
    Ok(())
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
async fn database(settings: &Settings, url: &str) -> Vec<(&'static str, &'static str, String)> {
    let data = match RelayData::open(&settings.home, DbChoice::url(Some(url))).await {
        Ok(d) => d,
        Err(e) => return vec![("database", "problem", e.to_string())],
    };
    let RelayData::Postgres(db) = &data else {
        return vec![("database", "ok", data.describe())];
    };
    let checked = async {
        let server = db.check().await?;
        let rooms = db.rooms().await?.len();
        Ok::<_, switchboard_core::StoreError>((server, rooms))
    };
    let (server, rooms) = match checked.await {
        Ok(found) => found,
        Err(e) => return vec![("database", "problem", e.to_string())],
    };
    let mut checks = vec![(
        "database",
        "ok",
        format!(
            "{} (PostgreSQL {}, schema v{}, {rooms} rooms)",
            db.describe(),
            server.version,
            server.schema
        ),
    )];
    if !server.autovacuum {
        checks.push((
            "database vacuum",
            "warning",
            "autovacuum is off on this server: the row versions every hand-over and \
             acknowledgement leaves behind are never reclaimed, so the mail tables and their \
             indexes grow without end and every lease slows (docs/team.md, \"Vacuum\"). \
             Turn it on: ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf();"
                .to_owned(),
        ));
    }
    checks
}
