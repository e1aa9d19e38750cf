//! The domain core of switchboard: peers, sessions, messages and the delivery rules of SPEC 3
//! and 5, written against the [`Store`] trait and nothing else.
//!
//! Front ends (CLI, MCP, HTTP) talk to an [`Exchange`]: a [`Mailbox`] over a local store, or a
//! relay client. Every operation is listed once in [`op`]; [`wire`] frames them as the relay's JSON.
//! Storage backends implement [`Store`].

pub mod clock;
pub mod delivery;
pub mod error;
pub mod exchange;
pub mod failure;
pub mod mailbox;
pub mod notice;
pub mod op;
pub mod policy;
pub mod procedures;
pub mod rules;
pub mod seam;
pub mod store;
pub mod tokens;
pub mod wake;
pub mod wire;

pub use clock::{Clock, ManualClock, SystemClock};
pub use delivery::{Delivered, DeliveryError};
pub use error::{Error, Rejection};
pub use exchange::{Ask, Dispatch, Exchange, Outgoing, Run, Session, WORKER_CLIENT};
pub use failure::Failure;
pub use mailbox::Mailbox;
pub use op::{Answer, Call};
pub use policy::Limits;
pub use rules::BroadcastPlace;
pub use store::*;
pub use tokens::{Grant, TokenRecord, TokenStore};
pub use wake::Wake;
