//! The configurable bounds of SPEC 5: caps, rates, TTLs, leases and retention.

use std::time::Duration;

/// Delivery policy. Defaults are sane for one developer; every field is configurable.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Most unread (queued) messages one recipient may have waiting.
    pub pending_cap: u32,
    /// Most messages one sender may send per `rate_window`.
    pub rate_limit: u32,
    #[serde(with = "crate::wire::dur")]
    pub rate_window: Duration,
    /// How long a message waits for its recipient when the sender names no TTL.
    #[serde(with = "crate::wire::dur")]
    pub default_ttl: Duration,
    /// How long records are kept after they are created; also the longest TTL and the window in
    /// which idempotency keys are remembered.
    #[serde(with = "crate::wire::dur")]
    pub retention: Duration,
    /// How long a session may hold a leased item before another session may take it.
    #[serde(with = "crate::wire::dur")]
    pub lease: Duration,
    /// Leases without a hand-over after which an item is declared dead.
    pub max_attempts: u32,
    /// How long a worker's claim on a job lasts without a heartbeat.
    #[serde(with = "crate::wire::dur")]
    pub job_lease: Duration,
    /// Claims after which a job that keeps losing its worker is declared dead.
    pub job_max_attempts: u32,
    /// How long a job waits for a worker when the dispatcher names no TTL.
    #[serde(with = "crate::wire::dur")]
    pub job_ttl: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            pending_cap: 1000,
            rate_limit: 600,
            rate_window: Duration::from_secs(60),
            default_ttl: Duration::from_secs(7 * 24 * 3600),
            retention: Duration::from_secs(30 * 24 * 3600),
            lease: Duration::from_secs(30),
            max_attempts: 5,
            job_lease: Duration::from_secs(120),
            job_max_attempts: 5,
            job_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// A duration as whole milliseconds for storage arithmetic, saturating.
pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
