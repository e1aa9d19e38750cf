//! Wake-ups and the room log: how a waiter, in this process or another, learns of a change.

use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use switchboard_core::{Exchange, LogQuery, Outgoing, Wake};
use switchboard_proto::MessageId;

use super::world;
use crate::{Backend, roomy_limits};

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

/// The dashboard shows each copy's state: a hand-over and a read ring a [`Wake::Copies`] that
/// reaches another handle (another process, another replica), and no inbox waiter stirs on it.
pub async fn a_hand_over_and_a_read_ring_a_copies_wake_on_another_handle(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    let other = b.open().await;
    let mut wakes = other.subscribe();
    // The other handle hears mail once its listener is bound: mail is sent until a wake for
    // it arrives there, so the test knows (rather than hopes) that it is listening.
    for attempt in 1.. {
        assert!(attempt <= 60, "the other handle never heard of any mail");
        w.mailbox
            .send(alice.peer.id, Outgoing::to_peer("bob", "read me"))
            .await
            .unwrap();
        let heard = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                match wakes.recv().await {
                    Ok(w) if w.concerns(bob.peer.id) => return,
                    Err(RecvError::Closed) => panic!("the other handle's wakes ended"),
                    _ => {}
                }
            }
        });
        if heard.await.is_ok() {
            break;
        }
    }
    let items = w.lease(&bob).await;
    let ids: Vec<MessageId> = items.iter().map(|i| i.id).collect();
    assert!(!ids.is_empty());
    assert_eq!(
        w.mailbox.mark_delivered(&bob, &ids).await.unwrap(),
        ids.len() as u64
    );
    next_copies(&mut wakes).await;
    assert_eq!(
        w.mailbox.ack(bob.peer.id, &ids).await.unwrap(),
        ids.len() as u64
    );
    next_copies(&mut wakes).await;
}

/// Waits for the next [`Wake::Copies`], passing over the others.
async fn next_copies(wakes: &mut tokio::sync::broadcast::Receiver<Wake>) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match wakes.recv().await {
                Ok(Wake::Copies) => return,
                Ok(_) => continue,
                Err(e) => panic!("wake channel failed: {e}"),
            }
        }
    })
    .await
    .expect("a copies wake reaches the other handle");
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
            after: MessageId(0),
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
            after: MessageId(0),
            peer: Some(bob.id),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(bobs.iter().map(|e| e.id).collect::<Vec<_>>(), vec![m1.id]);
}

/// This area's stories, expanded by [`conformance_suite!`](crate::conformance_suite). A new
/// story is a `pub async fn` above and one line in this list.
#[doc(hidden)]
#[macro_export]
macro_rules! conformance_events {
    ($backend:expr) => {
        $crate::conformance_stories!($backend; events;
            wake_crosses_handles,
            a_hand_over_and_a_read_ring_a_copies_wake_on_another_handle,
            log_follows_a_cursor_and_a_peer,
        );
    };
}
