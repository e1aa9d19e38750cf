//! The relay's routes and the checks in front of them. Every route but the dashboard's and
//! `/livez` answers 401 without a valid bearer token; Host and Origin are checked before the token so a
//! rebinding page learns nothing.
//!
//! - `POST /v1/<op>`: one [`Call`] per operation, JSON in and out.
//! - `GET /v1/events`: the caller's part of the room log as server-sent events, resumable with
//!   `Last-Event-ID` (or `?after=`), plus a `jobs` event when jobs change.
//! - `GET /v1/hello`: who the token is, and the relay's limits.
//! - `/mcp`: Streamable HTTP MCP, both protocol generations, through the same guard.
//! - `GET /healthz` (any token), `GET /metrics` (admin token); `GET /livez` answers `ok` to
//!   anyone, before the Host, Origin and token checks (a container's health check).
//! - `/`, `/login`, `/logout` and `/dashboard/…`: the dashboard, which signs a browser in with a
//!   token held in a cookie instead of a bearer header (`crate::dashboard`).
//!
//! With the hidden conformance mode on (built only with the `fixtures` feature), `/mcp` also
//! serves the official suite's fixtures and admits token-less requests; see `crate::fixtures`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use switchboard_core::wire::{Answer, Call, Failure, MAX_WAIT, WireError};
use switchboard_core::{Error, Exchange, Grant};
#[cfg(feature = "fixtures")]
use switchboard_mcp::fixtures::{FixtureState, WithFixtures};
use switchboard_mcp::{
    Config as McpConfig, Connection, Identity, McpHandler, OpenContext, Opener, PushMode,
};

use crate::auth::{AuthError, Caller, Verifier};
use crate::dashboard::{self, SignInLinks};
use crate::events;
#[cfg(feature = "fixtures")]
use crate::fixtures;
use crate::guard::Guard;
use crate::history::{History, Pushes};
use crate::mcp_sessions::{self, McpSessions};
use crate::metrics::{INVALID_CALL, Metrics};
use crate::revocation::Streams;
use crate::rooms::Rooms;
use crate::sessions::Sessions;
use crate::unread;

/// What the routes check and allow.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Host names (without port) accepted in `Host`; `*` accepts any.
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`) accepted when a request carries `Origin`.
    pub allowed_origins: Vec<String>,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// The relay serves TLS itself (`--tls-cert`): the dashboard's cookies are marked
    /// `Secure` and its own origin is `https://`.
    pub tls: bool,
    /// The operator peer the dashboard's forms name until the human types another: the local
    /// dashboard's is this machine's human as the CLI names them; `None` is `operator`.
    pub operator: Option<String>,
    /// The hidden conformance mode: `/mcp` also serves the official suite's fixtures and
    /// admits token-less requests (`crate::fixtures`). Loopback only.
    #[cfg(feature = "fixtures")]
    pub conformance_fixtures: bool,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: Vec::new(),
            body_limit: 1024 * 1024,
            tls: false,
            operator: None,
            #[cfg(feature = "fixtures")]
            conformance_fixtures: false,
        }
    }
}

/// Shared by every route; cloned for each request (state and middleware), so one `Arc`.
#[derive(Clone)]
pub struct App(Arc<AppState>);

impl App {
    pub fn new(state: AppState) -> Self {
        Self(Arc::new(state))
    }
}

impl std::ops::Deref for App {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.0
    }
}

/// What the routes work with.
pub struct AppState {
    pub rooms: Rooms,
    pub sessions: Sessions,
    pub mcp_sessions: McpSessions,
    pub streams: Streams,
    pub verifier: Verifier,
    pub metrics: Metrics,
    /// The last hour of every open room's figures, for the dashboard's charts.
    pub history: History,
    pub config: Arc<AppConfig>,
    pub shutdown: CancellationToken,
    /// One-time links into the dashboard; only `switchboard dashboard` issues them.
    pub sign_in_links: SignInLinks,
}

impl AppState {
    /// A relay over `rooms` and `verifier`, configured by `config`, with no session yet.
    pub fn new(rooms: Rooms, verifier: Verifier, config: AppConfig) -> Self {
        Self {
            rooms,
            sessions: Sessions::default(),
            mcp_sessions: McpSessions::default(),
            streams: Streams::default(),
            verifier,
            metrics: Metrics::new(),
            history: History::default(),
            config: Arc::new(config),
            shutdown: CancellationToken::new(),
            sign_in_links: SignInLinks::default(),
        }
    }
}

