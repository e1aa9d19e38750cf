//! The stories. Each opens fresh handles from a [`Backend`] and checks one rule of SPEC 3/5.

use std::time::Duration;

use switchboard_core::{
    Error, Exchange, Limits, LogQuery, NamePolicy, OpenSession, Outgoing, Rejection, SentQuery,
    Wake,
};
use switchboard_proto::{DeliveryState, PeerInfo, PeerKind, PeerName, Scope, Target};

use crate::{Backend, World, roomy_limits};

async fn world(b: &dyn Backend, limits: Limits) -> World {
    World::new(b.open().await, limits)
}

fn state_of(sent: &switchboard_proto::SentMessage, peer: &str) -> DeliveryState {
    sent.recipients
        .iter()
        .find(|r| r.peer == peer)
        .map(|r| r.state)
        .expect("recipient listed")
}

async fn only_sent(w: &World, sender: i64, id: i64) -> switchboard_proto::SentMessage {
    w.mailbox
        .sent(sender, SentQuery::One(id))
        .await
        .expect("sent view")
        .remove(0)
}

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

    let items = w.mailbox.lease(&bob, 10, false).await.unwrap();
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
    assert!(w.mailbox.lease(&bob, 10, true).await.unwrap().is_empty());
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

pub async fn rate_limit_rejects_until_the_window_moves(b: &dyn Backend) {
    let w = world(
        b,
        Limits {
            rate_limit: 3,
            rate_window: Duration::from_secs(60),
            ..roomy_limits()
        },
    )
    .await;
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
    assert_eq!(w.mailbox.lease(&bob_a, 10, false).await.unwrap().len(), 1);
    assert!(w.mailbox.lease(&bob_b, 10, false).await.unwrap().is_empty());
    w.clock
        .advance_ms(switchboard_core::policy::ms(w.mailbox.limits().lease) + 1);
    let again = w.mailbox.lease(&bob_b, 10, false).await.unwrap();
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

pub async fn closing_a_session_releases_its_leases(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    w.mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "x"))
        .await
        .unwrap();
    assert_eq!(w.mailbox.lease(&bob, 10, false).await.unwrap().len(), 1);
    w.mailbox.close_session(bob.id).await.unwrap();
    let bob2 = w.agent("bob").await;
    assert_eq!(bob2.peer.id, bob.peer.id, "the name is reclaimed");
    assert_eq!(w.mailbox.lease(&bob2, 10, false).await.unwrap().len(), 1);
}

pub async fn dead_process_frees_its_name_and_its_leases(b: &dyn Backend) {
    let w1 = world(b, roomy_limits()).await;
    let alice = w1.agent("alice").await;
    let bob = w1.agent("bob").await;
    let w2 = w1.sibling(b.open().await);
    let sent = w1
        .mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "survive me"))
        .await
        .unwrap();
    assert_eq!(w1.mailbox.lease(&bob, 10, false).await.unwrap().len(), 1);
    assert!(
        w2.mailbox.peers().await.unwrap().iter().all(|p| p.online),
        "both peers live while their process lives"
    );
    drop(w1);
    // A networked store learns of a death when its server sees the connection close, a moment
    // after the drop; the embedded one at once. Either way it must be prompt.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let peers = loop {
        let peers = w2.mailbox.peers().await.unwrap();
        if peers.iter().all(|p| !p.online) || tokio::time::Instant::now() > deadline {
            break peers;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert!(peers.iter().all(|p| !p.online), "no ghost peers: {peers:?}");
    let bob2 = w2.agent("bob").await;
    assert_eq!(
        bob2.peer.name, "bob",
        "a dead session does not hold its name"
    );
    let items = w2.mailbox.lease(&bob2, 10, false).await.unwrap();
    assert_eq!(
        items.len(),
        1,
        "the dead session's lease is released at once"
    );
    assert_eq!(items[0].id, sent.id);
    w2.mailbox.mark_delivered(&bob2, &[sent.id]).await.unwrap();
    assert!(w2.mailbox.lease(&bob2, 10, false).await.unwrap().is_empty());
}

