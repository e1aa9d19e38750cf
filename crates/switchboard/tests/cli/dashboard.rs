//! The dashboard (issue 16) on the relay in-process, driven like a browser with a
//! plain HTTP client: cookies kept by hand (so their attributes can be checked), redirects not
//! followed, `Origin` sent on every POST as a browser does. What is checked: login and its
//! cookies, CSRF on every POST, that a token sees through the page exactly what `/v1` lets it
//! see, sending from the page, dispatching and acting on jobs from it (each action confirmed,
//! allowed only where the job's state and the token allow it), answering questions and
//! replying, the charts, the security headers, and that revocation ends a session; and
//! `switchboard dashboard`, the real binary serving one machine's store, signed in by its
//! one-time links. Nothing here sleeps for timing: it waits for the relay's events.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};

use switchboard_core::wire::Call;
use switchboard_core::{Ask, Clock, Dispatch, Grant, Outgoing, Reply, SystemClock, op};
use switchboard_proto::{Basis, JobClaim, JobId, PeerId, QuestionId};

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
        Self::at(&relay.url)
    }

    /// A browser with no cookies yet, for the server at `base`.
    fn at(base: &str) -> Self {
        crate::harness::crypto();
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
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

    /// Posts one of the page's forms with `fields`, carrying this browser's CSRF value as the
    /// page's forms do.
    async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf();
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post(path, &form).await
    }

    async fn send(&mut self, as_name: &str, to: &str, text: &str) -> Page {
        let form = [("as", as_name), ("to", to), ("text", text)];
        self.submit("/dashboard/send", &form).await
    }
}

/// The answer form as the page posts it.
struct AnswerForm<'a> {
    as_name: &'a str,
    question: &'a str,
    text: &'a str,
    basis: &'a str,
    sources: &'a str,
}

impl Browser {
    async fn answer(&mut self, form: &AnswerForm<'_>) -> Page {
        let fields = [
            ("as", form.as_name),
            ("question", form.question),
            ("text", form.text),
            ("basis", form.basis),
            ("sources", form.sources),
        ];
        self.submit("/dashboard/answer", &fields).await
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
    // What a peer holds shows on its card: a reservation taken through `/v1/reserve`.
    let body = json!({"peer": ops.0, "repo": "abc123", "globs": ["src/api/**"],
                      "reason": "moving the <router>"});
    let taken = relay.post(&relay.room_token, "reserve", body).await;
    assert_eq!(taken.status, StatusCode::OK, "{taken:?}");
    let peers = browser.get("/dashboard/fragments/peers").await;
    assert!(
        peers.body.contains("src/api/**")
            && (peers.body.contains("moving the &#60;router&#62;")
                || peers.body.contains("moving the &lt;router&gt;")),
        "{}",
        peers.body
    );
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

    let forged = [("as", "ops"), ("to", "bob"), ("text", "forged")];
    let with_csrf = |csrf| [vec![("csrf", csrf)], forged.to_vec()].concat();
    let res = browser.post("/dashboard/send", &forged).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    assert!(res.body.contains("CSRF"));
    let wrong = "0".repeat(64);
    let res = browser.post("/dashboard/send", &with_csrf(&wrong)).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    // The right value in the field but no CSRF cookie (another site's form can't read it).
    let csrf = browser.csrf();
    browser.cookies.remove("swb_csrf");
    let res = browser.post("/dashboard/send", &with_csrf(&csrf)).await;
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

/// `switchboard dashboard`, the real binary over a private home, with its stdin held so the
/// test can ask for more links; ended by SIGTERM when dropped.
struct LocalDashboard {
    child: tokio::process::Child,
    out: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl LocalDashboard {
    fn start(home: &crate::harness::Home) -> Self {
        let mut cmd = tokio::process::Command::from(home.cmd("ops"));
        let mut child = cmd
            .args(["dashboard", "--no-open"])
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start switchboard dashboard");
        let out = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
            child.stdout.take().unwrap(),
        ));
        Self { child, out }
    }

    /// The next link it prints.
    async fn link(&mut self) -> String {
        let line = tokio::time::timeout(Duration::from_secs(60), self.out.next_line())
            .await
            .expect("the dashboard prints its link")
            .unwrap()
            .expect("the dashboard is running");
        assert!(line.contains("/login/link/"), "not a sign-in link: {line}");
        line
    }

    /// Presses Enter in its terminal: it prints another link.
    async fn another_link(&mut self) -> String {
        use tokio::io::AsyncWriteExt;
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"\n").await.unwrap();
        stdin.flush().await.unwrap();
        self.link().await
    }

