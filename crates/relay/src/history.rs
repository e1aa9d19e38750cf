//! The last hour of each open room's figures, for the dashboard's charts: every
//! [`SAMPLE_EVERY`] the relay reads each open room's `stats` and keeps one [`Sample`] per room
//! (and one summed over the relay) in a ring of [`KEPT`], in memory only — a restarted relay
//! starts its charts afresh, as `/metrics` does its counters. Push latency (how long a message
//! waited between being stored and being pushed to a client) is recorded as it happens by
//! [`Pushes`] and summed up into the next sample.
//!
//! What it costs: one `stats` read per open room per sample. `stats` counts the room's
//! messages, its deliveries by state and its jobs by state (and first ends the sessions of
//! dead processes, as `status` does); on a big store those counts scan the tables or their
//! indexes, so a room with millions of rows pays that scan every 10 s. The samples themselves
//! are small: 360 per room, a few dozen bytes each.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_core::{Clock, Exchange, JobCounts, StoreStats, SystemClock};
use switchboard_proto::Millis;

use crate::app::App;
use crate::metrics::Metrics;

/// How often the rooms are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// How many samples are kept: one hour of them.
pub const KEPT: usize = 360;

/// The most push latencies kept between two samples per room; beyond it the rest of that
/// interval's pushes go uncounted in the room's quantiles (the histogram on `/metrics` still
/// sees every one), so a flood cannot grow the relay's memory.
const LATENCIES_KEPT: usize = 4096;

/// A fixed number of the newest values: pushing onto a full ring drops the oldest.
#[derive(Debug, Clone)]
pub struct Ring<T> {
    items: VecDeque<T>,
    capacity: usize,
}

impl<T> Ring<T> {
    pub fn new(capacity: usize) -> Self {
        Self {
            items: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    pub fn push(&mut self, item: T) {
        if self.capacity == 0 {
            return;
        }
        if self.items.len() == self.capacity {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    /// Oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// How long pushed messages had waited, over one sample's interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub median_ms: Millis,
    pub p95_ms: Millis,
}

/// One room's (or the relay's) figures at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub at: Millis,
    /// Messages stored per second since the previous sample.
    pub messages_per_sec: f64,
    /// Copies waiting to be delivered.
    pub queued: u64,
    pub jobs: JobCounts,
    /// `None` when nothing was pushed during the interval.
    pub latency: Option<Latency>,
}

/// Messages per second between two readings of a room's message count. Retention deletes
/// messages, so the count can fall: that reads as no new messages, never a negative rate. The
/// first reading of a room has nothing to compare with and reads as zero.
pub fn rate(previous: Option<(Millis, u64)>, at: Millis, total: u64) -> f64 {
    let Some((then, before)) = previous else {
        return 0.0;
    };
    let elapsed_ms = at - then;
    if elapsed_ms <= 0 {
        return 0.0;
    }
    total.saturating_sub(before) as f64 * 1000.0 / elapsed_ms as f64
}

/// The `q` quantile (0 to 1) of `sorted` by nearest rank; `None` when it is empty.
pub fn quantile(sorted: &[Millis], q: f64) -> Option<Millis> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank: the smallest value with at least q of the values at or below it.
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.saturating_sub(1).min(sorted.len() - 1)])
}

/// The median and p95 of an interval's latencies, `None` when there were none.
fn summarize(mut latencies: Vec<Millis>) -> Option<Latency> {
    latencies.sort_unstable();
    Some(Latency {
        median_ms: quantile(&latencies, 0.5)?,
        p95_ms: quantile(&latencies, 0.95)?,
    })
}

/// One room's track: its samples, the reading the next rate is measured from, and the
/// latencies pushed since the last sample.
struct Track {
    samples: Ring<Sample>,
    last: Option<(Millis, u64)>,
    latencies: Vec<Millis>,
}

impl Default for Track {
    fn default() -> Self {
        Self {
            samples: Ring::new(KEPT),
            last: None,
            latencies: Vec::new(),
        }
    }
}

struct Inner {
    rooms: HashMap<String, Track>,
    relay: Ring<Sample>,
}

