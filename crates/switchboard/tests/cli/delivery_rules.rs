//! The rules of `switchboard_core::delivery` — which items a take includes, how many, what is
//! handed over after a show step, what is acknowledged — run in this process against a real
//! store (SQLite in a temporary directory), since the core crate has no store of its own.

use std::convert::Infallible;
use std::sync::Arc;

use switchboard_core::delivery::{self, DeliveryError, Request};
use switchboard_core::{Exchange, Limits, Mailbox, Outgoing, SentQuery};
use switchboard_proto::{DeliveryState, InboxItem, MessageId, PeerId};
use switchboard_store_sqlite::SqliteStore;

use crate::harness::agent;

struct Room {
    mailbox: Mailbox,
    alice: PeerId,
    _dir: tempfile::TempDir,
}

impl Room {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mailbox = Mailbox::new(Arc::new(store), Limits::default());
        let alice = mailbox.operator("alice").await.unwrap().id;
        // bob exists once one of his sessions opened.
        let bob = mailbox.open_session(agent("bob")).await.unwrap();
        mailbox.close_session(bob.id).await.unwrap();
        Self {
            mailbox,
            alice,
            _dir: dir,
        }
    }

    async fn session(&self) -> switchboard_core::Session {
        self.mailbox.open_session(agent("bob")).await.unwrap()
    }

    async fn send(&self, text: &str) -> MessageId {
        let out = Outgoing::to_peer("bob", text);
        self.mailbox.send(self.alice, out).await.unwrap().id
    }

    /// bob's copy of a message, as alice sees it: its state and delivery attempts.
    async fn state(&self, id: MessageId) -> (DeliveryState, u32) {
        let sent = self
            .mailbox
            .sent(self.alice, SentQuery::One(id))
            .await
            .unwrap();
        let copy = &sent[0].recipients[0];
        (copy.state, copy.attempts)
    }
}

/// A show step that puts everything in front of its reader.
async fn all(items: Vec<InboxItem>) -> Result<Vec<InboxItem>, Infallible> {
    Ok(items)
}

fn ids(items: &[InboxItem]) -> Vec<MessageId> {
    items.iter().map(|i| i.id).collect()
}

#[tokio::test]
async fn an_automatic_take_shows_an_item_once_and_a_pull_lists_it_again_as_seen() {
    let room = Room::new().await;
    let a = room.send("one").await;
    let b = room.send("two").await;
    let s = room.session().await;

    let auto = Request::automatic();
    let first = delivery::deliver(&room.mailbox, &s, &auto, all)
        .await
        .unwrap();
    assert_eq!(ids(&first.items), [a, b]);
    assert!(first.items.iter().all(|i| !i.seen_before));
    assert_eq!(first.handed_over, 2);
    assert_eq!(room.state(a).await, (DeliveryState::Delivered, 1));

    let second = delivery::deliver(&room.mailbox, &s, &auto, all)
        .await
        .unwrap();
    assert!(second.items.is_empty(), "never twice on an automatic path");

    // Another session of the same peer: the automatic rule is per peer, not per session.
    let other = room.session().await;
    let third = delivery::deliver(&room.mailbox, &other, &auto, all)
        .await
        .unwrap();
    assert!(third.items.is_empty());

    let pull = delivery::deliver(&room.mailbox, &other, &Request::pull(None), all)
        .await
        .unwrap();
    assert_eq!(ids(&pull.items), [a, b], "a pull lists every unread item");
    assert!(pull.items.iter().all(|i| i.seen_before));
    assert_eq!(
        pull.handed_over, 0,
        "seen-before items are not handed over again"
    );
    assert_eq!(pull.acked, 0, "a pull acknowledges only when asked");
    assert_eq!(room.state(a).await, (DeliveryState::Delivered, 1));
}

#[tokio::test]
async fn only_what_the_show_step_reports_is_handed_over() {
    let room = Room::new().await;
    let a = room.send("reached the reader").await;
    let b = room.send("did not").await;
    let s = room.session().await;

    // A push that broke off after its first notification.
    let first_only = |items: Vec<InboxItem>| async move {
        Ok::<_, Infallible>(items.into_iter().take(1).collect())
    };
    let d = delivery::deliver(&room.mailbox, &s, &Request::automatic(), first_only)
        .await
        .unwrap();
    assert_eq!(ids(&d.items), [a]);
    assert_eq!(d.handed_over, 1);
    assert_eq!(room.state(a).await.0, DeliveryState::Delivered);
    assert_eq!(room.state(b).await.0, DeliveryState::Queued);

    // The rest comes with the next automatic delivery, and only the rest.
    let next = delivery::deliver(&room.mailbox, &s, &Request::automatic(), all)
        .await
        .unwrap();
    assert_eq!(ids(&next.items), [b]);
    assert_eq!(room.state(b).await, (DeliveryState::Delivered, 1));
}

