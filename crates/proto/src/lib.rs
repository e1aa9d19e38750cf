//! Wire and protocol types of switchboard: names, ids, delivery states, the views every
//! front end (CLI, MCP, HTTP) shows, and the input limits of SPEC section 3.
//!
//! This crate does no I/O and knows nothing about storage; it only says what a valid value is.

pub mod human;
pub mod id;
pub mod job;
pub mod limits;
pub mod message;
pub mod name;
pub mod peer;
pub mod question;
pub mod reservation;
mod string_enum;

pub use id::{JobId, MessageId, PeerId, QuestionId, ReservationId, SessionId};
pub use job::*;
pub use limits::*;
pub use message::*;
pub use name::{NameError, PeerName};
pub use peer::*;
pub use question::*;
pub use reservation::{Glob, GlobError, Held, PeerHolding, Reservation, ReservationMode};
