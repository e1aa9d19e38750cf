//! `switchboard login`, `logout` and `ping`: the relay this machine's commands use by default,
//! and whether a relay is up.

use std::io::Read;
use std::path::PathBuf;

use serde_json::json;
use switchboard_relay_client::RelayClient;

use super::super::args::{LoginArgs, PingArgs};
use super::super::{CliError, output};
use crate::login::{self, Login};

/// Checks the token against the relay (unless told not to), then stores URL and token.
pub async fn login(args: LoginArgs, ca: Option<PathBuf>, as_json: bool) -> Result<(), CliError> {
    let token = if args.token == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text.trim().to_owned()
    } else {
        args.token.trim().to_owned()
    };
    if token.is_empty() {
        return Err(CliError::BadInput(
            "the token is empty: give the one `switchboard tokens create` printed".into(),
        ));
    }
    let relay = args.url.trim_end_matches('/').to_owned();
    let ca = ca.map(|p| std::path::absolute(&p).unwrap_or(p));
    // Nothing is stored until the relay has taken the token: a typo must not become the
    // default of every later command.
    let who = if args.no_check {
        None
    } else {
        let client = RelayClient::connect_with(&relay, &token, ca.as_deref()).await?;
        let hello = client.hello();
        Some((hello.room.clone(), hello.peer.clone()))
    };
    let path = login::store(&Login {
        relay: relay.clone(),
        token,
        ca,
    })?;
    if as_json {
        let (room, peer) = who.clone().unwrap_or_default();
        return output::json(&json!({
            "relay": relay, "room": room, "peer": peer, "path": path, "checked": !args.no_check,
        }));
    }
    let identity = match who {
        Some((Some(room), Some(peer))) => format!(" as '{peer}' in room '{room}'"),
        Some((Some(room), None)) => {
            format!(" in room '{room}' (a room token: say who you are with --as)")
        }
        Some((None, _)) => " with an admin token (health and metrics only)".to_owned(),
        None => " (not checked)".to_owned(),
    };
    output::line(format!(
        "Logged in to {relay}{identity}.\nSaved to {} (readable by you only). Every command now \
         uses this relay; `--relay ''` uses the local store once, `switchboard logout` for good.",
        path.display()
    ))
}

pub fn logout(as_json: bool) -> Result<(), CliError> {
    let removed = login::remove()?;
    if as_json {
        return output::json(&json!({ "removed": removed }));
    }
    output::line(match removed {
        Some(path) => format!(
            "Logged out: removed {}. Commands use the local store again.",
            path.display()
        ),
        None => "Not logged in: there was no stored relay login.".to_owned(),
    })
}

pub async fn ping(
    args: PingArgs,
    relay: Option<super::super::Relay>,
    as_json: bool,
) -> Result<(), CliError> {
    let (url, ca) = match (args.url, relay) {
        (Some(url), relay) => (url, relay.and_then(|r| r.ca)),
        (None, Some(relay)) => (relay.url, relay.ca),
        (None, None) => {
            return Err(CliError::BadInput(
                "which relay? give its URL (`switchboard ping http://127.0.0.1:7700`), --relay, \
                 or log in first"
                    .into(),
            ));
        }
    };
    let started = std::time::Instant::now();
    switchboard_relay_client::ping(&url, ca.as_deref(), args.timeout).await?;
    let took = started.elapsed();
    if as_json {
        return output::json(&json!({ "relay": url, "ok": true, "ms": took.as_secs_f64() * 1e3 }));
    }
    output::line(format!("{url} is up ({})", output::duration(took)))
}
