//! `switchboard mcp`: one agent session over stdio. stdout carries JSON-RPC only; every log
//! line goes to stderr.

use std::sync::Arc;

use switchboard_core::{Exchange, Mailbox};
use switchboard_mcp::{Config, Connection, Identity, McpHandler, Notifier, Opener, PushMode};
use switchboard_store_sqlite::SqliteStore;

use super::super::args::McpArgs;
use super::super::{CliError, Relay};
use crate::settings::Settings;

pub async fn run(settings: Settings, args: McpArgs, relay: Option<Relay>) -> Result<(), CliError> {
    let push = match args.push.as_str() {
        "on" => PushMode::On,
        "off" => PushMode::Off,
        _ => PushMode::Auto,
    };
    let remote = relay.is_some();
    let run_dir = crate::settings::run_dir(&settings.home);
    let opener: Opener = Arc::new(move |_| {
        let settings = settings.clone();
        let relay = relay.clone();
        Box::pin(async move {
            if let Some(relay) = relay {
                let client = relay.connect().await.map_err(|e| e.to_string())?;
                return Ok(Arc::new(client) as Arc<dyn Exchange>);
            }
            tokio::task::spawn_blocking(move || {
                let store = SqliteStore::open(&settings.home).map_err(|e| e.to_string())?;
                let mailbox = Mailbox::new(Arc::new(store), settings.limits.clone());
                Ok(Arc::new(mailbox) as Arc<dyn Exchange>)
            })
            .await
            .map_err(|e| format!("cannot open the store: {e}"))?
        })
    });
    let notifier = match (args.notify_command, args.notify) {
        (Some(cmd), _) => Some(Notifier::Command(cmd)),
        (None, true) => Some(Notifier::Desktop),
        (None, false) => None,
    };
    let mut identity = Identity::from_env(args.name);
    // Directory, repository and branch stay on this machine unless the user opts in.
    identity.share_location = !remote || args.share_location;
    let config = Config {
        identity,
        push,
        notifier,
        client_pid: switchboard_mcp::server::parent_pid(),
        connection: Connection::Stdio,
        run_dir: Some(run_dir),
    };
    let server = McpHandler::new(config, opener);
    switchboard_mcp::stdio::run(server)
        .await
        .map_err(|e| CliError::BadInput(e.to_string()))
}
