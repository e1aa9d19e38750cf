//! The human's command line: argument parsing, the store it opens, exit codes and error output.

mod args;
mod commands;
mod exit;
mod output;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use switchboard_core::{Exchange, Mailbox};
use switchboard_relay_client::{Lifetime, RelayClient};
use switchboard_store_sqlite::SqliteStore;

pub use args::{Cli, Command};
pub use exit::CliError;

use crate::settings::{self, Settings};

/// Parses arguments, runs the command and turns its outcome into an exit code, printing errors
/// with their causes to stderr.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    // An agent session is one client on one pipe: a single-threaded runtime serves it with
    // the least memory. The human's commands may run many store operations at once.
    let session = matches!(cli.command, Command::Mcp(_));
    let mut builder = if session {
        let mut b = tokio::runtime::Builder::new_current_thread();
        // Store reads run on blocking threads; each thread costs an allocator arena.
        b.max_blocking_threads(2);
        b
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(2);
        b
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return exit::report(&CliError::Io(e)),
    };
    let outcome = runtime.block_on(run(cli));
    if session {
        // The session has ended (stdin closed, or a signal) and said so to the store. Its stdin
        // is read on a blocking thread that nothing interrupts when stdin is a socket, as
        // Claude Code gives: dropping the runtime would wait for that read forever.
        runtime.shutdown_background();
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit::report(&e),
    }
}