pub async fn live_name_gets_a_suffix_and_offline_name_is_reclaimed(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let first = w.agent("claude-webapp").await;
    let second = w.agent("claude-webapp").await;
    assert_eq!(second.peer.name, "claude-webapp-2");
    w.mailbox.close_session(first.id).await.unwrap();
    let third = w.agent("claude-webapp").await;
    assert_eq!(third.peer.name, "claude-webapp");
    assert_eq!(third.peer.id, first.peer.id);
    let err = w
        .mailbox
        .open_session(switchboard_core::OpenSession {
            name: switchboard_proto::PeerName::parse("claude-webapp").unwrap(),
            kind: PeerKind::Operator,
            info: Default::default(),
            policy: NamePolicy::Join,
            client_pid: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Rejected(Rejection::NameTaken { .. })),
        "{err:?}"
    );
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
    stray.reply_to = Some(q.id + 1000);
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

pub async fn ttl_expiry_is_honest_before_and_after_gc(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let mut out = Outgoing::to_peer("bob", "short-lived");
    out.ttl = Some(Duration::from_secs(1));
    let sent = w.mailbox.send(alice.peer.id, out).await.unwrap();
    w.clock.advance_ms(2000);
    assert_eq!(
        state_of(&only_sent(&w, alice.peer.id, sent.id).await, "bob"),
        DeliveryState::Expired
    );
    assert!(w.mailbox.lease(&bob, 10, true).await.unwrap().is_empty());
    let report = w.mailbox.gc().await.unwrap();
    assert_eq!(report.expired, 1);
    assert_eq!(w.mailbox.stats().await.unwrap().expired, 1);
    let mut too_long = Outgoing::to_peer("bob", "forever");
    too_long.ttl = Some(w.mailbox.limits().retention + Duration::from_secs(1));
    assert!(matches!(
        w.mailbox.send(alice.peer.id, too_long).await,
        Err(Error::TtlTooLong { .. })
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
        assert_eq!(w.mailbox.lease(&bob, 10, false).await.unwrap().len(), 1);
        w.clock.advance_ms(lease_ms + 1);
    }
    assert!(w.mailbox.lease(&bob, 10, false).await.unwrap().is_empty());
    let view = only_sent(&w, alice.peer.id, sent.id).await;
    assert_eq!(state_of(&view, "bob"), DeliveryState::Dead);
    assert_eq!(
        w.mailbox.stats().await.unwrap().dead,
        1,
        "dead items stay listable"
    );
}

pub async fn retention_deletes_old_records(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let old = w
        .mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "old"))
        .await
        .unwrap();
    w.mailbox.ack(bob.peer.id, &[old.id]).await.unwrap();
    w.clock
        .advance_ms(switchboard_core::policy::ms(w.mailbox.limits().retention) + 1);
    let fresh = w
        .mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "fresh"))
        .await
        .unwrap();
    let report = w.mailbox.gc().await.unwrap();
    assert_eq!(report.messages_deleted, 1);
    let left = w
        .mailbox
        .sent(alice.peer.id, SentQuery::Recent(10))
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![fresh.id]
    );

    // A finished job is kept for the retention window, then deleted with its request id.
    let mut d = job("codex", "old");
    d.request_id = Some("once".into());
    let old_job = w.mailbox.dispatch(alice.peer.id, d.clone()).await.unwrap();
    w.mailbox.cancel_job(old_job.id).await.unwrap();
    w.clock
        .advance_ms(switchboard_core::policy::ms(w.mailbox.limits().retention) + 1);
    w.mailbox.gc().await.unwrap();
    assert!(matches!(
        w.mailbox.job(old_job.id).await,
        Err(Error::Rejected(Rejection::UnknownJob { .. }))
    ));
    let again = w.mailbox.dispatch(alice.peer.id, d).await.unwrap();
    assert!(
        !again.duplicate,
        "the request id is free again after retention"
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
    w.mailbox.lease(&bob, 10, false).await.unwrap();
    w.mailbox.mark_delivered(&bob, &[sent.id]).await.unwrap();
    assert!(w.mailbox.lease(&bob, 10, false).await.unwrap().is_empty());
    let pulled = w.mailbox.lease(&bob, 10, true).await.unwrap();
    assert_eq!(pulled.len(), 1);
    assert!(pulled[0].seen_before);
}

pub async fn wake_crosses_handles(b: &dyn Backend) {
    let w1 = world(b, roomy_limits()).await;
    let alice = w1.agent("alice").await;
    let bob = w1.agent("bob").await;
    let other = b.open().await;
    let mut wakes = other.subscribe();
    // Give the listener a moment to bind, as a real waiter has long before mail arrives.
    tokio::time::sleep(Duration::from_millis(50)).await;
    w1.mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "ring"))
        .await
        .unwrap();
    let woke = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match wakes.recv().await {
                Ok(w) if w.concerns(bob.peer.id) => return w,
                Ok(_) => continue,
                Err(e) => panic!("wake channel failed: {e}"),
            }
        }
    })
    .await
    .expect("a wake reaches the other handle");
    assert!(matches!(woke, Wake::Inbox(_) | Wake::Room));
}

pub async fn log_follows_a_cursor_and_a_peer(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    w.agent("bob").await;
    w.agent("carol").await;
    let m1 = w
        .mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "1"))
        .await
        .unwrap();
    let m2 = w
        .mailbox
        .send(alice.peer.id, Outgoing::to_peer("carol", "2"))
        .await
        .unwrap();
    assert_eq!(w.mailbox.last_message_id().await.unwrap(), m2.id);
    let all = w
        .mailbox
        .log(LogQuery {
            after: 0,
            peer: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![m1.id, m2.id]
    );
    let after = w
        .mailbox
        .log(LogQuery {
            after: m1.id,
            peer: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    let bob = w.store.find_peer("bob").await.unwrap().unwrap();
    let bobs = w
        .mailbox
        .log(LogQuery {
            after: 0,
            peer: Some(bob.id),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(bobs.iter().map(|e| e.id).collect::<Vec<_>>(), vec![m1.id]);
}

pub async fn rename_keeps_mail_and_refuses_taken_names(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    w.mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "kept"))
        .await
        .unwrap();
    let renamed = w.mailbox.rename(bob.peer.id, "robert").await.unwrap();
    assert_eq!(renamed.name, "robert");
    let items = w.mailbox.lease(&bob, 10, false).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].to, Target::Peer("robert".into()));
    let err = w.mailbox.rename(bob.peer.id, "alice").await.unwrap_err();
    assert!(
        matches!(err, Error::Rejected(Rejection::NameTaken { .. })),
        "{err:?}"
    );
    assert!(matches!(
        w.mailbox.rename(bob.peer.id, "Not Valid").await,
        Err(Error::Name(_))
    ));
}

