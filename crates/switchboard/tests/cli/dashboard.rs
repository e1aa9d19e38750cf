//! The dashboard (issue 16, first part) on the relay in-process, driven like a browser with a
//! plain HTTP client: cookies kept by hand (so their attributes can be checked), redirects not
//! followed, `Origin` sent on every POST as a browser does. What is checked: login and its
//! cookies, CSRF on every POST, that a token sees through the page exactly what `/v1` lets it
//! see, sending from the page, dispatching and acting on jobs from it (each action confirmed,
//! allowed only where the job's state and the token allow it), the security headers, and that
//! revocation ends a session.
//! Nothing here sleeps for timing: it waits for the relay's events.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};

use switchboard_core::wire::Call;
use switchboard_core::{Clock, Dispatch, Grant, Outgoing, SystemClock, op};
use switchboard_proto::{JobClaim, JobId, PeerId};

use crate::harness::agent;
use crate::relay_inproc::InProc;

/// One answer of the relay, read whole.
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    /// The `Set-Cookie` line for `name`, if the answer set or cleared it.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

/// A browser: a cookie jar and an HTTP client that does not follow redirects.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
}

impl Browser {
    fn new(relay: &InProc) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: relay.url.clone(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Keeps what the answer's `Set-Cookie` lines say (a `Max-Age=0` one forgets the cookie).
    fn keep(&mut self, headers: &HeaderMap) {
        for line in headers.get_all(SET_COOKIE).iter() {
            let line = line.to_str().unwrap();
            let (pair, attrs) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    async fn read(&mut self, res: reqwest::Response) -> Page {
        let status = res.status();
        let headers = res.headers().clone();
        self.keep(&headers);
        let body = res.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let res = self.open(path).await;
        self.read(res).await
    }

    /// A GET whose body is left to the caller (an event stream).
    async fn open(&mut self, path: &str) -> reqwest::Response {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if !self.cookies.is_empty() {
            req = req.header("cookie", self.cookie_header());
        }
        req.send().await.unwrap()
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", &self.base)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(form));
        if !self.cookies.is_empty() {
            req = req.header("cookie", self.cookie_header());
        }
        let res = req.send().await.unwrap();
        self.read(res).await
    }

    fn csrf(&self) -> String {
        self.cookies.get("swb_csrf").cloned().unwrap_or_default()
    }

    /// Opens the login form, then signs in with `token`; the answer to the POST.
    async fn login(&mut self, token: &str) -> Page {
        let form = self.get("/").await;
        assert_eq!(form.status, StatusCode::OK);
        assert!(form.body.contains("action=\"/login\""), "{}", form.body);
        let csrf = self.csrf();
        assert_eq!(csrf.len(), 64, "the form came with a CSRF cookie");
        assert!(form.body.contains(&csrf), "the form carries the CSRF value");
        self.post("/login", &[("token", token), ("csrf", &csrf)])
            .await
    }

    async fn signed_in(relay: &InProc, token: &str) -> Self {
        let mut b = Self::new(relay);
        let res = b.login(token).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        b
    }

    async fn send(&mut self, as_name: &str, to: &str, text: &str) -> Page {
        let csrf = self.csrf();
        let form = [
            ("csrf", csrf.as_str()),
            ("as", as_name),
            ("to", to),
            ("text", text),
        ];
        self.post("/dashboard/send", &form).await
    }
}

/// `application/x-www-form-urlencoded`, enough for these tests' values.
fn encode(form: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                b => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    form.iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A `/v1` call that must succeed; its answer.
async fn v1(relay: &InProc, token: &str, call: Call) -> Value {
    let answer = relay.call(token, &call).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    answer.body.unwrap()
}

/// The operator peer `name` of the room, made through `/v1` with the room token.
pub(crate) async fn operator(relay: &InProc, name: &str) -> PeerId {
    let name = name.into();
    let peer = v1(
        relay,
        &relay.room_token,
        Call::Operator(op::Operator { name }),
    )
    .await;
    PeerId(peer["id"].as_i64().unwrap())
}

pub(crate) async fn join(relay: &InProc, token: &str, name: &str) {
    let session = agent(name);
    v1(relay, token, Call::OpenSession(op::OpenSession { session })).await;
}

pub(crate) async fn send_v1(relay: &InProc, from: PeerId, to: &str, text: &str) {
    let message = Outgoing::to_peer(to, text);
    let call = Call::Send(op::Send {
        from: Some(from),
        message,
    });
    v1(relay, &relay.room_token, call).await;
}

/// Every text in the room's log, read through `/v1` with the room token.
async fn room_log(relay: &InProc) -> Vec<(String, String)> {
    let body = json!({"query": {"after": 0, "peer": null, "limit": 1000}});
    let answer = relay.post(&relay.room_token, "log", body).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    answer
        .body
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (s("from"), s("text"))
        })
        .collect()
}

/// Reads an event stream until `needle` shows up in it.
async fn read_until(mut res: reqwest::Response, needle: &str) -> String {
    let mut text = String::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = res.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains(needle) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        found,
        Ok(true),
        "the stream did not carry '{needle}': {text}"
    );
    text
}

fn assert_security_headers(page: &Page) {
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert_eq!(page.headers["referrer-policy"], "same-origin");
}

#[tokio::test]
async fn a_bad_token_gets_the_form_again_with_an_error_and_no_session() {
    let relay = InProc::embedded().await;
    let mut browser = Browser::new(&relay);
    let res = browser.login("swb_0123_4567").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(res.body.contains("not valid"), "{}", res.body);
    assert!(res.body.contains("action=\"/login\""), "the form again");
    assert!(res.set_cookie("swb_session").is_none());
    assert_security_headers(&res);

    // Not even token-shaped, or empty: the form again, never a 5xx.
    let csrf = browser.csrf();
    for token in ["<script>", ""] {
        let res = browser
            .post("/login", &[("token", token), ("csrf", &csrf)])
            .await;
        assert!(res.status.is_client_error(), "{}: {}", res.status, res.body);
        assert!(!res.body.contains("<script>"), "input is escaped");
        assert!(res.set_cookie("swb_session").is_none());
    }
    // A good token without the form's CSRF value does not sign in either.
    let res = browser
        .post("/login", &[("token", &relay.room_token), ("csrf", "")])
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(res.set_cookie("swb_session").is_none());
    // Nor from another site's page.
    let res = browser
        .http
        .post(format!("{}/login", relay.url))
        .header("origin", "https://evil.example")
        .header("cookie", browser.cookie_header())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("token", &relay.room_token), ("csrf", &csrf)]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers().get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn a_room_token_signs_in_and_sees_its_peers_and_messages() {
    let relay = InProc::embedded().await;
    join(&relay, &relay.room_token, "bob").await;
    let ops = operator(&relay, "ops").await;
    send_v1(&relay, ops, "bob", "hello from v1 <b>").await;

    let mut browser = Browser::new(&relay);
    let res = browser.login(&relay.room_token).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.headers["location"], "/");
    let session = res.set_cookie("swb_session").expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(attr), "{session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP: no Secure flag");
    assert!(res.set_cookie("swb_csrf").unwrap().contains("HttpOnly"));

    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_security_headers(&page);
    assert_eq!(page.headers["cache-control"], "no-store");
    for shown in ["room lab", "bob", "/work/bob", "ops", "queued"] {
        assert!(
            page.body.contains(shown),
            "'{shown}' on the page: {}",
            page.body
        );
    }
    assert!(
        page.body.contains("hello from v1 &#60;b&#62;")
            || page.body.contains("hello from v1 &lt;b&gt;"),
        "the message, escaped: {}",
        page.body
    );
    assert!(!page.body.contains("<b>"), "peer text is never markup");
    assert!(page.body.contains("/dashboard/assets/dashboard.js"));
    assert!(!page.body.contains("<script>"), "no inline script");

    let peers = browser.get("/dashboard/fragments/peers").await;
    assert_eq!(peers.status, StatusCode::OK);
    assert!(peers.body.contains("bob") && peers.body.contains("online"));
    let messages = browser.get("/dashboard/fragments/messages").await;
    assert!(messages.body.contains("hello from v1"), "{}", messages.body);
    assert!(
        messages
            .body
            .contains("bob: <span class=\"state\">queued</span>"),
        "{}",
        messages.body
    );
    let jobs = browser.get("/dashboard/fragments/jobs").await;
    assert_eq!(jobs.status, StatusCode::OK);
    let none = browser.get("/dashboard/fragments/nothing").await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST);

    let script = browser.get("/dashboard/assets/dashboard.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(
        script.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(script.body.contains("EventSource"));
    let style = browser.get("/dashboard/assets/dashboard.css").await;
    assert!(style.body.contains("prefers-color-scheme"));

    // Signing out needs the CSRF value too, and then the page is the form again.
    let res = browser.post("/logout", &[("csrf", "")]).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        browser.get("/dashboard/fragments/peers").await.status,
        StatusCode::OK
    );
    let csrf = browser.csrf();
    let res = browser.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert!(res.set_cookie("swb_session").unwrap().contains("Max-Age=0"));
    let page = browser.get("/").await;
    assert!(page.body.contains("action=\"/login\""));
    assert_eq!(
        browser.get("/dashboard/fragments/peers").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_post_without_the_csrf_value_is_refused_and_changes_nothing() {
    let relay = InProc::embedded().await;
    join(&relay, &relay.room_token, "bob").await;
    let mut browser = Browser::signed_in(&relay, &relay.room_token).await;
    let before = room_log(&relay).await;

    let form = [("as", "ops"), ("to", "bob"), ("text", "forged")];
    let res = browser.post("/dashboard/send", &form).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    assert!(res.body.contains("CSRF"));
    let wrong = "0".repeat(64);
    let form = [
        ("csrf", wrong.as_str()),
        ("as", "ops"),
        ("to", "bob"),
        ("text", "forged"),
    ];
    let res = browser.post("/dashboard/send", &form).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    // The right value in the field but no CSRF cookie (another site's form can't read it).
    let csrf = browser.csrf();
    browser.cookies.remove("swb_csrf");
    let form = [
        ("csrf", csrf.as_str()),
        ("as", "ops"),
        ("to", "bob"),
        ("text", "forged"),
    ];
    let res = browser.post("/dashboard/send", &form).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);

    assert_eq!(room_log(&relay).await, before, "nothing was sent");
    let peers = v1(&relay, &relay.room_token, Call::Peers(op::Peers::default())).await;
    assert!(
        !peers.to_string().contains("\"ops\""),
        "not even the operator peer was made: {peers}"
    );
}

