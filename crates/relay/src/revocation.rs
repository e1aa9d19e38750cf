//! Revoking a token ends what it holds open, not only its next request: its MCP sessions, its
//! `/v1` sessions and its event streams end within one beat of the watch after the revocation
//! is stored (on any replica: the watch reads the shared token table's version).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::App;

/// How often the token table's version is read. Revocation ends open sessions within this
/// beat (plus one store round trip); the cost is one small read per beat per replica.
pub const BEAT: Duration = Duration::from_millis(100);

/// Cancellation for the event streams of each token that has one open.
#[derive(Clone, Default)]
pub struct Streams {
    inner: Arc<Mutex<HashMap<String, CancellationToken>>>,
}

impl Streams {
    /// A token that is cancelled when `token_id` is revoked (or the relay shuts down, through
    /// `parent`).
    pub fn open(&self, token_id: &str, parent: &CancellationToken) -> CancellationToken {
        let mut map = self.lock();
        map.retain(|_, t| !t.is_cancelled());
        map.entry(token_id.to_owned())
            .or_insert_with(|| parent.child_token())
            .clone()
    }

    fn tokens(&self) -> HashSet<String> {
        self.lock().keys().cloned().collect()
    }

    fn end_of_tokens(&self, tokens: &HashSet<String>) {
        let mut map = self.lock();
        for id in tokens {
            if let Some(t) = map.remove(id) {
                t.cancel();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Runs until the relay stops: on every change of the token table, ends what revoked tokens
/// hold.
pub async fn watch(app: App) {
    // A change seen but not yet acted on (the store failed in between) is acted on next beat.
    let mut pending = false;
    loop {
        tokio::select! {
            () = app.shutdown.cancelled() => return,
            () = tokio::time::sleep(BEAT) => {}
        }
        match app.verifier.changed().await {
            Ok(changed) => pending |= changed,
            Err(e) => tracing::debug!("cannot read the token table's version: {e}"),
        }
        if !pending {
            continue;
        }
        let mut held = app.mcp_sessions.tokens();
        held.extend(app.sessions.tokens());
        held.extend(app.streams.tokens());
        let revoked = match app.verifier.revoked(&held).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("cannot read the tokens in use: {e}");
                continue;
            }
        };
        pending = false;
        app.streams.end_of_tokens(&revoked);
        app.mcp_sessions.end_of_tokens(&revoked).await;
        for (room, id) in app.sessions.take_of_tokens(&revoked) {
            crate::server::close(&app, &room, id).await;
        }
    }
}