pub async fn concurrent_sends_are_all_durable(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    w.agent("bob").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let mailbox = w.mailbox.clone();
        let from = alice.peer.id;
        tasks.spawn(async move {
            mailbox
                .send(from, Outgoing::to_peer("bob", format!("n{i}")))
                .await
                .map(|s| s.id)
        });
    }
    let mut ids = Vec::new();
    while let Some(r) = tasks.join_next().await {
        ids.push(r.unwrap().unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    let reopened = w.sibling(b.open().await);
    assert_eq!(reopened.mailbox.stats().await.unwrap().messages, 200);
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
                .lease_wait(&bob, 10, false, Duration::from_secs(30))
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

pub async fn client_process_finds_its_live_peer(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let open = |name: &str, pid: u32| switchboard_core::OpenSession {
        name: switchboard_proto::PeerName::parse(name).unwrap(),
        kind: PeerKind::Agent,
        info: Default::default(),
        policy: NamePolicy::Suffix,
        client_pid: Some(pid),
    };
    let web = w
        .mailbox
        .open_session(open("claude-web", 4242))
        .await
        .unwrap();
    w.mailbox
        .open_session(open("claude-api", 4343))
        .await
        .unwrap();
    let found = w.mailbox.peer_of_client(&[1, 4242, 1]).await.unwrap();
    assert_eq!(found.map(|p| p.name), Some("claude-web".to_owned()));
    assert!(w.mailbox.peer_of_client(&[7]).await.unwrap().is_none());
    w.mailbox.close_session(web.id).await.unwrap();
    assert!(
        w.mailbox.peer_of_client(&[4242]).await.unwrap().is_none(),
        "only live sessions count"
    );
}

fn ask_of(to: &str, question: &str) -> switchboard_core::Ask {
    switchboard_core::Ask {
        to: to.into(),
        question: question.into(),
        context_hint: None,
        ttl: None,
    }
}

fn answer_with(
    text: &str,
    basis: switchboard_proto::Basis,
    sources: &[&str],
) -> switchboard_core::Reply {
    switchboard_core::Reply::Answer {
        text: text.into(),
        basis,
        sources: sources.iter().map(|s| (*s).to_owned()).collect(),
    }
}

pub async fn question_and_grounded_answer_reach_each_side(b: &dyn Backend) {
    use switchboard_proto::{Basis, ItemKind, QuestionState};
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let mut ask = ask_of("bob", "How are sessions invalidated?");
    ask.context_hint = Some("src/auth, the logout path".into());
    let q = w.mailbox.ask(alice.peer.id, ask).await.unwrap();
    assert_eq!(q.state, QuestionState::Open);
    assert_eq!((q.from.as_str(), q.to.as_str()), ("alice", "bob"));

    let got = w.mailbox.lease(&bob, 10, false).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].kind, ItemKind::Question);
    assert_eq!(
        got[0].context_hint.as_deref(),
        Some("src/auth, the logout path")
    );

    let answered = w
        .mailbox
        .reply(
            bob.peer.id,
            q.id,
            answer_with(
                "Deleted from the store on logout.",
                Basis::Verified,
                &["src/auth/session.ts:42", "a1b2c3d"],
            ),
        )
        .await
        .unwrap();
    assert_eq!(answered.state, QuestionState::Answered);
    let answer = answered.answer.expect("the answer");
    assert_eq!(answer.basis, Basis::Verified);
    assert_eq!(answer.sources, ["src/auth/session.ts:42", "a1b2c3d"]);

    let back = w.mailbox.lease(&alice, 10, false).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].kind, ItemKind::Answer);
    assert_eq!(back[0].reply_to, Some(q.id));
    let grounding = back[0]
        .grounding
        .as_ref()
        .expect("grounding travels with the answer");
    assert_eq!(grounding.basis, Basis::Verified);
    assert_eq!(grounding.sources, ["src/auth/session.ts:42", "a1b2c3d"]);
    let asked = w
        .mailbox
        .sent(alice.peer.id, SentQuery::One(q.id))
        .await
        .unwrap();
    assert_eq!(
        asked[0].recipients[0].state,
        DeliveryState::Read,
        "answering reads the question"
    );
}

