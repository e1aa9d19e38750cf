//! Refusals that cut across areas: unknown ids are refused as unknown by every operation.

use switchboard_core::{Error, Exchange, LogQuery, Outgoing, Rejection, Run, SentQuery, op};
use switchboard_proto::{JobId, MessageId, PeerId, QuestionId, Scope, Target};

use super::jobs::job;
use super::questions::ask_of;
use super::world;
use crate::{Backend, roomy_limits};

/// Asserts `result` failed as "no such peer id", in the not-found class.
fn unknown_peer_id<T: std::fmt::Debug>(result: Result<T, Error>, id: PeerId, what: &str) {
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
    let ghost = PeerId(alice.peer.id.max(bob.peer.id).0 + 1_000);
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
        m.reply(ghost, QuestionId(asked.id.0 + 999), answer.clone())
            .await,
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
    unknown_peer_id(m.ack(ghost, &[asked.id.into()]).await, ghost, "ack");
    unknown_peer_id(m.sent(ghost, SentQuery::Recent(10)).await, ghost, "sent");
    unknown_peer_id(
        m.sent(ghost, SentQuery::One(asked.id.into())).await,
        ghost,
        "sent one",
    );
    unknown_peer_id(m.set_summary(ghost, "who?").await, ghost, "set_summary");
    unknown_peer_id(m.rename(ghost, "phantom").await, ghost, "rename");
    let mut ghost_session = bob.clone();
    ghost_session.peer.id = ghost;
    unknown_peer_id(
        m.run(op::Lease {
            include_seen: true,
            ..op::Lease::new(&ghost_session, 10)
        })
        .await,
        ghost,
        "lease",
    );
    let log = LogQuery {
        after: MessageId(0),
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
    let nothing = asked.id.0 + 1_000;
    not_found(
        m.sent(alice.peer.id, SentQuery::One(MessageId(nothing)))
            .await,
        "sent one",
    );
    not_found(
        m.question(bob.peer.id, QuestionId(nothing)).await,
        "question",
    );
    not_found(
        m.reply(bob.peer.id, QuestionId(nothing), answer).await,
        "reply",
    );
    not_found(m.ack(bob.peer.id, &[MessageId(nothing)]).await, "ack");
    let mut reply_to = Outgoing::to_peer("alice", "re");
    reply_to.reply_to = Some(MessageId(nothing));
    not_found(m.send(bob.peer.id, reply_to).await, "reply_to");
    not_found(m.job(JobId(nothing)).await, "job");
    not_found(m.cancel_job(JobId(nothing)).await, "cancel_job");
    not_found(m.requeue_job(JobId(nothing)).await, "requeue_job");
    let real = m.dispatch(alice.peer.id, job("codex", "x")).await.unwrap();
    let claim = JobClaim {
        job: switchboard_proto::JobView {
            id: JobId(nothing),
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

/// This area's stories, expanded by [`conformance_suite!`](crate::conformance_suite). A new
/// story is a `pub async fn` above and one line in this list.
#[doc(hidden)]
#[macro_export]
macro_rules! conformance_refusals {
    ($backend:expr) => {
        $crate::conformance_stories!($backend; refusals;
            unknown_ids_are_refused_as_unknown_by_every_operation,
        );
    };
}
