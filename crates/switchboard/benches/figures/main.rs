//! Prints the SPEC section 9 figures this build can be measured on, as a Markdown table.
//!
//! Run: `cargo bench -p switchboard --bench figures` (add `-- --messages 100000` for a quick run;
//! the default grows the store to 1,000,000 messages). Every figure comes from the real store
//! and, for wake-ups, from a second `switchboard` process; nothing here is simulated.

#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use switchboard_core::{
    Exchange, Limits, Mailbox, NamePolicy, OpenSession, Outgoing, PeerRecord, Run, Session, op,
};
use switchboard_proto::{PeerInfo, PeerKind, PeerName};
use switchboard_store_sqlite::SqliteStore;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const SENDERS: usize = 64;
const RECIPIENTS: usize = 100;
const CHUNK: usize = 10_000;
const WAKE_SAMPLES: usize = 300;

struct Args {
    messages: usize,
    relay_messages: usize,
    /// `--relay-only`: just the relay's figures.
    relay_only: bool,
    /// `--relay-replicas N`: on Postgres, the relay's throughput through N replicas of one
    /// database (default 1).
    relay_replicas: usize,
    /// `--clients-only`: just the real clients' figures.
    clients_only: bool,
    /// `--dashboard-only`: just the dashboard's page weight and render times.
    dashboard_only: bool,
    /// `--growth-only`: just the growth of the store, as `growth` chooses.
    growth_only: bool,
    /// `--runs N`, `--backend embedded|postgres`, `--mode acked|backlog`: what the growth
    /// measures (default: one run, both backends, both modes); `--backend` also picks the
    /// relay's.
    growth: growth::Plan,
}

fn args() -> Args {
    let mut messages = 1_000_000;
    let mut relay_messages = 64_000;
    let mut relay_only = false;
    let mut relay_replicas = 1;
    let mut clients_only = false;
    let mut dashboard_only = false;
    let mut growth_only = false;
    let mut growth = growth::Plan {
        messages: 0,
        runs: 1,
        backends: vec![growth::Backend::Embedded, growth::Backend::Postgres],
        modes: vec![growth::Mode::Acked, growth::Mode::Backlog],
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--messages" => {
                messages = it.next().and_then(|v| v.parse().ok()).unwrap_or(messages);
            }
            "--relay-messages" => {
                relay_messages = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(relay_messages);
            }
            "--relay-only" => relay_only = true,
            "--relay-replicas" => {
                relay_replicas = it.next().and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
            }
            "--clients-only" => clients_only = true,
            "--dashboard-only" => dashboard_only = true,
            "--growth-only" => growth_only = true,
            "--runs" => {
                growth.runs = it.next().and_then(|v| v.parse().ok()).unwrap_or(1);
            }
            "--backend" => match it.next().as_deref() {
                Some("embedded") => growth.backends = vec![growth::Backend::Embedded],
                Some("postgres") => growth.backends = vec![growth::Backend::Postgres],
                _ => {}
            },
            "--mode" => match it.next().as_deref() {
                Some("acked") => growth.modes = vec![growth::Mode::Acked],
                Some("backlog") => growth.modes = vec![growth::Mode::Backlog],
                _ => {}
            },
            _ => {}
        }
    }
    growth.messages = messages;
    Args {
        messages,
        relay_messages,
        relay_only,
        relay_replicas,
        clients_only,
        dashboard_only,
        growth_only,
        growth,
    }
}

