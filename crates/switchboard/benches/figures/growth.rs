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
//! And side by side: during the last tenth a second store, fresh, grows through the first
//! tenth again, one chunk right after each chunk of the large store, and the median of those
//! paired changes is reported too. The first-against-last figure compares minutes that lie
//! far apart, so a busier or quieter machine moves it by ±40 % on its own; each pair falls in
//! the same few seconds.
//! Beside each rate, the CPU time this process spent per message sent: on the embedded store
//! every instruction of a send runs here, so a cost that grows with the store shows in it
//! even when other work on the machine moves the wall-clock rate (on Postgres it counts only
//! the client's side).

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::{Clock, Limits, Mailbox, PeerRecord, Session, Store, SystemClock};
use switchboard_store_postgres::{Database, PgOptions};
use switchboard_store_sqlite::SqliteStore;
use switchboard_testkit::scratch::Scratch;

use super::{
    CHUNK, RECIPIENTS, SENDERS, concurrent_sends, cpu_seconds, deliver_and_ack, peers, sessions,
    written_bytes,
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
    /// Bytes this process had written to disk per message, over the whole chunk (its sends,
    /// and in acked mode the hand-overs and acknowledgements): the WAL's frames and the
    /// checkpoints', so what each commit writes as the store grows (embedded store only; a
    /// checkpoint of the other store may still be running into a chunk).
    written: f64,
}

