//! End to end with the real agent clients, not our own: the pinned Claude Code and Codex CLIs
//! (`.ci/clients`, installed by `.ci/run`) run against a fake model API on 127.0.0.1
//! ([`model`]) that records every request, so "the message reached the model" is checked on
//! what the model was actually sent.
//!
//! Without the clients each test prints `SKIPPED …` and passes, except under `CI=true`, where
//! it fails.

pub mod drive;
pub mod model;

mod claude;
mod codex;
mod plugin;
mod python_sdk;

use std::io::Write;

pub use drive::Clients;

/// The clients, or `None` after saying why the test is skipped (a panic under `CI=true`).
pub fn clients(test: &str) -> Option<Clients> {
    or_skip(test, drive::find())
}

/// A real client found, or `None` after saying why the test is skipped (a panic under
/// `CI=true`).
pub fn or_skip<T>(test: &str, found: Result<T, String>) -> Option<T> {
    match found {
        Ok(found) => Some(found),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "the real-client suite must run in CI, but {why}; .ci/run installs the clients \
             (.ci/clients)"
        ),
        Err(why) => {
            // Shown even when the harness captures output: a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: {why}. Run .ci/run (it installs .ci/clients) to run it."
            );
            None
        }
    }
}
