//! One job, start to finish: start the claim, run the command in its own process group, keep
//! the lease alive, notice a cancel within moments (woken by the store), and report the end.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use switchboard_core::{Error, Exchange, JobOutcome, Rejection, Releasing, Run, Session, Wake, op};
use switchboard_proto::{
    JobClaim, JobId, JobReservation, JobState, MAX_RESULT_BYTES, ReservationId, ReservationMode,
};

use super::{WorkerConfig, WorkerError};

/// How much of a failing command's stderr is kept as the failure's explanation.
const STDERR_TAIL: usize = 4 * 1024;
/// Fewest milliseconds between two state checks prompted by store wake-ups.
const CHECK_GAP: Duration = Duration::from_millis(200);

enum End {
    Exited(std::io::Result<ExitStatus>),
    Cancelled,
    /// Another claim replaced ours: the job is no longer ours to report on.
    Lost,
    Stopped,
}

pub async fn job(
    mailbox: &dyn Exchange,
    config: &WorkerConfig,
    presence: &Session,
    claim: JobClaim,
    stop: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let id = claim.job.id;
    if let Err(e) = mailbox.start_job(&claim).await {
        tracing::warn!("job #{id}: cannot start: {e}");
        return Ok(());
    }
    // The paths a write job changes are held by this worker's presence from here to the end
    // (and with it, should the worker die). Another peer's hold on them fails the job, saying
    // whose, rather than letting two writers meet in the same files.
    let held = match &claim.job.reserve {
        None => None,
        Some(r) => match reserve(mailbox, presence, &claim, r).await {
            Ok(held) => Some(held),
            Err(error) => return report(mailbox, &claim, JobOutcome::Failed { error }).await,
        },
    };
    let outcome = run(mailbox, config, &claim, stop).await;
    if let Some(held) = held {
        let which = Releasing::Ids(vec![held]);
        let peer = Some(presence.peer.id);
        if let Err(e) = mailbox.run(op::Release { peer, which }).await {
            // Its session's end or its TTL frees it anyway.
            tracing::warn!("job #{id}: cannot release its reservation: {e}");
        }
    }
    outcome
}

/// How long a job waits for another peer's conflicting reservation to end before it fails:
/// well inside the claim's lease, which nothing renews while it waits.
const RESERVE_WAIT: Duration = Duration::from_secs(30);

async fn reserve(
    mailbox: &dyn Exchange,
    presence: &Session,
    claim: &JobClaim,
    r: &JobReservation,
) -> Result<ReservationId, String> {
    let job = &claim.job;
    let first_line = job.prompt.lines().next().unwrap_or_default();
    let reason: String = format!("job #{}: {first_line}", job.id)
        .chars()
        .take(200)
        .collect();
    let taken = mailbox
        .run(op::Reserve {
            peer: Some(presence.peer.id),
            session: Some(presence.id),
            repo: r.repo.clone(),
            globs: r.paths.clone(),
            mode: ReservationMode::Exclusive,
            reason,
            // Until the job's own end at the latest; the release at its end comes first.
            ttl: Some(Duration::from_millis(
                u64::try_from(job.expires_at - job.created_at)
                    .unwrap_or(0)
                    .max(60_000),
            )),
            wait: RESERVE_WAIT,
            job: Some(job.id),
        })
        .await
        .map_err(|e| format!("could not reserve its paths: {e}"))?;
    eprintln!("job #{}: holds reservation #{}", job.id, taken.id);
    Ok(taken.id)
}

