//! The `switchboard` program: the human's CLI over the domain core (and, in later layers, the
//! MCP server, the relay and the worker).

pub mod agent_config;
pub mod cli;
pub mod git;
pub mod login;
pub mod settings;
pub mod worker;
