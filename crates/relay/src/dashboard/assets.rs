//! The dashboard's script and style sheet, compiled into the binary (no Node build step, no
//! third-party request), and the security headers every dashboard answer carries.

use axum::extract::{Path, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::DashboardError;

const SCRIPT: &str = include_str!("assets/dashboard.js");
const STYLE: &str = include_str!("assets/dashboard.css");
/// The tab's icon: without one a browser asks for `/favicon.ico`, which is no dashboard path
/// and gets the API's 401.
const ICON: &str = include_str!("assets/icon.svg");

/// Only this relay's own files: no inline script or style, no plugin, no frame around the
/// page, forms posted only back here.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; \
                   frame-ancestors 'none'";

/// `GET /dashboard/assets/{file}`.
pub(crate) async fn serve(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "dashboard.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "dashboard.css" => (STYLE, "text/css; charset=utf-8"),
        "icon.svg" => (ICON, "image/svg+xml"),
        other => {
            let msg = format!("there is no dashboard asset '{other}'");
            let mut res = DashboardError::BadInput(msg).into_response();
            *res.status_mut() = StatusCode::NOT_FOUND;
            return res;
        }
    };
    // Revalidated on every load, so a relay upgrade is never paired with a stale script.
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Adds the security headers; pages and fragments hold room content, so they are not cached.
pub(crate) async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: under it a browser sends `Origin: null` on the page's own form posts,
    // which the Origin check refuses. `same-origin` tells other sites nothing and this relay
    // its own origin.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}
