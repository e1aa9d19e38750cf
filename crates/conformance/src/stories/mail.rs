//! Mail: sending, leasing, delivering and acknowledging messages, and the limits on them.

use std::time::Duration;

use switchboard_core::{
    Error, Exchange, Limits, NamePolicy, Outgoing, Rejection, Run, SentQuery, op,
};
use switchboard_proto::{DeliveryState, MessageId, PeerKind, Scope, Target};

use super::{only_sent, state_of, world};
use crate::{Backend, World, roomy_limits};

pub async fn send_lease_deliver_ack(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let sent = w
        .mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "hello bob"))
        .await
        .unwrap();
    assert!(!sent.duplicate);
    assert_eq!(state_of(&sent, "bob"), DeliveryState::Queued);

    let items = w.lease(&bob).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].text, "hello bob");
    assert_eq!(items[0].from, "alice");
    assert_eq!(items[0].to, Target::Peer("bob".into()));
    assert!(!items[0].seen_before);
    assert_eq!(
        state_of(&only_sent(&w, alice.peer.id, sent.id).await, "bob"),
        DeliveryState::Queued,
        "a lease alone is not a hand-over"
    );

    assert_eq!(w.mailbox.mark_delivered(&bob, &[sent.id]).await.unwrap(), 1);
    assert_eq!(
        state_of(&only_sent(&w, alice.peer.id, sent.id).await, "bob"),
        DeliveryState::Delivered
    );
    assert_eq!(w.mailbox.ack(bob.peer.id, &[sent.id]).await.unwrap(), 1);
    let after = only_sent(&w, alice.peer.id, sent.id).await;
    assert_eq!(state_of(&after, "bob"), DeliveryState::Read);
    assert!(after.recipients[0].read_at.is_some());
    assert!(w.pull(&bob).await.is_empty());
}

pub async fn unknown_peer_is_rejected_and_writes_nothing(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    w.agent("carol").await;
    let before = w.mailbox.stats().await.unwrap();
    let err = w
        .mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "hi"))
        .await
        .unwrap_err();
    match &err {
        Error::Rejected(Rejection::UnknownPeer { name, known }) => {
            assert_eq!(name, "bob");
            assert_eq!(known, &vec!["carol".to_owned()]);
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("peers are: carol"), "{err}");
    assert_eq!(w.mailbox.stats().await.unwrap().messages, before.messages);
}

pub async fn idempotent_send_returns_the_original(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    w.agent("bob").await;
    let mut out = Outgoing::to_peer("bob", "once");
    out.idempotency_key = Some("k-1".into());
    let first = w.mailbox.send(alice.peer.id, out.clone()).await.unwrap();
    let mut again = out.clone();
    again.text = "a different body is still the same send".into();
    let second = w.mailbox.send(alice.peer.id, again).await.unwrap();
    assert!(second.duplicate);
    assert_eq!(second.id, first.id);
    assert_eq!(second.text, "once");
    assert_eq!(w.mailbox.stats().await.unwrap().messages, 1);
}

pub async fn pending_cap_rejects_and_names_the_limit(b: &dyn Backend) {
    let w = world(
        b,
        Limits {
            pending_cap: 2,
            ..roomy_limits()
        },
    )
    .await;
    let alice = w.agent("alice").await;
    w.agent("bob").await;
    for i in 0..2 {
        w.mailbox
            .send(alice.peer.id, Outgoing::to_peer("bob", format!("m{i}")))
            .await
            .unwrap();
    }
    let err = w
        .mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "one too many"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Rejected(Rejection::InboxFull { ref peer, cap: 2 }) if peer == "bob"),
        "{err:?}"
    );
    assert!(err.to_string().contains("pending cap"), "{err}");
    assert_eq!(w.mailbox.stats().await.unwrap().messages, 2);
}

/// A world where a sender may send `limit` messages a minute.
async fn rate_limited(b: &dyn Backend, limit: u32) -> World {
    let limits = Limits {
        rate_limit: limit,
        rate_window: Duration::from_secs(60),
        ..roomy_limits()
    };
    world(b, limits).await
}