pub async fn figures(plan: &Plan) {
    for &backend in &plan.backends {
        for &mode in &plan.modes {
            let mut changes = Vec::new();
            let mut paired = Vec::new();
            for run in 1..=plan.runs {
                let (Some(store), Some(reference)) = (open(backend).await, open(backend).await)
                else {
                    println!("| Postgres growth | skipped: no Postgres server reachable |");
                    return;
                };
                let Grown { rows, beside } = grow(
                    Arc::clone(&store.store),
                    Arc::clone(&reference.store),
                    mode,
                    plan.messages,
                )
                .await;
                let summary = summarise(&rows);
                let pair = side_by_side(&rows, &beside);
                println!(
                    "| {}, {}, run {run}: the first tenth again beside the last, sends/s of a store of {}k–{}k → of {}k–{}k (median of the paired changes) | {:.0} → {:.0} ({:+.1}%) |",
                    store.name,
                    mode.name(),
                    beside.first().map_or(0, |c| c.at / 1000),
                    beside.last().map_or(0, |c| c.at / 1000),
                    rows[rows.len() - beside.len()].at / 1000,
                    plan.messages / 1000,
                    pair.small,
                    pair.large,
                    pair.change
                );
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
                if backend == Backend::Embedded {
                    println!(
                        "| {}, {}, run {run}: bytes written to disk per message, first tenth → last tenth | {:.0} → {:.0} ({:+.1}%) |",
                        store.name,
                        mode.name(),
                        summary.first_written,
                        summary.last_written,
                        pct(summary.last_written, summary.first_written)
                    );
                }
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
                paired.push(pair.change);
                drop((store, reference));
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
            println!(
                "| {name}, {}: the last tenth against the first run beside it, sends/s per run (median) | {} ({:+.1}%) |",
                mode.name(),
                list(&paired),
                median(&paired)
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

/// A store being grown: its mailbox, the 64 senders and the 100 recipient sessions, and how
/// many messages it holds.
struct Room {
    mailbox: Mailbox,
    senders: Vec<PeerRecord>,
    recipients: Vec<Session>,
    held: usize,
}

impl Room {
    async fn new(store: Arc<dyn Store>) -> Room {
        let mailbox = Mailbox::new(store, limits());
        let senders = peers(&mailbox, "sender", SENDERS).await;
        let recipients = sessions(&mailbox, "recipient", RECIPIENTS).await;
        Room {
            mailbox,
            senders,
            recipients,
            held: 0,
        }
    }

    /// Sends `n` messages (and in acked mode has them delivered and acknowledged).
    async fn chunk(&mut self, mode: Mode, n: usize) -> Chunk {
        let (cpu, written) = (
            cpu_seconds(std::process::id()),
            written_bytes(std::process::id()),
        );
        let sends = concurrent_sends(&self.mailbox, &self.senders, &self.recipients, n).await;
        let send_cpu_us = (cpu_seconds(std::process::id()) - cpu) * 1e6 / n as f64;
        let acks = match mode {
            Mode::Acked => Some(deliver_and_ack(&self.mailbox, &self.recipients).await),
            Mode::Backlog => None,
        };
        self.held += n;
        Chunk {
            at: self.held,
            sends,
            send_cpu_us,
            acks,
            written: written_bytes(std::process::id()).saturating_sub(written) as f64 / n as f64,
        }
    }
}

/// What one run measured: the growing store's chunks and the reference store's first tenth,
/// each of its chunks run right after one of the growing store's last tenth.
struct Grown {
    rows: Vec<Chunk>,
    beside: Vec<Chunk>,
}

/// Grows `store` to `messages`. `reference` is a second, empty store of the same backend:
/// during the last tenth it runs one chunk after each chunk of `store`, so it grows through
/// the sizes of the first tenth while `store` grows through the last, and whatever else the
/// machine does in those minutes falls on both.
async fn grow(
    store: Arc<dyn Store>,
    reference: Arc<dyn Store>,
    mode: Mode,
    messages: usize,
) -> Grown {
    let mut room = Room::new(store).await;
    let mut small = Room::new(reference).await;
    let chunks = messages.div_ceil(CHUNK);
    let tenth = tenth(chunks);
    let mut grown = Grown {
        rows: Vec::new(),
        beside: Vec::new(),
    };
    let started = Instant::now();
    while room.held < messages {
        let n = CHUNK.min(messages - room.held);
        grown.rows.push(room.chunk(mode, n).await);
        if grown.rows.len() > chunks - tenth {
            grown.beside.push(small.chunk(mode, n).await);
        }
    }
    eprintln!(
        "grew to {} messages ({}) in {:.0} s",
        room.held,
        mode.name(),
        started.elapsed().as_secs_f64()
    );
    grown
}

struct Summary {
    first_send: f64,
    last_send: f64,
    first_cpu: f64,
    last_cpu: f64,
    first_written: f64,
    last_written: f64,
    first_ack: Option<f64>,
    last_ack: Option<f64>,
}

/// The median over `chunks` of one of their figures.
fn median_of(chunks: &[Chunk], figure: impl Fn(&Chunk) -> f64) -> f64 {
    median(&chunks.iter().map(figure).collect::<Vec<_>>())
}

/// The median send rate of `chunks`.
fn median_sends(chunks: &[Chunk]) -> f64 {
    median_of(chunks, |c| c.sends)
}

/// How many chunks make a tenth of a growth of `chunks` chunks (at least one).
fn tenth(chunks: usize) -> usize {
    (chunks / 10).max(1)
}

fn summarise(rows: &[Chunk]) -> Summary {
    let tenth = tenth(rows.len());
    let (first, last) = (&rows[..tenth], &rows[rows.len() - tenth..]);
    let cpu = |r: &[Chunk]| median_of(r, |c| c.send_cpu_us);
    let written = |r: &[Chunk]| median_of(r, |c| c.written);
    let acks = |r: &[Chunk]| {
        let v: Vec<f64> = r.iter().filter_map(|c| c.acks).collect();
        (!v.is_empty()).then(|| median(&v))
    };
    Summary {
        first_send: median_sends(first),
        last_send: median_sends(last),
        first_cpu: cpu(first),
        last_cpu: cpu(last),
        first_written: written(first),
        last_written: written(last),
        first_ack: acks(first),
        last_ack: acks(last),
    }
}

/// The last tenth's chunks against the reference store's chunks run right after each.
struct Pair {
    /// Median sends/s of the reference (small) store's chunks.
    small: f64,
    /// Median sends/s of the growing store's last-tenth chunks.
    large: f64,
    /// Median of the per-pair changes, large against small, in percent.
    change: f64,
}

fn side_by_side(rows: &[Chunk], beside: &[Chunk]) -> Pair {
    let last = &rows[rows.len() - beside.len()..];
    let changes: Vec<f64> = last
        .iter()
        .zip(beside)
        .map(|(large, small)| pct(large.sends, small.sends))
        .collect();
    Pair {
        small: median_sends(beside),
        large: median_sends(last),
        change: median(&changes),
    }
}

fn print_curve(rows: &[Chunk]) {
    let step = tenth(rows.len());
    let points: Vec<String> = rows
        .iter()
        .step_by(step)
        .chain(rows.last())
        .map(|c| {
            let acks = c.acks.map(|a| format!("/{a:.0}")).unwrap_or_default();
            format!(
                "{}k {:.0}{acks} ({:.0} µs, {:.1} kB)",
                c.at / 1000,
                c.sends,
                c.send_cpu_us,
                c.written / 1000.0
            )
        })
        .collect();
    eprintln!(
        "  curve (messages → sends/s[/deliver+ack/s] (CPU µs per send, disk written per message)): {}",
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