#[tokio::test]
async fn a_message_sent_from_the_dashboard_is_in_the_room_log_and_on_the_stream() {
    let relay = InProc::embedded().await;
    join(&relay, &relay.room_token, "bob").await;
    let mut browser = Browser::signed_in(&relay, &relay.room_token).await;
    let stream = browser.open("/dashboard/events").await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");

    let res = browser.send("desk", "bob", "from the dashboard").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let events = read_until(stream, "from the dashboard").await;
    assert!(events.contains("event: message"), "{events}");
    assert!(
        room_log(&relay)
            .await
            .contains(&("desk".into(), "from the dashboard".into())),
        "sent as the operator peer the form named"
    );
    let page = browser.get("/").await;
    assert!(page.body.contains("from the dashboard"));

    // A refused send says why, keeps what was typed, and is a 4xx.
    let res = browser.send("desk", "nobody-here", "lost words").await;
    assert!(res.status.is_client_error(), "{}", res.status);
    assert!(res.body.contains("nobody-here"), "{}", res.body);
    assert!(res.body.contains("lost words"), "the draft is kept");
    let res = browser.send("desk", "", "to whom?").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_peer_tokens_dashboard_shows_its_own_mail_and_no_one_elses() {
    let relay = InProc::embedded().await;
    join(&relay, &relay.room_token, "bob").await;
    join(&relay, &relay.peer_token, "alice").await;
    let ops = operator(&relay, "ops").await;
    send_v1(&relay, ops, "bob", "secret for bob").await;
    send_v1(&relay, ops, "alice", "note for alice").await;
    let dispatch = |agent: &str, prompt: &str| {
        Call::Dispatch(op::Dispatch {
            from: Some(ops),
            job: Dispatch::new(agent, prompt),
        })
    };
    v1(
        &relay,
        &relay.room_token,
        dispatch("bob", "bob's private job"),
    )
    .await;
    v1(&relay, &relay.room_token, dispatch("alice", "alice's job")).await;

    let mut browser = Browser::signed_in(&relay, &relay.peer_token).await;
    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("as alice"));
    assert!(page.body.contains("note for alice"), "{}", page.body);
    assert!(
        page.body.contains("alice&#39;s job") || page.body.contains("alice&#x27;s job"),
        "{}",
        page.body
    );
    for hidden in ["secret for bob", "private job"] {
        assert!(
            !page.body.contains(hidden),
            "'{hidden}' leaked: {}",
            page.body
        );
    }
    assert!(
        !page.body.contains("name=\"as\""),
        "a peer token sends as itself only"
    );

    // It sends as itself, whatever the form says; its sent mail shows each copy's state.
    let res = browser.send("ops", "bob", "alice writes").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert!(
        room_log(&relay)
            .await
            .contains(&("alice".into(), "alice writes".into()))
    );
    let messages = browser.get("/dashboard/fragments/messages").await;
    assert!(messages.body.contains("alice writes"));
    assert!(
        messages
            .body
            .contains("bob: <span class=\"state\">queued</span>")
    );
    assert!(!messages.body.contains("secret for bob"));
    let jobs = browser.get("/dashboard/fragments/jobs").await;
    assert!(!jobs.body.contains("private job"), "{}", jobs.body);
}