pub async fn a_question_is_answered_once_and_only_by_the_peer_asked(b: &dyn Backend) {
    use switchboard_proto::Basis;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let carol = w.agent("carol").await;
    let q = w
        .mailbox
        .ask(alice.peer.id, ask_of("bob", "Which port?"))
        .await
        .unwrap();
    let err = w
        .mailbox
        .reply(
            carol.peer.id,
            q.id,
            answer_with("8080", Basis::FromMemory, &[]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Rejected(Rejection::NotYourQuestion { asked, .. }) if asked == "bob"),
        "{err:?}"
    );
    let err = w
        .mailbox
        .reply(
            carol.peer.id,
            q.id + 999,
            answer_with("8080", Basis::FromMemory, &[]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Rejected(Rejection::UnknownQuestion { .. })),
        "{err:?}"
    );
    w.mailbox
        .reply(
            bob.peer.id,
            q.id,
            answer_with("8080", Basis::Verified, &["config/app.toml:3"]),
        )
        .await
        .unwrap();
    let before = w.mailbox.stats().await.unwrap().messages;
    let err = w
        .mailbox
        .reply(
            bob.peer.id,
            q.id,
            answer_with("9090 actually", Basis::Verified, &[]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Rejected(Rejection::QuestionClosed { state, .. }) if state == "answered"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("answered or declined once"),
        "{err}"
    );
    assert_eq!(
        w.mailbox.stats().await.unwrap().messages,
        before,
        "a rejected reply stores nothing"
    );
    let q = w.mailbox.question(alice.peer.id, q.id).await.unwrap();
    assert_eq!(q.answer.unwrap().text, "8080");
}

pub async fn a_decline_tells_the_asker_why(b: &dyn Backend) {
    use switchboard_proto::{ItemKind, QuestionState};
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let q = w
        .mailbox
        .ask(alice.peer.id, ask_of("bob", "Prod DB password?"))
        .await
        .unwrap();
    let declined = w
        .mailbox
        .reply(
            bob.peer.id,
            q.id,
            switchboard_core::Reply::Decline {
                reason: "not mine to share".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(declined.state, QuestionState::Declined);
    assert_eq!(
        declined.decline_reason.as_deref(),
        Some("not mine to share")
    );
    let back = w.mailbox.lease(&alice, 10, false).await.unwrap();
    assert_eq!(back[0].kind, ItemKind::Decline);
    assert_eq!(back[0].text, "not mine to share");
}

pub async fn an_unanswered_question_expires_and_the_asker_is_told(b: &dyn Backend) {
    use switchboard_proto::{Basis, ItemKind, QuestionState};
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let mut ask = ask_of("bob", "Still there?");
    ask.ttl = Some(Duration::from_secs(60));
    let q = w.mailbox.ask(alice.peer.id, ask).await.unwrap();
    w.clock.advance_ms(61_000);
    assert_eq!(
        w.mailbox.question(alice.peer.id, q.id).await.unwrap().state,
        QuestionState::Expired
    );
    let told = w.mailbox.lease(&alice, 10, false).await.unwrap();
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].kind, ItemKind::Expired);
    assert_eq!(told[0].reply_to, Some(q.id));
    assert!(
        w.mailbox.lease(&alice, 10, false).await.unwrap().len() <= 1,
        "one notice"
    );
    let err = w
        .mailbox
        .reply(bob.peer.id, q.id, answer_with("yes", Basis::Verified, &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Rejected(Rejection::QuestionClosed { state, .. }) if state == "expired"),
        "{err:?}"
    );
}

pub async fn bad_questions_and_answers_change_nothing(b: &dyn Backend) {
    use switchboard_proto::{Basis, MAX_SOURCE_BYTES};
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let q = w
        .mailbox
        .ask(alice.peer.id, ask_of("bob", "ok?"))
        .await
        .unwrap();
    let before = w.mailbox.stats().await.unwrap().messages;
    assert!(matches!(
        w.mailbox.ask(alice.peer.id, ask_of("bob", "  ")).await,
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        w.mailbox
            .ask(alice.peer.id, ask_of("bob", &"x".repeat(64 * 1024 + 1)))
            .await,
        Err(Error::TooLong { .. })
    ));
    let mut hinted = ask_of("bob", "ok?");
    hinted.context_hint = Some("h".repeat(8 * 1024 + 1));
    assert!(matches!(
        w.mailbox.ask(alice.peer.id, hinted).await,
        Err(Error::TooLong {
            field: "context_hint",
            ..
        })
    ));
    let many: Vec<String> = (0..21).map(|i| format!("f{i}.rs")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let err = w
        .mailbox
        .reply(bob.peer.id, q.id, answer_with("a", Basis::Verified, &many))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooMany {
                field: "sources",
                count: 21,
                max: 20
            }
        ),
        "{err:?}"
    );
    let long = "s".repeat(MAX_SOURCE_BYTES + 1);
    assert!(matches!(
        w.mailbox
            .reply(
                bob.peer.id,
                q.id,
                answer_with("a", Basis::Verified, &[&long])
            )
            .await,
        Err(Error::TooLong { .. })
    ));
    assert!(matches!(
        w.mailbox
            .reply(bob.peer.id, q.id, answer_with(" ", Basis::Verified, &[]))
            .await,
        Err(Error::Empty { .. })
    ));
    assert_eq!(w.mailbox.stats().await.unwrap().messages, before);
    assert_eq!(
        w.mailbox.question(bob.peer.id, q.id).await.unwrap().state,
        switchboard_proto::QuestionState::Open
    );
}