fn init_logging() {
    // stdout belongs to command output (and, for `mcp`, to JSON-RPC): logs go to stderr.
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHBOARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colour only for a person at a terminal: a client that logs our stderr (Claude Code puts
    // it in its debug log) would show the escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

/// What every command gets: settings, the mailbox over the store, and output preferences.
pub struct Context {
    pub settings: Settings,
    pub mailbox: Arc<dyn Exchange>,
    pub json: bool,
    pub operator: Option<String>,
    /// The peer the relay token names, when it is a peer token: whoever uses it is that peer.
    pub token_peer: Option<String>,
    /// The relay's URL when the command works through one.
    pub relay: Option<String>,
}

async fn run(cli: Cli) -> Result<(), CliError> {
    // Needs no store and no settings: it only stands between a worker and a job's command.
    #[cfg(unix)]
    if let Command::JobGuard(args) = cli.command {
        return crate::worker::guard::run(args.parent, args.program, args.args).await;
    }
    // Need no store, no settings and no relay.
    match &cli.command {
        Command::Completions(args) => return commands::completions::completions(args),
        Command::Man => return commands::completions::man(),
        Command::Logout => return commands::login::logout(cli.json),
        _ => {}
    }
    let home = settings::resolve_home(cli.home.as_deref())?;
    let settings = settings::load(home)?;
    // Setting a client up for a relay needs its URL, not a token: that is read when it runs.
    let relay = match &cli.command {
        Command::JobGuard(_)
        | Command::Setup(_)
        | Command::Doctor
        | Command::Serve(_)
        | Command::Migrate
        | Command::Tokens { .. }
        | Command::Login(_)
        | Command::Demo(_) => None,
        _ => relay_of(&cli)?,
    };
    let set_up_for = match &cli.command {
        Command::Setup(_) => setup_relay(&cli)?,
        _ => None,
    };
    match cli.command {
        Command::Login(args) => return commands::login::login(args, cli.relay_ca, cli.json).await,
        Command::Ping(args) => return commands::login::ping(args, relay, cli.json).await,
        Command::Demo(args) => return commands::demo::run(args, cli.json).await,
        // The MCP session answers `initialize` before it touches the store.
        Command::Mcp(args) => return commands::mcp::run(settings, args, relay).await,
        // These must work when the store does not.
        Command::Setup(args) => return commands::setup::run(&args, set_up_for, cli.json),
        Command::Doctor => {
            return commands::doctor::run(&settings, cli.database_url.as_deref(), cli.json).await;
        }
        // The relay's own commands work on its data: this machine's, or the shared database.
        Command::Serve(args) => {
            return commands::serve::run(settings, args, cli.database_url.as_deref()).await;
        }
        Command::Dashboard(args) => {
            let human = cli.as_name.clone().or_else(|| settings.operator.clone());
            return commands::dashboard::run(settings, args, relay, human.as_deref()).await;
        }
        Command::Migrate => {
            return commands::migrate::run(&settings, cli.database_url.as_deref(), cli.json).await;
        }
        Command::Tokens { action } => {
            let url = cli.database_url.as_deref();
            return commands::tokens::run(&settings, action, url, cli.json).await;
        }
        _ => {}
    }
    let mut operator = cli.as_name.clone().or_else(|| settings.operator.clone());
    let mut token_peer = None;
    let relay_url = relay.as_ref().map(|r| r.url.clone());
    let mailbox: Arc<dyn Exchange> = match relay {
        Some(relay) => {
            let hook = commands::precommit::is_hook(&cli.command);
            let lifetime = match &cli.command {
                // A worker and a watcher outlive relay restarts: they wait for it however long.
                Command::Worker(_) | Command::Watch(_) => Lifetime::LongLived,
                // Reservations are advisory: a relay that cannot be asked soon does not hold
                // up a commit (see `commands::precommit`).
                _ if hook => Lifetime::Hook,
                _ => Lifetime::Brief,
            };
            let client = match relay.connect_for(lifetime).await {
                Err(e) if hook => return commands::precommit::unchecked_if_unavailable(e),
                other => other?,
            };
            token_peer.clone_from(&client.hello().peer);
            // A peer token acts as its peer: that is the human's name on this relay.
            if cli.as_name.is_none()
                && let Some(peer) = &client.hello().peer
            {
                operator = Some(peer.clone());
            }
            Arc::new(client)
        }
        None => {
            let store =
                SqliteStore::open(&settings.home).map_err(switchboard_core::Error::Store)?;
            Arc::new(Mailbox::new(Arc::new(store), settings.limits.clone()))
        }
    };
    let ctx = Context {
        operator,
        token_peer,
        relay: relay_url,
        settings,
        mailbox,
        json: cli.json,
    };
    commands::dispatch(&ctx, cli.command).await
}

/// Where a relay is, when the command is to use one.
#[derive(Clone)]
pub struct Relay {
    pub url: String,
    pub token: String,
    pub ca: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Relay {
    pub async fn connect(&self) -> Result<RelayClient, CliError> {
        self.connect_for(Lifetime::Brief).await
    }

    pub async fn connect_for(&self, lifetime: Lifetime) -> Result<RelayClient, CliError> {
        let ca = self.ca.as_deref();
        Ok(RelayClient::connect_for(&self.url, &self.token, ca, lifetime).await?)
    }
}

/// The relay a command is to use, if any: `--relay` / `SWITCHBOARD_RELAY` first (empty means
/// the local store), else the stored login. A token from `--token` / `SWITCHBOARD_TOKEN` wins
/// over the stored one; the stored one serves only the relay it was stored for.
fn relay_of(cli: &Cli) -> Result<Option<Relay>, CliError> {
    let stored = crate::login::load()?;
    let given_token = cli.token.clone().filter(|t| !t.is_empty());
    match (&cli.relay, stored) {
        (Some(url), _) if url.is_empty() => Ok(None),
        (Some(url), stored) => {
            let url = url.trim_end_matches('/');
            let stored = stored.filter(|l| l.relay == url);
            let token = given_token
                .or_else(|| stored.as_ref().map(|l| l.token.clone()))
                .ok_or_else(|| {
                    CliError::BadInput(format!(
                        "--relay {url} needs a token: --token, SWITCHBOARD_TOKEN, or                          `switchboard login {url} --token TOKEN` once"
                    ))
                })?;
            Ok(Some(Relay {
                url: url.to_owned(),
                token,
                ca: cli.relay_ca.clone().or_else(|| stored.and_then(|l| l.ca)),
            }))
        }
        (None, Some(login)) => Ok(Some(Relay {
            url: login.relay,
            token: given_token.unwrap_or(login.token),
            ca: cli.relay_ca.clone().or(login.ca),
        })),
        (None, None) => Ok(None),
    }
}

/// The relay a client set-up points at: `--relay`, else the stored login's. The token is
/// never written into a client's file: the session reads it from the stored login (when it is
/// that relay's) or from `SWITCHBOARD_TOKEN`.
fn setup_relay(cli: &Cli) -> Result<Option<commands::setup::SetupRelay>, CliError> {
    let stored = crate::login::load()?;
    Ok(match &cli.relay {
        Some(url) if url.is_empty() => None,
        Some(url) => {
            let url = url.trim_end_matches('/').to_owned();
            let logged_in = stored.is_some_and(|l| l.relay == url);
            Some(commands::setup::SetupRelay { url, logged_in })
        }
        None => stored.map(|l| commands::setup::SetupRelay {
            url: l.relay,
            logged_in: true,
        }),
    })
}
