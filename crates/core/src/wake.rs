//! Wake-ups: what a committed change tells processes waiting on the store.
//!
//! A wake is a hint, never data: a waiter re-reads the store after it. The text encoding is what
//! cross-process doorbells carry, so it is small and its decoder accepts nothing malformed.

use crate::store::PeerId;

/// Most wakes a doorbell datagram carries before it collapses to [`Wake::Room`].
pub const MAX_WAKES_PER_RING: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wake {
    /// Something arrived in this peer's inbox.
    Inbox(PeerId),
    /// Something changed that may concern anyone in the room (peers, broadcasts, or too many
    /// inboxes to list).
    Room,
    /// A job was queued or changed state: workers and job waiters look again.
    Jobs,
    /// A copy of a message changed state (handed over, read, buried): only those who show
    /// copy states (the dashboard) look again. No waiter of the mailbox waits for this.
    Copies,
}

impl Wake {
    /// True if a waiter on `peer`'s inbox should look again.
    pub fn concerns(self, peer: PeerId) -> bool {
        match self {
            Self::Inbox(p) => p == peer,
            Self::Room => true,
            Self::Jobs | Self::Copies => false,
        }
    }

    /// True if a mailbox waiter should look again: one on `peer`'s inbox when `Some`, any other
    /// waiter (a claim, a job's end, the log) when `None`. A copy's change of state moves none
    /// of them, so a busy room's hand-overs and reads never make them re-read.
    pub fn stirs(self, peer: Option<PeerId>) -> bool {
        match (self, peer) {
            (Self::Copies, _) => false,
            (wake, Some(p)) => wake.concerns(p),
            (_, None) => true,
        }
    }

    /// Encodes a set of wakes as one doorbell payload: `r`, `j`, `c` or `i<id>` tokens joined
    /// by `,`.
    pub fn encode(wakes: &[Wake]) -> String {
        if wakes.len() > MAX_WAKES_PER_RING || wakes.contains(&Wake::Room) {
            return "r".to_owned();
        }
        let parts: Vec<String> = wakes
            .iter()
            .map(|w| match w {
                Wake::Inbox(p) => format!("i{p}"),
                Wake::Room => "r".to_owned(),
                Wake::Jobs => "j".to_owned(),
                Wake::Copies => "c".to_owned(),
            })
            .collect();
        parts.join(",")
    }

    /// Decodes a doorbell payload. Anything malformed decodes to `[Room]`: a spurious wake
    /// costs one re-read, a lost one would strand a waiter.
    pub fn decode(payload: &[u8]) -> Vec<Wake> {
        let Ok(text) = std::str::from_utf8(payload) else {
            return vec![Wake::Room];
        };
        let mut out = Vec::new();
        for token in text.split(',') {
            match token {
                "j" => out.push(Wake::Jobs),
                "c" => out.push(Wake::Copies),
                _ => match token.strip_prefix('i').map(str::parse::<PeerId>) {
                    Some(Ok(id)) => out.push(Wake::Inbox(id)),
                    _ => return vec![Wake::Room],
                },
            }
            if out.len() > MAX_WAKES_PER_RING {
                return vec![Wake::Room];
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn room_wins_over_inboxes() {
        assert_eq!(Wake::encode(&[Wake::Inbox(PeerId(1)), Wake::Room]), "r");
        assert_eq!(Wake::decode(b"r"), vec![Wake::Room]);
        assert_eq!(Wake::decode(b"i1,x"), vec![Wake::Room]);
        assert_eq!(Wake::decode(b""), vec![Wake::Room]);
    }

    #[test]
    fn job_wakes_travel_beside_inbox_wakes() {
        let wakes = [Wake::Jobs, Wake::Inbox(PeerId(3))];
        assert_eq!(Wake::decode(Wake::encode(&wakes).as_bytes()), wakes);
        assert!(!Wake::Jobs.concerns(PeerId(3)), "a job change is not mail");
    }

    #[test]
    fn a_copys_change_of_state_travels_but_stirs_no_waiter() {
        let wakes = [Wake::Copies, Wake::Inbox(PeerId(3)), Wake::Jobs];
        assert_eq!(Wake::decode(Wake::encode(&wakes).as_bytes()), wakes);
        assert!(!Wake::Copies.stirs(None), "claims and job waits ignore it");
        assert!(
            !Wake::Copies.stirs(Some(PeerId(3))),
            "inbox waits ignore it"
        );
        assert!(Wake::Jobs.stirs(None) && Wake::Room.stirs(Some(PeerId(3))));
    }

    proptest! {
        #[test]
        fn inbox_wakes_round_trip(ids in proptest::collection::vec(0i64..i64::MAX, 1..MAX_WAKES_PER_RING)) {
            let wakes: Vec<Wake> = ids.into_iter().map(|id| Wake::Inbox(PeerId(id))).collect();
            prop_assert_eq!(Wake::decode(Wake::encode(&wakes).as_bytes()), wakes);
        }

        #[test]
        fn any_payload_decodes_to_something_that_wakes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let wakes = Wake::decode(&bytes);
            prop_assert!(!wakes.is_empty());
        }
    }
}
