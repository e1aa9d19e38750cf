//! Property test of the delivery state machine: random interleavings of sends, leases by two
//! sessions of one peer, hand-overs, acknowledgements, session ends and clock jumps must keep
//! the rules of SPEC 5 — states only move forward, a lease is exclusive while it lasts,
//! automatic paths never repeat an item, and nothing unacknowledged is ever lost.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;
use switchboard_conformance::{World, roomy_limits};
use switchboard_core::{
    Clock, Exchange, NamePolicy, Outgoing, PeerId, Run as _, SentQuery, Session, Store, op,
};
use switchboard_proto::{DeliveryState, MessageId, PeerKind};
use switchboard_store_sqlite::{DB_FILE, SqliteStore};

#[derive(Debug, Clone)]
enum Op {
    Send,
    Lease { session: usize, seen: bool },
    Deliver { session: usize, pick: usize },
    Ack { pick: usize },
    Restart { session: usize },
    Advance { ms: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Send),
        3 => (0..2usize, any::<bool>()).prop_map(|(session, seen)| Op::Lease { session, seen }),
        2 => (0..2usize, any::<usize>()).prop_map(|(session, pick)| Op::Deliver { session, pick }),
        2 => any::<usize>().prop_map(|pick| Op::Ack { pick }),
        1 => (0..2usize).prop_map(|session| Op::Restart { session }),
        1 => (0..40_000i64).prop_map(|ms| Op::Advance { ms }),
    ]
}

fn rank(s: DeliveryState) -> u8 {
    match s {
        DeliveryState::Queued => 0,
        DeliveryState::Delivered => 1,
        DeliveryState::Read | DeliveryState::Expired | DeliveryState::Dead => 2,
    }
}

struct Run {
    w: World,
    sender: PeerId,
    sessions: [Session; 2],
    /// Items each session holds a lease on, with the lease's end.
    held: [HashMap<MessageId, i64>; 2],
    /// Items already handed over to each session by an automatic (not explicit) path.
    auto_seen: [Vec<MessageId>; 2],
    last: HashMap<MessageId, DeliveryState>,
    sent: Vec<MessageId>,
}

impl Run {
    async fn bob(w: &World) -> Session {
        w.session("bob", PeerKind::Operator, NamePolicy::Join).await
    }

    async fn apply(&mut self, op: Op) {
        let now = self.w.clock.now_ms();
        match op {
            Op::Send => {
                let s = self
                    .w
                    .mailbox
                    .send(self.sender, Outgoing::to_peer("bob", "m"))
                    .await
                    .unwrap();
                self.sent.push(s.id);
            }
            Op::Lease { session, seen } => {
                let items = self
                    .w
                    .mailbox
                    .run(op::Lease {
                        include_seen: seen,
                        ..op::Lease::new(&self.sessions[session], 5)
                    })
                    .await
                    .unwrap();
                let other = 1 - session;
                let lease_ms = switchboard_core::policy::ms(self.w.mailbox.limits().lease);
                for item in items {
                    if !item.seen_before {
                        let held_by_other = self.held[other]
                            .get(&item.id)
                            .is_some_and(|&until| until > now);
                        prop_assert_eq_sync(!held_by_other, "a live lease is exclusive");
                        self.held[session].insert(item.id, now + lease_ms);
                    }
                    if !seen {
                        prop_assert_eq_sync(
                            !self.auto_seen[session].contains(&item.id),
                            "automatic paths never repeat an item",
                        );
                    }
                }
            }
            Op::Deliver { session, pick } => {
                if let Some(&id) = pick_from(&self.sent, pick) {
                    let n = self
                        .w
                        .mailbox
                        .mark_delivered(&self.sessions[session], &[id])
                        .await
                        .unwrap();
                    if n == 1 {
                        self.auto_seen[session].push(id);
                    }
                    self.held[session].remove(&id);
                }
            }
            Op::Ack { pick } => {
                if let Some(&id) = pick_from(&self.sent, pick) {
                    self.w
                        .mailbox
                        .ack(self.sessions[0].peer.id, &[id])
                        .await
                        .unwrap();
                }
            }
            Op::Restart { session } => {
                self.w
                    .mailbox
                    .close_session(self.sessions[session].id)
                    .await
                    .unwrap();
                self.sessions[session] = Self::bob(&self.w).await;
                self.held[session].clear();
                self.auto_seen[session].clear();
            }
            Op::Advance { ms } => self.w.clock.advance_ms(ms),
        }
        self.check_monotonic().await;
    }

    async fn check_monotonic(&mut self) {
        let all = self
            .w
            .mailbox
            .sent(self.sender, SentQuery::Recent(1000))
            .await
            .unwrap();
        for m in all {
            let state = m.recipients[0].state;
            if let Some(&before) = self.last.get(&m.id) {
                let forward = rank(state) > rank(before) || state == before;
                prop_assert_eq_sync(forward, "delivery states only move forward");
            }
            self.last.insert(m.id, state);
        }
    }
}

fn pick_from(v: &[MessageId], pick: usize) -> Option<&MessageId> {
    if v.is_empty() {
        None
    } else {
        v.get(pick % v.len())
    }
}

/// Panics with the rule's name; proptest then shrinks the sequence that broke it.
fn prop_assert_eq_sync(ok: bool, rule: &str) {
    assert!(ok, "rule broken: {rule}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn delivery_rules_hold_under_any_interleaving(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let dir = tempfile::tempdir().unwrap();
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
            let w = World::new(store, roomy_limits());
            let sender = w.mailbox.operator("alice").await.unwrap().id;
            let sessions = [Run::bob(&w).await, Run::bob(&w).await];
            let mut run = Run {
                w, sender, sessions,
                held: [HashMap::new(), HashMap::new()],
                auto_seen: [Vec::new(), Vec::new()],
                last: HashMap::new(),
                sent: Vec::new(),
            };
            // The pending cap's counter against the copies it counts, read from the file
            // after every step: a trigger keeps it on a change of state, the send's own
            // statement on an insert (v11), and no path may forget it.
            let file = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
            let miscounted = || -> i64 {
                file.query_row(
                    "SELECT COUNT(*) FROM peers p WHERE p.queued <> (SELECT COUNT(*)
                         FROM deliveries d WHERE d.recipient_id = p.id AND d.state = 'queued')",
                    [],
                    |r| r.get(0),
                )
                .unwrap()
            };
            for op in ops {
                run.apply(op).await;
                prop_assert_eq_sync(miscounted() == 0, "a peer's queued count is its queued copies");
            }
            // Nothing is lost: once every session is gone and leases have run out, an explicit
            // pull lists every message that is neither read, expired nor dead.
            for s in &run.sessions {
                run.w.mailbox.close_session(s.id).await.unwrap();
            }
            run.w.clock.advance_ms(60_000);
            let fresh = Run::bob(&run.w).await;
            let pulled: Vec<MessageId> = run.w.mailbox.run(op::Lease { include_seen: true, ..op::Lease::new(&fresh, 1000) }).await.unwrap().iter().map(|i| i.id).collect();
            let all = run.w.mailbox.sent(run.sender, SentQuery::Recent(1000)).await.unwrap();
            for m in all {
                let open = !m.recipients[0].state.is_terminal();
                prop_assert_eq_sync(!open || pulled.contains(&m.id), "an unacknowledged message is never lost");
            }
        });
    }
}
