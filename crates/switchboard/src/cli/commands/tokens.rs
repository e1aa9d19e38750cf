//! `switchboard tokens create|list|revoke`: the relay's credentials, kept beside its rooms
//! (`<home>/tokens.db`, or the shared Postgres database). A token's secret is printed once, at
//! creation, and never again.

use switchboard_core::{Clock, Grant, SystemClock, TokenStore};
use switchboard_proto::{PeerKind, PeerName};
use switchboard_relay::auth::{check_grant, mint};

use super::super::args::{TokenCreateArgs, TokensAction};
use super::super::{CliError, output};
use super::relay_data::{DbChoice, RelayData};
use crate::settings::Settings;

pub async fn run(
    settings: &Settings,
    action: TokensAction,
    database_url: Option<&str>,
    json: bool,
) -> Result<(), CliError> {
    let data = RelayData::open(&settings.home, DbChoice::url(database_url)).await?;
    let store = data.tokens()?;
    let store = store.as_ref();
    match action {
        TokensAction::Create(args) => create(&data, store, args, json).await,
        TokensAction::List => list(store, json).await,
        TokensAction::Revoke { id } => revoke(store, &id, json).await,
    }
}

/// A peer token's peer exists from the moment it is minted, so mail to it queues before it
/// first connects.
async fn register_peer(data: &RelayData, room: &str, peer: &str) -> Result<(), CliError> {
    let store = data.room(room).await?;
    let name = PeerName::parse(peer).map_err(switchboard_core::Error::from)?;
    store
        .ensure_peer(&name, PeerKind::Agent, SystemClock.now_ms())
        .await
        .map_err(switchboard_core::Error::Store)?;
    Ok(())
}

async fn create(
    data: &RelayData,
    store: &dyn TokenStore,
    args: TokenCreateArgs,
    json: bool,
) -> Result<(), CliError> {
    let grant = match (args.admin, args.room, args.peer) {
        (true, _, _) => Grant::Admin,
        (false, Some(room), None) => Grant::Room { room },
        (false, Some(room), Some(peer)) => Grant::Peer { room, peer },
        (false, None, _) => {
            return Err(CliError::BadInput("say --room ROOM (or --admin)".into()));
        }
    };
    check_grant(&grant).map_err(|e| {
        CliError::BadInput(format!(
            "{e} (room and peer names follow the peer-name rules)"
        ))
    })?;
    if let Grant::Peer { room, peer } = &grant {
        register_peer(data, room, peer).await?;
    }
    let minted = mint(store, grant, &args.label, SystemClock.now_ms())
        .await
        .map_err(|e| CliError::BadInput(e.to_string()))?;
    if json {
        let mut value = serde_json::to_value(&minted.record).map_err(std::io::Error::other)?;
        value["token"] = serde_json::Value::String(minted.token);
        return output::json(&value);
    }
    println!("{}", minted.token);
    eprintln!(
        "token {} ({}) — shown once; give it to whoever needs it, e.g. as SWITCHBOARD_TOKEN",
        minted.record.id,
        describe(&minted.record.grant)
    );
    Ok(())
}

fn describe(grant: &Grant) -> String {
    match grant {
        Grant::Room { room } => format!("room '{room}', any peer"),
        Grant::Peer { room, peer } => format!("room '{room}', peer '{peer}'"),
        Grant::Admin => "admin: health and metrics".into(),
    }
}

async fn list(store: &dyn TokenStore, json: bool) -> Result<(), CliError> {
    let tokens = store
        .tokens()
        .await
        .map_err(switchboard_core::Error::Store)?;
    if json {
        return output::json(&tokens);
    }
    if tokens.is_empty() {
        return output::line(
            "No tokens. Mint one with `switchboard tokens create --room ROOM [--peer NAME]`.",
        );
    }
    let mut table = output::Table::new(&["ID", "STATE", "GRANTS", "CREATED", "LABEL"]);
    for t in tokens {
        let state = match t.revoked_at {
            Some(at) => format!("revoked {}", output::ago(at)),
            None => "active".to_owned(),
        };
        table.row(vec![
            output::cell(t.id),
            output::cell(state),
            output::cell(describe(&t.grant)),
            output::cell(output::ago(t.created_at)),
            output::cell(t.label),
        ]);
    }
    table.print()
}

async fn revoke(store: &dyn TokenStore, id: &str, json: bool) -> Result<(), CliError> {
    let revoked = store
        .revoke_token(id, SystemClock.now_ms())
        .await
        .map_err(switchboard_core::Error::Store)?;
    if !revoked {
        let known = store
            .token(id)
            .await
            .map_err(switchboard_core::Error::Store)?;
        return Err(CliError::BadInput(match known {
            Some(_) => format!("token {id} is already revoked"),
            None => format!("no token {id}; `switchboard tokens list` shows the ids"),
        }));
    }
    if json {
        return output::json(&serde_json::json!({"id": id, "revoked": true}));
    }
    println!("revoked {id}");
    Ok(())
}
