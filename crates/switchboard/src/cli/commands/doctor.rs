//! `switchboard doctor`: what is configured, what is missing, and how to fix it.

use serde_json::json;
use switchboard_core::Store;
use switchboard_store_sqlite::SqliteStore;

use crate::clients::{self, Found};
use crate::settings::Settings;

use super::super::{CliError, output};
use super::setup::{cli_name, exe};

pub async fn run(settings: &Settings, as_json: bool) -> Result<(), CliError> {
    let exe = exe()?;
    let mut checks = Vec::new();
    let mut problems = 0;

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

    for client in clients::Client::ALL {
        let targets = clients::targets(client).map_err(|e| CliError::BadInput(e.to_string()))?;
        for target in targets {
            let fix = format!("switchboard setup {} --write", cli_name(client));
            let (status, detail) = match clients::inspect(&target, &clients::Launch::local(&exe)) {
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
    let channels = if switchboard_mcp::hooks::channels_enabled() {
        "on in this shell: Claude Code sessions started from it get mail pushed as channel events"
    } else {
        "off in this shell: mail reaches Claude Code through hooks and tool results"
    };
    checks.push(json!({ "check": "Claude Code channels", "status": "info", "detail": channels }));

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
