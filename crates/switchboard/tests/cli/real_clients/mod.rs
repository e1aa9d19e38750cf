//! End to end with the real agent clients, not our own: the pinned Claude Code and Codex CLIs
//! (`.ci/clients`, installed by `.ci/run`) run against a fake model API on 127.0.0.1
//! ([`model`]) that records every request, so "the message reached the model" is checked on
//! what the model was actually sent.
//!
//! Without the clients each test prints `SKIPPED …` and passes, except under `CI=true`, where
//! it fails.

pub mod model;

mod claude;
mod codex;

use std::io::Write;
use std::path::{Path, PathBuf};

/// The pinned clients' native binaries.
#[derive(Debug, Clone)]
pub struct Clients {
    pub claude: PathBuf,
    pub codex: PathBuf,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the workspace root")
        .to_path_buf()
}

fn find() -> Result<Clients, String> {
    let modules = workspace().join(".ci/clients/node_modules");
    let claude = modules.join("@anthropic-ai/claude-code-linux-x64/claude");
    let codex = modules.join("@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex");
    for binary in [&claude, &codex] {
        if !binary.is_file() {
            return Err(format!("{} is not installed", binary.display()));
        }
    }
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Err("the pinned clients are the linux-x64 builds".into());
    }
    Ok(Clients { claude, codex })
}

/// The clients, or `None` after saying why the test is skipped (a panic under `CI=true`).
pub fn clients(test: &str) -> Option<Clients> {
    match find() {
        Ok(found) => Some(found),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "the real-client suite must run in CI, but {why}; .ci/run installs the clients \
             (npm ci --prefix .ci/clients)"
        ),
        Err(why) => {
            // Shown even when the harness captures output: a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: {why}. Install the clients with `npm ci --prefix .ci/clients` \
                 (or run .ci/run) to run it."
            );
            None
        }
    }
}