impl App {
    /// The caller's room, seen through what the token grants.
    pub async fn guard(&self, caller: &Caller) -> Result<Guard, Error> {
        let room = caller.grant.room().ok_or_else(|| {
            Error::Denied("an admin token reads health and metrics; it has no room".into())
        })?;
        let mailbox = self.rooms.get(room).await.map_err(Error::Store)?;
        let pushes = Pushes::new(room, self.history.clone(), self.metrics.clone());
        Ok(
            Guard::new(mailbox, room, caller.clone(), self.sessions.clone())
                .recording_pushes(pushes),
        )
    }

    pub fn router(self) -> Router {
        let limit = self.config.body_limit;
        let routes = Router::new()
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics))
            .route("/v1/hello", get(hello))
            .route("/v1/events", get(events::stream))
            .route("/v1/{op}", post(call))
            .fallback(no_route)
            .method_not_allowed_fallback(wrong_method);
        #[cfg(feature = "fixtures")]
        let routes = if self.config.conformance_fixtures {
            let state = FixtureState::new(fixtures::state_key().unwrap_or_else(|e| {
                // Without the OS generator nothing else of the relay would work either; the
                // fixtures' states then only lose their unpredictability.
                tracing::warn!("no random key for the fixtures' states: {e}");
                [0u8; 32]
            }));
            routes.nest_service(
                "/mcp",
                self.gated(self.mcp_service(move |s| WithFixtures::new(s, &state))),
            )
        } else {
            routes.nest_service("/mcp", self.gated(self.mcp_service(|s| s)))
        };
        #[cfg(not(feature = "fixtures"))]
        let routes = routes.nest_service("/mcp", self.gated(self.mcp_service(|s| s)));
        // The dashboard authenticates by its own cookie, so it joins after the bearer check;
        // the Host and Origin checks stand in front of both.
        routes
            .layer(middleware::from_fn_with_state(self.clone(), authenticate))
            .merge(dashboard::router())
            .layer(middleware::from_fn_with_state(self.clone(), check_origin))
            // Outside every check: a container's health check has no token and may reach the
            // relay by a Host the list does not name, and `ok` tells nobody anything.
            .route("/livez", get(|| async { "ok" }))
            .layer(DefaultBodyLimit::max(limit))
            // Outermost, so it sees every answer, the checks' refusals included.
            .layer(middleware::from_fn(unread::close_if_body_unread))
            .with_state(self)
    }

    /// `/mcp` behind the gate that binds sessions to their token ([`mcp_sessions`]).
    fn gated<S>(&self, service: S) -> axum::routing::Router
    where
        S: tower::Service<Request, Error = std::convert::Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: IntoResponse,
        S::Future: Send + 'static,
    {
        axum::Router::new()
            .fallback_service(service)
            .layer(middleware::from_fn_with_state(
                self.clone(),
                mcp_sessions::admit,
            ))
    }

    /// Streamable HTTP MCP over the product handler, as `wrap` dresses it.
    fn mcp_service<H, W>(&self, wrap: W) -> StreamableHttpService<H, LocalSessionManager>
    where
        H: ServerHandler,
        W: Fn(McpHandler) -> H + Send + Sync + 'static,
    {
        let app = self.clone();
        let opener: Opener = Arc::new(move |ctx: OpenContext| {
            let app = app.clone();
            Box::pin(async move {
                let caller = ctx
                    .and_then(|e| e.get::<Caller>().cloned())
                    .ok_or("the request carried no verified token")?;
                let guard = app.guard(&caller).await.map_err(|e| e.to_string())?;
                Ok(Arc::new(guard.holding_sessions()) as Arc<dyn Exchange>)
            })
        });
        let config = McpConfig {
            identity: Identity::remote(),
            push: PushMode::Auto,
            notifier: None,
            client_pid: None,
            connection: Connection::Http,
            run_dir: None,
        };
        let mut http = StreamableHttpServerConfig::default()
            .with_cancellation_token(self.shutdown.child_token())
            .with_max_request_body_bytes(self.config.body_limit)
            .with_allowed_origins(self.config.allowed_origins.clone());
        http = if self.config.allowed_hosts.iter().any(|h| h == "*") {
            http.disable_allowed_hosts()
        } else {
            http.with_allowed_hosts(self.config.allowed_hosts.clone())
        };
        StreamableHttpService::new(
            move || Ok(wrap(McpHandler::new(config.clone(), Arc::clone(&opener)))),
            self.mcp_sessions.manager(),
            http,
        )
    }
}