async fn run(
    mailbox: &dyn Exchange,
    config: &WorkerConfig,
    claim: &JobClaim,
    stop: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let claim = claim.clone();
    let id = claim.job.id;
    eprintln!(
        "job #{id}: running (attempt {}, fence {})",
        claim.job.attempts, claim.fence
    );
    let (dir, branch) = if claim.job.write && config.worktree {
        match worktree(id).await {
            Ok((dir, branch)) => (Some(dir), Some(branch)),
            Err(e) => return report(mailbox, &claim, JobOutcome::Failed { error: e }).await,
        }
    } else {
        (None, None)
    };
    let mut child = match spawn(config, &claim, dir.as_ref()) {
        Ok(child) => child,
        Err(error) => return report(mailbox, &claim, JobOutcome::Failed { error }).await,
    };
    if let Some(mut stdin) = child.stdin.take() {
        let prompt = claim.job.prompt.clone();
        // A command that does not read its stdin closes it; that is not the job's failure.
        tokio::spawn(async move {
            let _ = stdin.write_all(prompt.as_bytes()).await;
        });
    }
    let stdout = child
        .stdout
        .take()
        .map(|s| tokio::spawn(tail(s, MAX_RESULT_BYTES)));
    let stderr = child
        .stderr
        .take()
        .map(|s| tokio::spawn(tail(s, STDERR_TAIL)));
    let started = Instant::now();
    let end = supervise(mailbox, &claim, &mut child, stop).await;
    let text = |t: Option<tokio::task::JoinHandle<String>>| async move {
        match t {
            Some(t) => t.await.unwrap_or_default(),
            None => String::new(),
        }
    };
    let outcome = match end {
        End::Exited(Ok(status)) if status.success() => JobOutcome::Completed {
            result: text(stdout).await,
            branch,
        },
        End::Exited(Ok(status)) => JobOutcome::Failed {
            error: format!("{status}; stderr ends with:\n{}", text(stderr).await),
        },
        End::Exited(Err(e)) => JobOutcome::Failed {
            error: format!("lost track of the command: {e}"),
        },
        End::Cancelled => {
            eprintln!("job #{id}: cancelled; its command was killed");
            return Ok(());
        }
        End::Lost => {
            eprintln!("job #{id}: claimed by another worker; dropped");
            return Ok(());
        }
        End::Stopped => {
            if let Err(e) = mailbox.release_job(&claim).await {
                tracing::warn!("job #{id}: cannot give it back: {e}");
            }
            eprintln!("job #{id}: given back (worker stopping)");
            return Ok(());
        }
    };
    eprintln!(
        "job #{id}: finished in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    report(mailbox, &claim, outcome).await
}

/// Starts the job's command in a process group of its own, so a cancel can end everything it
/// started.
fn spawn(config: &WorkerConfig, claim: &JobClaim, dir: Option<&PathBuf>) -> Result<Child, String> {
    let job = &claim.job;
    let inv = config
        .command
        .invocation(&job.prompt, job.model.as_deref(), job.write);
    let stdin = if inv.prompt_on_stdin {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut cmd = guarded(&inv.program)?;
    cmd.args(&inv.args)
        .env("SWITCHBOARD_JOB_ID", job.id.to_string())
        .env("SWITCHBOARD_JOB_AGENT", &job.agent)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    #[cfg(unix)]
    cmd.process_group(0);
    cmd.spawn()
        .map_err(|e| format!("cannot start `{}`: {e}", inv.program))
}

/// A command for `program` that dies with this worker: on Unix it runs under the job guard
/// (`super::guard`), a copy of this binary leading the job's process group.
fn guarded(program: &str) -> Result<Command, String> {
    #[cfg(unix)]
    {
        let me = std::env::current_exe()
            .map_err(|e| format!("cannot find this binary to guard the job's command: {e}"))?;
        let mut cmd = Command::new(me);
        cmd.arg(super::guard::SUBCOMMAND)
            .arg("--parent")
            .arg(std::process::id().to_string())
            .arg("--")
            .arg(program);
        Ok(cmd)
    }
    #[cfg(not(unix))]
    Ok(Command::new(program))
}

async fn report(
    mailbox: &dyn Exchange,
    claim: &JobClaim,
    outcome: JobOutcome,
) -> Result<(), WorkerError> {
    let mut outage = super::Outage::default();
    loop {
        match mailbox.finish_job(claim, outcome.clone()).await {
            Ok(view) => {
                eprintln!("job #{}: {}", view.id, view.state);
                return Ok(());
            }
            // Cancelled or replaced meanwhile: the store keeps the truth; nothing to report.
            Err(Error::Rejected(r)) => {
                eprintln!("job #{}: not recorded: {r}", claim.job.id);
                return Ok(());
            }
            // Fenced: a report that did land the first time is refused as stale the second,
            // so reporting again cannot record the end twice.
            Err(e) if e.failure() == switchboard_core::Failure::Unavailable => {
                outage.pause(&e.to_string()).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Waits for the command while keeping the lease, watching for a cancel and for shutdown.
async fn supervise(
    mailbox: &dyn Exchange,
    claim: &JobClaim,
    child: &mut Child,
    mut stop: watch::Receiver<bool>,
) -> End {
    let mut beat = tokio::time::interval(mailbox.limits().job_lease / 4);
    let mut wakes = mailbox.subscribe();
    let mut last_check = Instant::now();
    loop {
        let check = tokio::select! {
            status = child.wait() => return End::Exited(status),
            _ = beat.tick() => true,
            // Mail being read elsewhere in the room is no news for a running job.
            w = wakes.recv() => !matches!(w, Ok(Wake::Copies)) && last_check.elapsed() >= CHECK_GAP,
            _ = stop.changed() => {
                kill(child).await;
                return End::Stopped;
            }
        };
        if !check {
            continue;
        }
        last_check = Instant::now();
        match mailbox.heartbeat(claim).await {
            Ok(JobState::Cancelled) => {
                kill(child).await;
                return End::Cancelled;
            }
            Ok(_) => {}
            Err(Error::Rejected(Rejection::StaleClaim { .. })) => {
                kill(child).await;
                return End::Lost;
            }
            Err(e) => tracing::warn!("job #{}: heartbeat failed: {e}", claim.job.id),
        }
    }
}

/// Kills the command and everything it started.
async fn kill(child: &mut Child) {
    #[cfg(unix)]
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        use nix::sys::signal::{Signal, killpg};
        use nix::unistd::Pid;
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// Everything a stream yields, keeping only its last `cap` bytes.
async fn tail(mut stream: impl AsyncRead + Unpin, cap: usize) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * cap {
            kept.drain(..kept.len() - cap);
        }
    }
    if kept.len() > cap {
        kept.drain(..kept.len() - cap);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// A fresh worktree and branch for a write job, in a directory beside the repository of the
/// worker's directory (`<repo>-switchboard-job-<id>`), where its owner will see it.
async fn worktree(id: JobId) -> Result<(PathBuf, String), String> {
    let root = git(&["rev-parse", "--show-toplevel"], None).await?;
    let root = PathBuf::from(root.trim());
    let repo = root
        .file_name()
        .map_or_else(|| "repo".to_owned(), |n| n.to_string_lossy().into_owned());
    let dir = root
        .parent()
        .unwrap_or(&root)
        .join(format!("{repo}-switchboard-job-{id}"));
    let branch = format!("switchboard/job-{id}");
    let dir_arg = dir.display().to_string();
    git(&["worktree", "add", "-b", &branch, &dir_arg], Some(&root)).await?;
    Ok((dir, branch))
}

async fn git(args: &[&str], dir: Option<&PathBuf>) -> Result<String, String> {
    let mut cmd = Command::new("git");
    cmd.args(args).stdin(Stdio::null());
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd
        .output()
        .await
        .map_err(|e| format!("cannot run git for a worktree: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