pub async fn questions_list_by_role_and_state(b: &dyn Backend) {
    use switchboard_core::QuestionQuery;
    use switchboard_proto::Basis;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let q1 = w
        .mailbox
        .ask(alice.peer.id, ask_of("bob", "one"))
        .await
        .unwrap();
    let q2 = w
        .mailbox
        .ask(bob.peer.id, ask_of("alice", "two"))
        .await
        .unwrap();
    w.mailbox
        .reply(
            bob.peer.id,
            q1.id,
            answer_with("done", Basis::FromMemory, &[]),
        )
        .await
        .unwrap();
    let all = QuestionQuery {
        asked: true,
        received: true,
        open_only: false,
        limit: 10,
    };
    let ids =
        |v: Vec<switchboard_proto::QuestionView>| v.into_iter().map(|q| q.id).collect::<Vec<_>>();
    assert_eq!(
        ids(w.mailbox.questions(alice.peer.id, all).await.unwrap()),
        [q2.id, q1.id]
    );
    let asked = QuestionQuery {
        received: false,
        ..all
    };
    assert_eq!(
        ids(w.mailbox.questions(alice.peer.id, asked).await.unwrap()),
        [q1.id]
    );
    let open = QuestionQuery {
        open_only: true,
        ..all
    };
    assert_eq!(
        ids(w.mailbox.questions(alice.peer.id, open).await.unwrap()),
        [q2.id]
    );
    let carol = w.agent("carol").await;
    assert!(
        matches!(
            w.mailbox.question(carol.peer.id, q1.id).await,
            Err(Error::Rejected(Rejection::UnknownQuestion { .. }))
        ),
        "a question is private to its two peers"
    );
}

fn job(agent: &str, prompt: &str) -> switchboard_core::Dispatch {
    switchboard_core::Dispatch {
        agent: agent.into(),
        prompt: prompt.into(),
        model: None,
        write: false,
        request_id: None,
        ttl: None,
    }
}

fn lapse(w: &World) {
    w.clock
        .advance_ms(switchboard_core::policy::ms(w.mailbox.limits().job_lease) + 1);
}

pub async fn a_job_runs_once_and_its_dispatcher_gets_only_id_and_state(b: &dyn Backend) {
    use switchboard_core::JobOutcome;
    use switchboard_proto::{ItemKind, JobState};
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let d = w
        .mailbox
        .dispatch(alice.peer.id, job("codex", "review the diff"))
        .await
        .unwrap();
    assert_eq!(d.state, JobState::Queued);
    let claim = w
        .mailbox
        .claim("codex", "w1", false)
        .await
        .unwrap()
        .expect("a job");
    assert_eq!(claim.job.id, d.id);
    assert_eq!(claim.job.prompt, "review the diff");
    assert!(
        w.mailbox
            .claim("codex", "w2", false)
            .await
            .unwrap()
            .is_none(),
        "claimed once"
    );
    w.mailbox.start_job(&claim).await.unwrap();
    assert_eq!(
        w.mailbox.heartbeat(&claim).await.unwrap(),
        JobState::Running
    );
    let done = w
        .mailbox
        .finish_job(
            &claim,
            JobOutcome::Completed {
                result: "LGTM, 2 nits".into(),
                branch: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.result.as_deref(), Some("LGTM, 2 nits"));
    let notices = w.mailbox.lease(&alice, 10, false).await.unwrap();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].kind, ItemKind::Job);
    assert!(
        notices[0].text.contains(&format!("#{}", d.id)) && notices[0].text.contains("completed")
    );
    assert!(!notices[0].text.contains("LGTM"), "never the job's payload");
}

pub async fn a_repeated_request_id_creates_one_job(b: &dyn Backend) {
    use switchboard_core::JobQuery;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let mut d = job("codex", "once");
    d.request_id = Some("req-7".into());
    let first = w.mailbox.dispatch(alice.peer.id, d.clone()).await.unwrap();
    let second = w.mailbox.dispatch(alice.peer.id, d).await.unwrap();
    assert!(second.duplicate && !first.duplicate);
    assert_eq!(second.id, first.id);
    let all = JobQuery {
        dispatcher: None,
        agent: None,
        active_only: false,
        limit: 10,
    };
    assert_eq!(w.mailbox.jobs(all).await.unwrap().len(), 1);
}

pub async fn a_lapsed_read_only_job_is_requeued_and_a_stale_worker_is_fenced_off(b: &dyn Backend) {
    use switchboard_core::JobOutcome;
    use switchboard_proto::JobState;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let d = w
        .mailbox
        .dispatch(alice.peer.id, job("codex", "read only"))
        .await
        .unwrap();
    let stale = w
        .mailbox
        .claim("codex", "w1", false)
        .await
        .unwrap()
        .unwrap();
    w.mailbox.start_job(&stale).await.unwrap();
    lapse(&w);
    let fresh = w
        .mailbox
        .claim("codex", "w2", false)
        .await
        .unwrap()
        .expect("requeued");
    assert_eq!(fresh.job.id, d.id);
    assert!(fresh.fence > stale.fence);
    let err = w
        .mailbox
        .finish_job(
            &stale,
            JobOutcome::Completed {
                result: "late".into(),
                branch: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Rejected(Rejection::StaleClaim { .. })),
        "{err:?}"
    );
    assert!(matches!(
        w.mailbox.heartbeat(&stale).await,
        Err(Error::Rejected(Rejection::StaleClaim { .. }))
    ));
    w.mailbox
        .finish_job(
            &fresh,
            JobOutcome::Completed {
                result: "on time".into(),
                branch: None,
            },
        )
        .await
        .unwrap();
    let view = w.mailbox.job(d.id).await.unwrap();
    assert_eq!(view.state, JobState::Completed);
    assert_eq!(view.result.as_deref(), Some("on time"));
    assert_eq!(view.attempts, 2);
}