fn limits() -> Limits {
    Limits {
        // Many senders, each well inside its limit, as in a busy room; the limit check itself
        // stays in the measured path.
        rate_limit: 100_000,
        rate_window: Duration::from_secs(1),
        ..Limits::default()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    if args.clients_only {
        println!("| figure | value |");
        println!("|---|---|");
        mcp::exit_figures();
        tokio::task::spawn_blocking(clients::figures).await.unwrap();
        return;
    }
    if args.dashboard_only {
        println!("| figure | value |");
        println!("|---|---|");
        dashboard::figures(args.messages.min(100_000)).await;
        return;
    }
    if args.growth_only {
        println!("| figure | value |");
        println!("|---|---|");
        growth::figures(&args.growth).await;
        return;
    }
    if args.relay_only {
        println!("| figure | value |");
        println!("|---|---|");
        relay::figures(
            args.relay_messages,
            &args.growth.backends,
            args.relay_replicas,
        )
        .await;
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path()).expect("open store"));
    let mailbox = Mailbox::new(store, limits());

    let senders = peers(&mailbox, "sender", SENDERS).await;
    let recipients = sessions(&mailbox, "recipient", RECIPIENTS).await;

    // `SB_BENCH_PHASE=ack|send`: only the store growth, with (`ack`) or without (`send`) the
    // deliver+ack phase after each chunk; `jobs`: only the jobs phase. For timing and counting
    // one phase alone.
    if let Ok(phase) = std::env::var("SB_BENCH_PHASE") {
        if phase == "jobs" {
            let rate = jobs_per_second(&mailbox, &senders[0], 2000).await;
            println!("jobs {rate:.0}/s");
            return;
        }
        let mut total = 0;
        while total < args.messages {
            let n = CHUNK.min(args.messages - total);
            let s0 = Instant::now();
            let send_rate = concurrent_sends(&mailbox, &senders, &recipients, n).await;
            let s1 = s0.elapsed();
            total += n;
            if phase == "ack" {
                let a0 = Instant::now();
                let ack_rate = deliver_and_ack(&mailbox, &recipients).await;
                println!(
                    "chunk {total}: send {send_rate:.0}/s ({:.3}s) ack {ack_rate:.0}/s ({:.3}s)",
                    s1.as_secs_f64(),
                    a0.elapsed().as_secs_f64()
                );
            } else {
                println!(
                    "chunk {total}: send {send_rate:.0}/s ({:.3}s)",
                    s1.as_secs_f64()
                );
            }
        }
        return;
    }

    println!("| figure | value |");
    println!("|---|---|");
    let wake = wake_latency(dir.path(), &mailbox, &senders[0]).await;
    println!(
        "| wake-up, send returns → line printed by a `watch` process (p50 / p99) | {} / {} |",
        fmt_dur(wake.0),
        fmt_dur(wake.1)
    );
    println!(
        "| wake-up, send called (incl. fsync) → line printed (p50 / p99) | {} / {} |",
        fmt_dur(wake.2),
        fmt_dur(wake.3)
    );
    let single = sequential_sends(&mailbox, &senders[0], &recipients[0].peer, 500).await;
    println!("| durable sends/s, one sender waiting for each commit | {single:.0} |");
    let jobs = jobs_per_second(&mailbox, &senders[0], 2000).await;
    println!(
        "| jobs/s through dispatch → claim → complete (durable, 4 workers in one process, no command) | {jobs:.0} |"
    );
    mcp::figures(dir.path(), &mailbox, &senders[0]).await;
    mcp::exit_figures();
    tokio::task::spawn_blocking(clients::figures).await.unwrap();
    if args.relay_messages > 0 {
        relay::figures(
            args.relay_messages,
            &args.growth.backends,
            args.relay_replicas,
        )
        .await;
    }
    dashboard::figures(100_000).await;
    if args.messages == 0 {
        return;
    }

    growth::figures(&args.growth).await;
}

pub(crate) fn fmt_dur(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn peers(mailbox: &Mailbox, prefix: &str, n: usize) -> Vec<PeerRecord> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(
            mailbox
                .operator(&format!("{prefix}-{i}"))
                .await
                .expect("peer"),
        );
    }
    out
}