#[tokio::test]
async fn the_admin_token_sees_the_relays_health_and_nothing_of_a_room() {
    let relay = InProc::embedded().await;
    join(&relay, &relay.room_token, "bob").await;
    let ops = operator(&relay, "ops").await;
    send_v1(&relay, ops, "bob", "room content").await;
    let admin = switchboard_relay::mint(
        relay.tokens.as_ref(),
        Grant::Admin,
        "admin",
        SystemClock.now_ms(),
    )
    .await
    .unwrap();

    let mut browser = Browser::signed_in(&relay, &admin.token).await;
    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Rooms open"), "{}", page.body);
    assert!(
        page.body.contains("<dd id=\"rooms-open\">1</dd>"),
        "{}",
        page.body
    );
    for hidden in ["room content", "bob", "ops", "lab"] {
        assert!(
            !page.body.contains(hidden),
            "'{hidden}' shown to admin: {}",
            page.body
        );
    }
    for path in ["/dashboard/fragments/messages", "/dashboard/events"] {
        let res = browser.get(path).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{path}: {}", res.body);
        assert!(!res.body.contains("room content"));
    }
    let res = browser.send("ops", "bob", "admin writes").await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(
        !room_log(&relay)
            .await
            .iter()
            .any(|(_, t)| t == "admin writes")
    );
}

