//! `switchboard sent`

use switchboard_core::SentQuery;

use super::super::args::SentArgs;
use super::super::{CliError, Context, output};

pub async fn run(ctx: &Context, args: SentArgs) -> Result<(), CliError> {
    let me = super::operator(ctx).await?;
    let query = args
        .id
        .map_or(SentQuery::Recent(args.limit), SentQuery::One);
    let sent = ctx.mailbox.sent(me.id, query).await?;
    if ctx.json {
        return output::json(&sent);
    }
    if sent.is_empty() {
        return output::line("nothing sent yet");
    }
    match (args.id, sent.as_slice()) {
        // One message asked for by id: each copy with its own times.
        (Some(_), [m]) => output::line(output::sent_detail(m)),
        _ => output::sent_table(&sent),
    }
}
