//! Prometheus text at `/metrics`: requests by operation and outcome with their latency, how
//! long messages wait before they are pushed, and the relay's live state (rooms open, remote
//! sessions, event streams). Per-room figures are left
//! out on purpose: the metrics reader is the relay's operator, not any room.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub op: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub calls: Family<OpLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub unauthorized: Counter,
    pub rooms: Gauge<i64, AtomicI64>,
    pub sessions: Gauge<i64, AtomicI64>,
    pub streams: Gauge<i64, AtomicI64>,
    /// From a message's creation to its push (an event stream's message event, an MCP
    /// session's channel notification), in seconds.
    pub push_latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let calls = Family::<OpLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 4.0, 10))
        });
        let unauthorized = Counter::default();
        let rooms = Gauge::default();
        let sessions = Gauge::default();
        let streams = Gauge::default();
        // 1 ms to about 65 s: a live push takes milliseconds, mail that waited for a client to
        // come back takes as long as it was away.
        let push_latency = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        registry.register("calls", "API calls by operation and outcome", calls.clone());
        registry.register(
            "request_seconds",
            "Request latency by route",
            latency.clone(),
        );
        registry.register(
            "unauthorized",
            "Requests refused for a missing or invalid token",
            unauthorized.clone(),
        );
        registry.register("rooms_open", "Rooms with an open store", rooms.clone());
        registry.register(
            "remote_sessions",
            "Sessions held for remote callers",
            sessions.clone(),
        );
        registry.register("event_streams", "Open event streams", streams.clone());
        registry.register(
            "push_latency_seconds",
            "From a message's creation to its push to a client",
            push_latency.clone(),
        );
        Self {
            registry: Arc::new(registry),
            calls,
            latency,
            unauthorized,
            rooms,
            sessions,
            streams,
            push_latency,
        }
    }

    pub fn count(&self, op: &str, outcome: &str) {
        self.calls
            .get_or_create(&OpLabels {
                op: op.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
