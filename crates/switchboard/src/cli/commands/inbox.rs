//! `switchboard inbox`: an explicit pull of the operator's unread mail by
//! `switchboard_core::delivery`, which leases it, has it printed here, then records the
//! hand-over and acknowledges it — in that order, so a crash before the acknowledgement shows
//! the mail again next time instead of losing it.

use std::sync::atomic::{AtomicBool, Ordering};

use switchboard_core::Session;
use switchboard_core::delivery::{self, DeliveryError, Request};
use switchboard_proto::InboxItem;

use super::super::args::InboxArgs;
use super::super::{CliError, Context, output};

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
    let mut request = Request::pull(Some(args.limit));
    if let Some(wait) = args.wait {
        request = request.waiting(wait);
        output::progress(format!(
            "checking for mail; waiting up to {} if there is none…",
            output::duration(wait)
        ));
    }
    if !args.no_ack {
        request = request.acking();
    }
    let shown = AtomicBool::new(false);
    let show = |items: Vec<InboxItem>| {
        let printed = print(ctx, &items).map(|()| items);
        shown.store(true, Ordering::SeqCst);
        std::future::ready(printed)
    };
    let stop = super::shutdown_signal();
    // Ctrl-C ends a wait for mail; once the mail is on the screen the hand-over and the
    // acknowledgement run to the end, so what the human saw is not shown again.
    let stop = async {
        let stop = stop.await;
        if shown.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        stop
    };
    tokio::select! {
        delivered = delivery::deliver(ctx.mailbox.as_ref(), session, &request, show) => {
            delivered.map_err(DeliveryError::into_error::<CliError>)?;
            Ok(())
        }
        stop = stop => stop.outcome(),
    }
}

fn print(ctx: &Context, items: &[InboxItem]) -> Result<(), CliError> {
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