#[tokio::test]
async fn a_show_step_that_fails_records_nothing_and_the_items_come_again() {
    let room = Room::new().await;
    let a = room.send("do not lose me").await;
    let s = room.session().await;

    let broken = |_: Vec<InboxItem>| async { Err::<Vec<InboxItem>, _>("stdout is gone") };
    let failed = delivery::deliver(&room.mailbox, &s, &Request::pull(None).acking(), broken)
        .await
        .unwrap_err();
    assert!(matches!(failed, DeliveryError::Show("stdout is gone")));
    assert_eq!(room.state(a).await, (DeliveryState::Queued, 1));

    // The session ends (its process died): the lease goes with it.
    room.mailbox.close_session(s.id).await.unwrap();
    let next = room.session().await;
    let d = delivery::deliver(&room.mailbox, &next, &Request::automatic(), all)
        .await
        .unwrap();
    assert_eq!(ids(&d.items), [a]);
    assert!(!d.items[0].seen_before);
    assert_eq!(room.state(a).await, (DeliveryState::Delivered, 2));
}

#[tokio::test]
async fn an_acking_pull_reads_what_it_showed_seen_before_or_not() {
    let room = Room::new().await;
    let pushed = room.send("pushed earlier").await;
    let s = room.session().await;
    delivery::deliver(&room.mailbox, &s, &Request::automatic(), all)
        .await
        .unwrap();
    let fresh = room.send("new").await;

    let d = delivery::deliver(&room.mailbox, &s, &Request::pull(None).acking(), all)
        .await
        .unwrap();
    assert_eq!(ids(&d.items), [pushed, fresh]);
    assert_eq!(d.handed_over, 1, "only the new item was leased");
    assert_eq!(d.acked, 2);
    assert_eq!(room.state(pushed).await.0, DeliveryState::Read);
    assert_eq!(room.state(fresh).await.0, DeliveryState::Read);

    let empty = delivery::deliver(&room.mailbox, &s, &Request::pull(None).acking(), all)
        .await
        .unwrap();
    assert!(empty.items.is_empty());
    assert_eq!(empty.acked, 0, "nothing shown, nothing acknowledged");
}

#[tokio::test]
async fn a_pull_takes_at_most_its_size() {
    let room = Room::new().await;
    let a = room.send("one").await;
    room.send("two").await;
    let s = room.session().await;
    let d = delivery::deliver(&room.mailbox, &s, &Request::pull(Some(1)), all)
        .await
        .unwrap();
    assert_eq!(ids(&d.items), [a]);
    // Zero would show nothing while mail waits: a pull always takes at least one.
    let d = delivery::deliver(&room.mailbox, &s, &Request::pull(Some(0)), all)
        .await
        .unwrap();
    assert_eq!(d.items.len(), 1);
}

#[tokio::test]
async fn a_recovering_take_returns_pushes_the_reader_never_saw_then_fresh_items() {
    let room = Room::new().await;
    let dropped = room.send("pushed, dropped by the client").await;
    let seen = room.send("pushed and shown").await;
    let s = room.session().await;
    delivery::deliver(&room.mailbox, &s, &Request::automatic(), all)
        .await
        .unwrap();
    let fresh = room.send("new").await;

    let reached = move |i: &InboxItem| i.id == seen;
    let recovering = Request::recovering(&reached);
    let d = delivery::deliver(&room.mailbox, &s, &recovering, all)
        .await
        .unwrap();
    assert_eq!(
        ids(&d.items),
        [dropped, fresh],
        "the dropped push and what is new, not what the reader saw"
    );
    assert_eq!(d.handed_over, 1, "the dropped push was handed over already");

    let everything = |_: &InboxItem| true;
    let d = delivery::deliver(&room.mailbox, &s, &Request::recovering(&everything), all)
        .await
        .unwrap();
    assert!(d.items.is_empty(), "all seen, nothing new");
}
