//! `switchboard serve`: the relay. Its rooms and tokens live where [`RelayData`] says: the
//! embedded store in the store directory, or a shared Postgres database (`--database-url`),
//! which lets several replicas serve one team.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use switchboard_core::TokenStore;
use switchboard_relay::{App, AppConfig, AppState, Rooms, ServeOptions, Tls, Verifier};

use super::super::CliError;
use super::super::args::ServeArgs;
use super::relay_data::{DbChoice, RelayData};
use crate::settings::Settings;

pub async fn run(
    settings: Settings,
    args: ServeArgs,
    database_url: Option<&str>,
) -> Result<(), CliError> {
    let choice = DbChoice {
        url: database_url,
        pool: args.db_pool,
        timeout: args.db_timeout,
    };
    let data = RelayData::open(&settings.home, choice).await?;
    let tokens = data.tokens()?;
    refuse_open_bind(&args.listen, tokens.as_ref()).await?;
    #[cfg(feature = "fixtures")]
    if args.conformance_fixtures && !args.listen.ip().is_loopback() {
        return Err(CliError::BadInput(format!(
            "--conformance-fixtures lets requests in without a token, so it listens on loopback \
             only, not on {}",
            args.listen
        )));
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(Tls::from_pem_files(cert, key).map_err(|e| CliError::BadInput(e.to_string()))?)
        }
        _ => None,
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError::BadInput(format!("cannot listen on {}: {e}", args.listen)))?;
    let local = listener.local_addr()?;
    let mut config = app_config(&args);
    config.tls = tls.is_some();
    #[cfg(feature = "fixtures")]
    let config = conformance_mode(config, &args, local);
    let app = App::new(AppState::new(
        Rooms::new(data.opener(), settings.limits.clone()),
        Verifier::new(tokens),
        config,
    ));
    let scheme = if tls.is_some() { "https" } else { "http" };
    // The address on stdout (tests and scripts read it when the port was 0); the rest on stderr.
    println!("listening on {scheme}://{local}");
    eprintln!(
        "switchboard relay: MCP at {scheme}://{local}/mcp, API at /v1; data in {}",
        data.describe()
    );
    let options = ServeOptions {
        session_idle: args.session_idle,
        tls,
        ..ServeOptions::default()
    };
    let (said, stopped) = tokio::sync::oneshot::channel();
    let signal = async move {
        let _ = said.send(super::shutdown_signal().await);
    };
    switchboard_relay::run(listener, app, options, signal).await;
    eprintln!("switchboard relay: stopped");
    stopped.await.map_or(Ok(()), super::Stop::outcome)
}

fn app_config(args: &ServeArgs) -> AppConfig {
    let mut config = AppConfig {
        body_limit: args.body_limit,
        allowed_origins: args.allowed_origins.clone(),
        ..AppConfig::default()
    };
    config
        .allowed_hosts
        .extend(args.allowed_hosts.iter().cloned());
    // Clients reaching the relay by the very address it listens on are expected.
    let ip = args.listen.ip();
    if !ip.is_unspecified() && !ip.is_loopback() {
        config.allowed_hosts.push(ip.to_string());
    }
    config
}

/// The hidden conformance mode (`--conformance-fixtures`), when asked for, on top of `config`.
#[cfg(feature = "fixtures")]
fn conformance_mode(mut config: AppConfig, args: &ServeArgs, local: SocketAddr) -> AppConfig {
    config.conformance_fixtures = args.conformance_fixtures;
    if args.conformance_fixtures {
        // The suite's DNS-rebinding check sends the relay's own loopback origin and wants it
        // accepted, as a page the relay served itself would be; foreign origins stay refused.
        let port = local.port();
        for host in ["127.0.0.1", "localhost", "[::1]"] {
            config.allowed_origins.push(format!("http://{host}:{port}"));
        }
    }
    config
}

/// Off loopback, the relay must not start before there is a token to let anyone in: an open
/// relay with nobody able to use it is a misconfiguration worth stopping on.
async fn refuse_open_bind(addr: &SocketAddr, tokens: &dyn TokenStore) -> Result<(), CliError> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    let usable = tokens
        .tokens()
        .await
        .map_err(switchboard_core::Error::Store)?
        .iter()
        .any(|t| t.revoked_at.is_none());
    if usable {
        return Ok(());
    }
    Err(CliError::BadInput(format!(
        "refusing to listen on {addr} (not loopback) with no token minted; run \
         `switchboard tokens create --room ROOM` first"
    )))
}