pub async fn a_lapsed_write_job_waits_for_recovery(b: &dyn Backend) {
    use switchboard_proto::JobState;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let mut d = job("codex", "edit files");
    d.write = true;
    let d = w.mailbox.dispatch(alice.peer.id, d).await.unwrap();
    w.mailbox.claim("codex", "w1", true).await.unwrap().unwrap();
    lapse(&w);
    assert!(
        w.mailbox
            .claim("codex", "w2", true)
            .await
            .unwrap()
            .is_none(),
        "never re-run silently"
    );
    assert_eq!(
        w.mailbox.job(d.id).await.unwrap().state,
        JobState::NeedsRecovery
    );
    let requeued = w.mailbox.requeue_job(d.id).await.unwrap();
    assert_eq!(requeued.state, JobState::Queued);
    assert!(
        w.mailbox
            .claim("codex", "w2", true)
            .await
            .unwrap()
            .is_some()
    );
}

pub async fn write_jobs_go_only_to_workers_that_allow_writes(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let mut d = job("codex", "edit");
    d.write = true;
    w.mailbox.dispatch(alice.peer.id, d).await.unwrap();
    assert!(
        w.mailbox
            .claim("codex", "ro", false)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        w.mailbox
            .claim("codex", "rw", true)
            .await
            .unwrap()
            .is_some()
    );
}

pub async fn a_job_that_keeps_losing_its_worker_dies(b: &dyn Backend) {
    use switchboard_proto::JobState;
    let w = world(
        b,
        Limits {
            job_max_attempts: 2,
            ..roomy_limits()
        },
    )
    .await;
    let alice = w.agent("alice").await;
    let d = w
        .mailbox
        .dispatch(alice.peer.id, job("codex", "poison"))
        .await
        .unwrap();
    for _ in 0..2 {
        w.mailbox.claim("codex", "w", false).await.unwrap().unwrap();
        lapse(&w);
    }
    assert!(
        w.mailbox
            .claim("codex", "w", false)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(w.mailbox.job(d.id).await.unwrap().state, JobState::Dead);
}

pub async fn an_unclaimed_job_expires(b: &dyn Backend) {
    use switchboard_proto::JobState;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let mut d = job("codex", "soon");
    d.ttl = Some(Duration::from_secs(60));
    let d = w.mailbox.dispatch(alice.peer.id, d).await.unwrap();
    w.clock.advance_ms(61_000);
    assert!(
        w.mailbox
            .claim("codex", "w", false)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(w.mailbox.job(d.id).await.unwrap().state, JobState::Expired);
    let told = w.mailbox.lease(&alice, 10, false).await.unwrap();
    assert!(told.iter().any(|i| i.text.contains("expired")), "{told:?}");
}

pub async fn a_cancel_reaches_the_running_worker(b: &dyn Backend) {
    use switchboard_core::JobOutcome;
    use switchboard_proto::JobState;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let d = w
        .mailbox
        .dispatch(alice.peer.id, job("codex", "long"))
        .await
        .unwrap();
    let claim = w.mailbox.claim("codex", "w", false).await.unwrap().unwrap();
    w.mailbox.start_job(&claim).await.unwrap();
    assert_eq!(
        w.mailbox.cancel_job(d.id).await.unwrap().state,
        JobState::Cancelled
    );
    assert_eq!(
        w.mailbox.heartbeat(&claim).await.unwrap(),
        JobState::Cancelled
    );
    let err = w
        .mailbox
        .finish_job(
            &claim,
            JobOutcome::Completed {
                result: "too late".into(),
                branch: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Rejected(Rejection::JobState { state, .. }) if state == "cancelled"),
        "{err:?}"
    );
    assert!(matches!(
        w.mailbox.cancel_job(d.id).await,
        Err(Error::Rejected(Rejection::JobState { .. }))
    ));
}

pub async fn a_released_claim_does_not_count_as_an_attempt(b: &dyn Backend) {
    use switchboard_proto::JobState;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let d = w
        .mailbox
        .dispatch(alice.peer.id, job("codex", "later"))
        .await
        .unwrap();
    let claim = w.mailbox.claim("codex", "w", false).await.unwrap().unwrap();
    w.mailbox.release_job(&claim).await.unwrap();
    let view = w.mailbox.job(d.id).await.unwrap();
    assert_eq!((view.state, view.attempts), (JobState::Queued, 0));
}

pub async fn bad_dispatches_change_nothing(b: &dyn Backend) {
    use switchboard_core::JobQuery;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    assert!(matches!(
        w.mailbox.dispatch(alice.peer.id, job("codex", " ")).await,
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        w.mailbox
            .dispatch(alice.peer.id, job("codex", &"p".repeat(256 * 1024 + 1)))
            .await,
        Err(Error::TooLong {
            field: "prompt",
            ..
        })
    ));
    assert!(matches!(
        w.mailbox
            .dispatch(alice.peer.id, job("Codex CLI", "x"))
            .await,
        Err(Error::Name(_))
    ));
    assert!(matches!(
        w.mailbox.job(4242).await,
        Err(Error::Rejected(Rejection::UnknownJob { .. }))
    ));
    let all = JobQuery {
        dispatcher: None,
        agent: None,
        active_only: false,
        limit: 10,
    };
    assert!(w.mailbox.jobs(all).await.unwrap().is_empty());
}

pub async fn concurrent_workers_never_share_a_job(b: &dyn Backend) {
    use switchboard_core::JobOutcome;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    for i in 0..60 {
        w.mailbox
            .dispatch(alice.peer.id, job("codex", &format!("job {i}")))
            .await
            .unwrap();
    }
    let other = w.sibling(b.open().await);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let mailbox = if worker % 2 == 0 {
            w.mailbox.clone()
        } else {
            other.mailbox.clone()
        };
        tasks.spawn(async move {
            let mut done = Vec::new();
            while let Some(claim) = mailbox
                .claim("codex", &format!("w{worker}"), false)
                .await
                .unwrap()
            {
                mailbox
                    .finish_job(
                        &claim,
                        JobOutcome::Completed {
                            result: "ok".into(),
                            branch: None,
                        },
                    )
                    .await
                    .unwrap();
                done.push(claim.job.id);
            }
            done
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    all.sort_unstable();
    let before = all.len();
    all.dedup();
    assert_eq!(before, 60, "every job completed");
    assert_eq!(all.len(), 60, "none twice");
}

/// Sessions opening one name at once, on two handles (two replicas), each get a name of their
/// own: no two live sessions ever act as one agent.
pub async fn concurrent_sessions_never_share_a_name(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let other = w.sibling(b.open().await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let mailbox = if i % 2 == 0 {
            w.mailbox.clone()
        } else {
            other.mailbox.clone()
        };
        tasks.spawn(async move {
            let s = mailbox
                .open_session(OpenSession {
                    name: PeerName::parse("claude-webapp").unwrap(),
                    kind: PeerKind::Agent,
                    info: PeerInfo::default(),
                    policy: NamePolicy::Suffix,
                    client_pid: None,
                })
                .await
                .unwrap();
            (s.peer.name.clone(), s)
        });
    }
    let mut names = Vec::new();
    let mut sessions = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (name, s) = r.unwrap();
        names.push(name);
        sessions.push(s);
    }
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "two sessions share a name: {names:?}");
    assert!(names.contains(&"claude-webapp".to_owned()), "{names:?}");
}

/// Two answers to one question racing on two handles: exactly one wins, the other is told the
/// question is closed, and the asker gets one reply.
pub async fn racing_answers_close_a_question_once(b: &dyn Backend) {
    use switchboard_proto::Basis;
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let other = w.sibling(b.open().await);
    for round in 0..5 {
        let q = w
            .mailbox
            .ask(alice.peer.id, ask_of("bob", &format!("port {round}?")))
            .await
            .unwrap();
        let (m1, m2) = (w.mailbox.clone(), other.mailbox.clone());
        let bob_id = bob.peer.id;
        let first = tokio::spawn(async move {
            m1.reply(bob_id, q.id, answer_with("8080", Basis::Verified, &[]))
                .await
        });
        let second = tokio::spawn(async move {
            m2.reply(bob_id, q.id, answer_with("9090", Basis::FromMemory, &[]))
                .await
        });
        let results = [first.await.unwrap(), second.await.unwrap()];
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "exactly one answer wins: {results:?}");
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(Error::Rejected(Rejection::QuestionClosed { .. })))),
            "{results:?}"
        );
    }
    let replies = w.mailbox.lease(&alice, 100, false).await.unwrap();
    assert_eq!(replies.len(), 5, "one reply per question: {replies:?}");
}

