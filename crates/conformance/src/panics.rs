//! A procedure that panics, run by a backend's writer beside other writes, or as a read. Not
//! a story of
//! [`conformance_suite!`](crate::conformance_suite): it needs the backend's own type (a
//! procedure is run through [`seam::Backend::transact`], which a `dyn Store` does not offer),
//! so each backend's test file calls it with its store.

use std::sync::Arc;

use switchboard_core::seam::{self, Access, Statements, Step};
use switchboard_core::{Exchange, Outgoing, Run, Store, StoreError, op};

use crate::{World, roomy_limits};

/// How many sends race the panicking write.
const BESIDE: usize = 16;

fn deliberate<T>() -> T {
    panic!("a deliberate panic in a store procedure")
}

/// Panics while its future runs.
fn panicking<X: Statements>(_: &mut X) -> seam::BoxFuture<'_, Step<(), X>> {
    Box::pin(async { deliberate() })
}

/// Panics before it returns a future.
fn panicking_at_call<X: Statements>(_: &mut X) -> seam::BoxFuture<'_, Step<(), X>> {
    deliberate()
}

fn assert_names_the_panic<T: std::fmt::Debug>(failed: Result<T, StoreError>) {
    match failed {
        Err(StoreError::Backend(why)) => assert!(
            why.contains("panicked") && why.contains("deliberate panic"),
            "the error names the panic: {why}"
        ),
        other => panic!("a panicking write must fail as a backend error, got {other:?}"),
    }
}

/// Regression: a panicking procedure used to end the thread that runs every write of the
/// process (the embedded writer, the Postgres write lane); the writes of its batch and every
/// later one then failed as `Closed` until the process restarted. Now the panicking write
/// fails alone, with an error saying so, and every other write commits.
pub async fn a_panicking_write_fails_alone_and_the_writer_carries_on_regression<B>(backend: Arc<B>)
where
    B: seam::Backend,
{
    let w = World::new(Arc::clone(&backend) as Arc<dyn Store>, roomy_limits());
    let alice = w.agent("alice").await;
    let bob = w.agent("bob").await;

    // Sends queued beside the panicking write, so that some share its batch.
    let senders = [alice.peer.id];
    let (sent, failed) = tokio::join!(
        w.race_to_bob(&senders, BESIDE),
        backend.transact(Access::Write, panicking::<B::Tx>)
    );
    assert_names_the_panic(failed);
    for outcome in sent {
        outcome.expect("a send beside the panic commits");
    }
    assert_names_the_panic(
        backend
            .transact(Access::Write, panicking_at_call::<B::Tx>)
            .await,
    );

    // The writer still serves writes after the panic.
    w.mailbox
        .send(alice.peer.id, Outgoing::to_peer("bob", "after"))
        .await
        .expect("a send after the panic commits");
    let leased = w
        .mailbox
        .run(op::Lease::new(&bob, 100))
        .await
        .expect("lease");
    let texts: Vec<String> = leased.into_iter().map(|item| item.text).collect();
    assert_eq!(
        texts.len(),
        BESIDE + 1,
        "every send arrived once: {texts:?}"
    );
    assert!(texts.iter().any(|t| t == "after"));
}

/// Regression: on Postgres a read ran in its caller's task, so a read procedure that panicked
/// took that task down with it (a relay's request, say) instead of failing. A panicking read
/// fails with an error that names the panic, and the store goes on answering.
pub async fn a_panicking_read_fails_as_an_error_regression<B>(backend: Arc<B>)
where
    B: seam::Backend,
{
    let w = World::new(Arc::clone(&backend) as Arc<dyn Store>, roomy_limits());
    let alice = w.agent("alice").await;
    assert_names_the_panic(backend.transact(Access::Read, panicking::<B::Tx>).await);
    assert_names_the_panic(
        backend
            .transact(Access::Read, panicking_at_call::<B::Tx>)
            .await,
    );
    w.mailbox
        .send(alice.peer.id, Outgoing::to_peer("alice", "still here"))
        .await
        .expect("a send after the panicking reads commits");
}
