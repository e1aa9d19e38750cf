//! Who a browser is: login, logout, the two cookies and the CSRF check.
//!
//! - `swb_session` holds the token itself (HttpOnly, SameSite=Strict, Path=/, Secure under
//!   TLS). Every dashboard request verifies it again through the relay's cached [`Verifier`],
//!   exactly as `authenticate` verifies a bearer token, so a revoked token stops working on
//!   the next request and any replica of a team relay can serve any request (no server-side
//!   session table to share or lose on restart).
//! - `swb_csrf` holds a random value, set with the login form and replaced at login. Every
//!   POST must carry the same value in its `csrf` field (a double-submit check: a page on
//!   another site can make the browser send the cookie, never read it to fill the field).
//!   SameSite=Strict and the Origin check in `app::check_origin` stand in front of it.
//!
//! [`Verifier`]: crate::auth::Verifier

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::auth::{AuthError, Caller};

use super::DashboardError;
use super::pages;

pub(crate) const SESSION_COOKIE: &str = "swb_session";
pub(crate) const CSRF_COOKIE: &str = "swb_csrf";

/// The value of cookie `name` in the request, if it sent one.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// The caller whose token the session cookie holds: `None` without a cookie or with one whose
/// token is not (or no longer) valid.
pub(crate) async fn caller(
    app: &App,
    headers: &HeaderMap,
) -> Result<Option<Caller>, DashboardError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    match app.verifier.verify(Some(token)).await {
        Ok(caller) => Ok(Some(caller)),
        Err(AuthError::Store(e)) => {
            tracing::error!("cannot read the token store: {e}");
            Err(DashboardError::Unavailable)
        }
        Err(_) => {
            app.metrics.unauthorized.inc();
            Ok(None)
        }
    }
}

/// The signed-in caller, or [`DashboardError::SignedOut`].
pub(crate) async fn signed_in(app: &App, headers: &HeaderMap) -> Result<Caller, DashboardError> {
    caller(app, headers).await?.ok_or(DashboardError::SignedOut)
}

/// The CSRF value the browser holds, if it is one this relay could have set.
pub(crate) fn csrf_of(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, CSRF_COOKIE)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Passes when the form's CSRF field matches the browser's CSRF cookie.
pub(crate) fn check_csrf(headers: &HeaderMap, presented: &str) -> Result<(), DashboardError> {
    let Some(expected) = csrf_of(headers) else {
        return Err(DashboardError::Csrf);
    };
    let equal: bool = expected.as_bytes().ct_eq(presented.as_bytes()).into();
    if equal {
        Ok(())
    } else {
        Err(DashboardError::Csrf)
    }
}

/// A fresh CSRF value: 256 random bits as hex.
pub(crate) fn new_csrf() -> Result<String, DashboardError> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).map_err(|e| DashboardError::Random(e.to_string()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure when the relay serves TLS;
/// `value: None` clears the cookie.
pub(crate) fn set_cookie(app: &App, name: &str, value: Option<&str>) -> HeaderValue {
    let mut text = match value {
        Some(v) => format!("{name}={v}; HttpOnly; SameSite=Strict; Path=/"),
        None => format!("{name}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    };
    if app.config.tls {
        text.push_str("; Secure");
    }
    // Names are ours and values are hex or token text: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /login`: a valid token signs the browser in (303 to `/`); anything else shows the
/// form again with what went wrong.
pub(crate) async fn login(
    State(app): State<App>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(e) => {
            let msg = format!("the login form could not be read: {}", e.body_text());
            return pages::login_page(&app, &headers, StatusCode::BAD_REQUEST, Some(&msg));
        }
    };
    if let Err(e) = check_csrf(&headers, &form.csrf) {
        return pages::login_page(&app, &headers, e.status(), Some(&e.to_string()));
    }
    let token = form.token.trim();
    if token.is_empty() {
        let msg = "paste a token to sign in (mint one with `switchboard tokens create`)";
        return pages::login_page(&app, &headers, StatusCode::BAD_REQUEST, Some(msg));
    }
    match app.verifier.verify(Some(token)).await {
        Ok(_) => {}
        Err(AuthError::Store(e)) => {
            tracing::error!("cannot read the token store: {e}");
            let e = DashboardError::Unavailable;
            return pages::login_page(&app, &headers, e.status(), Some(&e.to_string()));
        }
        Err(_) => {
            app.metrics.unauthorized.inc();
            let msg = "that token is not valid: it is wrong, revoked or mistyped";
            return pages::login_page(&app, &headers, StatusCode::UNAUTHORIZED, Some(msg));
        }
    }
    match signed_in_cookies(&app, token) {
        Ok(cookies) => {
            let mut res = see_other("/");
            for cookie in cookies {
                res.headers_mut().append(header::SET_COOKIE, cookie);
            }
            res
        }
        Err(e) => e.into_response(),
    }
}

/// The `Set-Cookie` values that sign a browser in with `token` (checked by the caller): the
/// session, and a new CSRF value, so one planted before the login is worth nothing after.
pub(crate) fn signed_in_cookies(
    app: &App,
    token: &str,
) -> Result<[HeaderValue; 2], DashboardError> {
    let csrf = new_csrf()?;
    Ok([
        set_cookie(app, SESSION_COOKIE, Some(token)),
        set_cookie(app, CSRF_COOKIE, Some(&csrf)),
    ])
}

/// `POST /logout`: forgets the session in this browser (the token itself stays valid).
pub(crate) async fn logout(
    State(app): State<App>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    let presented = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if let Err(e) = check_csrf(&headers, &presented) {
        return e.into_response();
    }
    let mut res = see_other("/");
    let cookies = res.headers_mut();
    cookies.append(header::SET_COOKIE, set_cookie(&app, SESSION_COOKIE, None));
    cookies.append(header::SET_COOKIE, set_cookie(&app, CSRF_COOKIE, None));
    res
}

/// 303 to `to`: after a POST the browser loads the page with a GET, so a reload does not post
/// again.
pub(crate) fn see_other(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; swb_session=swb_x_y"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("swb_csrf=zz"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("swb_x_y"));
        assert_eq!(cookie(&h, CSRF_COOKIE), Some("zz"));
        assert_eq!(cookie(&h, "b"), None);
        // Not 64 hex digits: not a value this relay set.
        assert_eq!(csrf_of(&h), None);
        assert!(check_csrf(&h, "zz").is_err());
    }

    #[test]
    fn the_csrf_check_wants_the_cookies_value() {
        let value = "ab".repeat(32);
        let mut h = HeaderMap::new();
        let c = format!("{CSRF_COOKIE}={value}");
        h.append(header::COOKIE, HeaderValue::from_str(&c).unwrap());
        assert!(check_csrf(&h, &value).is_ok());
        assert!(check_csrf(&h, "").is_err());
        assert!(check_csrf(&h, &"cd".repeat(32)).is_err());
    }
}