/// The bearer token of a request, if it has one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn authenticate(State(app): State<App>, mut req: Request, next: Next) -> Response {
    #[cfg(feature = "fixtures")]
    if !req.headers().contains_key(header::AUTHORIZATION)
        && fixtures::admits_without_token(app.config.conformance_fixtures, req.uri().path())
    {
        req.extensions_mut().insert(fixtures::anonymous());
        return next.run(req).await;
    }
    match app.verifier.verify(bearer(req.headers())).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(AuthError::Store(e)) => {
            tracing::error!("cannot read the token store: {e}");
            failure(
                Failure::Unavailable,
                "unavailable",
                "the relay cannot check tokens now",
            )
        }
        Err(e) => {
            app.metrics.unauthorized.inc();
            let mut res = failure_status(StatusCode::UNAUTHORIZED, "unauthorized", &e.to_string());
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            res
        }
    }
}

/// Refuses a `Host` not on the list (DNS rebinding) and an `Origin` not allowed (a web page
/// driving the relay from someone's browser).
async fn check_origin(State(app): State<App>, req: Request, next: Next) -> Response {
    let hosts = &app.config.allowed_hosts;
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(host_name)
        .or_else(|| req.uri().host().map(str::to_owned));
    let host_ok = hosts.iter().any(|h| h == "*")
        || host.is_some_and(|h| hosts.iter().any(|a| a.eq_ignore_ascii_case(&h)));
    if !host_ok {
        let msg = "this Host is not served here; add it with `serve --allowed-host`";
        return failure_status(StatusCode::FORBIDDEN, "forbidden_host", msg);
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        // The dashboard's own page posts its forms with the relay's own origin; /v1 and /mcp
        // accept only the configured ones, as before.
        let own = dashboard::serves(req.uri().path())
            .then(|| own_origin(&app.config, req.headers()))
            .flatten();
        let allowed = origin.to_str().is_ok_and(|o| {
            app.config.allowed_origins.iter().any(|a| a == o) || own.as_deref() == Some(o)
        });
        if !allowed {
            let msg =
                "requests from this Origin are refused; allow it with `serve --allowed-origin`";
            return failure_status(StatusCode::FORBIDDEN, "forbidden_origin", msg);
        }
    }
    next.run(req).await
}

/// The origin of a page this relay served for this request's `Host` (already checked above).
fn own_origin(config: &AppConfig, headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let scheme = if config.tls { "https" } else { "http" };
    Some(format!("{scheme}://{host}"))
}

/// `example.com:8443` → `example.com`; `[::1]:80` → `::1`.
fn host_name(authority: &str) -> String {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_owned();
    }
    authority
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(authority, |(host, _)| host)
        .to_owned()
}

async fn healthz(State(app): State<App>) -> Response {
    Json(json!({"status": "ok", "rooms_open": app.rooms.open_count()})).into_response()
}

