//! Growth: whether a send (and a hand-over + acknowledgement) costs the same in a store of a
//! million messages as in an empty one, on both backends, in-process (the relay's HTTP cost
//! is measured apart, see `relay`).
//!
//! Two ways to grow, each from a fresh store, each run `runs` times:
//! - **acked**: chunks of 10,000 sends from 64 senders to 100 recipients, then every
//!   recipient leases, records the hand-over and acknowledges its mail (a live room);
//! - **backlog**: the same sends, never read (a room whose agents are away): every inbox
//!   grows, which the pending cap's check once counted on each send.
//!
//! For each run: the median chunk of the first tenth of the growth against the median chunk
//! of the last tenth (one chunk is too noisy on a shared 2-core machine to stand for a size).
//! Beside each rate, the CPU time this process spent per message sent: on the embedded store
//! every instruction of a send runs here, so a cost that grows with the store shows in it
//! even when other work on the machine moves the wall-clock rate (on Postgres it counts only
//! the client's side).

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::{Clock, Limits, Mailbox, Store, SystemClock};
use switchboard_store_postgres::{Database, PgOptions};
use switchboard_store_sqlite::SqliteStore;
use switchboard_testkit::scratch::Scratch;

use super::{
    CHUNK, RECIPIENTS, SENDERS, concurrent_sends, cpu_seconds, deliver_and_ack, peers, sessions,
};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Acked,
    Backlog,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Acked => "mail acknowledged",
            Mode::Backlog => "backlog left unread",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Postgres,
}

pub struct Plan {
    pub messages: usize,
    pub runs: usize,
    pub backends: Vec<Backend>,
    pub modes: Vec<Mode>,
}

fn limits() -> Limits {
    Limits {
        // Inside every limit, with both checks in the measured path.
        rate_limit: 100_000,
        rate_window: Duration::from_secs(1),
        pending_cap: 10_000_000,
        ..Limits::default()
    }
}

/// One chunk of the growth.
struct Chunk {
    /// How many messages the store held after it.
    at: usize,
    /// Sends per second of wall time.
    sends: f64,
    /// This process's CPU time per message sent, in microseconds.
    send_cpu_us: f64,
    /// Deliveries + acknowledgements per second (acked mode only).
    acks: Option<f64>,
}

pub async fn figures(plan: &Plan) {
    for &backend in &plan.backends {
        for &mode in &plan.modes {
            let mut changes = Vec::new();
            for run in 1..=plan.runs {
                let Some(store) = open(backend).await else {
                    println!("| Postgres growth | skipped: no Postgres server reachable |");
                    return;
                };
                let rows = grow(Arc::clone(&store.store), mode, plan.messages).await;
                let summary = summarise(&rows);
                println!(
                    "| {}, {}, run {run}: sends/s first tenth → last tenth of {} messages | {:.0} → {:.0} ({:+.1}%) |",
                    store.name,
                    mode.name(),
                    plan.messages,
                    summary.first_send,
                    summary.last_send,
                    pct(summary.last_send, summary.first_send)
                );
                println!(
                    "| {}, {}, run {run}: this process's CPU µs per send, first tenth → last tenth | {:.1} → {:.1} ({:+.1}%) |",
                    store.name,
                    mode.name(),
                    summary.first_cpu,
                    summary.last_cpu,
                    pct(summary.last_cpu, summary.first_cpu)
                );
                if let (Some(a), Some(b)) = (summary.first_ack, summary.last_ack) {
                    println!(
                        "| {}, {}, run {run}: deliver+ack/s first tenth → last tenth | {a:.0} → {b:.0} ({:+.1}%) |",
                        store.name,
                        mode.name(),
                        pct(b, a)
                    );
                }
                print_curve(&rows);
                changes.push(summary);
                drop(store);
            }
            let name = match backend {
                Backend::Embedded => "embedded SQLite",
                Backend::Postgres => "Postgres",
            };
            let sends: Vec<f64> = changes
                .iter()
                .map(|s| pct(s.last_send, s.first_send))
                .collect();
            println!(
                "| {name}, {}: change of sends/s over the growth, per run (median) | {} ({:+.1}%) |",
                mode.name(),
                list(&sends),
                median(&sends)
            );
            let acks: Vec<f64> = changes
                .iter()
                .filter_map(|s| Some(pct(s.last_ack?, s.first_ack?)))
                .collect();
            if !acks.is_empty() {
                println!(
                    "| {name}, {}: change of deliver+ack/s over the growth, per run (median) | {} ({:+.1}%) |",
                    mode.name(),
                    list(&acks),
                    median(&acks)
                );
            }
        }
    }
}

