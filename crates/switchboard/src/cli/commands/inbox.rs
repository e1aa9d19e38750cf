//! `switchboard inbox`: lease the operator's unread mail, show it, then record the hand-over
//! and acknowledge it — in that order, so a crash before the acknowledgement shows the mail
//! again next time instead of losing it.

use std::time::Duration;

use switchboard_core::Session;
use switchboard_proto::InboxItem;

use super::super::args::InboxArgs;
use super::super::{CliError, Context, output};

/// Test-only fault injection: with this set to `stall-before-ack`, `inbox` stops after showing
/// the mail and before acknowledging it, so a test can kill it exactly there.
const FAULT_ENV: &str = "SWITCHBOARD_FAULT";

pub async fn run(ctx: &Context, args: InboxArgs) -> Result<(), CliError> {
    let session = super::operator_session(ctx).await?;
    let outcome = take(ctx, &session, &args).await;
    // A session left open would look alive only until this process ends; closing it now
    // releases any lease at once.
    let closed = ctx.mailbox.close_session(session.id).await;
    outcome?;
    Ok(closed?)
}

async fn take(ctx: &Context, session: &Session, args: &InboxArgs) -> Result<(), CliError> {
    let items = tokio::select! {
        items = fetch(ctx, session, args.limit, args.wait) => items?,
        stop = super::shutdown_signal() => return stop.outcome(),
    };
    show(ctx, &items)?;
    if std::env::var(FAULT_ENV).is_ok_and(|v| v == "stall-before-ack") {
        eprintln!("fault injected: stalling before the acknowledgement");
        std::future::pending::<()>().await;
    }
    let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
    if ids.is_empty() {
        return Ok(());
    }
    ctx.mailbox.mark_delivered(session, &ids).await?;
    if !args.no_ack {
        ctx.mailbox.ack(session.peer.id, &ids).await?;
    }
    Ok(())
}

async fn fetch(
    ctx: &Context,
    session: &Session,
    limit: u32,
    wait: Option<Duration>,
) -> Result<Vec<InboxItem>, CliError> {
    Ok(match wait {
        Some(wait) => ctx.mailbox.lease_wait(session, limit, true, wait).await?,
        None => ctx.mailbox.lease(session, limit, true).await?,
    })
}

fn show(ctx: &Context, items: &[InboxItem]) -> Result<(), CliError> {
    if ctx.json {
        return output::json(items);
    }
    if items.is_empty() {
        return output::line("no unread messages");
    }
    for item in items {
        output::line(output::inbox_item(item))?;
    }
    Ok(())
}
