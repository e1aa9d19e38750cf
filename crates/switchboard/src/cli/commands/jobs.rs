//! `switchboard worker` and `switchboard jobs …`

use switchboard_core::{Dispatch, JobQuery, Run, op};
use switchboard_proto::{Glob, JobAction, JobReservation, JobState, JobView};
use tokio::sync::watch;

use super::super::args::{JobsAction, WorkerArgs};
use super::super::{CliError, Context, output};
use super::send::message_text;
use crate::worker::{self, CommandSpec, WorkerConfig};

pub async fn worker(ctx: &Context, args: WorkerArgs) -> Result<(), CliError> {
    switchboard_proto::PeerName::parse(&args.agent).map_err(switchboard_core::Error::from)?;
    let command = match (args.preset, args.command.is_empty()) {
        (Some(p), _) => CommandSpec::Preset(p),
        (None, false) => CommandSpec::Argv(args.command),
        (None, true) => {
            return Err(CliError::BadInput(
                "give the command to run after `--`, or --preset codex|claude".into(),
            ));
        }
    };
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    let config = WorkerConfig {
        agent: args.agent,
        allow_writes: args.allow_writes,
        concurrency: args.concurrency,
        command,
        worktree: args.worktree,
        name: format!("{host}:{}", std::process::id()),
    };
    // Listening before saying it runs: Ctrl-C right after the line below is not lost.
    let stopping = super::shutdown_signal();
    eprintln!(
        "worker for '{}' ({} at a time{}); Ctrl-C gives running jobs back",
        config.agent,
        config.concurrency.max(1),
        if config.allow_writes {
            ", write jobs allowed"
        } else {
            ""
        }
    );
    let (tx, rx) = watch::channel(false);
    let (said, stopped) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = said.send(stopping.await);
        let _ = tx.send(true);
    });
    worker::run(ctx.mailbox.clone(), config, rx)
        .await
        .map_err(|worker::WorkerError::Core(e)| CliError::Core(e))?;
    // Stopped by a signal (the only way a worker ends well): Ctrl-C exits 130, SIGTERM 0.
    stopped.await.map_or(Ok(()), super::Stop::outcome)
}

pub async fn run(ctx: &Context, action: JobsAction) -> Result<(), CliError> {
    let m = &ctx.mailbox;
    let one = match action {
        JobsAction::Dispatch {
            agent,
            prompt,
            model,
            write,
            reserve,
            request_id,
            ttl,
            wait,
        } => {
            let me = super::operator(ctx).await?;
            let reserve = if reserve.is_empty() {
                None
            } else {
                let paths = reserve
                    .iter()
                    .map(|p| Glob::parse(p))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| CliError::BadInput(e.to_string()))?;
                let repo = super::reserve::repo_of(&std::env::current_dir()?)?;
                Some(JobReservation { repo, paths })
            };
            let d = Dispatch {
                agent,
                prompt: message_text(prompt)?,
                model,
                write,
                request_id,
                ttl,
                reserve,
            };
            let agent = d.agent.clone();
            let job = m.dispatch(me.id, d).await?;
            // The job is stored either way; a person should know when nobody will take it. A
            // look that fails says nothing: an error here would read as a dispatch that failed.
            if !job.duplicate && !ctx.json && matches!(m.worker_serves(&agent).await, Ok(false)) {
                output::warn(format!(
                    "no live worker serves '{agent}' now: job {} waits until one does (up to {}). \
                     Start one with `switchboard worker --agent {agent} -- COMMAND`.",
                    job.id,
                    output::duration(std::time::Duration::from_millis(
                        u64::try_from(job.expires_at - job.created_at).unwrap_or(0)
                    ))
                ));
            }
            match wait {
                Some(wait) => {
                    let id = job.id;
                    output::progress(format!(
                        "waiting up to {} for job {id} to finish…",
                        output::duration(wait)
                    ));
                    return waited(ctx, m.run(op::Job { id, wait }).await?, wait);
                }
                None => job,
            }
        }
        JobsAction::List { all, agent, limit } => {
            let query = JobQuery {
                dispatcher: None,
                agent,
                active_only: !all,
                limit,
            };
            return list(ctx, &m.jobs(query).await?);
        }
        JobsAction::Show { id, wait } => match wait {
            Some(wait) => {
                output::progress(format!(
                    "waiting up to {} for job {id} to finish…",
                    output::duration(wait)
                ));
                return waited(ctx, m.run(op::Job { id, wait }).await?, wait);
            }
            None => m.job(id).await?,
        },
        JobsAction::Cancel { id } => m.act_on_job(id, JobAction::Cancel).await?,
        JobsAction::Recover { id } => m.act_on_job(id, JobAction::Recover).await?,
        JobsAction::Retry { id } => m.act_on_job(id, JobAction::Retry).await?,
    };
    print(ctx, &one)
}

fn print(ctx: &Context, job: &JobView) -> Result<(), CliError> {
    if ctx.json {
        output::json(job)
    } else {
        output::line(output::job(job))
    }
}

/// Prints a job a `--wait` waited for, and exits so a script can trust it: 0 only when it
/// completed; `JOB_UNSUCCESSFUL` when it ended any other way (or was parked for a person);
/// `WAIT_RAN_OUT` when it was still on its way when the wait ran out.
fn waited(ctx: &Context, job: JobView, wait: std::time::Duration) -> Result<(), CliError> {
    print(ctx, &job)?;
    match job.state {
        JobState::Completed => Ok(()),
        JobState::Failed
        | JobState::Dead
        | JobState::Expired
        | JobState::Cancelled
        | JobState::NeedsRecovery => Err(CliError::JobUnsuccessful {
            id: job.id,
            state: job.state.to_string(),
        }),
        JobState::Queued | JobState::Claimed | JobState::Running => {
            Err(CliError::WaitRanOut(format!(
                "job {} is still {} after waiting {}; wait again with `switchboard jobs show {} --wait DURATION`",
                job.id,
                job.state,
                output::duration(wait),
                job.id
            )))
        }
    }
}

fn list(ctx: &Context, jobs: &[JobView]) -> Result<(), CliError> {
    if ctx.json {
        return output::json(jobs);
    }
    if jobs.is_empty() {
        return output::line("no jobs");
    }
    output::jobs(jobs)
}
