//! `switchboard mcp`: one agent session over stdio. stdout carries JSON-RPC only; every log
//! line goes to stderr.

use std::sync::Arc;

use switchboard_core::{Exchange, Mailbox};
use switchboard_mcp::{Config, Identity, Notifier, PushMode, Switchboard};
use switchboard_store_sqlite::SqliteStore;

use super::super::CliError;
use super::super::args::McpArgs;
use crate::settings::Settings;

pub async fn run(settings: Settings, args: McpArgs) -> Result<(), CliError> {
    let push = match args.push.as_str() {
        "on" => PushMode::On,
        "off" => PushMode::Off,
        _ => PushMode::Auto,
    };
    let opener = Arc::new(move || {
        let store = SqliteStore::open(&settings.home).map_err(|e| e.to_string())?;
        Ok(Arc::new(Mailbox::new(Arc::new(store), settings.limits.clone())) as Arc<dyn Exchange>)
    });
    let notifier = match (args.notify_command, args.notify) {
        (Some(cmd), _) => Some(Notifier::Command(cmd)),
        (None, true) => Some(Notifier::Desktop),
        (None, false) => None,
    };
    let config = Config {
        identity: Identity::from_env(args.name),
        push,
        notifier,
    };
    let server = Switchboard::new(config, opener);
    switchboard_mcp::stdio::run(server)
        .await
        .map_err(|e| CliError::BadInput(e.to_string()))
}
