//! `switchboard dashboard`: the humans' page for this machine's agents. It serves the relay's
//! dashboard over the embedded store the local agents share (see `switchboard_relay::local`)
//! on a loopback port, and signs the browser in with a one-time link, printed and opened.
//! With a relay configured it opens that relay's own dashboard instead, where the relay token
//! signs in.

use std::sync::Arc;

use tokio::net::TcpListener;

use switchboard_core::{Clock, SystemClock};
use switchboard_relay::{App, AppConfig, LINK_LIFETIME, ServeOptions};
use switchboard_store_sqlite::SqliteStore;

use super::super::args::DashboardArgs;
use super::super::{CliError, Relay, output};
use crate::settings::Settings;

/// `human`: `--as`, else settings `operator`; the page's forms act as that operator peer (the
/// OS user's name when neither is set), as the CLI's commands do.
pub async fn run(
    settings: Settings,
    args: DashboardArgs,
    relay: Option<Relay>,
    human: Option<&str>,
) -> Result<(), CliError> {
    if let Some(relay) = relay {
        let url = format!("{}/", relay.url.trim_end_matches('/'));
        println!("{url}");
        eprintln!(
            "switchboard dashboard: this shell uses the relay at {}, which serves its own \
             dashboard: sign in there with your relay token",
            relay.url
        );
        if !args.no_open {
            open_browser(&url).await;
        }
        return Ok(());
    }
    if !args.listen.ip().is_loopback() {
        return Err(CliError::BadInput(format!(
            "the local dashboard listens on loopback only (not {}): any address beyond it would \
             show this machine's mail to the network. To share a room, run `switchboard serve`",
            args.listen
        )));
    }
    let config = AppConfig {
        operator: Some(super::human_name(human)?.as_str().to_owned()),
        ..AppConfig::default()
    };
    let store = SqliteStore::open(&settings.home).map_err(switchboard_core::Error::Store)?;
    let described = switchboard_core::Store::describe(&store);
    let (app, token) = switchboard_relay::local::app(
        Arc::new(store),
        settings.limits.clone(),
        config,
        SystemClock.now_ms(),
    )
    .await
    .map_err(|e| CliError::Io(std::io::Error::other(e.to_string())))?;
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError::BadInput(format!("cannot listen on {}: {e}", args.listen)))?;
    let base = format!("http://{}", listener.local_addr()?);
    let link = new_link(&app, &base, &token)?;
    // The link alone on stdout (scripts and tests read it); what it is, on stderr.
    println!("{link}");
    eprintln!(
        "switchboard dashboard: {base}/ over {described}\n\
         The link above signs one browser in, once, within {}. Press Enter here for another; \
         Ctrl-C stops the dashboard and signs every browser out.",
        output::duration(LINK_LIFETIME)
    );
    if !args.no_open {
        open_browser(&link).await;
    }
    let links = app.clone();
    std::thread::spawn(move || more_links(links, base, token));
    let (said, stopped) = tokio::sync::oneshot::channel();
    let signal = async move {
        let _ = said.send(super::shutdown_signal().await);
    };
    switchboard_relay::run(listener, app, ServeOptions::default(), signal).await;
    eprintln!("switchboard dashboard: stopped");
    stopped.await.map_or(Ok(()), super::Stop::outcome)
}

fn new_link(app: &App, base: &str, token: &str) -> Result<String, CliError> {
    let path = app
        .sign_in_links
        .issue(token)
        .map_err(|e| CliError::Io(std::io::Error::other(e.to_string())))?;
    Ok(format!("{base}{path}"))
}

/// A fresh link for every line typed on stdin, for a second browser or a link that ran out.
/// Ends with stdin (at once when it is not a terminal's). A thread of its own rather than
/// tokio's stdin, whose blocking read would hold the runtime's shutdown until the next Enter.
fn more_links(app: App, base: String, token: String) {
    for line in std::io::stdin().lines() {
        if line.is_err() {
            return;
        }
        match new_link(&app, &base, &token) {
            Ok(link) => println!("{link}"),
            Err(e) => eprintln!("switchboard dashboard: no new link: {e}"),
        }
    }
}

/// Opens `url` in the default browser where there is a screen to show it on; otherwise the
/// printed link is the way (over SSH, say, or in a container). A browser that cannot be
/// started is said, not fatal.
async fn open_browser(url: &str) {
    if !has_screen() {
        eprintln!("switchboard dashboard: no display here; open the link above in a browser");
        return;
    }
    let url = url.to_owned();
    // A text-mode $BROWSER blocks until it exits: off the runtime's threads.
    let opened = tokio::task::spawn_blocking(move || webbrowser::open(&url)).await;
    if !matches!(opened, Ok(Ok(()))) {
        eprintln!("switchboard dashboard: could not start a browser; open the link above in one");
    }
}

/// True where a graphical browser can show a page: always on macOS and Windows; on other
/// Unix systems only under X11 or Wayland.
fn has_screen() -> bool {
    if cfg!(any(target_os = "macos", target_os = "windows")) {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}
