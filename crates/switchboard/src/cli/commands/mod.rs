//! One module per command; each takes the shared [`Context`] and its own arguments.

pub mod completions;
pub mod dashboard;
pub mod demo;
pub mod doctor;
mod gc;
mod hook;
mod inbox;
mod jobs;
pub mod login;
pub mod mcp;
pub mod migrate;
mod peers;
pub mod precommit;
mod questions;
mod relay_data;
pub mod reserve;
mod send;
mod sent;
pub mod serve;
pub mod setup;
mod status;
pub mod tokens;
mod watch;

use switchboard_core::{NamePolicy, OpenSession, PeerRecord, Session};
use switchboard_proto::{PeerInfo, PeerKind, PeerName};

use super::args::Command;
use super::{CliError, Context};

pub async fn dispatch(ctx: &Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::Status => status::run(ctx).await,
        Command::Peers(a) => peers::run(ctx, a).await,
        Command::Send(a) => send::send(ctx, a).await,
        Command::Broadcast(a) => send::broadcast(ctx, a).await,
        Command::Inbox(a) => inbox::run(ctx, a).await,
        Command::Sent(a) => sent::run(ctx, a).await,
        Command::Watch(a) => watch::run(ctx, a).await,
        Command::Gc => gc::run(ctx).await,
        Command::Worker(a) => jobs::worker(ctx, a).await,
        Command::Reserve(a) => reserve::reserve(ctx, a).await,
        Command::Release(a) => reserve::release(ctx, a).await,
        Command::Reservations(a) => reserve::list(ctx, a).await,
        Command::Jobs { action } => jobs::run(ctx, action).await,
        Command::Ask(a) => questions::ask(ctx, a).await,
        Command::Answer(a) => questions::answer(ctx, a).await,
        Command::Questions(a) => questions::list(ctx, a).await,
        Command::Hook { client } => hook::run(ctx, client).await,
        // Served before the store on Unix; elsewhere jobs run without a guard.
        Command::JobGuard(_) => Err(CliError::BadInput(
            "job-guard is internal to the worker, and only on Unix".into(),
        )),
        Command::Mcp(_)
        | Command::Demo(_)
        | Command::Login(_)
        | Command::Logout
        | Command::Ping(_)
        | Command::Completions(_)
        | Command::Man
        | Command::Setup(_)
        | Command::Doctor
        | Command::Serve(_)
        | Command::Dashboard(_)
        | Command::Migrate
        | Command::Tokens { .. } => {
            unreachable!("served before a store is opened")
        }
    }
}

/// The human's peer name: `--as`, else settings `operator`, else the OS user, else `human`.
fn operator_name(ctx: &Context) -> Result<PeerName, CliError> {
    human_name(ctx.operator.as_deref())
}

/// The human's peer name when `given` (`--as`, else settings `operator`) names none: the OS
/// user, else `human`.
fn human_name(given: Option<&str>) -> Result<PeerName, CliError> {
    if let Some(name) = given {
        return Ok(PeerName::parse(name).map_err(switchboard_core::Error::from)?);
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_default();
    Ok(PeerName::sanitize(&user).unwrap_or_else(|| {
        PeerName::parse("human").unwrap_or_else(|_| unreachable!("'human' is a valid name"))
    }))
}

/// The operator's peer, for commands that only act as it (send, sent).
async fn operator(ctx: &Context) -> Result<PeerRecord, CliError> {
    let name = operator_name(ctx)?;
    Ok(ctx.mailbox.operator(name.as_str()).await?)
}

/// A session of the operator, for commands that take delivery (inbox).
async fn operator_session(ctx: &Context) -> Result<Session, CliError> {
    let req = OpenSession {
        name: operator_name(ctx)?,
        kind: PeerKind::Operator,
        info: PeerInfo {
            client_kind: Some("switchboard-cli".into()),
            client_version: Some(env!("CARGO_PKG_VERSION").into()),
            ..PeerInfo::default()
        },
        policy: NamePolicy::Join,
        client_pid: None,
    };
    Ok(ctx.mailbox.open_session(req).await?)
}

/// How the user asked a command to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Ctrl-C: the command exits 130, as a shell reports a process SIGINT ended.
    Interrupt,
    /// SIGTERM (a service manager stopping it): a clean stop, exit 0.
    Terminate,
}

impl Stop {
    /// What a command that stopped cleanly on this signal returns.
    pub fn outcome(self) -> Result<(), CliError> {
        match self {
            Stop::Interrupt => Err(CliError::Interrupted),
            Stop::Terminate => Ok(()),
        }
    }
}

/// Resolves when the user asks the command to stop (Ctrl-C, or SIGTERM on Unix). The
/// listeners are in place when this returns, not when the future is first polled: a command
/// that says it is ready after calling this never loses a signal sent on that word.
fn shutdown_signal() -> impl Future<Output = Stop> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut int), Ok(mut term)) => tokio::select! {
                    _ = int.recv() => Stop::Interrupt,
                    _ = term.recv() => Stop::Terminate,
                },
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                    Stop::Interrupt
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        Stop::Interrupt
    }
}
