//! End-to-end tests of the real `switchboard` binary: every test spawns it in a temporary
//! store directory, as a user would run it.

#![allow(clippy::unwrap_used)]

mod harness;

mod bad_input;
mod browser;
mod conformance;
mod dashboard;
mod delivery;
mod delivery_rules;
mod finish;
mod hooks;
mod install_script;
mod jobs;
mod jsonrpc;
mod jsonrpc_fuzz;
mod mcp;
mod mcp_client;
mod questions;
mod real_clients;
mod relay;
mod relay_auth;
mod relay_inproc;
mod relay_security;
mod reservations;
mod setup;
mod store_file;
mod team;
