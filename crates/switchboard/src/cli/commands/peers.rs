//! `switchboard peers`

use switchboard_core::{Run, op};
use switchboard_proto::{PeerHolding, PeerView};

use super::super::args::PeersArgs;
use super::super::{CliError, Context, output};

pub async fn run(ctx: &Context, args: PeersArgs) -> Result<(), CliError> {
    let only = op::Peers {
        online_only: args.online,
    };
    let mut peers: Vec<PeerView> = ctx
        .mailbox
        .run(only)
        .await?
        .into_iter()
        .map(PeerView::from)
        .collect();
    // Live peers first: they are the ones that can answer now.
    peers.sort_by(|a, b| b.online.cmp(&a.online).then_with(|| a.name.cmp(&b.name)));
    if peers.is_empty() && !ctx.json {
        return output::line(if args.online {
            "no peer is online now; `switchboard peers` lists them all"
        } else {
            "no peers yet: a peer appears with its first session or message"
        });
    }
    let held = ctx.mailbox.run(op::Reservations { repo: None }).await?;
    if ctx.json {
        let holding: Vec<PeerHolding> = peers
            .into_iter()
            .map(|p| PeerHolding::new(p, &held))
            .collect();
        return output::json(&holding);
    }
    output::peers(&peers, &held)
}
