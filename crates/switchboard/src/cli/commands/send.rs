//! `switchboard send` and `switchboard broadcast`

use std::io::Read;

use switchboard_core::Outgoing;
use switchboard_proto::Target;

use super::super::args::{BroadcastArgs, SendArgs, SendOptions};
use super::super::{CliError, Context, output};

pub async fn send(ctx: &Context, args: SendArgs) -> Result<(), CliError> {
    let text = message_text(args.text)?;
    deliver(ctx, Target::Peer(args.peer), text, args.options).await
}

pub async fn broadcast(ctx: &Context, args: BroadcastArgs) -> Result<(), CliError> {
    let text = message_text(args.text)?;
    deliver(ctx, Target::Broadcast(args.scope), text, args.options).await
}

async fn deliver(
    ctx: &Context,
    to: Target,
    text: String,
    options: SendOptions,
) -> Result<(), CliError> {
    let me = super::operator(ctx).await?;
    let out = Outgoing {
        to,
        text,
        reply_to: options.reply_to,
        idempotency_key: options.key,
        ttl: options.ttl,
    };
    let sent = ctx.mailbox.send(me.id, out).await?;
    if ctx.json {
        output::json(&sent)
    } else {
        output::line(output::sent(&sent))
    }
}

/// The words of the message joined by spaces, or stdin when the only word is `-`.
pub(super) fn message_text(words: Vec<String>) -> Result<String, CliError> {
    if words.len() == 1 && words[0] == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::BadInput(format!("cannot read the message from stdin: {e}")))?;
        return Ok(text);
    }
    Ok(words.join(" "))
}
