//! The relay's hold on Streamable HTTP MCP sessions, in front of rmcp's session manager.
//!
//! rmcp routes a request by its `Mcp-Session-Id` alone, so on its own any valid token could
//! drive any session (and act as the peer that opened it). Here every session records the
//! token that created it; a request on it with another token is answered exactly as an unknown
//! session is, so it never learns that the session exists. The admin token opens none.
//!
//! It also decides when a session is over. rmcp ends a session after five minutes without an
//! event, whether or not a client still listens; the relay instead counts what a client holds —
//! its `GET` stream (a [`Presence`] the session consults before pushing) and requests in flight
//! — and ends a session nobody holds and nobody used for the relay's idle time, or at once when
//! its token is revoked. Ending it drops the MCP session, which ends the peer's store session
//! and releases its leases, so another session of the peer takes that mail over.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

use switchboard_core::Grant;
use switchboard_mcp::Presence;

use crate::app::App;
use crate::auth::Caller;

/// The header rmcp names sessions by.
const SESSION_HEADER: &str = "mcp-session-id";

/// The MCP sessions the relay serves, with who opened them and what holds them.
#[derive(Clone)]
pub struct McpSessions {
    manager: Arc<LocalSessionManager>,
    inner: Arc<Mutex<HashMap<String, Entry>>>,
}

struct Entry {
    token_id: String,
    presence: Presence,
    in_flight: usize,
    last_seen: Instant,
}

impl Default for McpSessions {
    fn default() -> Self {
        let mut manager = LocalSessionManager::default();
        // rmcp would end a session after five idle minutes even while its client listens on
        // the stream, and keep an abandoned one that long; the relay's reaper decides instead.
        manager.session_config.keep_alive = None;
        Self {
            manager: Arc::new(manager),
            inner: Arc::default(),
        }
    }
}

impl McpSessions {
    /// The session manager rmcp's service runs on.
    pub fn manager(&self) -> Arc<LocalSessionManager> {
        Arc::clone(&self.manager)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tokens that hold sessions now, for the revocation check.
    pub fn tokens(&self) -> HashSet<String> {
        self.lock().values().map(|e| e.token_id.clone()).collect()
    }

    /// Ends the sessions nobody holds and nobody used for `idle`, and forgets those rmcp ended
    /// itself (a `DELETE`, a failed worker).
    pub async fn reap(&self, idle: Duration) {
        let ids: Vec<String> = self.lock().keys().cloned().collect();
        let mut gone = Vec::new();
        for id in ids {
            let live = self
                .manager
                .has_session(&Arc::from(id.as_str()))
                .await
                .unwrap_or(false);
            if !live {
                gone.push(id);
            }
        }
        {
            let mut map = self.lock();
            for id in &gone {
                map.remove(id);
            }
        }
        let abandoned = self
            .take(|e| e.in_flight == 0 && !e.presence.listening() && e.last_seen.elapsed() >= idle);
        for id in abandoned {
            tracing::info!("ending MCP session {id}: nobody held or used it for {idle:?}");
            self.end(&id).await;
        }
    }

    /// Ends every session opened with one of `tokens` (they were revoked).
    pub async fn end_of_tokens(&self, tokens: &HashSet<String>) {
        for id in self.take(|e| tokens.contains(&e.token_id)) {
            tracing::info!("ending MCP session {id}: its token was revoked");
            self.end(&id).await;
        }
    }

    /// Ends every session (shutdown).
    pub async fn end_all(&self) {
        for id in self.take(|_| true) {
            self.end(&id).await;
        }
    }

    fn take(&self, pick: impl Fn(&Entry) -> bool) -> Vec<String> {
        let mut map = self.lock();
        let ids: Vec<String> = map
            .iter()
            .filter(|(_, e)| pick(e))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &ids {
            map.remove(id);
        }
        ids
    }

    async fn end(&self, id: &str) {
        if let Err(e) = self.manager.close_session(&Arc::from(id)).await {
            tracing::debug!("closing MCP session {id}: {e}");
        }
    }

    /// Marks a request on `id` by `token_id` in flight; `None` when the session is not this
    /// token's (or not there at all: the two must look the same).
    fn begin(&self, id: &str, token_id: &str) -> Option<(InFlight, Presence)> {
        let mut map = self.lock();
        let entry = map.get_mut(id).filter(|e| e.token_id == token_id)?;
        entry.in_flight += 1;
        entry.last_seen = Instant::now();
        let presence = entry.presence.clone();
        Some((
            InFlight {
                sessions: self.clone(),
                id: id.to_owned(),
            },
            presence,
        ))
    }

    fn register(&self, id: &str, token_id: &str, presence: Presence) {
        self.lock().insert(
            id.to_owned(),
            Entry {
                token_id: token_id.to_owned(),
                presence,
                in_flight: 0,
                last_seen: Instant::now(),
            },
        );
    }

    fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A request (or the response it streams) in flight on a session; the session counts as used
/// until it ends.
struct InFlight {
    sessions: McpSessions,
    id: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut map = self.sessions.lock();
        if let Some(e) = map.get_mut(&self.id) {
            e.in_flight = e.in_flight.saturating_sub(1);
            e.last_seen = Instant::now();
        }
    }
}

/// What rmcp answers for a session it does not know; a foreign session gets the same bytes.
fn unknown_session() -> Response {
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .body(Body::from("Not Found: Session not found"))
        .unwrap_or_else(|_| StatusCode::NOT_FOUND.into_response())
}

/// Keeps `held` alive as long as the response body streams: a `GET` stream holds the session
/// (and counts as a listener) until the client goes away.
fn holding<T: Send + 'static>(res: Response, held: T) -> Response {
    let (parts, body) = res.into_parts();
    let stream = body.into_data_stream().map(move |chunk| {
        let _ = &held;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// The `/mcp` gate: binds sessions to their token, refuses the admin token, and counts what
/// holds each session.
pub async fn admit(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        // The authentication layer runs first and always leaves a caller or an answer.
        return StatusCode::UNAUTHORIZED.into_response();
    };
    if caller.grant == Grant::Admin {
        return crate::app::failure_status(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the admin token reads health and metrics; MCP sessions need a room or peer token \
             (`switchboard tokens create --room ROOM [--peer NAME]`)",
        );
    }
    let sessions = &app.mcp_sessions;
    let session = req
        .headers()
        .get(SESSION_HEADER)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    match session {
        Some(id) => {
            let Some((in_flight, presence)) = sessions.begin(&id, &caller.token_id) else {
                return unknown_session();
            };
            let method = req.method().clone();
            let res = next.run(req).await;
            if method == Method::DELETE && res.status().is_success() {
                sessions.forget(&id);
                return res;
            }
            if method == Method::GET && res.status().is_success() {
                return holding(res, (in_flight, presence.attach()));
            }
            holding(res, in_flight)
        }
        None => {
            // A request that may create a session: give the session its presence to consult,
            // and bind the id rmcp hands out to this token.
            let presence = Presence::default();
            req.extensions_mut().insert(presence.clone());
            let res = next.run(req).await;
            if let Some(id) = res
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
            {
                sessions.register(id, &caller.token_id, presence);
            }
            res
        }
    }
}