#[tokio::test]
async fn a_revoked_tokens_cookie_stops_working_at_once() {
    let relay = InProc::embedded().await;
    let now = SystemClock.now_ms();
    let room = Grant::Room { room: "lab".into() };
    let minted = switchboard_relay::mint(relay.tokens.as_ref(), room, "desk", now)
        .await
        .unwrap();
    let mut browser = Browser::signed_in(&relay, &minted.token).await;
    assert_eq!(
        browser.get("/dashboard/fragments/peers").await.status,
        StatusCode::OK
    );
    let stream = browser.open("/dashboard/events").await;
    assert_eq!(stream.status(), StatusCode::OK);

    assert!(
        relay
            .tokens
            .revoke_token(&minted.record.id, now)
            .await
            .unwrap()
    );
    // The revocation ends the page's event stream (that is the relay seeing the change)...
    let mut stream = stream;
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream ends after the revocation");
    // ...and from then on the cookie signs nothing in.
    let res = browser.get("/dashboard/fragments/peers").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let res = browser.get("/dashboard/events").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let res = browser.send("ops", "bob", "after revocation").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let page = browser.get("/").await;
    assert!(
        page.body.contains("action=\"/login\""),
        "the login form again"
    );
    assert!(
        page.set_cookie("swb_session")
            .unwrap()
            .contains("Max-Age=0")
    );
}

/// Job `id` as `/v1` shows it to the room token.
async fn job_v1(relay: &InProc, id: i64) -> Value {
    let call = Call::Job(op::Job {
        id: JobId(id),
        wait: Duration::ZERO,
    });
    v1(relay, &relay.room_token, call).await
}

/// A job for `agent` dispatched through `/v1` by the operator peer `from`; its id.
async fn dispatch_v1(relay: &InProc, from: PeerId, agent: &str, prompt: &str) -> i64 {
    let call = Call::Dispatch(op::Dispatch {
        from: Some(from),
        job: Dispatch::new(agent, prompt),
    });
    v1(relay, &relay.room_token, call).await["id"]
        .as_i64()
        .unwrap()
}

