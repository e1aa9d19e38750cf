//! One-time sign-in links, for the dashboard of one machine (`switchboard dashboard`): its
//! token is minted for the process and never shown, and a loopback port is reachable by every
//! user of the machine, so the only way in is a link that works once and soon expires.
//!
//! A link is `/login/link/<code>`: 256 random bits, kept here only as their SHA-256 (so a
//! memory dump of a finished login gives nothing), taken out of the table by the first visit.
//! The visit sets the same two cookies a login with the token sets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::auth::AuthError;

use super::pages;
use super::session;

/// How long a link waits for its visit.
pub const LINK_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// The links issued and not yet used: code hash → the token the visit signs in with.
#[derive(Clone, Default)]
pub struct SignInLinks(Arc<Mutex<HashMap<[u8; 32], Issued>>>);

struct Issued {
    token: String,
    until: Instant,
}

impl SignInLinks {
    /// A new link's path (`/login/link/<code>`) that signs a browser in with `token` once,
    /// within [`LINK_LIFETIME`].
    pub fn issue(&self, token: &str) -> Result<String, AuthError> {
        let mut bits = [0u8; 32];
        getrandom::fill(&mut bits).map_err(|e| AuthError::Random(e.to_string()))?;
        let code: String = bits.iter().map(|b| format!("{b:02x}")).collect();
        let mut links = self.lock();
        let now = Instant::now();
        // Expired ones go whenever a new one is made: the table stays as small as its use.
        links.retain(|_, l| l.until > now);
        links.insert(
            digest(&code),
            Issued {
                token: token.to_owned(),
                until: now + LINK_LIFETIME,
            },
        );
        Ok(format!("/login/link/{code}"))
    }

    /// The token of an unexpired link, which is used up by this call.
    fn redeem(&self, code: &str) -> Option<String> {
        let issued = self.lock().remove(&digest(code))?;
        (issued.until > Instant::now()).then_some(issued.token)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Issued>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn digest(code: &str) -> [u8; 32] {
    Sha256::digest(code.as_bytes()).into()
}

/// `GET /login/link/{code}`: signs the browser in and sends it on to `/` — by a page that
/// refreshes to it rather than a redirect, so the cookies (SameSite=Strict) are sent with the
/// next load even when the link was opened from another program.
pub(crate) async fn visit(
    State(app): State<App>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Response {
    let Some(token) = app.sign_in_links.redeem(&code) else {
        let msg = "this sign-in link was used already or has expired: each link works once, \
                   for ten minutes. Run `switchboard dashboard` again (or press Enter in its \
                   terminal) for a new one";
        return pages::login_page(&app, &headers, StatusCode::UNAUTHORIZED, Some(msg));
    };
    match session::signed_in_cookies(&app, &token) {
        // `no-store`, as on every dashboard answer, comes from `assets::security_headers`.
        Ok(cookies) => {
            let mut res = Html(CONTINUE_PAGE).into_response();
            for cookie in cookies {
                res.headers_mut().append(header::SET_COOKIE, cookie);
            }
            res
        }
        Err(e) => e.into_response(),
    }
}

/// What a used link shows for the instant before the refresh (or, without it, a link).
const CONTINUE_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="0;url=/">
<meta name="color-scheme" content="light dark">
<title>Signed in · switchboard</title>
<link rel="stylesheet" href="/dashboard/assets/dashboard.css">
</head>
<body>
<main class="narrow"><p>Signed in. <a href="/">Continue to the dashboard</a>.</p></main>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_works_once() {
        let links = SignInLinks::default();
        let path = links.issue("swb_a_b").unwrap();
        let code = path.strip_prefix("/login/link/").unwrap();
        assert_eq!(code.len(), 64);
        assert!(links.redeem("not-the-code").is_none());
        assert_eq!(links.redeem(code).as_deref(), Some("swb_a_b"));
        assert!(links.redeem(code).is_none(), "a second visit gets nothing");
    }

    #[test]
    fn an_expired_link_gives_nothing() {
        let links = SignInLinks::default();
        let path = links.issue("swb_a_b").unwrap();
        let code = path.strip_prefix("/login/link/").unwrap();
        links
            .lock()
            .values_mut()
            .for_each(|l| l.until = Instant::now());
        assert!(links.redeem(code).is_none());
    }
}