/// How many of a race's sends went through, and how many the rate limit of `limit` refused.
fn passed_and_rate_limited(outcomes: &[Result<MessageId, Error>], limit: u32) -> (usize, usize) {
    let refused = |r: &&Result<MessageId, Error>| match r {
        Err(Error::Rejected(Rejection::RateLimited { limit: l, .. })) => *l == limit,
        _ => false,
    };
    let passed = outcomes.iter().filter(|r| r.is_ok()).count();
    (passed, outcomes.iter().filter(refused).count())
}

pub async fn rate_limit_rejects_until_the_window_moves(b: &dyn Backend) {
    let w = rate_limited(b, 3).await;
    let alice = w.agent("alice").await;
    w.agent("bob").await;
    for i in 0..3 {
        w.mailbox
            .send(alice.peer.id, Outgoing::to_peer("bob", format!("m{i}")))
            .await
            .unwrap();
        w.clock.advance_ms(1000);
    }
    let err = w
        .mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "too fast"))
        .await
        .unwrap_err();
    let Error::Rejected(Rejection::RateLimited {
        limit: 3,
        retry_after_ms,
        ..
    }) = err
    else {
        panic!("unexpected error {err:?}");
    };
    assert_eq!(retry_after_ms, 57_000, "the oldest send ages out in 57 s");
    assert_eq!(w.mailbox.stats().await.unwrap().messages, 3);
    w.clock.advance_ms(retry_after_ms);
    w.mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "now fine"))
        .await
        .unwrap();
}

pub async fn lease_hides_an_item_from_other_sessions_until_it_expires(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let op = w.session("ops", PeerKind::Operator, NamePolicy::Join).await;
    let bob_a = w.session("bob", PeerKind::Operator, NamePolicy::Join).await;
    let bob_b = w.session("bob", PeerKind::Operator, NamePolicy::Join).await;
    assert_eq!(
        bob_a.peer.id, bob_b.peer.id,
        "join policy shares the identity"
    );
    let sent = w
        .mailbox
        .send(op.peer.id, Outgoing::to_peer("bob", "x"))
        .await
        .unwrap();
    assert_eq!(w.lease(&bob_a).await.len(), 1);
    assert!(w.lease(&bob_b).await.is_empty());
    w.clock
        .advance_ms(switchboard_core::policy::ms(w.mailbox.limits().lease) + 1);
    let again = w.lease(&bob_b).await;
    assert_eq!(again.len(), 1);
    // The first session's hand-over is fenced off: it no longer holds the lease.
    assert_eq!(
        w.mailbox.mark_delivered(&bob_a, &[sent.id]).await.unwrap(),
        0
    );
    assert_eq!(
        w.mailbox.mark_delivered(&bob_b, &[sent.id]).await.unwrap(),
        1
    );
    let view = only_sent(&w, op.peer.id, sent.id).await;
    assert_eq!(view.recipients[0].attempts, 2);
}

pub async fn reply_marks_the_parent_read(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let q = w
        .mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "question"))
        .await
        .unwrap();
    let mut reply = Outgoing::to_peer("alice", "answer");
    reply.reply_to = Some(q.id);
    w.mailbox.send(bob.peer.id, reply).await.unwrap();
    assert_eq!(
        state_of(&only_sent(&w, alice.peer.id, q.id).await, "bob"),
        DeliveryState::Read
    );
    let mut stray = Outgoing::to_peer("alice", "to nothing");
    stray.reply_to = Some(MessageId(q.id.0 + 1000));
    let err = w.mailbox.send(bob.peer.id, stray).await.unwrap_err();
    assert!(
        matches!(err, Error::Rejected(Rejection::UnknownReplyTo { .. })),
        "{err:?}"
    );
}