struct Opened {
    name: &'static str,
    store: Arc<dyn Store>,
    /// Dropped after the store: the scratch database outlives its connections.
    _scratch: Option<Scratch>,
    _dir: tempfile::TempDir,
}

async fn open(backend: Backend) -> Option<Opened> {
    let dir = tempfile::tempdir().expect("temp dir");
    match backend {
        Backend::Embedded => Some(Opened {
            name: "embedded SQLite",
            store: Arc::new(SqliteStore::open(dir.path()).expect("open store")),
            _scratch: None,
            _dir: dir,
        }),
        Backend::Postgres => {
            let scratch = Scratch::create("growth").await?;
            super::print_vacuum(&scratch).await;
            let db = Database::connect(&PgOptions::new(&scratch.url))
                .await
                .expect("connect");
            let room = db.room("bench", SystemClock.now_ms()).await.expect("room");
            Some(Opened {
                name: "Postgres",
                store: Arc::new(room),
                _scratch: Some(scratch),
                _dir: dir,
            })
        }
    }
}

async fn grow(store: Arc<dyn Store>, mode: Mode, messages: usize) -> Vec<Chunk> {
    let mailbox = Mailbox::new(store, limits());
    let senders = peers(&mailbox, "sender", SENDERS).await;
    let recipients = sessions(&mailbox, "recipient", RECIPIENTS).await;
    let mut rows = Vec::new();
    let mut total = 0;
    let started = Instant::now();
    while total < messages {
        let n = CHUNK.min(messages - total);
        let cpu = cpu_seconds(std::process::id());
        let sends = concurrent_sends(&mailbox, &senders, &recipients, n).await;
        let send_cpu_us = (cpu_seconds(std::process::id()) - cpu) * 1e6 / n as f64;
        let acks = match mode {
            Mode::Acked => Some(deliver_and_ack(&mailbox, &recipients).await),
            Mode::Backlog => None,
        };
        total += n;
        rows.push(Chunk {
            at: total,
            sends,
            send_cpu_us,
            acks,
        });
    }
    eprintln!(
        "grew to {total} messages ({}) in {:.0} s",
        mode.name(),
        started.elapsed().as_secs_f64()
    );
    rows
}

struct Summary {
    first_send: f64,
    last_send: f64,
    first_cpu: f64,
    last_cpu: f64,
    first_ack: Option<f64>,
    last_ack: Option<f64>,
}

fn summarise(rows: &[Chunk]) -> Summary {
    let tenth = (rows.len() / 10).max(1);
    let (first, last) = (&rows[..tenth], &rows[rows.len() - tenth..]);
    let sends = |r: &[Chunk]| median(&r.iter().map(|c| c.sends).collect::<Vec<_>>());
    let cpu = |r: &[Chunk]| median(&r.iter().map(|c| c.send_cpu_us).collect::<Vec<_>>());
    let acks = |r: &[Chunk]| {
        let v: Vec<f64> = r.iter().filter_map(|c| c.acks).collect();
        (!v.is_empty()).then(|| median(&v))
    };
    Summary {
        first_send: sends(first),
        last_send: sends(last),
        first_cpu: cpu(first),
        last_cpu: cpu(last),
        first_ack: acks(first),
        last_ack: acks(last),
    }
}

fn print_curve(rows: &[Chunk]) {
    let step = (rows.len() / 10).max(1);
    let points: Vec<String> = rows
        .iter()
        .step_by(step)
        .chain(rows.last())
        .map(|c| match c.acks {
            Some(a) => format!(
                "{}k {:.0}/{a:.0} ({:.0} µs)",
                c.at / 1000,
                c.sends,
                c.send_cpu_us
            ),
            None => format!("{}k {:.0} ({:.0} µs)", c.at / 1000, c.sends, c.send_cpu_us),
        })
        .collect();
    eprintln!(
        "  curve (messages → sends/s[/deliver+ack/s] (CPU µs per send)): {}",
        points.join(", ")
    );
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn pct(now: f64, base: f64) -> f64 {
    (now / base - 1.0) * 100.0
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|p| format!("{p:+.1}%"))
        .collect::<Vec<_>>()
        .join(" / ")
}
