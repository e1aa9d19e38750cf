//! `switchboard migrate`: brings the relay's data to this version's schema before replicas of
//! the new version start, and says what changed. Opening a store migrates it too; this makes
//! the step explicit for a team's upgrade and checks every room, not just the busy ones.

use serde_json::json;

use switchboard_store_postgres::migrate::{GLOBAL, latest};
use switchboard_store_sqlite::{SqliteStore, SqliteTokens};

use super::super::{CliError, output};
use super::relay_data::{DbChoice, RelayData, embedded_room, embedded_rooms};
use crate::settings::Settings;

pub async fn run(
    settings: &Settings,
    database_url: Option<&str>,
    as_json: bool,
) -> Result<(), CliError> {
    let data = RelayData::open(&settings.home, DbChoice::url(database_url)).await?;
    let store = switchboard_core::Error::Store;
    let mut done = Vec::new();
    match &data {
        RelayData::Postgres(db) => {
            // Connecting brought the deployment-wide schema up to date.
            done.push(json!({ "schema": "switchboard", "version": latest(GLOBAL) }));
            for (room, m) in db.migrate_rooms().await.map_err(store)? {
                done.push(json!({ "room": room, "from": m.from, "version": m.to }));
            }
        }
        RelayData::Embedded(home) => {
            // Opening an embedded store applies its migrations.
            SqliteStore::open(home).map_err(store)?;
            SqliteTokens::open(home).map_err(store)?;
            done.push(json!({ "store": home.display().to_string() }));
            for room in embedded_rooms(home)? {
                embedded_room(home, &room).map_err(store)?;
                done.push(json!({ "room": room }));
            }
        }
    }
    if as_json {
        return output::json(&json!({ "database": data.describe(), "migrated": done }));
    }
    println!("{}: up to date", data.describe());
    for d in &done {
        let room = d.get("room").and_then(|r| r.as_str());
        match (room, d.get("from"), d.get("version")) {
            (Some(room), Some(from), Some(to)) if from != to => {
                println!("  room {room}: schema v{from} -> v{to}");
            }
            (Some(room), _, _) => println!("  room {room}: current"),
            _ => {}
        }
    }
    Ok(())
}