impl Browser {
    async fn dispatch(&mut self, as_name: &str, agent: &str, prompt: &str) -> Page {
        let csrf = self.csrf();
        let form = [
            ("csrf", csrf.as_str()),
            ("as", as_name),
            ("agent", agent),
            ("prompt", prompt),
        ];
        self.post("/dashboard/dispatch", &form).await
    }

    /// A confirmed job action, as the confirmation's "Yes" button posts it.
    async fn act(&mut self, id: i64, action: &str) -> Page {
        let csrf = self.csrf();
        let form = [("csrf", csrf.as_str()), ("confirm", "yes")];
        self.post(&format!("/dashboard/jobs/{id}/{action}"), &form)
            .await
    }
}

#[tokio::test]
async fn a_job_dispatched_from_the_page_is_visible_through_v1_with_its_cancel_offered() {
    let relay = InProc::embedded().await;
    let mut browser = Browser::signed_in(&relay, &relay.room_token).await;

    let res = browser.dispatch("desk", "codex", "review the diff").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let query =
        json!({"query": {"dispatcher": null, "agent": null, "active_only": false, "limit": 10}});
    let jobs = relay
        .post(&relay.room_token, "jobs", query)
        .await
        .body
        .unwrap();
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let job = &jobs[0];
    assert_eq!(
        (
            &job["agent"],
            &job["dispatcher"],
            &job["prompt"],
            &job["state"]
        ),
        (
            &json!("codex"),
            &json!("desk"),
            &json!("review the diff"),
            &json!("queued")
        ),
        "dispatched as the operator peer the form named"
    );
    let id = job["id"].as_i64().unwrap();

    let fragment = browser.get("/dashboard/fragments/jobs").await;
    let body = &fragment.body;
    assert!(
        body.contains(&format!("id=\"job-{id}-state\">queued<")),
        "{body}"
    );
    assert!(
        body.contains(&format!("action=\"/dashboard/jobs/{id}/cancel\"")),
        "a queued job offers cancel: {body}"
    );
    assert!(body.contains(&format!("Yes, cancel job {id}")));
    assert!(
        body.contains(&browser.csrf()),
        "the action's form carries the CSRF value"
    );
    for absent in ["/retry\"", "/recover\""] {
        assert!(!body.contains(absent), "only what the state allows: {body}");
    }
    assert!(
        browser
            .get("/")
            .await
            .body
            .contains("action=\"/dashboard/dispatch\"")
    );

    // A refused dispatch says why, keeps what was typed, is a 4xx and makes nothing.
    let res = browser.dispatch("desk", " ", "for nobody").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert!(res.body.contains("say which agent"), "{}", res.body);
    assert!(res.body.contains("for nobody"), "the draft is kept");
    let res = browser.dispatch("desk", "codex", "").await;
    assert!(res.status.is_client_error(), "{}", res.status);
    let query =
        json!({"query": {"dispatcher": null, "agent": null, "active_only": false, "limit": 10}});
    let jobs = relay
        .post(&relay.room_token, "jobs", query)
        .await
        .body
        .unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 1, "nothing more dispatched");
}

#[tokio::test]
async fn a_peer_token_dispatches_from_the_page_as_itself() {
    let relay = InProc::embedded().await;
    join(&relay, &relay.peer_token, "alice").await;
    let mut browser = Browser::signed_in(&relay, &relay.peer_token).await;
    let page = browser.get("/").await;
    assert!(
        !page.body.contains("id=\"job-as\""),
        "a peer token dispatches as itself only"
    );
    let res = browser.dispatch("ops", "codex", "alice's job").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let job = job_v1(&relay, 1).await;
    assert_eq!(job["dispatcher"], "alice", "{job}");
    let jobs = browser.get("/dashboard/fragments/jobs").await;
    assert!(jobs.body.contains("Yes, cancel job 1"), "{}", jobs.body);
}

