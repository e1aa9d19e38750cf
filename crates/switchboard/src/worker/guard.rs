//! The job guard: a job's command never outlives its worker, whatever ends the worker.
//!
//! A worker killed with SIGKILL runs no code, so it cannot end its commands itself; left alone,
//! they are re-parented to init and run on (a read-only job then runs twice at once, a write
//! job parked for recovery keeps writing). So the worker starts each command through this
//! guard, a second copy of its own binary, as the leader of the job's process group:
//!
//! - On Linux the guard asks the kernel for a signal when its parent (the worker) dies
//!   (`PR_SET_PDEATHSIG`), and on it kills the whole process group — the command and
//!   everything it started — itself included.
//! - Elsewhere (macOS) there is no such signal; the guard checks every [`PARENT_POLL`] whether
//!   its parent is still the worker, so a command outlives a killed worker by at most that.
//!
//! The kernel's parent-death signal cannot be set from safe Rust in the child between fork and
//! exec, and this workspace forbids `unsafe`: a process of our own that sets it on itself and
//! then starts the command is the safe way, and it costs one small process per running job.
//! The guard exits as the command did (its code, or 128 + the signal that ended it).

use std::ffi::OsString;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Pid, getpgrp, getppid};

use crate::cli::CliError;

/// The hidden subcommand the worker runs its commands through.
pub const SUBCOMMAND: &str = "job-guard";

/// How often the guard looks for its parent where the kernel does not tell it.
pub const PARENT_POLL: Duration = Duration::from_millis(200);

/// Runs `program args` under the guard for the worker `parent`; the command's exit becomes
/// the guard's.
pub async fn run(parent: u32, program: OsString, args: Vec<OsString>) -> Result<(), CliError> {
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)?;
    // The worker may have died before the request took effect: then there is nothing to run.
    if !parent_alive(parent) {
        return Err(CliError::Quiet(1));
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut child = tokio::process::Command::new(&program)
        .args(&args)
        .spawn()
        .map_err(|e| {
            eprintln!("cannot start `{}`: {e}", program.to_string_lossy());
            CliError::Quiet(127)
        })?;
    let mut poll = tokio::time::interval(PARENT_POLL);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            _ = terminate.recv() => end_group(),
            _ = hangup.recv() => end_group(),
            _ = poll.tick() => {
                if !parent_alive(parent) {
                    end_group();
                }
            }
        }
    };
    match exit_code(status) {
        0 => Ok(()),
        code => Err(CliError::Quiet(code)),
    }
}

/// Whether the worker that started the guard is still its parent (a dead parent's children
/// are re-parented, so the parent id changes).
fn parent_alive(parent: u32) -> bool {
    u32::try_from(getppid().as_raw()).is_ok_and(|p| p == parent)
}

/// Kills the job's process group: the command, what it started, and this guard.
fn end_group() {
    let _ = killpg(Pid::from_raw(getpgrp().as_raw()), Signal::SIGKILL);
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(255),
        (None, None) => 1,
    }
}