    /// Ends it as Ctrl-C's sibling SIGTERM would: it must stop cleanly.
    async fn stop(mut self) {
        let pid = self.child.id().expect("still running");
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("the dashboard stops on SIGTERM")
            .unwrap();
        assert!(status.success(), "stopped with {status}");
    }
}

/// `http://127.0.0.1:PORT/login/link/CODE` → (`http://127.0.0.1:PORT`, `/login/link/CODE`).
fn split_link(link: &str) -> (String, String) {
    let at = link.find("/login/").unwrap();
    (link[..at].to_owned(), link[at..].to_owned())
}

#[tokio::test]
async fn the_local_dashboard_signs_a_browser_in_once_by_its_link_and_shows_this_machines_mail() {
    let home = crate::harness::Home::new();
    // Mail between two of this machine's humans, written before the dashboard starts.
    assert!(home.run("alice", &["inbox"]).status.success());
    let sent = home.run("ops", &["send", "alice", "the build is green"]);
    assert!(sent.status.success(), "{sent:?}");
    let mut dashboard = LocalDashboard::start(&home);
    let (base, path) = split_link(&dashboard.link().await);

    let mut browser = Browser::at(&base);
    // Without the link: the login form, which no token of this process's can fill.
    assert!(browser.get("/").await.body.contains("action=\"/login\""));
    let signed = browser.get(&path).await;
    assert_eq!(signed.status, StatusCode::OK, "{}", signed.body);
    let session = signed.set_cookie("swb_session").expect("a session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
    assert_eq!(browser.csrf().len(), 64, "and a CSRF value");
    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("room local"), "{}", page.body);
    assert!(page.body.contains("the build is green"), "{}", page.body);
    assert!(page.body.contains("alice"));
    // The forms act as this machine's human, as the CLI names them (here SWITCHBOARD_OPERATOR),
    // not as a stranger called "operator".
    assert!(
        page.body
            .contains(r#"<input id="as" name="as" value="ops""#),
        "{}",
        page.body
    );

    // The page acts on the machine's store: alice's inbox has what it sends.
    let res = browser.send("ops", "alice", "sent from the page").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let inbox = home.run("alice", &["inbox"]);
    assert!(String::from_utf8_lossy(&inbox.stdout).contains("sent from the page"));

    // The link is spent: a second browser gets nothing from it, but Enter makes another.
    let mut second = Browser::at(&base);
    let again = second.get(&path).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert!(
        again.body.contains("used already or has expired"),
        "{}",
        again.body
    );
    assert!(again.set_cookie("swb_session").is_none());
    let (_, fresh) = split_link(&dashboard.another_link().await);
    assert_ne!(fresh, path);
    assert_eq!(second.get(&fresh).await.status, StatusCode::OK);
    assert!(second.get("/").await.body.contains("sent from the page"));

    // Stopping the dashboard ends its token: a new one does not take the old cookie.
    dashboard.stop().await;
    let mut restarted = LocalDashboard::start(&home);
    let (base, _) = split_link(&restarted.link().await);
    browser.base = base;
    let page = browser.get("/").await;
    assert!(
        page.body.contains("action=\"/login\""),
        "signed out: {}",
        page.body
    );
    restarted.stop().await;
}

#[test]
fn the_local_dashboard_refuses_an_address_beyond_loopback() {
    let home = crate::harness::Home::new();
    let out = home.run("ops", &["dashboard", "--no-open", "--listen", "0.0.0.0:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback only"), "{err}");
    assert!(out.stdout.is_empty(), "no link printed");
}

#[tokio::test]
async fn the_dashboard_command_on_a_relay_points_at_the_relays_own_page() {
    let relay = InProc::embedded().await;
    let home = crate::harness::Home::new();
    let args = [
        "--relay",
        &relay.url,
        "--token",
        &relay.room_token,
        "dashboard",
        "--no-open",
    ];
    let out = home.run("ops", &args);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{}/", relay.url)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("sign in there"));
}

/// The peer `name`'s id, read through `/v1` with the room token.
pub(crate) async fn peer_id(relay: &InProc, name: &str) -> PeerId {
    let name = name.into();
    let peer = v1(relay, &relay.room_token, Call::Peer(op::Peer { name })).await;
    PeerId(peer["id"].as_i64().unwrap())
}

/// `from` asks `to` over `/v1` (room token); the question's id.
pub(crate) async fn ask_v1(relay: &InProc, from: PeerId, to: &str, question: &str) -> QuestionId {
    let ask = Ask {
        to: to.into(),
        question: question.into(),
        context_hint: None,
        ttl: None,
    };
    let call = Call::Ask(op::Ask {
        from: Some(from),
        ask,
    });
    let q = v1(relay, &relay.room_token, call).await;
    QuestionId(q["id"].as_i64().unwrap())
}

/// The question as its asker sees it over `/v1`.
pub(crate) async fn question_v1(relay: &InProc, asker: PeerId, id: QuestionId) -> Value {
    let call = Call::Question(op::Question {
        peer: Some(asker),
        id,
        wait: Duration::ZERO,
    });
    v1(relay, &relay.room_token, call).await
}

/// Job `id` as `/v1` shows it to the room token.
async fn job_v1(relay: &InProc, id: i64) -> Value {
    let call = Call::Job(op::Job {
        id: JobId(id),
        wait: Duration::ZERO,
    });
    v1(relay, &relay.room_token, call).await
}

/// What the page shows of a text the relay wrote, with askama's escapes undone.
fn unescaped(html: &str) -> String {
    html.replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn a_question_to_the_operator_shows_on_the_page_and_is_answered_there_with_basis_and_sources()
{
    let relay = InProc::embedded().await;
    join(&relay, &relay.room_token, "bob").await;
    let bob = peer_id(&relay, "bob").await;
    operator(&relay, "ops").await;
    let mut browser = Browser::signed_in(&relay, &relay.room_token).await;

    // The question arrives on the page's stream (that is what makes the page look again)...
    let stream = browser.open("/dashboard/events").await;
    let id = ask_v1(&relay, bob, "ops", "Which port does the relay use?").await;
    read_until(stream, "Which port does the relay use?").await;
    // ...and the page lists it, open, with a link that fills in the answer form.
    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    let questions = browser.get("/dashboard/fragments/questions").await;
    assert_eq!(questions.status, StatusCode::OK);
    for shown in [
        "Which port does the relay use?",
        "<strong>bob</strong> asks <strong>ops</strong>",
        ">open<",
        "deadline",
    ] {
        assert!(page.body.contains(shown), "'{shown}': {}", page.body);
        assert!(
            questions.body.contains(shown),
            "'{shown}': {}",
            questions.body
        );
    }
    let link = format!("href=\"/?question={id}&amp;as=ops#answer-h\"");
    assert!(questions.body.contains(&link), "{}", questions.body);
    let opened = browser.get(&format!("/?question={id}&as=ops")).await;
    assert!(
        opened
            .body
            .contains(&format!("name=\"question\" value=\"{id}\"")),
        "{}",
        opened.body
    );
    assert!(opened.body.contains("name=\"as\" value=\"ops\""));

    // Without this browser's CSRF value the answer is refused and the question stays open.
    let form = AnswerForm {
        as_name: "ops",
        question: &format!("#{id}"),
        text: "8787, see the serve command",
        basis: "verified",
        sources: "crates/relay/src/serve.rs:42\n\n  README.md  \n",
    };
    let csrf = std::mem::take(browser.cookies.get_mut("swb_csrf").unwrap());
    let res = browser.answer(&form).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    assert_eq!(question_v1(&relay, bob, id).await["state"], "open");
    browser.cookies.insert("swb_csrf".into(), csrf);

    // A form that does not say how the human knows is refused, and keeps what was typed.
    let res = browser.answer(&AnswerForm { basis: "", ..form }).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert!(res.body.contains("say how you know"), "{}", res.body);
    assert!(res.body.contains("8787, see the serve command"));
    assert!(res.body.contains("crates/relay/src/serve.rs:42"));
    assert_eq!(question_v1(&relay, bob, id).await["state"], "open");

    // Answered from the page: the asker reads the answer, its basis and sources over /v1.
    let stream = browser.open("/dashboard/events").await;
    let res = browser.answer(&form).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    read_until(stream, "8787, see the serve command").await;
    let q = question_v1(&relay, bob, id).await;
    assert_eq!(q["state"], "answered", "{q}");
    assert_eq!(q["answer"]["basis"], "verified", "{q}");
    assert_eq!(q["answer"]["text"], "8787, see the serve command");
    assert_eq!(
        q["answer"]["sources"],
        json!(["crates/relay/src/serve.rs:42", "README.md"])
    );
    let questions = browser.get("/dashboard/fragments/questions").await;
    for shown in [
        ">answered<",
        "8787, see the serve command",
        ">verified<",
        "README.md",
    ] {
        assert!(
            questions.body.contains(shown),
            "'{shown}': {}",
            questions.body
        );
    }
    assert!(
        !questions.body.contains(&link),
        "no Answer link once answered"
    );

    // Answering it again is refused as /v1 refuses it.
    let res = browser.answer(&form).await;
    assert!(res.status.is_client_error(), "{}", res.status);
}

#[tokio::test]
async fn a_peer_tokens_page_lists_only_its_questions_and_cannot_answer_anothers() {
    let relay = InProc::embedded().await;
    join(&relay, &relay.room_token, "bob").await;
    join(&relay, &relay.peer_token, "alice").await;
    let bob = peer_id(&relay, "bob").await;
    operator(&relay, "ops").await;
    let mut browser = Browser::signed_in(&relay, &relay.peer_token).await;
    let stream = browser.open("/dashboard/events").await;
    let private = ask_v1(&relay, bob, "ops", "bob's private question").await;
    let mine = ask_v1(&relay, bob, "alice", "a question for alice").await;
    // Her stream carries the question to her (and never bob's to ops: it is not her log).
    let events = read_until(stream, "a question for alice").await;
    assert!(!events.contains("private question"), "{events}");

    let page = browser.get("/").await;
    assert!(page.body.contains("a question for alice"), "{}", page.body);
    assert!(!page.body.contains("private question"), "{}", page.body);
    assert!(
        !page.body.contains("name=\"as\""),
        "a peer token answers as itself"
    );
    let questions = browser.get("/dashboard/fragments/questions").await;
    assert!(questions.body.contains("a question for alice"));
    assert!(
        !questions.body.contains("private question"),
        "{}",
        questions.body
    );

    // Someone else's question: refused as /v1 refuses the same token, and nothing changes.
    let text = "alice answers for ops";
    let refused_v1 = relay
        .call(
            &relay.peer_token,
            &Call::Reply(op::Reply {
                by: None,
                question: private,
                reply: Reply::Answer {
                    text: text.into(),
                    basis: Basis::FromMemory,
                    sources: Vec::new(),
                },
            }),
        )
        .await;
    assert!(refused_v1.status.is_client_error(), "{refused_v1:?}");
    let said = refused_v1.body.as_ref().unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    let form = AnswerForm {
        as_name: "ops",
        question: &private.0.to_string(),
        text,
        basis: "from_memory",
        sources: "",
    };
    let res = browser.answer(&form).await;
    assert_eq!(res.status, refused_v1.status, "{}", res.body);
    assert!(
        unescaped(&res.body).contains(&said),
        "'{said}': {}",
        res.body
    );
    assert!(res.body.contains(text), "what was typed is kept");
    assert_eq!(question_v1(&relay, bob, private).await["state"], "open");

    // Her own: answered as herself, whatever the form says.
    let mine_text = mine.0.to_string();
    let res = browser
        .answer(&AnswerForm {
            question: &mine_text,
            text: "alice knows",
            ..form
        })
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let q = question_v1(&relay, bob, mine).await;
    assert_eq!(q["state"], "answered", "{q}");
    assert_eq!(q["answer"]["basis"], "from_memory", "{q}");
}

#[tokio::test]
async fn a_reply_from_the_page_is_sent_in_reply_to_the_message() {
    let relay = InProc::embedded().await;
    join(&relay, &relay.room_token, "bob").await;
    let bob = peer_id(&relay, "bob").await;
    operator(&relay, "ops").await;
    send_v1(&relay, bob, "ops", "can you look at the build?").await;
    let mut browser = Browser::signed_in(&relay, &relay.room_token).await;
    let log = browser.get("/dashboard/fragments/messages").await;
    let entries = v1(
        &relay,
        &relay.room_token,
        Call::Log(op::Log {
            query: switchboard_core::LogQuery {
                after: switchboard_proto::MessageId(0),
                peer: None,
                limit: 100,
            },
            wait: Duration::ZERO,
        }),
    )
    .await;
    let asked = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["text"] == "can you look at the build?")
        .and_then(|e| e["id"].as_i64())
        .unwrap();
    // Each message offers a Reply, a plain link that fills in the send form.
    let link = format!("href=\"/?to=bob&amp;reply_to={asked}#send-h\"");
    assert!(log.body.contains(&link), "{}", log.body);
    let opened = browser.get(&format!("/?to=bob&reply_to={asked}")).await;
    assert!(
        opened
            .body
            .contains(&format!("name=\"reply_to\" value=\"{asked}\"")),
        "{}",
        opened.body
    );

    // A reply-to that is no message number: refused, saying so, keeping the text.
    let csrf = browser.csrf();
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("as", "ops"),
        ("to", "bob"),
        ("reply_to", "the build one"),
        ("text", "on it"),
    ];
    let res = browser.post("/dashboard/send", &form).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    assert!(
        res.body.contains("not the number of a message"),
        "{}",
        res.body
    );
    assert!(res.body.contains("on it"));

    let reply_to = format!("#{asked}");
    form[3] = ("reply_to", &reply_to);
    let res = browser.post("/dashboard/send", &form).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let entries = v1(
        &relay,
        &relay.room_token,
        Call::Log(op::Log {
            query: switchboard_core::LogQuery {
                after: switchboard_proto::MessageId(asked),
                peer: None,
                limit: 100,
            },
            wait: Duration::ZERO,
        }),
    )
    .await;
    assert_eq!(entries[0]["text"], "on it", "{entries}");
    assert_eq!(entries[0]["from"], "ops");
    assert_eq!(entries[0]["reply_to"], asked, "{entries}");
}

