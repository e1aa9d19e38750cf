//! The dashboard (issue 16, first part): the humans' live view of a room, served by
//! `switchboard serve` at `/`. A browser signs in with a token; what it then sees and does is
//! exactly what that token may see and do through `/v1`, because every read and the one action
//! go through the same [`Guard`](crate::guard::Guard).
//!
//! - [`session`]: login, logout, the session and CSRF cookies; who a browser is, verified on
//!   every request.
//! - [`views`]: what a token may see (peers, messages with each copy's state, jobs), read
//!   through its guard.
//! - [`pages`]: the templates and the handlers that fill them: the page, its fragments, the
//!   send form (which also replies to a message) and the event stream the page listens to.
//! - [`questions`]: the questions view and the answer form.
//! - [`jobs`]: the jobs view with each job's action (cancel, retry, recover, confirmed first)
//!   and the dispatch form, and their handlers.
//! - [`link`]: one-time sign-in links, the way into the dashboard of one machine
//!   (`switchboard dashboard`), whose token is never shown.
//! - [`charts`]: the last hour of the room's (or the relay's) figures as small SVG charts.
//! - [`assets`]: the script and the style sheet, embedded in the binary, and the security
//!   headers every dashboard answer carries.
//!
//! Routes: `GET /`, `POST /login`, `POST /logout`, `GET /login/link/{code}`, and under
//! `/dashboard/`: `fragments/{name}`, `events`, `send`, `answer`, `dispatch`,
//! `jobs/{id}/{action}` and `assets/{file}`. They authenticate by cookie, never by bearer
//! token; `/v1` and `/mcp` stay bearer-only.

mod assets;
mod charts;
mod jobs;
mod link;
mod pages;
mod questions;
mod session;
mod views;

use axum::Router;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use switchboard_core::Error;

use crate::app::App;

pub use link::{LINK_LIFETIME, SignInLinks};

/// The dashboard's routes, with the security headers on every answer.
pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/", get(pages::index))
        .route("/login", post(session::login))
        .route("/logout", post(session::logout))
        .route("/login/link/{code}", get(link::visit))
        .route("/dashboard/fragments/{name}", get(pages::fragment))
        .route("/dashboard/events", get(pages::events))
        .route("/dashboard/send", post(pages::send))
        .route("/dashboard/answer", post(questions::answer))
        .route("/dashboard/dispatch", post(jobs::dispatch))
        .route("/dashboard/jobs/{id}/{action}", post(jobs::act))
        .route("/dashboard/assets/{file}", get(assets::serve))
        .layer(middleware::from_fn(assets::security_headers))
}

/// True for the paths the dashboard serves: there a same-origin `Origin` (the relay's own
/// page posting its forms) is accepted besides the configured ones.
pub(crate) fn serves(path: &str) -> bool {
    matches!(path, "/" | "/login" | "/logout")
        || path.starts_with("/dashboard/")
        || path.starts_with("/login/link/")
}

/// Why a dashboard request was refused; each is a 4xx but for the store's and the OS's
/// troubles and a template that failed (5xx, and the relay's log hears of them).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DashboardError {
    #[error("not signed in, or the token was revoked: sign in again at /")]
    SignedOut,
    #[error(
        "the form did not carry this browser's CSRF value (it is stale or was not sent from \
         this dashboard): reload the page and try again"
    )]
    Csrf,
    #[error("the relay cannot check tokens now; try again shortly")]
    Unavailable,
    #[error("the OS random generator failed: {0}")]
    Random(String),
    #[error("the view could not be rendered: {0}")]
    Render(String),
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Exchange(#[from] Error),
}

impl DashboardError {
    /// The status and what the human reads: for the exchange's errors, what `/v1` would
    /// answer (and the relay's log hears of the store's troubles, as for `/v1`).
    pub(crate) fn explain(&self) -> (StatusCode, String) {
        let status = match self {
            Self::SignedOut => StatusCode::UNAUTHORIZED,
            Self::Csrf => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Random(_) | Self::Render(_) => {
                tracing::error!("dashboard: {self}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::BadInput(_) => StatusCode::BAD_REQUEST,
            Self::Exchange(e) => {
                let (kind, wire) = crate::app::explained(e);
                crate::app::log_failure(kind, e);
                let status = StatusCode::from_u16(kind.http_status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return (status, wire.message);
            }
        };
        (status, self.to_string())
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Exchange(e) => {
                let (kind, _) = crate::app::explained(e);
                StatusCode::from_u16(kind.http_status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            other => other.explain().0,
        }
    }
}

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        let (status, message) = self.explain();
        pages::error_page(status, &message)
    }
}