#[tokio::test]
async fn a_job_action_needs_the_csrf_value_and_the_confirmation() {
    let relay = InProc::embedded().await;
    let ops = operator(&relay, "ops").await;
    let id = dispatch_v1(&relay, ops, "codex", "keep me").await;
    let mut browser = Browser::signed_in(&relay, &relay.room_token).await;
    let path = format!("/dashboard/jobs/{id}/cancel");

    let res = browser.post(&path, &[("confirm", "yes")]).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    assert!(res.body.contains("CSRF"));
    let wrong = "0".repeat(64);
    let res = browser
        .post(&path, &[("csrf", &wrong), ("confirm", "yes")])
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let csrf = browser.csrf();
    let res = browser.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(
        res.status,
        StatusCode::BAD_REQUEST,
        "unconfirmed: {}",
        res.body
    );
    assert!(res.body.contains("was not confirmed"), "{}", res.body);
    assert_eq!(
        job_v1(&relay, id).await["state"],
        "queued",
        "nothing changed"
    );

    let res = browser.act(id, "cancel").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(job_v1(&relay, id).await["state"], "cancelled");
    let jobs = browser.get("/dashboard/fragments/jobs").await;
    assert!(
        jobs.body.contains(&format!("Yes, retry job {id}")),
        "a cancelled job offers retry: {}",
        jobs.body
    );
    let res = browser.act(id, "retry").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(job_v1(&relay, id).await["state"], "queued");
}

#[tokio::test]
async fn retrying_a_running_job_from_the_page_is_a_clear_4xx_that_changes_nothing() {
    let relay = InProc::embedded().await;
    let ops = operator(&relay, "ops").await;
    let id = dispatch_v1(&relay, ops, "codex", "long work").await;
    let claim = Call::Claim(op::Claim::new("codex", "host-a:42"));
    let claim: JobClaim =
        serde_json::from_value(v1(&relay, &relay.room_token, claim).await).unwrap();
    v1(
        &relay,
        &relay.room_token,
        Call::StartJob(op::StartJob { claim }),
    )
    .await;
    let before = job_v1(&relay, id).await;
    assert_eq!(before["worker"], "host-a:42", "{before}");

    let mut browser = Browser::signed_in(&relay, &relay.room_token).await;
    let jobs = browser.get("/dashboard/fragments/jobs").await;
    assert!(
        jobs.body.contains("<code>host-a:42</code>"),
        "the worker: {}",
        jobs.body
    );
    assert!(jobs.body.contains("under way for"), "{}", jobs.body);

    for action in ["retry", "recover"] {
        let res = browser.act(id, action).await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "{action}: {}",
            res.body
        );
        assert!(
            res.body
                .contains(&format!("job {id} is running, so it cannot be"))
                && res.body.contains("can be cancelled"),
            "says what is wrong and what fits: {}",
            res.body
        );
        assert!(
            res.body.contains("id=\"jobs-notice\""),
            "the page again, with why"
        );
    }
    // Neither an id nor an action the page could have offered: a 4xx, never a 5xx.
    let csrf = browser.csrf();
    for path in ["/dashboard/jobs/seven/cancel", "/dashboard/jobs/1/explode"] {
        let res = browser
            .post(path, &[("csrf", &csrf), ("confirm", "yes")])
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{path}: {}", res.body);
    }
    assert_eq!(job_v1(&relay, id).await, before, "nothing changed");
}

#[tokio::test]
async fn a_peer_token_cannot_cancel_from_the_page_a_job_it_neither_dispatched_nor_runs() {
    let relay = InProc::embedded().await;
    join(&relay, &relay.peer_token, "alice").await;
    let ops = operator(&relay, "ops").await;
    let id = dispatch_v1(&relay, ops, "bob", "bob's job").await;

    let through_v1 = relay
        .call(
            &relay.peer_token,
            &Call::CancelJob(op::CancelJob { id: JobId(id) }),
        )
        .await;
    assert!(through_v1.status.is_client_error(), "{through_v1:?}");
    let said = through_v1.body.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut browser = Browser::signed_in(&relay, &relay.peer_token).await;
    let res = browser.act(id, "cancel").await;
    assert_eq!(res.status, through_v1.status, "{}", res.body);
    let escaped = said.replace('\'', "&#39;");
    assert!(
        res.body.contains(&said) || res.body.contains(&escaped),
        "the same refusal as /v1 ('{said}'): {}",
        res.body
    );
    assert!(!res.body.contains("bob&#39;s job") && !res.body.contains("bob's job"));
    assert_eq!(
        job_v1(&relay, id).await["state"],
        "queued",
        "nothing changed"
    );
}
