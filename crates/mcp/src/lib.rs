//! The MCP face of switchboard: the server each agent session talks to over stdio (and, with
//! the relay, over Streamable HTTP), on top of the domain core.
//!
//! - [`server`]: the handler — session registration, tools, push, piggyback, resources, prompts;
//! - [`tools`]: tool definitions and their execution;
//! - `fixtures`: the official conformance suite's fixtures, served beside the product's own
//!   only by `serve --conformance-fixtures`; test equipment, built only with the `fixtures`
//!   feature (tests turn it on; release builds don't);
//! - [`framing`]: how peer content is shown to a model (untrusted, with ids to act on);
//! - [`identity`]: the peer name and the declared location facts;
//! - [`notify`]: opt-in desktop notifications for sessions that cannot be pushed to;
//! - [`presence`]: whether an HTTP client holds a stream to be pushed to;
//! - [`hooks`]: Claude Code and Codex hook commands, the delivery paths that need no channel;
//! - [`idle`]: the session mark where a session's server and its hooks meet (which peer, and
//!   who hands mail to an idle session);
//! - [`stdio`]: running one session over stdin/stdout until the client goes away.

#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod framing;
pub mod hooks;
pub mod identity;
pub mod idle;
pub mod notify;
pub mod presence;
pub mod server;
pub mod stdio;
pub mod tools;

pub use identity::Identity;
pub use notify::Notifier;
pub use presence::Presence;
pub use server::{
    Config, Connection, Era, INSTRUCTIONS, McpHandler, OpenContext, Opener, PushMode,
};