pub async fn ack_of_foreign_ids_is_rejected_and_writes_nothing(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let carol = w.agent("carol").await;
    let to_bob = w
        .mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "b"))
        .await
        .unwrap();
    let to_carol = w
        .mailbox
        .send(alice.peer.id, Outgoing::to_peer("carol", "c"))
        .await
        .unwrap();
    let err = w
        .mailbox
        .ack(bob.peer.id, &[to_bob.id, to_carol.id])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Rejected(Rejection::NotInInbox { ids }) if ids == &vec![to_carol.id]),
        "{err:?}"
    );
    assert_eq!(
        state_of(&only_sent(&w, alice.peer.id, to_bob.id).await, "bob"),
        DeliveryState::Queued,
        "the valid half of a rejected ack is not applied"
    );
    assert!(matches!(
        w.mailbox.ack(carol.peer.id, &[]).await,
        Err(Error::NoIds)
    ));
}

pub async fn unacked_leases_end_dead_after_max_attempts(b: &dyn Backend) {
    let w = world(
        b,
        Limits {
            max_attempts: 2,
            ..roomy_limits()
        },
    )
    .await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let sent = w
        .mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "poison"))
        .await
        .unwrap();
    let lease_ms = switchboard_core::policy::ms(w.mailbox.limits().lease);
    for _ in 0..2 {
        assert_eq!(w.lease(&bob).await.len(), 1);
        w.clock.advance_ms(lease_ms + 1);
    }
    assert!(w.lease(&bob).await.is_empty());
    let view = only_sent(&w, alice.peer.id, sent.id).await;
    assert_eq!(state_of(&view, "bob"), DeliveryState::Dead);
    assert_eq!(
        w.mailbox.stats().await.unwrap().dead,
        1,
        "dead items stay listable"
    );
}

pub async fn broadcast_reaches_live_peers_in_scope(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    w.agent("bob").await;
    let carol = w.agent("carol").await;
    w.mailbox.close_session(carol.id).await.unwrap();
    let mut out = Outgoing::to_peer("", "all hands");
    out.to = Target::Broadcast(Scope::Room);
    let sent = w.mailbox.send(alice.peer.id, out.clone()).await.unwrap();
    let names: Vec<_> = sent.recipients.iter().map(|r| r.peer.as_str()).collect();
    assert_eq!(names, vec!["bob"], "live peers other than the sender");
    out.to = Target::Broadcast(Scope::Dir);
    let same_dir = w.mailbox.send(alice.peer.id, out).await.unwrap();
    assert!(
        same_dir.recipients.is_empty(),
        "nobody else works in /work/alice"
    );
    let op = w.mailbox.operator("ops").await.unwrap();
    let mut located = Outgoing::to_peer("", "where am i");
    located.to = Target::Broadcast(Scope::Repo);
    let err = w.mailbox.send(op.id, located).await.unwrap_err();
    assert!(
        matches!(err, Error::Rejected(Rejection::NoLocation { .. })),
        "{err:?}"
    );
}

pub async fn seen_items_return_only_on_explicit_pull(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let sent = w
        .mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "pushed once"))
        .await
        .unwrap();
    w.lease(&bob).await;
    w.mailbox.mark_delivered(&bob, &[sent.id]).await.unwrap();
    assert!(w.lease(&bob).await.is_empty());
    let pulled = w
        .mailbox
        .run(op::Lease {
            include_seen: true,
            ..op::Lease::new(&bob, 10)
        })
        .await
        .unwrap();
    assert_eq!(pulled.len(), 1);
    assert!(pulled[0].seen_before);
}

pub async fn concurrent_sends_are_all_durable(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    w.agent("bob").await;
    let mut ids: Vec<MessageId> = w
        .race_to_bob(&[alice.peer.id], 200)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    let reopened = w.sibling(b.open().await);
    assert_eq!(reopened.mailbox.stats().await.unwrap().messages, 200);
}

