//! A room's planner statistics, refreshed as the room grows.
//!
//! Why: every statement is prepared once per connection, and after five runs Postgres keeps a
//! generic plan for it, planned from the statistics of that moment, until something
//! invalidates it (an `ANALYZE` of a table it reads does). A new room's tables are nearly
//! empty when its statements first run, so their generic plans were made for a handful of
//! rows: an acknowledgement's check of which copies exist hashed every copy the recipient ever
//! had (`Bitmap Heap Scan … Recheck Cond: (recipient_id = $1)` feeding a `Hash Anti Join`), and
//! a lease's `take_leases` filtered the same scan by message: costs that grow with each
//! recipient's history, seen with `auto_explain` on the relay bench. Autovacuum would analyze
//! the tables within its first minute, but only where it is on, and this project's own test
//! server runs with it off.
//!
//! So the process that inserts messages analyzes the room's growing tables itself each time
//! the newest message id doubles, from [`FIRST`] on: at 1,024, 2,048, 4,096 … messages,
//! twenty times up to a million. Each `ANALYZE` reads a sample (at most 30,000 rows a table),
//! runs on a pooled connection beside the write lane, and takes no lock writes wait on. Two
//! replicas may both analyze at the same size; the second costs a sample, nothing else.

use std::sync::atomic::{AtomicI64, Ordering};

use switchboard_proto::MessageId;

/// The size at which a room's tables are first analyzed: past the few rows a new room's plans
/// are made for, early enough that a lease or an acknowledgement never scans much.
pub(crate) const FIRST: i64 = 1024;

/// When the room's tables are next due for an `ANALYZE`, as a message id.
#[derive(Debug)]
pub(crate) struct Stats {
    next: AtomicI64,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self {
            next: AtomicI64::new(FIRST),
        }
    }

    /// True once for each doubling of the newest message id: the caller analyzes then.
    pub(crate) fn due(&self, newest: MessageId) -> bool {
        let id = newest.0;
        let mut next = self.next.load(Ordering::Relaxed);
        while id >= next {
            let after = id.saturating_mul(2);
            match self
                .next
                .compare_exchange(next, after, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => next = seen,
            }
        }
        false
    }
}

/// The statement that refreshes the statistics of a room's tables that grow with its mail.
pub(crate) fn analyze_sql(schema: &str) -> String {
    format!("ANALYZE {schema}.peers, {schema}.messages, {schema}.deliveries")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_once_each_time_the_newest_id_doubles() {
        let stats = Stats::new();
        let due: Vec<i64> = (1..=10_000)
            .filter(|&id| stats.due(MessageId(id)))
            .collect();
        assert_eq!(due, [1024, 2048, 4096, 8192]);
        // An id past several doublings at once (messages inserted by another process) counts
        // once, and the next is due at twice it.
        let stats = Stats::new();
        assert!(stats.due(MessageId(5000)));
        assert!(!stats.due(MessageId(9999)));
        assert!(stats.due(MessageId(10_000)));
    }
}