async fn sessions(mailbox: &Mailbox, prefix: &str, n: usize) -> Vec<Session> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let req = OpenSession {
            name: PeerName::parse(&format!("{prefix}-{i}")).expect("name"),
            kind: PeerKind::Agent,
            info: PeerInfo::default(),
            policy: NamePolicy::Suffix,
            client_pid: None,
        };
        out.push(mailbox.open_session(req).await.expect("session"));
    }
    out
}

async fn sequential_sends(mailbox: &Mailbox, from: &PeerRecord, to: &PeerRecord, n: usize) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        mailbox
            .send(
                from.id,
                Outgoing::to_peer(to.name.clone(), format!("seq {i}")),
            )
            .await
            .expect("send");
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drain(mailbox, to).await;
    rate
}

/// Acknowledges everything waiting for a peer, so later phases start from empty inboxes.
async fn drain(mailbox: &Mailbox, peer: &PeerRecord) {
    let req = OpenSession {
        name: PeerName::parse(&peer.name).expect("name"),
        kind: peer.kind,
        info: PeerInfo::default(),
        policy: NamePolicy::Join,
        client_pid: None,
    };
    let session = mailbox.open_session(req).await.expect("session");
    loop {
        let items = mailbox
            .run(op::Lease {
                include_seen: true,
                ..op::Lease::new(&session, 500)
            })
            .await
            .expect("lease");
        if items.is_empty() {
            break;
        }
        let ids: Vec<_> = items.iter().map(|i| i.id).collect();
        mailbox.ack(session.peer.id, &ids).await.expect("ack");
    }
    mailbox.close_session(session.id).await.expect("close");
}

