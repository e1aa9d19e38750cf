//! The worker: takes jobs addressed to one agent name and runs each with a command — the
//! prompt on its stdin (or in place of a `{prompt}` argument), its stdout as the result, a
//! non-zero exit with the tail of its stderr as the failure. It heartbeats while a command
//! runs, kills the command's whole process group when the job is cancelled, and gives its
//! claims back when asked to stop.

mod command;
#[cfg(unix)]
pub mod guard;
mod run;

use std::time::Duration;

use tokio::sync::watch;

use std::sync::Arc;

use switchboard_core::{Exchange, NamePolicy, OpenSession, Run, WORKER_CLIENT, op};
use switchboard_proto::{PeerInfo, PeerKind, PeerName};

pub use command::{CommandSpec, Preset};

/// How one worker process behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub agent: String,
    pub allow_writes: bool,
    pub concurrency: usize,
    pub command: CommandSpec,
    /// Run each write job in a fresh git worktree of this directory's repository.
    pub worktree: bool,
    /// Who this worker is, as `jobs show` reports it.
    pub name: String,
}

/// How long one wait for a job lasts before the worker looks again.
const CLAIM_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Core(#[from] switchboard_core::Error),
}

/// Runs the worker until `stop` turns true, then stops claiming, ends running commands and
/// gives their jobs back.
pub async fn run(
    mailbox: Arc<dyn Exchange>,
    config: WorkerConfig,
    stop: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    // Present as the agent it serves, for as long as it runs: `peers` shows the worker, and a
    // dispatcher can tell that someone will take the job (see [`serves`]). Its liveness is a
    // session's: gone with the process locally, within the idle window on a relay.
    let presence = mailbox
        .open_session(OpenSession {
            name: PeerName::parse(&config.agent).map_err(switchboard_core::Error::from)?,
            kind: PeerKind::Agent,
            info: PeerInfo {
                client_kind: Some(WORKER_CLIENT.into()),
                client_version: Some(env!("CARGO_PKG_VERSION").into()),
                ..PeerInfo::default()
            },
            policy: NamePolicy::Join,
            client_pid: Some(std::process::id()),
        })
        .await?;
    let mut slots = tokio::task::JoinSet::new();
    for slot in 0..config.concurrency.max(1) {
        let mailbox = mailbox.clone();
        let config = config.clone();
        let stop = stop.clone();
        let presence = presence.clone();
        slots.spawn(async move { serve(mailbox, config, presence, slot, stop).await });
    }
    let mut first_error = None;
    while let Some(outcome) = slots.join_next().await {
        if let Ok(Err(e)) = outcome {
            first_error.get_or_insert(e);
        }
    }
    let closed = mailbox.close_session(presence.id).await;
    first_error.map_or(Ok(()), Err)?;
    Ok(closed?)
}

async fn serve(
    mailbox: Arc<dyn Exchange>,
    config: WorkerConfig,
    presence: switchboard_core::Session,
    slot: usize,
    mut stop: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let name = format!("{}#{slot}", config.name);
    let mut outage = Outage::default();
    while !*stop.borrow() {
        let claim = tokio::select! {
            claim = mailbox.run(op::Claim {
                allow_writes: config.allow_writes,
                wait: CLAIM_WAIT,
                ..op::Claim::new(&config.agent, &name)
            }) => claim,
            _ = stop.changed() => return Ok(()),
        };
        // A claim whose answer was lost on the way is not lost work: its lease lapses and the
        // job is offered again (or parked, for a write job), so asking again is safe.
        let claim = match claim {
            // Whatever passes by itself (a relay restarting, a busy store) is waited out.
            Err(e) if e.failure() == switchboard_core::Failure::Unavailable => {
                let why = e.to_string();
                tokio::select! {
                    () = outage.pause(&why) => continue,
                    _ = stop.changed() => return Ok(()),
                }
            }
            other => other?,
        };
        outage.over();
        if let Some(claim) = claim {
            run::job(mailbox.as_ref(), &config, &presence, claim, stop.clone()).await?;
        }
    }
    Ok(())
}

/// A stretch of time the relay cannot be reached: said once on stderr, waited out with a
/// capped, jittered backoff so that many workers do not return at the same instant.
#[derive(Default)]
pub(crate) struct Outage {
    tries: u32,
}

/// The longest pause between two tries.
const BACKOFF_CAP: Duration = Duration::from_secs(5);

impl Outage {
    pub(crate) async fn pause(&mut self, why: &str) {
        if self.tries == 0 {
            eprintln!("unavailable for now ({why}); retrying");
        }
        self.tries = self.tries.saturating_add(1);
        let base = Duration::from_millis(100)
            .saturating_mul(1 << self.tries.min(6))
            .min(BACKOFF_CAP);
        // Jitter from the clock's low bits: enough to spread workers, no generator needed.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let jitter = base.mul_f64(f64::from(nanos % 1000) / 2000.0);
        tokio::time::sleep(base / 2 + jitter).await;
    }

    pub(crate) fn over(&mut self) {
        if self.tries > 0 {
            eprintln!("the relay is reachable again");
        }
        self.tries = 0;
    }
}