/// Asserts `result` failed as "no such peer id", in the not-found class.
fn unknown_peer_id<T: std::fmt::Debug>(result: Result<T, Error>, id: i64, what: &str) {
    match result {
        Err(Error::Rejected(Rejection::UnknownPeerId { id: got })) if got == id => {}
        other => panic!("{what}: expected unknown peer id {id}, got {other:?}"),
    }
}

/// Asserts `result` failed in the not-found class.
fn not_found<T: std::fmt::Debug>(result: Result<T, Error>, what: &str) {
    match result {
        Err(e) if e.failure() == switchboard_core::Failure::NotFound => {}
        other => panic!("{what}: expected a not-found refusal, got {other:?}"),
    }
}

pub async fn unknown_ids_are_refused_as_unknown_by_every_operation(b: &dyn Backend) {
    use switchboard_core::{JobQuery, QuestionQuery, Reply};
    use switchboard_proto::{Basis, JobClaim};
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let asked = w
        .mailbox
        .ask(alice.peer.id, ask_of("bob", "which port?"))
        .await
        .unwrap();
    let before = w.mailbox.stats().await.unwrap();
    let ghost = alice.peer.id.max(bob.peer.id) + 1_000;
    let m = &w.mailbox;

    unknown_peer_id(
        m.send(ghost, Outgoing::to_peer("bob", "hi")).await,
        ghost,
        "send",
    );
    unknown_peer_id(
        m.send(
            ghost,
            Outgoing {
                to: Target::Broadcast(Scope::Room),
                ..Outgoing::to_peer("bob", "hi all")
            },
        )
        .await,
        ghost,
        "broadcast",
    );
    unknown_peer_id(m.ask(ghost, ask_of("bob", "q?")).await, ghost, "ask");
    let answer = Reply::Answer {
        text: "8080".into(),
        basis: Basis::FromMemory,
        sources: vec![],
    };
    unknown_peer_id(
        m.reply(ghost, asked.id, answer.clone()).await,
        ghost,
        "reply to a real question",
    );
    unknown_peer_id(
        m.reply(ghost, asked.id + 999, answer.clone()).await,
        ghost,
        "reply to no question",
    );
    let query = QuestionQuery {
        asked: true,
        received: true,
        open_only: false,
        limit: 10,
    };
    unknown_peer_id(m.questions(ghost, query).await, ghost, "questions");
    unknown_peer_id(m.question(ghost, asked.id).await, ghost, "question");
    unknown_peer_id(
        m.dispatch(ghost, job("codex", "x")).await,
        ghost,
        "dispatch",
    );
    unknown_peer_id(m.ack(ghost, &[asked.id]).await, ghost, "ack");
    unknown_peer_id(m.sent(ghost, SentQuery::Recent(10)).await, ghost, "sent");
    unknown_peer_id(
        m.sent(ghost, SentQuery::One(asked.id)).await,
        ghost,
        "sent one",
    );
    unknown_peer_id(m.set_summary(ghost, "who?").await, ghost, "set_summary");
    unknown_peer_id(m.rename(ghost, "phantom").await, ghost, "rename");
    let mut ghost_session = bob.clone();
    ghost_session.peer.id = ghost;
    unknown_peer_id(m.lease(&ghost_session, 10, true).await, ghost, "lease");
    let log = LogQuery {
        after: 0,
        peer: Some(ghost),
        limit: 10,
    };
    unknown_peer_id(m.log(log).await, ghost, "log of a peer");
    let jobs = JobQuery {
        dispatcher: Some(ghost),
        agent: None,
        active_only: false,
        limit: 10,
    };
    unknown_peer_id(m.jobs(jobs).await, ghost, "jobs of a dispatcher");

    // Unknown message, question and job ids, by a peer that exists.
    let nothing = asked.id + 1_000;
    not_found(
        m.sent(alice.peer.id, SentQuery::One(nothing)).await,
        "sent one",
    );
    not_found(m.question(bob.peer.id, nothing).await, "question");
    not_found(m.reply(bob.peer.id, nothing, answer).await, "reply");
    not_found(m.ack(bob.peer.id, &[nothing]).await, "ack");
    let mut reply_to = Outgoing::to_peer("alice", "re");
    reply_to.reply_to = Some(nothing);
    not_found(m.send(bob.peer.id, reply_to).await, "reply_to");
    not_found(m.job(nothing).await, "job");
    not_found(m.cancel_job(nothing).await, "cancel_job");
    not_found(m.requeue_job(nothing).await, "requeue_job");
    let real = m.dispatch(alice.peer.id, job("codex", "x")).await.unwrap();
    let claim = JobClaim {
        job: switchboard_proto::JobView {
            id: nothing,
            ..real
        },
        fence: 1,
        lease_until: 0,
    };
    not_found(m.start_job(&claim).await, "start_job");
    not_found(m.heartbeat(&claim).await, "heartbeat");
    not_found(m.release_job(&claim).await, "release_job");
    let failed = switchboard_core::JobOutcome::Failed { error: "x".into() };
    not_found(m.finish_job(&claim, failed).await, "finish_job");

    let after = w.mailbox.stats().await.unwrap();
    assert_eq!(after.messages, before.messages, "nothing was written");
    let names: Vec<String> = m
        .peers()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["alice", "bob"], "no peer appeared or changed name");
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
        assert_eq!(w.mailbox.lease(&bob, 10, false).await.unwrap().len(), 1);
    }
    assert_eq!(attempts(&w).await, (DeliveryState::Queued, 1));
    // A lapse is an attempt lost, even for the same session; renewing after it is free again.
    let lease_ms = switchboard_core::policy::ms(w.mailbox.limits().lease);
    w.clock.advance_ms(lease_ms + 1);
    assert_eq!(w.mailbox.lease(&bob, 10, false).await.unwrap().len(), 1);
    w.clock.advance_ms(lease_ms * 3 / 4);
    assert_eq!(w.mailbox.lease(&bob, 10, false).await.unwrap().len(), 1);
    assert_eq!(attempts(&w).await, (DeliveryState::Queued, 2));
    // The renewal extended the lease past where the first one ended: another session of the
    // peer still cannot take the item.
    let bob2 = w.session("bob", PeerKind::Agent, NamePolicy::Join).await;
    w.clock.advance_ms(lease_ms / 2);
    assert!(w.mailbox.lease(&bob2, 10, false).await.unwrap().is_empty());
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
        assert_eq!(w.mailbox.lease(&bob2, 10, false).await.unwrap().len(), 1);
        w.clock.advance_ms(lease_ms + 1);
    }
    assert!(w.mailbox.lease(&bob2, 10, false).await.unwrap().is_empty());
    let view = only_sent(&w, alice.peer.id, doomed.id).await;
    assert_eq!(state_of(&view, "bob"), DeliveryState::Dead);
}