/// Two processes send across each other at once: each send locks its sender and recipient, in
/// an order that crosses the other process's (a batch of one process may hold what the other's
/// batch waits for). Every send lands, once, and each inbox holds exactly what was sent to it.
pub async fn crossing_sends_from_two_processes_all_land(b: &dyn Backend) {
    const EACH: usize = 40;
    let w = world(b, roomy_limits()).await;
    let other = w.sibling(b.open().await);
    let mut peers = Vec::new();
    for name in ["ann", "ben", "cat", "dan"] {
        peers.push(w.agent(name).await);
    }
    // One process sends ann→cat and ben→dan, the other dan→ben and cat→ann: each lock set
    // crosses one of the other's.
    let routes = [(0, 2, &w), (1, 3, &w), (3, 1, &other), (2, 0, &other)];
    let mut tasks = tokio::task::JoinSet::new();
    for (from, to, world) in routes {
        let (mailbox, sender) = (world.mailbox.clone(), peers[from].peer.id);
        let to = peers[to].peer.name.as_str().to_owned();
        for i in 0..EACH {
            let (mailbox, to) = (mailbox.clone(), to.clone());
            tasks.spawn(async move {
                mailbox
                    .send(sender, Outgoing::to_peer(to, format!("n{i}")))
                    .await
                    .map(|s| s.id)
            });
        }
    }
    let mut ids = Vec::new();
    while let Some(r) = tasks.join_next().await {
        ids.push(r.unwrap().expect("every crossing send lands"));
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4 * EACH);
    for peer in &peers {
        let inbox = w
            .mailbox
            .run(op::Lease::new(peer, 1000))
            .await
            .expect("lease");
        assert_eq!(inbox.len(), EACH, "{}'s inbox", peer.peer.name.as_str());
    }
}

pub async fn lease_wait_returns_when_mail_lands(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let waiter = {
        let mailbox = w.mailbox.clone();
        let bob = bob.clone();
        tokio::spawn(async move {
            mailbox
                .run(op::Lease {
                    wait: Duration::from_secs(30),
                    ..op::Lease::new(&bob, 10)
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    w.mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "wake up"))
        .await
        .unwrap();
    let items = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the wait ends when mail lands, not at its timeout")
        .unwrap()
        .unwrap();
    assert_eq!(items.len(), 1);
}

pub async fn a_session_leasing_again_spends_no_attempt(b: &dyn Backend) {
    let w = world(
        b,
        Limits {
            max_attempts: 2,
            ..roomy_limits()
        },
    )
    .await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let sent = w
        .mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "keep trying"))
        .await
        .unwrap();
    let attempts = |w: &World| {
        let w = w.mailbox.clone();
        let (sender, id) = (alice.peer.id, sent.id);
        async move {
            let view = w.sent(sender, SentQuery::One(id)).await.unwrap().remove(0);
            (view.recipients[0].state, view.recipients[0].attempts)
        }
    };
    // The holder's hand-overs keep failing (a 503 on the way back, say) and it leases again,
    // many more times than the limit: one attempt, the item alive.
    for _ in 0..5 {
        assert_eq!(w.lease(&bob).await.len(), 1);
    }
    assert_eq!(attempts(&w).await, (DeliveryState::Queued, 1));
    // A lapse is an attempt lost, even for the same session; renewing after it is free again.
    let lease_ms = switchboard_core::policy::ms(w.mailbox.limits().lease);
    w.clock.advance_ms(lease_ms + 1);
    assert_eq!(w.lease(&bob).await.len(), 1);
    w.clock.advance_ms(lease_ms * 3 / 4);
    assert_eq!(w.lease(&bob).await.len(), 1);
    assert_eq!(attempts(&w).await, (DeliveryState::Queued, 2));
    // The renewal extended the lease past where the first one ended: another session of the
    // peer still cannot take the item.
    let bob2 = w.session("bob", PeerKind::Agent, NamePolicy::Join).await;
    w.clock.advance_ms(lease_ms / 2);
    assert!(w.lease(&bob2).await.is_empty());
    // The hand-over works at last.
    assert_eq!(w.mailbox.mark_delivered(&bob, &[sent.id]).await.unwrap(), 1);
    assert_eq!(attempts(&w).await, (DeliveryState::Delivered, 2));

    // Lapses do count: with the attempts used up, the next lease buries the item.
    let doomed = w
        .mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "doomed"))
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(w.lease(&bob2).await.len(), 1);
        w.clock.advance_ms(lease_ms + 1);
    }
    assert!(w.lease(&bob2).await.is_empty());
    let view = only_sent(&w, alice.peer.id, doomed.id).await;
    assert_eq!(state_of(&view, "bob"), DeliveryState::Dead);
}

