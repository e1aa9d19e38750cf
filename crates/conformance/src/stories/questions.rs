//! Questions and answers: one grounded answer (or a decline) per question, from the peer asked.

use std::time::Duration;

use switchboard_core::{Error, Exchange, Rejection, Run, SentQuery, op};
use switchboard_proto::{DeliveryState, QuestionId};

use super::world;
use crate::{Backend, roomy_limits};

pub(super) fn ask_of(to: &str, question: &str) -> switchboard_core::Ask {
    switchboard_core::Ask {
        to: to.into(),
        question: question.into(),
        context_hint: None,
        ttl: None,
    }
}

pub(super) fn answer_with(
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

    let got = w.lease(&bob).await;
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

    let back = w.lease(&alice).await;
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].kind, ItemKind::Answer);
    assert_eq!(back[0].reply_to, Some(q.id.into()));
    let grounding = back[0]
        .grounding
        .as_ref()
        .expect("grounding travels with the answer");
    assert_eq!(grounding.basis, Basis::Verified);
    assert_eq!(grounding.sources, ["src/auth/session.ts:42", "a1b2c3d"]);
    let asked = w
        .mailbox
        .sent(alice.peer.id, SentQuery::One(q.id.into()))
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
            QuestionId(q.id.0 + 999),
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
    let back = w.lease(&alice).await;
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
    let told = w.lease(&alice).await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].kind, ItemKind::Expired);
    assert_eq!(told[0].reply_to, Some(q.id.into()));
    assert!(w.lease(&alice).await.len() <= 1, "one notice");
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
    // The room's view (a room token's, over a relay): every question once, newest first,
    // whoever asked; the limit and `open_only` hold, `asked` and `received` say nothing.
    let q3 = w
        .mailbox
        .ask(carol.peer.id, ask_of("bob", "three"))
        .await
        .unwrap();
    let nobody = QuestionQuery {
        asked: false,
        received: false,
        ..all
    };
    assert_eq!(
        ids(w.mailbox.room_questions(nobody).await.unwrap()),
        [q3.id, q2.id, q1.id]
    );
    let newest = QuestionQuery { limit: 2, ..all };
    assert_eq!(
        ids(w.mailbox.room_questions(newest).await.unwrap()),
        [q3.id, q2.id]
    );
    assert_eq!(
        ids(w.mailbox.room_questions(open).await.unwrap()),
        [q3.id, q2.id]
    );
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
    let replies = w.mailbox.run(op::Lease::new(&alice, 100)).await.unwrap();
    assert_eq!(replies.len(), 5, "one reply per question: {replies:?}");
}

/// This area's stories, expanded by [`conformance_suite!`](crate::conformance_suite). A new
/// story is a `pub async fn` above and one line in this list.
#[doc(hidden)]
#[macro_export]
macro_rules! conformance_questions {
    ($backend:expr) => {
        $crate::conformance_stories!($backend; questions;
            question_and_grounded_answer_reach_each_side,
            a_question_is_answered_once_and_only_by_the_peer_asked,
            a_decline_tells_the_asker_why,
            an_unanswered_question_expires_and_the_asker_is_told,
            bad_questions_and_answers_change_nothing,
            questions_list_by_role_and_state,
            racing_answers_close_a_question_once,
        );
    };
}
