//! `switchboard gc`

use super::super::{CliError, Context, output};

pub async fn run(ctx: &Context) -> Result<(), CliError> {
    let r = ctx.mailbox.gc().await?;
    if ctx.json {
        return output::json(&r);
    }
    output::line(format!(
        "expired {} message copies; ended {} dead sessions; deleted {} messages, {} sessions, {} peers past retention",
        r.expired, r.dead_sessions, r.messages_deleted, r.sessions_deleted, r.peers_deleted
    ))
}
