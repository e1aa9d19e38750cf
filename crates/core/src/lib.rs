//! The domain core of switchboard: peers, sessions, messages and the delivery rules of SPEC 3
//! and 5, written against the [`Store`] trait and nothing else.
//!
//! Front ends (CLI, MCP, HTTP) talk to a [`Mailbox`]; storage backends implement [`Store`].

pub mod clock;
pub mod error;
pub mod mailbox;
pub mod policy;
pub mod store;
pub mod wake;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Rejection};
pub use mailbox::{Ask, Dispatch, Mailbox, Outgoing, Session};
pub use policy::Limits;
pub use store::*;
pub use wake::Wake;