async fn metrics(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Response {
    if caller.grant != Grant::Admin {
        let msg = "metrics cover every room; they need an admin token (`tokens create --admin`)";
        return failure(Failure::Denied, "forbidden", msg);
    }
    app.metrics.rooms.set(app.rooms.open_count() as i64);
    app.metrics.sessions.set(app.sessions.len() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

async fn hello(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Response {
    let guard = match app.guard(&caller).await {
        Ok(g) => g,
        Err(e) => return error_response(&e),
    };
    Json(json!({
        "room": caller.grant.room(),
        "peer": caller.grant.peer(),
        "limits": guard.limits(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

async fn call(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    op: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // The extractors' own refusals are plain text; every answer of /v1 is the JSON envelope.
    let op = match op {
        Ok(Path(op)) => op,
        Err(e) => {
            let msg = format!("the operation name in the path is not usable: {e}");
            return failure(Failure::BadInput, "bad_input", &msg);
        }
    };
    let body = match body {
        Ok(body) => body,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let msg = format!(
                "the request body is over the relay's limit of {} bytes; send less, or ask \
                 the relay's operator for a larger `serve --body-limit`",
                app.config.body_limit
            );
            return failure_status(StatusCode::PAYLOAD_TOO_LARGE, "too_large", &msg);
        }
        Err(e) => {
            let msg = format!("the request body could not be read: {e}");
            return failure(Failure::BadInput, "bad_input", &msg);
        }
    };
    let started = Instant::now();
    let (known, result) = run_call(&app, &caller, &op, &body).await;
    let label = if known { op.as_str() } else { INVALID_CALL };
    match &result {
        Ok(_) => app.metrics.observe(label, "ok", started.elapsed()),
        Err(e) => app
            .metrics
            .observe(label, &WireError::of(e).1.code, started.elapsed()),
    }
    match result {
        Ok(value) => answer_json(&value),
        Err(e) => error_response(&e),
    }
}

/// An answer as its JSON body. Written into a `Vec` rather than through axum's `Json`, whose
/// `BytesMut` writer runs a capacity check for each of the many small pieces serde writes
/// (under the relay bench this halved the instructions spent writing answers).
fn answer_json(value: &Answer) -> Response {
    let mut body = Vec::with_capacity(512);
    match serde_json::to_writer(&mut body, value) {
        Ok(()) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        // Every answer is plain data; failing to write one is a bug of ours, not the caller's.
        Err(e) => failure(
            Failure::Internal,
            "internal",
            &format!("the answer could not be written as JSON: {e}"),
        ),
    }
}

/// Parses and runs one call; the flag says whether the request was a well-formed call.
async fn run_call(
    app: &App,
    caller: &Caller,
    op: &str,
    body: &[u8],
) -> (bool, Result<Answer, Error>) {
    let mut call = match Call::from_parts(op, body) {
        Ok(call) => call,
        Err(e) => return (false, Err(e)),
    };
    if let Some(wait) = call.wait_mut() {
        *wait = (*wait).min(MAX_WAIT);
    }
    let result = async { app.guard(caller).await?.call(call).await }.await;
    (true, result)
}

/// A path the relay does not serve, in the JSON envelope like every other refusal.
async fn no_route(uri: axum::http::Uri) -> Response {
    let msg = format!(
        "nothing is served at {}; the API is POST /v1/<op>, GET /v1/events, GET /v1/hello and \
         /mcp (see docs/relay.md)",
        uri.path()
    );
    failure_status(StatusCode::NOT_FOUND, "no_such_route", &msg)
}

async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let msg = format!(
        "{} is not served at {}: operations are POST /v1/<op>; events and hello are GET",
        method,
        uri.path()
    );
    failure_status(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", &msg)
}

pub fn error_response(e: &Error) -> Response {
    let (kind, wire) = explained(e);
    log_failure(kind, e);
    respond(kind, &wire)
}

/// The class of an error and what a remote caller is told of it (the dashboard shows the same
/// words as `/v1`).
pub(crate) fn explained(e: &Error) -> (Failure, WireError) {
    let (kind, mut wire) = WireError::of(e);
    if let Error::Store(store) = e
        && let Some(said) = for_remote(store)
    {
        wire.message = said;
    }
    (kind, wire)
}

/// The caller hears what it can act on; the operator needs to hear of the store's troubles.
pub(crate) fn log_failure(kind: Failure, e: &Error) {
    match kind {
        Failure::Unusable | Failure::Internal => tracing::error!("{kind:?}: {e}"),
        Failure::Unavailable => tracing::warn!("{kind:?}: {e}"),
        _ => {}
    }
}

/// What a remote caller is told of the relay's own store trouble: the kind and who can act,
/// never the relay's paths (the relay's log has those, for its operator).
fn for_remote(e: &switchboard_core::StoreError) -> Option<String> {
    use switchboard_core::StoreError as S;
    let said = match e {
        S::Full { .. } => {
            "the relay's disk is full, so nothing was stored; the relay's operator must free \
             space (the relay's log says where), then send again"
        }
        S::Corrupt { .. } | S::ReadOnly { .. } | S::TooNew { .. } | S::Open { .. } => {
            "the relay cannot use this room's store until its operator acts (the relay's log \
             says why)"
        }
        S::Busy { .. } | S::Unreachable { .. } => {
            "the relay's store is briefly unavailable; try again shortly"
        }
        S::Rejected(_) | S::Closed | S::Backend(_) => return None,
    };
    Some(said.to_owned())
}

/// The status of a class of failure: one table for every front end, in [`Failure`].
fn status(kind: Failure) -> StatusCode {
    StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn failure(kind: Failure, code: &str, message: &str) -> Response {
    let wire = WireError {
        code: code.to_owned(),
        message: message.to_owned(),
        rejection: None,
    };
    respond(kind, &wire)
}

/// The error envelope with its class's status, and `Retry-After` when waiting helps.
fn respond(kind: Failure, wire: &WireError) -> Response {
    let mut res = (status(kind), Json(json!({ "error": wire }))).into_response();
    if let Some(after) = kind.retry_after() {
        res.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(after.as_secs()),
        );
    }
    res
}

pub(crate) fn failure_status(status: StatusCode, code: &str, message: &str) -> Response {
    let wire = WireError {
        code: code.to_owned(),
        message: message.to_owned(),
        rejection: None,
    };
    (status, Json(json!({ "error": wire }))).into_response()
}

/// How long an event stream stays quiet before a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("example.com:8443"), "example.com");
        assert_eq!(host_name("example.com"), "example.com");
        assert_eq!(host_name("[::1]:80"), "::1");
        assert_eq!(host_name("127.0.0.1:0"), "127.0.0.1");
    }
}
