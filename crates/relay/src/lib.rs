//! `switchboard serve`: the relay for agents on different machines.
//!
//! Layers, outermost first: [`server`] accepts connections (TLS, timeouts, graceful drain);
//! [`app`] routes `/mcp`, `/v1`, `/healthz` and `/metrics` behind host, origin and token
//! checks; [`guard`] narrows a room's mailbox to what the caller's token grants; [`rooms`]
//! keeps one store per room; [`sessions`] tracks the sessions remote callers hold over `/v1`
//! and [`mcp_sessions`] the MCP sessions (bound to their token, reaped when abandoned);
//! [`revocation`] ends what a revoked token holds open; [`history`] keeps the last hour of each
//! room's figures for the dashboard's charts; `dashboard` is the humans' web view at
//! `/`, signed in by cookie and reading through the same guard; [`local`] serves that view over
//! one machine's store (`switchboard dashboard`);
//! `fixtures` is the hidden conformance mode (the official MCP suite's fixtures on `/mcp`),
//! test equipment built only with the `fixtures` feature (tests turn it on; release builds don't).

pub mod app;
pub mod auth;
mod dashboard;
mod events;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod guard;
pub mod history;
pub mod local;
pub mod mcp_sessions;
pub mod metrics;
pub mod revocation;
pub mod rooms;
pub mod server;
pub mod sessions;
mod unread;

pub use app::{App, AppConfig, AppState};
pub use auth::{Caller, Verifier, mint};
pub use dashboard::{LINK_LIFETIME, SignInLinks};
pub use history::History;
pub use mcp_sessions::McpSessions;
pub use metrics::Metrics;
pub use revocation::Streams;
pub use rooms::{OpenedRoom, RoomOpener, Rooms};
pub use server::{ServeOptions, Tls, TlsError, run};
pub use sessions::Sessions;