/// The last hour of every open room, and of the relay. Cloned handles share it.
#[derive(Clone)]
pub struct History(Arc<Mutex<Inner>>);

impl Default for History {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Inner {
            rooms: HashMap::new(),
            relay: Ring::new(KEPT),
        })))
    }
}

impl History {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that a message of `room` waited `waited_ms` before it was pushed.
    pub fn pushed(&self, room: &str, waited_ms: Millis) {
        let mut inner = self.lock();
        let track = inner.rooms.entry(room.to_owned()).or_default();
        if track.latencies.len() < LATENCIES_KEPT {
            track.latencies.push(waited_ms.max(0));
        }
    }

    /// Takes one sample at `at` from each room's `stats`, and their sum for the relay. A room
    /// whose stats could not be read is left out of this sample (its chart shows the gap).
    pub fn record(&self, at: Millis, rooms: Vec<(String, StoreStats)>) {
        let mut inner = self.lock();
        let mut relay = Sample {
            at,
            messages_per_sec: 0.0,
            queued: 0,
            jobs: JobCounts::default(),
            latency: None,
        };
        let mut all_latencies = Vec::new();
        for (room, stats) in rooms {
            let track = inner.rooms.entry(room).or_default();
            let latencies = std::mem::take(&mut track.latencies);
            all_latencies.extend_from_slice(&latencies);
            let sample = Sample {
                at,
                messages_per_sec: rate(track.last, at, stats.messages),
                queued: stats.queued,
                jobs: stats.jobs,
                latency: summarize(latencies),
            };
            track.last = Some((at, stats.messages));
            relay.messages_per_sec += sample.messages_per_sec;
            relay.queued += sample.queued;
            relay.jobs.add(&sample.jobs);
            track.samples.push(sample);
        }
        // The relay's quantiles are over every push, not an average of the rooms' medians.
        relay.latency = summarize(all_latencies);
        inner.relay.push(relay);
    }

    /// Samples every open room now (what the sampler does every [`SAMPLE_EVERY`]; tests call
    /// it to take a sample without waiting).
    pub async fn sample_now(&self, app: &App) {
        let mut read = Vec::new();
        for (room, mailbox) in app.rooms.named() {
            match mailbox.stats().await {
                Ok(stats) => read.push((room, stats)),
                Err(e) => tracing::warn!("cannot sample room {room}: {e}"),
            }
        }
        self.record(SystemClock.now_ms(), read);
    }

