//! Prometheus text at `/metrics`: requests by operation and outcome with their latency, how
//! long messages wait before they are pushed, and the relay's live state (rooms open, remote
//! sessions, event streams). Per-room figures are left
//! out on purpose: the metrics reader is the relay's operator, not any room.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: String,
    outcome: String,
}

impl OpLabels {
    fn new(op: &str, outcome: &str) -> Self {
        Self {
            op: op.to_owned(),
            outcome: outcome.to_owned(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

impl RouteLabels {
    /// The route of operation `op`: `/v1/<op>`.
    fn of(op: &str) -> Self {
        Self {
            route: format!("/v1/{op}"),
        }
    }
}

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    calls: Family<OpLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    /// Each operation's counter of successful calls and its latency histogram, taken from the
    /// two families once: finding them there on every request (two owned label strings, a
    /// route formatted, two hashes and two locks) is work on the path every message takes.
    routes: Arc<HashMap<&'static str, Route>>,
    pub unauthorized: Counter,
    pub rooms: Gauge<i64, AtomicI64>,
    pub sessions: Gauge<i64, AtomicI64>,
    pub streams: Gauge<i64, AtomicI64>,
    /// From a message's creation to its push (an event stream's message event, an MCP
    /// session's channel notification), in seconds.
    pub push_latency: Histogram,
}

/// One operation's series on the hot path (see [`Metrics::routes`]).
struct Route {
    ok: Counter,
    latency: Histogram,
}

/// The operation label of requests that were no call at all: counted together, so a caller
/// cannot grow the label set with made-up operation names.
pub const INVALID_CALL: &str = "invalid";

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
        let routes = switchboard_core::Call::NAMES
            .iter()
            .copied()
            .chain([INVALID_CALL])
            .map(|op| {
                let route = Route {
                    ok: calls.get_or_create(&OpLabels::new(op, "ok")).clone(),
                    latency: latency.get_or_create(&RouteLabels::of(op)).clone(),
                };
                (op, route)
            })
            .collect();
        Self {
            registry: Arc::new(registry),
            calls,
            latency,
            routes: Arc::new(routes),
            unauthorized,
            rooms,
            sessions,
            streams,
            push_latency,
        }
    }

    /// Counts a call to `op` (an operation's name or [`INVALID_CALL`]) and records its latency.
    pub fn observe(&self, op: &str, outcome: &str, took: Duration) {
        let route = self.routes.get(op);
        match route {
            Some(route) if outcome == "ok" => route.ok.inc(),
            _ => self.calls.get_or_create(&OpLabels::new(op, outcome)).inc(),
        };
        let seconds = took.as_secs_f64();
        match route {
            Some(route) => route.latency.observe(seconds),
            None => self
                .latency
                .get_or_create(&RouteLabels::of(op))
                .observe(seconds),
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{INVALID_CALL, Metrics};

    /// Successful calls go through the series made at start, refusals and calls that were no
    /// call through the families; both end up in the same text under the same labels.
    #[test]
    fn calls_are_counted_by_operation_and_outcome() {
        let metrics = Metrics::new();
        let took = Duration::from_millis(2);
        metrics.observe("send", "ok", took);
        metrics.observe("send", "ok", took);
        metrics.observe("send", "rate_limited", took);
        metrics.observe(INVALID_CALL, "bad_input", took);
        let text = metrics.render();
        assert!(
            text.contains(r#"switchboard_calls_total{op="send",outcome="ok"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"switchboard_calls_total{op="send",outcome="rate_limited"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"switchboard_calls_total{op="invalid",outcome="bad_input"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"switchboard_request_seconds_count{route="/v1/send"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"switchboard_request_seconds_count{route="/v1/invalid"} 1"#),
            "{text}"
        );
    }
}