async fn concurrent_sends(
    mailbox: &Mailbox,
    senders: &[PeerRecord],
    recipients: &[Session],
    n: usize,
) -> f64 {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (s, sender) in senders.iter().enumerate() {
        let mailbox = mailbox.clone();
        let from = sender.id;
        let names: Vec<String> = recipients.iter().map(|r| r.peer.name.clone()).collect();
        let count = n / senders.len() + usize::from(s < n % senders.len());
        tasks.spawn(async move {
            for i in 0..count {
                let to = names[(s + i) % names.len()].clone();
                mailbox
                    .send(from, Outgoing::to_peer(to, format!("bench {s}/{i}")))
                    .await
                    .expect("send");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    n as f64 / start.elapsed().as_secs_f64()
}

/// Every recipient session leases, records the hand-over and acknowledges its mail.
async fn deliver_and_ack(mailbox: &Mailbox, recipients: &[Session]) -> f64 {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for session in recipients {
        let mailbox = mailbox.clone();
        let session = session.clone();
        tasks.spawn(async move {
            let mut done = 0usize;
            loop {
                let items = mailbox
                    .run(op::Lease::new(&session, 100))
                    .await
                    .expect("lease");
                if items.is_empty() {
                    return done;
                }
                let ids: Vec<_> = items.iter().map(|i| i.id).collect();
                mailbox
                    .mark_delivered(&session, &ids)
                    .await
                    .expect("deliver");
                mailbox.ack(session.peer.id, &ids).await.expect("ack");
                done += ids.len();
            }
        });
    }
    let mut total = 0;
    while let Some(n) = tasks.join_next().await {
        total += n.expect("task");
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// Sends to a peer watched by a separate `switchboard watch` process and times each arrival
/// on its stdout. Returns p50/p99 from send-return and from send-call.
async fn wake_latency(
    home: &std::path::Path,
    mailbox: &Mailbox,
    from: &PeerRecord,
) -> (Duration, Duration, Duration, Duration) {
    let target = mailbox.operator("watched").await.expect("peer");
    let mut child = Command::new(BIN)
        .args(["--json", "watch", "--peer", "watched", "--since", "0"])
        .env("SWITCHBOARD_HOME", home)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn watch");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<Instant>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if line.is_err() || tx.send(Instant::now()).is_err() {
                break;
            }
        }
    });
    let send = |i: usize| {
        mailbox.send(
            from.id,
            Outgoing::to_peer(target.name.clone(), format!("wake {i}")),
        )
    };
    // Warm-up: the watcher is subscribed once it has printed this.
    send(0).await.expect("send");
    rx.recv_timeout(Duration::from_secs(30))
        .expect("watch started");

    let mut from_return = Vec::with_capacity(WAKE_SAMPLES);
    let mut from_call = Vec::with_capacity(WAKE_SAMPLES);
    for i in 1..=WAKE_SAMPLES {
        let called = Instant::now();
        send(i).await.expect("send");
        let returned = Instant::now();
        let printed = rx.recv_timeout(Duration::from_secs(30)).expect("printed");
        from_return.push(printed.saturating_duration_since(returned));
        from_call.push(printed.saturating_duration_since(called));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    drain(mailbox, &target).await;
    let (r50, r99) = percentiles(&mut from_return);
    let (c50, c99) = percentiles(&mut from_call);
    (r50, r99, c50, c99)
}

/// Whether the Postgres server vacuums: with autovacuum off (as some test machines' servers
/// are) every acknowledgement's old row version stays, and the store slows as it grows, so a
/// figure is only read beside this setting.
async fn print_vacuum(db: &switchboard_testkit::scratch::Scratch) {
    println!(
        "| Postgres server: autovacuum | {} |",
        db.setting("autovacuum").await
    );
}

mod clients;
mod dashboard;
mod growth;
mod mcp;
mod relay;

/// Dispatches `n` jobs from 16 concurrent dispatchers while 4 workers claim and complete
/// them; the rate counts only jobs that reached `completed`.
async fn jobs_per_second(mailbox: &Mailbox, from: &PeerRecord, n: usize) -> f64 {
    use switchboard_core::{Dispatch, JobOutcome};
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for d in 0..16 {
        let mailbox = mailbox.clone();
        let from = from.id;
        tasks.spawn(async move {
            for i in (d..n).step_by(16) {
                let job = Dispatch::new("bench", format!("job {i}"));
                mailbox.dispatch(from, job).await.expect("dispatch");
            }
            (0usize, None)
        });
    }
    for w in 0..4 {
        let mailbox = mailbox.clone();
        tasks.spawn(async move {
            let mut done = 0;
            let mut last = None;
            let worker = format!("bench-{w}");
            let mut idle = 0;
            while idle < 3 {
                match mailbox
                    .run(op::Claim::new("bench", &worker))
                    .await
                    .expect("claim")
                {
                    Some(claim) => {
                        idle = 0;
                        let ok = JobOutcome::Completed {
                            result: "ok".into(),
                            branch: None,
                        };
                        mailbox.finish_job(&claim, ok).await.expect("finish");
                        done += 1;
                        last = Some(Instant::now());
                    }
                    None => {
                        idle += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            (done, last)
        });
    }
    let mut completed = 0;
    let mut end = start;
    while let Some(r) = tasks.join_next().await {
        let (done, last) = r.expect("task");
        completed += done;
        end = end.max(last.unwrap_or(start));
    }
    assert_eq!(completed, n, "every job completed once");
    // Timed to the last completion: the workers' final idle polls are not throughput.
    n as f64 / end.duration_since(start).as_secs_f64()
}

pub(crate) fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.50), at(0.99))
}

/// The 1, 5 and 15 minute load averages of a `/proc/loadavg` reading.
pub(crate) fn first3(loadavg: &str) -> String {
    loadavg
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Bytes the process has caused to be written to the storage layer (`write_bytes` of
/// `/proc/<pid>/io`, counted when a page of the page cache is dirtied): the WAL frames and
/// checkpoints of the embedded store, none of its sockets' traffic.
pub(crate) fn written_bytes(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds the process has used, from `/proc/<pid>/stat`.
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces, so split after its ')').
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are the 14th and 15th fields: 11 and 12 after the state.
    (ticks(11) + ticks(12)) / 100.0
}
