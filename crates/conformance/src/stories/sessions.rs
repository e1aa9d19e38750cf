//! Sessions and peers: names, liveness, and what a session's end releases.

use switchboard_core::{Error, Exchange, NamePolicy, OpenSession, Outgoing, Rejection, Run, op};
use switchboard_proto::{PeerInfo, PeerKind, PeerName, Target};

use super::world;
use crate::{Backend, roomy_limits};

pub async fn closing_a_session_releases_its_leases(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    w.mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "x"))
        .await
        .unwrap();
    assert_eq!(w.lease(&bob).await.len(), 1);
    w.mailbox.close_session(bob.id).await.unwrap();
    let bob2 = w.agent("bob").await;
    assert_eq!(bob2.peer.id, bob.peer.id, "the name is reclaimed");
    assert_eq!(w.lease(&bob2).await.len(), 1);
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
    assert_eq!(w1.lease(&bob).await.len(), 1);
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
    let items = w2.lease(&bob2).await;
    assert_eq!(
        items.len(),
        1,
        "the dead session's lease is released at once"
    );
    assert_eq!(items[0].id, sent.id);
    w2.mailbox.mark_delivered(&bob2, &[sent.id]).await.unwrap();
    assert!(w2.lease(&bob2).await.is_empty());
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
    let items = w.lease(&bob).await;
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

pub async fn peers_online_only_leaves_out_peers_without_a_live_session(b: &dyn Backend) {
    let w = world(b, roomy_limits()).await;
    let _alice = w.agent("alice").await;
    let bob = w.agent("bob").await;
    w.mailbox.close_session(bob.id).await.unwrap();
    let names = |peers: Vec<switchboard_core::PeerRecord>| {
        let mut names: Vec<String> = peers.into_iter().map(|p| p.name).collect();
        names.sort();
        names
    };
    let live = op::Peers { online_only: true };
    assert_eq!(names(w.mailbox.run(live).await.unwrap()), ["alice"]);
    assert_eq!(names(w.mailbox.peers().await.unwrap()), ["alice", "bob"]);
}

/// This area's stories, expanded by [`conformance_suite!`](crate::conformance_suite). A new
/// story is a `pub async fn` above and one line in this list.
#[doc(hidden)]
#[macro_export]
macro_rules! conformance_sessions {
    ($backend:expr) => {
        $crate::conformance_stories!($backend; sessions;
            closing_a_session_releases_its_leases,
            dead_process_frees_its_name_and_its_leases,
            live_name_gets_a_suffix_and_offline_name_is_reclaimed,
            rename_keeps_mail_and_refuses_taken_names,
            client_process_finds_its_live_peer,
            concurrent_sessions_never_share_a_name,
            peers_online_only_leaves_out_peers_without_a_live_session,
        );
    };
}
