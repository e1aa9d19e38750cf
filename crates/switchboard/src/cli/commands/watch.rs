//! `switchboard watch`: a live tail of the room's log, woken by the store, never polling.

use std::time::Duration;

use switchboard_core::{LogQuery, Run, op};

use super::super::args::WatchArgs;
use super::super::{CliError, Context, output};

/// Entries read per round; a backlog is printed in pages of this size.
const PAGE: u32 = 200;
/// How long one wait lasts before it is renewed; waits end early on every wake.
const ROUND: Duration = Duration::from_secs(3600);

pub async fn run(ctx: &Context, args: WatchArgs) -> Result<(), CliError> {
    let peer = match &args.peer {
        Some(name) => Some(ctx.mailbox.peer(name).await?.id),
        // A peer token sees its own part of the room: its peer must exist to have one.
        None if ctx.token_peer.is_some() => Some(super::operator(ctx).await?.id),
        None => None,
    };
    let mut after = match args.since {
        Some(id) => id,
        None => ctx.mailbox.last_message_id().await?,
    };
    let mut left = args.count;
    // Listening before saying it watches: Ctrl-C right after that line is not lost.
    let stopping = super::shutdown_signal();
    tokio::pin!(stopping);
    if !ctx.json {
        eprintln!(
            "watching {} (Ctrl-C to stop)",
            args.peer.as_deref().unwrap_or("the room")
        );
    }
    while left != Some(0) {
        let query = LogQuery {
            after,
            peer,
            limit: PAGE,
        };
        let entries = tokio::select! {
            entries = ctx.mailbox.run(op::Log { query, wait: ROUND }) => entries?,
            stop = &mut stopping => return stop.outcome(),
        };
        for entry in &entries {
            if left == Some(0) {
                break;
            }
            if ctx.json {
                output::json(entry)?;
            } else {
                output::line(output::log_entry(entry))?;
            }
            after = entry.id;
            left = left.map(|n| n - 1);
        }
    }
    Ok(())
}
