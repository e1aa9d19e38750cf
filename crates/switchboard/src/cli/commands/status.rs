//! `switchboard status`

use serde::Serialize;
use switchboard_core::StoreStats;

use super::super::{CliError, Context, output};

#[derive(Serialize)]
struct Status {
    home: String,
    #[serde(flatten)]
    stats: StoreStats,
}

pub async fn run(ctx: &Context) -> Result<(), CliError> {
    let stats = ctx.mailbox.stats().await?;
    let status = Status {
        home: ctx.settings.home.display().to_string(),
        stats,
    };
    if ctx.json {
        return output::json(&status);
    }
    let s = &status.stats;
    let j = &s.jobs;
    let place = match &ctx.relay {
        Some(url) => format!(" at {url}"),
        None => String::new(),
    };
    output::line(format!(
        "store     {} (schema v{}){place}\n\
         peers     {} online of {}\n\
         messages  {} stored; copies: {} queued, {} delivered, {} read, {} expired, {} dead\n\
         jobs      {} queued, {} running, {} completed, {} failed, {} cancelled, {} expired, \
         {} need recovery, {} dead",
        s.backend,
        s.schema_version,
        s.peers_online,
        s.peers,
        s.messages,
        s.queued,
        s.delivered,
        s.read,
        s.expired,
        s.dead,
        j.queued,
        j.claimed + j.running,
        j.completed,
        j.failed,
        j.cancelled,
        j.expired,
        j.needs_recovery,
        j.dead,
    ))
}