/// The pending cap reads a counter the store keeps as copies come and go (issue 17): every way
/// a copy leaves the queue (hand-over, read, expiry swept by `gc`, burial after its attempts)
/// frees a place, and a delivered copy left unread does not hold one.
pub async fn pending_cap_follows_copies_as_they_leave_the_queue(b: &dyn Backend) {
    let w = world(
        b,
        Limits {
            pending_cap: 2,
            max_attempts: 1,
            ..roomy_limits()
        },
    )
    .await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let send = |text: &'static str| {
        let mailbox = w.mailbox.clone();
        let from = alice.peer.id;
        async move { mailbox.send(from, Outgoing::to_peer("bob", text)).await }
    };
    let full = |r: Result<switchboard_proto::SentMessage, Error>| {
        matches!(r, Err(Error::Rejected(Rejection::InboxFull { cap: 2, .. })))
    };
    let a = send("a").await.unwrap();
    let b2 = send("b").await.unwrap();
    assert!(full(send("refused").await), "two queued fill the cap");

    assert_eq!(w.lease(&bob).await.len(), 2, "a lease alone frees nothing");
    assert!(full(send("refused").await));
    assert_eq!(w.mailbox.mark_delivered(&bob, &[a.id]).await.unwrap(), 1);
    let c = send("c").await.unwrap();
    assert!(full(send("refused").await), "handed over frees one place");

    w.mailbox.ack(bob.peer.id, &[b2.id]).await.unwrap();
    w.mailbox.ack(bob.peer.id, &[a.id]).await.unwrap();
    let mut short = Outgoing::to_peer("bob", "short-lived");
    short.ttl = Some(Duration::from_secs(1));
    w.mailbox.send(alice.peer.id, short).await.unwrap();
    assert!(
        full(send("refused").await),
        "read frees one, the short-lived takes it"
    );

    w.clock.advance_ms(2000);
    assert_eq!(w.mailbox.gc().await.unwrap().expired, 1);
    send("d").await.unwrap();
    assert!(full(send("refused").await), "expiry swept by gc frees one");

    // max_attempts 1: the first lease spends the attempt, the next finds the copies dead.
    let lease_ms = switchboard_core::policy::ms(w.mailbox.limits().lease);
    assert_eq!(w.lease(&bob).await.len(), 2);
    w.clock.advance_ms(lease_ms + 1);
    assert!(w.lease(&bob).await.is_empty());
    send("e").await.unwrap();
    send("f").await.unwrap();
    assert!(
        full(send("refused").await),
        "buried copies free their places"
    );
    let view = only_sent(&w, alice.peer.id, c.id).await;
    assert_eq!(state_of(&view, "bob"), DeliveryState::Dead);
}

