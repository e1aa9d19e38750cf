//! The dashboard of one machine (`switchboard dashboard`): the relay's own app, serving the
//! store this machine's agents share as its only room, so the page, its checks and its live
//! stream are exactly the relay's. The way in is a one-time link
//! ([`SignInLinks`](crate::dashboard::SignInLinks)) for a room token minted for this process
//! alone: it lives in memory and dies with it, so stopping the dashboard signs every browser
//! out, and nothing is added to the tokens of a relay kept in the same directory.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use switchboard_core::{Grant, Limits, Store, StoreError, StoreResult, TokenRecord, TokenStore};
use switchboard_proto::Millis;

use crate::app::{App, AppConfig, AppState};
use crate::auth::{AuthError, Verifier, mint};
use crate::rooms::{OpenedRoom, Rooms};

/// The room name the machine's store is served under (the page shows it).
pub const LOCAL_ROOM: &str = "local";

/// The app over `store` as room [`LOCAL_ROOM`], and the token its sign-in links sign in with.
/// `config.operator` names the human the page's forms act as by default.
pub async fn app(
    store: Arc<dyn Store>,
    limits: Limits,
    config: AppConfig,
    now: Millis,
) -> Result<(App, String), AuthError> {
    let tokens = Arc::new(ProcessTokens::default());
    let grant = Grant::Room {
        room: LOCAL_ROOM.to_owned(),
    };
    let minted = mint(tokens.as_ref(), grant, "switchboard dashboard", now).await?;
    let opener = Arc::new(move |room: String| -> OpenedRoom {
        let store = Arc::clone(&store);
        Box::pin(async move {
            // The only token names this room; anything else is a bug, not a caller's input.
            if room == LOCAL_ROOM {
                Ok(store)
            } else {
                Err(StoreError::Backend(format!(
                    "the local dashboard serves room {LOCAL_ROOM} only, not {room}"
                )))
            }
        })
    });
    let app = App::new(AppState::new(
        Rooms::new(opener, limits),
        Verifier::new(tokens),
        config,
    ));
    Ok((app, minted.token))
}

/// Tokens kept in this process's memory: the one [`app`] mints. Written by hand because it is
/// the whole of what is needed (a list and a version), and a file or a table would outlive the
/// process the token must die with.
#[derive(Default)]
struct ProcessTokens {
    inner: Mutex<(Vec<TokenRecord>, u64)>,
}

impl ProcessTokens {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Vec<TokenRecord>, u64)> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl TokenStore for ProcessTokens {
    async fn insert_token(&self, token: TokenRecord) -> StoreResult<()> {
        let mut inner = self.lock();
        inner.0.push(token);
        inner.1 += 1;
        Ok(())
    }

    async fn token(&self, id: &str) -> StoreResult<Option<TokenRecord>> {
        Ok(self.lock().0.iter().find(|t| t.id == id).cloned())
    }

    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        Ok(self.lock().0.clone())
    }

    async fn revoke_token(&self, id: &str, now: Millis) -> StoreResult<bool> {
        let mut inner = self.lock();
        let Some(t) = inner
            .0
            .iter_mut()
            .find(|t| t.id == id && t.revoked_at.is_none())
        else {
            return Ok(false);
        };
        t.revoked_at = Some(now);
        inner.1 += 1;
        Ok(true)
    }

    async fn tokens_version(&self) -> StoreResult<u64> {
        Ok(self.lock().1)
    }
}
