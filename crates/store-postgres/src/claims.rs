//! The parties of the sends the write lane runs side by side in one transaction.
//!
//! A send's admission reads what other sends' writes change: the sender's newest sends (its
//! rate) and each recipient's queued copies (the pending cap), on the rows it locks. Run one
//! after another, each send reads what the sends before it wrote. Run side by side in the
//! same transaction, the lock holds nothing back (the rows are the transaction's own), and the
//! server runs statements in the order they went out: a send's read could go out before
//! another's insert to the same recipient, and miss it.
//!
//! So each send first claims the parties it names (its sender, its recipients by id or by
//! name), waiting while another send holds one, and then claims the parties its admission
//! locked; its read counts only if no other send held one of them since the read went out:
//!
//! - a party another send holds: it lets go of every party it holds, waits until it can
//!   claim them all at once, and reads again;
//! - a party released after its read went out (another send wrote it meanwhile): it claims and
//!   reads again;
//! - else what it read stands.
//!
//! A read that goes out while its sender holds every party it names stands, since no other
//! send can write them meanwhile. A send holds its claims until it is done and never waits
//! while it holds any, so no two wait on each other: two sends crossing (ann→ben beside
//! ben→ann), each holding its sender and waiting for the other's, stalled the lane before
//! (`peers_writing_to_each_other_at_once_all_land`).
//!
//! A lease, a hand-over or a read of a peer's copies claims [`Key::Mail`] of that peer before
//! its first statement and holds it to its end, waiting for nothing else meanwhile. A lease
//! reads the queued copies and then takes them; across transactions the row locks it takes
//! keep another lease, hand-over or read of those copies out until it commits, but in one
//! transaction they hold nothing back, and a hand-over or a read between the lease's read and
//! its take would leave a copy no longer queued leased again. Sends never claim it: what a
//! send writes that such a write reads (a new copy; the queued count, raised in place) is
//! right in either order.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

use switchboard_core::PeerId;

/// A party as a send names it before its admission has read it, or as the admission found it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Id(PeerId),
    /// A peer by name: two sends to one name wait for each other before they read.
    Name(String),
    /// A peer's copies, held by a lease, hand-over or read for its whole run.
    Mail(PeerId),
}

/// Which send (by its number in the batch) holds each party, and when each was last released.
#[derive(Default)]
pub(crate) struct Claims {
    state: Mutex<State>,
    released: Notify,
}

#[derive(Default)]
struct State {
    held: HashMap<Key, usize>,
    /// The clock at each party's last release.
    released_at: HashMap<Key, u64>,
    /// Counts releases.
    clock: u64,
}

impl Claims {
    /// The time now, to compare with releases: taken just before a read goes out.
    pub(crate) fn clock(&self) -> u64 {
        self.state.lock().map_or(u64::MAX, |s| s.clock)
    }

    /// Claims every one of `parties` for `job`, or none when another job holds one of them.
    pub(crate) fn claim(&self, job: usize, parties: &[Key]) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        if parties
            .iter()
            .any(|p| state.held.get(p).is_some_and(|&by| by != job))
        {
            return false;
        }
        for p in parties {
            state.held.insert(p.clone(), job);
        }
        true
    }

    /// True when another job released one of `parties` after `read_at` (see
    /// [`Claims::clock`]): what was read of them then may be out of date.
    pub(crate) fn written_since(&self, parties: &[Key], read_at: u64) -> bool {
        let Ok(state) = self.state.lock() else {
            return true;
        };
        parties
            .iter()
            .any(|p| state.released_at.get(p).is_some_and(|&at| at > read_at))
    }

    /// Ends `job`'s claims and wakes the jobs waiting for a party.
    pub(crate) fn release(&self, job: usize) {
        if let Ok(mut state) = self.state.lock() {
            state.clock += 1;
            let now = state.clock;
            let mine: Vec<Key> = state
                .held
                .iter()
                .filter(|&(_, &by)| by == job)
                .map(|(p, _)| p.clone())
                .collect();
            for p in mine {
                state.held.remove(&p);
                state.released_at.insert(p, now);
            }
        }
        self.released.notify_waiters();
    }

    /// Claims every one of `parties` for `job`, waiting until no other job holds any. The
    /// caller must hold nothing another job could be waiting for (see the module's rule).
    pub(crate) async fn take(&self, job: usize, parties: &[Key]) {
        loop {
            // Made before the claim is tried, it misses no release after it.
            let released = self.released();
            if self.claim(job, parties) {
                return;
            }
            released.await;
        }
    }

    /// Resolves at the next [`Claims::release`] after this call.
    fn released(&self) -> Notified<'_> {
        self.released.notified()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: i64) -> Key {
        Key::Id(PeerId(n))
    }

    #[test]
    fn a_party_is_held_by_one_job_until_it_is_released() {
        let claims = Claims::default();
        let (ann, ben, cy) = (id(1), id(2), Key::Name("cy".into()));
        assert!(claims.claim(0, &[ann.clone(), ben.clone()]));
        // All or nothing: cy is not taken by a claim that failed on ben.
        assert!(!claims.claim(1, &[ben.clone(), cy.clone()]));
        assert!(claims.claim(2, std::slice::from_ref(&cy)));
        // A job may claim again what it holds.
        assert!(claims.claim(0, std::slice::from_ref(&ann)));
        claims.release(0);
        assert!(claims.claim(1, &[ann, ben]));
        assert!(!claims.claim(3, &[cy]));
    }

    #[test]
    fn a_read_sent_before_a_release_of_its_party_is_out_of_date() {
        let claims = Claims::default();
        let (ann, ben) = (id(1), id(2));
        assert!(claims.claim(0, std::slice::from_ref(&ann)));
        // Job 1 reads ann while job 0 holds it, and ben, which nobody held.
        let read_at = claims.clock();
        claims.release(0);
        // By its claim, nobody holds ann any more, but job 0 wrote it after the read went out.
        let both = [ann, ben.clone()];
        assert!(claims.claim(1, &both));
        assert!(claims.written_since(&both, read_at));
        assert!(!claims.written_since(&[ben], read_at));
        // Read again while holding both: that read stands.
        let again = claims.clock();
        assert!(!claims.written_since(&both, again));
    }
}