    /// The room's samples, oldest first (none for a room not sampled yet).
    pub fn room(&self, room: &str) -> Vec<Sample> {
        self.lock()
            .rooms
            .get(room)
            .map(|t| t.samples.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The relay's samples (sums over its rooms), oldest first.
    pub fn relay(&self) -> Vec<Sample> {
        self.lock().relay.iter().cloned().collect()
    }
}

/// Where one room's pushes are recorded: the relay's push latency histogram and the room's
/// history. Held by the guards of that room ([`crate::guard::Guard::pushed`]).
#[derive(Clone)]
pub struct Pushes {
    room: String,
    history: History,
    metrics: Metrics,
}

impl Pushes {
    pub fn new(room: &str, history: History, metrics: Metrics) -> Self {
        Self {
            room: room.to_owned(),
            history,
            metrics,
        }
    }

    /// A message created at `created_at` was pushed to a client just now.
    pub fn record(&self, created_at: Millis) {
        let waited_ms = (SystemClock.now_ms() - created_at).max(0);
        self.metrics
            .push_latency
            .observe(Duration::from_millis(waited_ms.unsigned_abs()).as_secs_f64());
        self.history.pushed(&self.room, waited_ms);
    }
}

/// Samples every open room every [`SAMPLE_EVERY`] until the relay shuts down.
pub async fn sample(app: App) {
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    // A slow round (a big store) delays the next instead of bunching them up.
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = app.shutdown.cancelled() => return,
            _ = every.tick() => app.history.sample_now(&app).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use switchboard_core::{Clock, JobCounts, ManualClock, StoreStats};

    use super::{History, KEPT, Latency, Ring, quantile, rate};

    #[test]
    fn a_full_ring_drops_its_oldest() {
        let mut ring = Ring::new(3);
        assert!(ring.is_empty());
        for n in 1..=5 {
            ring.push(n);
        }
        assert_eq!(ring.len(), 3);
        assert_eq!(ring.iter().copied().collect::<Vec<_>>(), vec![3, 4, 5]);
        let mut none = Ring::new(0);
        none.push(1);
        assert!(none.is_empty());
    }

    #[test]
    fn rates_are_per_second_and_never_negative() {
        assert_eq!(rate(None, 10_000, 50), 0.0);
        assert_eq!(rate(Some((0, 10)), 10_000, 60), 5.0);
        assert_eq!(rate(Some((0, 10)), 4_000, 12), 0.5);
        // Retention deleted more than arrived.
        assert_eq!(rate(Some((0, 100)), 10_000, 40), 0.0);
        // A clock that did not move (or went back) says nothing.
        assert_eq!(rate(Some((10_000, 1)), 10_000, 9), 0.0);
        assert_eq!(rate(Some((10_000, 1)), 5_000, 9), 0.0);
    }

    #[test]
    fn quantiles_are_by_nearest_rank() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[7], 0.5), Some(7));
        assert_eq!(quantile(&[7], 0.95), Some(7));
        let hundred: Vec<i64> = (1..=100).collect();
        assert_eq!(quantile(&hundred, 0.5), Some(50));
        assert_eq!(quantile(&hundred, 0.95), Some(95));
        assert_eq!(quantile(&hundred, 1.0), Some(100));
        assert_eq!(quantile(&hundred, 0.0), Some(1));
        assert_eq!(quantile(&[1, 2, 3, 4], 0.5), Some(2));
    }

    fn stats(messages: u64, queued: u64, running: u64) -> StoreStats {
        StoreStats {
            messages,
            queued,
            jobs: JobCounts {
                running,
                ..JobCounts::default()
            },
            ..StoreStats::default()
        }
    }

    #[test]
    fn samples_keep_an_hour_per_room_and_sum_the_relay() {
        let clock = ManualClock::new(1_000_000);
        let history = History::default();
        history.record(
            clock.now_ms(),
            vec![("a".into(), stats(10, 1, 0)), ("b".into(), stats(0, 0, 1))],
        );
        clock.advance_ms(10_000);
        for waited in [5, 1, 3, 100] {
            history.pushed("a", waited);
        }
        history.pushed("b", 50);
        history.record(
            clock.now_ms(),
            vec![("a".into(), stats(30, 4, 2)), ("b".into(), stats(5, 0, 1))],
        );
        let a = history.room("a");
        assert_eq!(a.len(), 2);
        assert_eq!(
            a[0].messages_per_sec, 0.0,
            "no rate before a second reading"
        );
        assert_eq!(a[1].messages_per_sec, 2.0);
        assert_eq!(a[1].queued, 4);
        assert_eq!(a[1].jobs.running, 2);
        assert_eq!(
            a[1].latency,
            Some(Latency {
                median_ms: 3,
                p95_ms: 100
            })
        );
        assert_eq!(a[0].latency, None);
        let relay = history.relay();
        assert_eq!(relay.len(), 2);
        assert_eq!(relay[1].messages_per_sec, 2.5);
        assert_eq!(relay[1].queued, 4);
        assert_eq!(relay[1].jobs.running, 3);
        // Over all five pushes, not the rooms' medians averaged.
        assert_eq!(
            relay[1].latency,
            Some(Latency {
                median_ms: 5,
                p95_ms: 100
            })
        );
        assert!(history.room("nowhere").is_empty());

        // An hour and more later, only the newest hour is kept.
        for _ in 0..KEPT {
            clock.advance_ms(10_000);
            history.record(clock.now_ms(), vec![("a".into(), stats(30, 0, 0))]);
        }
        let a = history.room("a");
        assert_eq!(a.len(), KEPT);
        assert_eq!(a.last().map(|s| s.at), Some(clock.now_ms()));
        assert!(a.iter().all(|s| s.queued == 0 && s.latency.is_none()));
        assert_eq!(history.relay().len(), KEPT);
        // A room left out of the later samples keeps what it had.
        assert_eq!(history.room("b").len(), 2);
    }
}
