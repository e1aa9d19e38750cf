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
    output::line(format!(
        "store     {} (schema v{})\npeers     {} online of {}\nmessages  {} stored; copies: {} queued, {} delivered, {} read, {} expired, {} dead",
        s.backend,
        s.schema_version,
        s.peers_online,
        s.peers,
        s.messages,
        s.queued,
        s.delivered,
        s.read,
        s.expired,
        s.dead
    ))
}