/// A token of `grant`, minted in the relay's token store.
async fn mint(relay: &InProc, grant: Grant, label: &str) -> String {
    switchboard_relay::mint(relay.tokens.as_ref(), grant, label, SystemClock.now_ms())
        .await
        .unwrap()
        .token
}

/// The newest value a chart of the charts fragment shows, by its title.
fn latest(charts: &str, title: &str) -> String {
    let after = charts
        .split_once(&format!("<span>{title}</span>"))
        .unwrap_or_else(|| panic!("no chart '{title}': {charts}"))
        .1;
    let value = after.split_once("class=\"latest\">").unwrap().1;
    value.split_once("</strong>").unwrap().0.to_owned()
}

#[tokio::test]
async fn the_charts_show_a_rooms_figures_to_its_tokens_and_the_relays_sums_to_the_admin() {
    let relay = InProc::embedded().await;
    join(&relay, &relay.room_token, "bob").await;
    join(&relay, &relay.peer_token, "alice").await;
    let ops = operator(&relay, "ops").await;
    for n in 0..3 {
        send_v1(&relay, ops, "bob", &format!("lab note {n}")).await;
    }
    let job = Call::Dispatch(op::Dispatch {
        from: Some(ops),
        job: Dispatch::new("bob", "a job in the lab"),
    });
    v1(&relay, &relay.room_token, job).await;
    // Another room, busier: none of its figures may show in the lab's charts.
    let elsewhere = mint(
        &relay,
        Grant::Room {
            room: "elsewhere".into(),
        },
        "elsewhere",
    )
    .await;
    join(&relay, &elsewhere, "carol").await;
    let desk = v1(
        &relay,
        &elsewhere,
        Call::Operator(op::Operator {
            name: "desk".into(),
        }),
    )
    .await;
    let desk = PeerId(desk["id"].as_i64().unwrap());
    for n in 0..5 {
        let call = Call::Send(op::Send {
            from: Some(desk),
            message: Outgoing::to_peer("carol", format!("elsewhere {n}")),
        });
        v1(&relay, &elsewhere, call).await;
    }

    let mut room = Browser::signed_in(&relay, &relay.room_token).await;
    let before = room.get("/dashboard/fragments/charts").await;
    assert_eq!(before.status, StatusCode::OK);
    // One sample taken now, instead of waiting for the sampler's 10 s.
    relay.app.history.sample_now(&relay.app).await;

    let charts = room.get("/dashboard/fragments/charts").await;
    assert_eq!(charts.status, StatusCode::OK, "{}", charts.body);
    assert_security_headers(&charts);
    for title in ["Messages/s", "Push latency", "Queue depth", "Jobs by state"] {
        assert!(charts.body.contains(title), "{title}: {}", charts.body);
    }
    assert_eq!(latest(&charts.body, "Queue depth"), "3");
    assert_eq!(latest(&charts.body, "Jobs by state"), "queued 1");
    assert!(charts.body.contains("<svg class=\"chart-svg\""));
    assert!(charts.body.contains("<title>"), "each chart has its name");
    assert!(!charts.body.contains("style="), "no inline style");
    let page = room.get("/").await;
    assert!(page.body.contains("data-fragment=\"charts\""));
    assert!(
        page.body.contains("Queue depth"),
        "on first load, no script needed"
    );

    // A peer token reads the room's figures, as `stats` lets it through /v1: the lab's only.
    let mut peer = Browser::signed_in(&relay, &relay.peer_token).await;
    let charts = peer.get("/dashboard/fragments/charts").await;
    assert_eq!(charts.status, StatusCode::OK, "{}", charts.body);
    assert_eq!(latest(&charts.body, "Queue depth"), "3");
    assert_eq!(latest(&charts.body, "Jobs by state"), "queued 1");
    let stats = v1(&relay, &relay.peer_token, Call::Stats(op::Stats {})).await;
    assert_eq!(stats["queued"], 3, "the same figure as /v1/stats: {stats}");
    assert_eq!(stats["jobs"]["queued"], 1, "{stats}");

    // The admin token's health page: the relay's sums, and nothing that names a room.
    let admin = mint(&relay, Grant::Admin, "admin").await;
    let mut browser = Browser::signed_in(&relay, &admin).await;
    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(latest(&page.body, "Queue depth"), "8", "3 + 5");
    assert_eq!(latest(&page.body, "Jobs by state"), "queued 1");
    assert!(page.body.contains("all rooms summed"));
    assert!(page.body.contains("/dashboard/assets/dashboard.js"));
    for hidden in ["lab", "elsewhere", "bob", "carol"] {
        assert!(
            !page.body.contains(hidden),
            "'{hidden}' shown to admin: {}",
            page.body
        );
    }
    let charts = browser.get("/dashboard/fragments/charts").await;
    assert_eq!(charts.status, StatusCode::OK, "{}", charts.body);
    assert_eq!(latest(&charts.body, "Queue depth"), "8");
}