/// Peers writing to each other at once, by name, in one process: every send lands. The Postgres
/// lane runs a batch's sends side by side, each claiming its sender and recipient before it
/// goes on; two sends crossing (ann→ben beside ben→ann) each held its sender and waited for
/// the other's, and the lane stalled. A stall fails here after a minute instead of hanging.
pub async fn peers_writing_to_each_other_at_once_all_land(b: &dyn Backend) {
    const EACH: usize = 20;
    let w = world(b, roomy_limits()).await;
    let mut peers = Vec::new();
    for name in ["ann", "ben", "cat"] {
        peers.push(w.agent(name).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for from in 0..peers.len() {
        for to in (0..peers.len()).filter(|&to| to != from) {
            let sender = peers[from].peer.id;
            let to = peers[to].peer.name.as_str().to_owned();
            for i in 0..EACH {
                let (mailbox, to) = (w.mailbox.clone(), to.clone());
                tasks.spawn(async move {
                    mailbox
                        .send(sender, Outgoing::to_peer(to, format!("n{i}")))
                        .await
                        .map(|s| s.id)
                });
            }
        }
    }
    let all = async {
        let mut landed = 0;
        while let Some(r) = tasks.join_next().await {
            r.unwrap().expect("every send lands");
            landed += 1;
        }
        landed
    };
    let landed = tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("the sends stalled");
    assert_eq!(landed, 6 * EACH);
    assert_eq!(w.mailbox.stats().await.unwrap().messages, 6 * EACH as u64);
}

/// Many senders racing into one inbox: exactly the cap gets in, on every backend.
pub async fn concurrent_sends_never_pass_the_pending_cap(b: &dyn Backend) {
    let w = world(
        b,
        Limits {
            pending_cap: 10,
            ..roomy_limits()
        },
    )
    .await;
    w.agent("bob").await;
    let mut senders = Vec::new();
    for i in 0..4 {
        senders.push(w.agent(&format!("s{i}")).await.peer.id);
    }
    let outcomes = w.race_to_bob(&senders, 40).await;
    let refused = |r: &&Result<MessageId, Error>| {
        matches!(
            r,
            Err(Error::Rejected(Rejection::InboxFull { cap: 10, .. }))
        )
    };
    assert_eq!(outcomes.iter().filter(|r| r.is_ok()).count(), 10);
    assert_eq!(outcomes.iter().filter(refused).count(), 30, "{outcomes:?}");
    assert_eq!(w.mailbox.stats().await.unwrap().messages, 10);
}

/// One sender racing itself: exactly the rate limit gets through in the window.
pub async fn concurrent_sends_never_pass_the_rate_limit(b: &dyn Backend) {
    let w = rate_limited(b, 10).await;
    let alice = w.agent("alice").await;
    w.agent("bob").await;
    let outcomes = w.race_to_bob(&[alice.peer.id], 30).await;
    let counted = passed_and_rate_limited(&outcomes, 10);
    assert_eq!(counted, (10, 20), "{outcomes:?}");
    w.clock.advance_ms(60_000);
    w.mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "the window moved"))
        .await
        .unwrap();
}

/// One sender racing itself through two processes sharing the store: exactly the rate limit
/// gets through in the window. A send reads the rate after it holds the sender's lock, in a
/// snapshot that sees what the other process committed while it waited; read with the lock's
/// own (a backend sending its admission's reads together), sends would pass the limit.
pub async fn concurrent_sends_from_two_processes_never_pass_the_rate_limit(b: &dyn Backend) {
    let w = rate_limited(b, 10).await;
    let other = w.sibling(b.open().await);
    let alice = w.agent("alice").await;
    w.agent("bob").await;
    let sender = [alice.peer.id];
    let (mut outcomes, theirs) =
        tokio::join!(w.race_to_bob(&sender, 20), other.race_to_bob(&sender, 20));
    outcomes.extend(theirs);
    let counted = passed_and_rate_limited(&outcomes, 10);
    assert_eq!(counted, (10, 30), "{outcomes:?}");
}

/// This area's stories, expanded by [`conformance_suite!`](crate::conformance_suite). A new
/// story is a `pub async fn` above and one line in this list.
#[doc(hidden)]
#[macro_export]
macro_rules! conformance_mail {
    ($backend:expr) => {
        $crate::conformance_stories!($backend; mail;
            send_lease_deliver_ack,
            unknown_peer_is_rejected_and_writes_nothing,
            idempotent_send_returns_the_original,
            pending_cap_rejects_and_names_the_limit,
            rate_limit_rejects_until_the_window_moves,
            lease_hides_an_item_from_other_sessions_until_it_expires,
            reply_marks_the_parent_read,
            ack_of_foreign_ids_is_rejected_and_writes_nothing,
            unacked_leases_end_dead_after_max_attempts,
            broadcast_reaches_live_peers_in_scope,
            seen_items_return_only_on_explicit_pull,
            concurrent_sends_are_all_durable,
            crossing_sends_from_two_processes_all_land,
            peers_writing_to_each_other_at_once_all_land,
            lease_wait_returns_when_mail_lands,
            a_session_leasing_again_spends_no_attempt,
            pending_cap_follows_copies_as_they_leave_the_queue,
            concurrent_sends_never_pass_the_pending_cap,
            concurrent_sends_never_pass_the_rate_limit,
            concurrent_sends_from_two_processes_never_pass_the_rate_limit,
        );
    };
}
