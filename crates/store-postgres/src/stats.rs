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
//! So the process that inserts messages analyzes the room's mail tables itself each time the
//! newest message id doubles, from [`FIRST`] on: at 1,024, 2,048, 4,096 … messages, twenty
//! times up to a million; and its `jobs` table each time the newest job id doubles (a job's
//! claim reads it by agent and state, and its plan would freeze the same way). Each `ANALYZE`
//! reads a sample (at most 30,000 rows a table), runs on a pooled connection beside the write
//! lane, and takes no lock writes wait on. Two replicas may both analyze at the same size; the
//! second costs a sample, nothing else.

use std::sync::atomic::{AtomicI64, Ordering};

use switchboard_proto::{JobId, MessageId};

/// The size at which a room's tables are first analyzed: past the few rows a new room's plans
/// are made for, early enough that a lease or an acknowledgement never scans much.
pub(crate) const FIRST: i64 = 1024;

/// The newest rows a transaction (or a job of the write lane) inserted, of each kind whose
/// tables grow: how far the room has grown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Grown {
    pub(crate) message: Option<MessageId>,
    pub(crate) job: Option<JobId>,
}

impl Grown {
    /// The newest of both.
    pub(crate) fn merge(&mut self, other: Grown) {
        self.message = self.message.max(other.message);
        self.job = self.job.max(other.job);
    }
}

/// When a room's tables are next due for an `ANALYZE`: its mail tables by message id, its
/// jobs by job id.
#[derive(Debug)]
pub(crate) struct Stats {
    mail: Doubling,
    jobs: Doubling,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self {
            mail: Doubling::new(),
            jobs: Doubling::new(),
        }
    }

    /// The statement that refreshes what `grown` made due, if anything is (see [`Doubling`]).
    pub(crate) fn due(&self, schema: &str, grown: Grown) -> Option<String> {
        let mut tables = Vec::new();
        if grown.message.is_some_and(|id| self.mail.due(id.0)) {
            tables.extend(["peers", "messages", "deliveries"]);
        }
        if grown.job.is_some_and(|id| self.jobs.due(id.0)) {
            tables.push("jobs");
        }
        if tables.is_empty() {
            return None;
        }
        let tables: Vec<String> = tables.iter().map(|t| format!("{schema}.{t}")).collect();
        Some(format!("ANALYZE {}", tables.join(", ")))
    }
}

/// Due once each time an id doubles, from [`FIRST`].
#[derive(Debug)]
struct Doubling {
    next: AtomicI64,
}

impl Doubling {
    fn new() -> Self {
        Self {
            next: AtomicI64::new(FIRST),
        }
    }

    /// True once for each doubling of the newest id: the caller analyzes then.
    fn due(&self, id: i64) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_once_each_time_the_newest_id_doubles() {
        let doubling = Doubling::new();
        let due: Vec<i64> = (1..=10_000).filter(|&id| doubling.due(id)).collect();
        assert_eq!(due, [1024, 2048, 4096, 8192]);
        // An id past several doublings at once (rows inserted by another process) counts
        // once, and the next is due at twice it.
        let doubling = Doubling::new();
        assert!(doubling.due(5000));
        assert!(!doubling.due(9999));
        assert!(doubling.due(10_000));
    }

    #[test]
    fn mail_and_jobs_are_analyzed_each_at_their_own_doublings() {
        let stats = Stats::new();
        let grown = |m: i64, j: i64| Grown {
            message: Some(MessageId(m)),
            job: Some(JobId(j)),
        };
        assert_eq!(stats.due("s", grown(10, 10)), None);
        assert_eq!(
            stats.due("s", grown(1024, 10)).as_deref(),
            Some("ANALYZE s.peers, s.messages, s.deliveries")
        );
        assert_eq!(
            stats.due("s", grown(1500, 1024)).as_deref(),
            Some("ANALYZE s.jobs")
        );
        assert_eq!(stats.due("s", Grown::default()), None);
    }
}