#[tokio::test]
async fn an_sse_push_is_measured_in_the_metrics_and_the_rooms_charts() {
    let relay = InProc::embedded().await;
    join(&relay, &relay.room_token, "bob").await;
    let ops = operator(&relay, "ops").await;
    let admin = mint(&relay, Grant::Admin, "admin").await;
    let metrics = |relay: &InProc| {
        relay
            .http
            .get(format!("{}/metrics", relay.url))
            .bearer_auth(&admin)
            .send()
    };
    let before = metrics(&relay).await.unwrap().text().await.unwrap();
    assert!(
        before.contains("switchboard_push_latency_seconds_count 0"),
        "{before}"
    );

    let stream = relay
        .http
        .get(format!("{}/v1/events", relay.url))
        .bearer_auth(&relay.room_token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    send_v1(&relay, ops, "bob", "pushed at once").await;
    read_until(stream, "pushed at once").await;

    let after = metrics(&relay).await.unwrap().text().await.unwrap();
    assert!(
        after.contains("switchboard_push_latency_seconds_count 1"),
        "{after}"
    );
    assert!(after.contains("switchboard_push_latency_seconds_bucket"));

    relay.app.history.sample_now(&relay.app).await;
    let mut browser = Browser::signed_in(&relay, &relay.room_token).await;
    let charts = browser.get("/dashboard/fragments/charts").await;
    let latency = latest(&charts.body, "Push latency");
    assert!(latency.starts_with("p50 "), "{latency}");
    assert!(latency.contains(" · p95 "), "{latency}");
}

/// The push latency histogram's count on `/metrics`.
async fn pushes_counted(relay: &InProc, admin: &str) -> u64 {
    let text = relay
        .http
        .get(format!("{}/metrics", relay.url))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("switchboard_push_latency_seconds_count "))
        .unwrap_or_else(|| panic!("no push latency histogram: {text}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn an_mcp_channel_push_is_measured_in_the_metrics() {
    let relay = InProc::embedded().await;
    let admin = mint(&relay, Grant::Admin, "admin").await;
    let ops = operator(&relay, "ops").await;
    let session = relay.mcp_session(&relay.peer_token, true).await;
    let stream = relay.mcp_stream(&relay.peer_token, &session).await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(pushes_counted(&relay, &admin).await, 0);
    // The session's peer joins the room as the session goes live, after the handshake.
    relay
        .until("alice's session has joined the room", || async {
            let peers = v1(&relay, &relay.room_token, Call::Peers(op::Peers::default())).await;
            peers.to_string().contains("\"alice\"")
        })
        .await;
    send_v1(&relay, ops, "alice", "pushed over mcp").await;
    let text = read_until(stream, "pushed over mcp").await;
    assert!(text.contains("notifications/claude/channel"), "{text}");
    // Recorded once the notification is handed to the stream, which may be just after the
    // client read it: wait for the relay to count it.
    relay
        .until("the push is counted", || async {
            pushes_counted(&relay, &admin).await == 1
        })
        .await;
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
        let form = [("as", as_name), ("agent", agent), ("prompt", prompt)];
        self.submit("/dashboard/dispatch", &form).await
    }

    /// A confirmed job action, as the confirmation's "Yes" button posts it.
    async fn act(&mut self, id: i64, action: &str) -> Page {
        let form = [("confirm", "yes")];
        self.submit(&format!("/dashboard/jobs/{id}/{action}"), &form)
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
            StatusCode::CONFLICT,
            "{action}, as /v1 refuses a state conflict: {}",
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
