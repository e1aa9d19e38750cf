//! The Postgres store: a team relay whose replicas share one database.
//!
//! - layout: deployment-wide tables in the `switchboard` schema (tokens, rooms), and one
//!   schema per room with the same tables the embedded store has, so rooms stay apart;
//! - durability: every operation is answered after its commit; a read is a transaction of its
//!   own, writes of one room share transactions through the room's write lane (see [`lane`]);
//! - concurrency: claims take `FOR UPDATE SKIP LOCKED`, sends lock their sender and
//!   recipients, and an operation that loses a race is run again (see [`tx`]);
//! - wake-ups and presence: one holder connection per process (see [`holder`]) listens for
//!   every replica's NOTIFY and holds the advisory lock that says this process is alive;
//! - the schema: append-only migrations (see [`migrate`]); the planner's statistics of a room
//!   kept current as it grows (see [`stats`]).

mod claims;
mod db;
mod fault;
mod holder;
mod lane;
pub mod migrate;
mod sql;
mod stats;
mod store;
mod tokens;
mod tx;

pub use db::{Database, PgOptions, ServerCheck, redact};
pub use fault::chain as error_chain;
pub use store::PgStore;
pub use tokens::PgTokens;

/// True when a database URL names Postgres (the one backend besides the embedded store).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}
