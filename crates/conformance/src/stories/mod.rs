//! The stories, one file per area. Each opens fresh handles from a [`Backend`] and checks one
//! rule of SPEC 3/5. Each area file ends with its own list of stories (a `conformance_<area>!`
//! macro); [`conformance_suite!`](crate::conformance_suite) expands every area's list.

use switchboard_core::{Exchange, Limits, PeerId, SentQuery};
use switchboard_proto::{DeliveryState, MessageId};

use crate::{Backend, World};

pub mod events;
pub mod jobs;
pub mod mail;
pub mod questions;
pub mod refusals;
pub mod reservations;
pub mod sessions;
pub mod upkeep;

// Helpers the areas share.

async fn world(b: &dyn Backend, limits: Limits) -> World {
    World::new(b.open().await, limits)
}

fn state_of(sent: &switchboard_proto::SentMessage, peer: &str) -> DeliveryState {
    sent.recipients
        .iter()
        .find(|r| r.peer == peer)
        .map(|r| r.state)
        .expect("recipient listed")
}

async fn only_sent(
    w: &World,
    sender: PeerId,
    id: impl Into<MessageId>,
) -> switchboard_proto::SentMessage {
    w.mailbox
        .sent(sender, SentQuery::One(id.into()))
        .await
        .expect("sent view")
        .remove(0)
}
