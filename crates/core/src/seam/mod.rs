//! The storage seam: what a backend must do, one method per SQL statement.
//!
//! The rules of the store — what a send checks and in which order, how a lease takes an item,
//! when a job is buried — live once, in [`crate::procedures`], written against the statement
//! traits of this module. A backend (embedded SQLite, Postgres) implements the statements with
//! its own SQL, one file per table (one trait per table here, and one for the housekeeping
//! that spans them), and [`Backend::transact`]: how it runs one procedure as one transaction
//! (SQLite on its writer thread with group commit, Postgres on a pooled connection with
//! retries of lost races). The [`Store`](crate::Store) every caller uses is then written once,
//! for every backend, in [`store`].
//!
//! A statement method returns a future so one procedure serves both kinds of backend; the
//! embedded store's statements run synchronously and their futures are ready at once.

mod admission;
pub mod columns;
mod deliveries;
mod fault;
mod jobs;
mod messages;
mod peers;
mod questions;
mod reservations;
mod sessions;
mod store;
mod tokens;
mod upkeep;

pub use admission::{AdmissionStatements, AdmitTo, Admitted, Admitting, party_ids};
pub use columns::{Cell, Col, ColumnError, Columns, Decode};
pub use deliveries::{
    CANDIDATE_COLUMNS, CANDIDATE_JOINS, DeliveryStatements, Handover, LeaseCandidate, Leasing,
    RECIPIENT_COLUMNS, candidate, recipient_state,
};
pub use fault::panicked;
pub use jobs::{
    JOB_COLUMNS, JOB_FROM, JobRow, JobStatements, RunOutcome, SETTLED_COLUMNS, Settled, job,
    job_view, lapsed_job, queued_job, settled,
};
pub use messages::{
    LOG_COLUMNS, LOG_FROM, MessageRow, MessageStatements, SENT_COLUMNS, log_entry, sent_message,
};
pub use peers::{
    NewPeer, PARTY_COLUMNS, PEER_COLUMNS, Party, PeerStatements, id_kind, info_values, party, peer,
};
pub use questions::{
    Closing, EXPIRING_COLUMNS, EXPIRING_FROM, Expiring, QUESTION_COLUMNS, QUESTION_FROM,
    QuestionList, QuestionRow, QuestionStatements, expiring, question,
};
pub use reservations::{
    RESERVATION_COLUMNS, RESERVATION_FROM, ReservationStatements, globs_text, reservation,
};
pub use sessions::{NewSession, SessionStatements};
pub use tokens::{TOKEN_COLUMNS, TokenBackend, TokenStatements, grant_values, token};
pub use upkeep::{
    COUNT_JOBS, COUNTS_COLUMNS, Counts, UpkeepStatements, counts, state_count, version,
};

use std::future::Future;
use std::pin::Pin;

use tokio::sync::broadcast;

use crate::error::Rejection;
use crate::store::{PeerId, StoreError, StoreResult};
use crate::wake::Wake;

/// A future a procedure returns, borrowing the transaction it runs in.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What every transaction keeps beside its connection, whatever the backend.
#[derive(Debug, Default)]
pub struct Pending {
    /// The wakes to send once the transaction commits.
    pub wakes: Vec<Wake>,
    /// Whether this transaction may write (a read-only store, or a read, may not).
    pub writable: bool,
}

/// One open transaction of a backend: where statements run and wakes are collected until the
/// commit.
pub trait Statements: Send {
    /// The backend's own failure inside a transaction: it keeps the database's error as is, so
    /// the backend can tell a lost race (run the procedure again) from a real fault.
    type Error: From<Rejection> + From<StoreError> + From<ColumnError> + Send + 'static;

    fn pending(&mut self) -> &mut Pending;

    /// Records a wake to send once the transaction commits.
    fn wake(&mut self, wake: Wake) {
        self.pending().wakes.push(wake);
    }

    fn writable(&mut self) -> bool {
        self.pending().writable
    }
}

/// Every statement a procedure may run.
pub trait Executor:
    AdmissionStatements
    + PeerStatements
    + SessionStatements
    + MessageStatements
    + DeliveryStatements
    + QuestionStatements
    + JobStatements
    + ReservationStatements
    + UpkeepStatements
{
}

impl<X> Executor for X where
    X: AdmissionStatements
        + PeerStatements
        + SessionStatements
        + MessageStatements
        + DeliveryStatements
        + QuestionStatements
        + JobStatements
        + ReservationStatements
        + UpkeepStatements
{
}

/// What a procedure does to the store, which decides the transaction it runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only: a snapshot, off the writer.
    Read,
    /// Writes: fails on a store opened read-only.
    Write,
    /// Reads, after tidying up what it can (ending sessions whose process died): a write when
    /// the store can be written, else a read of what is recorded.
    Tidy,
    /// A write that reads what other writes change only in its admission
    /// ([`AdmissionStatements::admit`], which names the parties it locks): a send to given
    /// peers. A backend may run several at once in one transaction, holding one back while
    /// another has one of its parties, as the Postgres lane does; one that refuses after it
    /// wrote (an unknown name ends dead sessions to list the names there are) is undone as
    /// any failed write. To any other backend, a write.
    Admitted,
    /// A write to the copies of one peer (a lease, a hand-over, a read) whose reads only other
    /// writes to that peer's copies make stale: a send adds a copy (a lease that missed it
    /// ran before the send) and raises the queued count with a relative update, which no
    /// write of this kind reads. A backend may run it at once with sends and with such writes
    /// to other peers in one transaction, their statements interleaved, and runs those to the
    /// same peer one after another, as the Postgres lane does. One that fails, or refuses
    /// after it wrote, is undone as any failed write. To any other backend, a write.
    Mail(PeerId),
}

/// The result of one statement or procedure inside a transaction of `X`.
pub type Step<T, X> = Result<T, <X as Statements>::Error>;

/// A procedure as a backend runs it: a function of the transaction, which the backend may call
/// more than once (a lost race rolls back and runs it again).
pub trait Procedure<X: Statements, T>:
    for<'x> Fn(&'x mut X) -> BoxFuture<'x, Step<T, X>> + Send + Sync + 'static
{
}

impl<X: Statements, T, P> Procedure<X, T> for P where
    P: for<'x> Fn(&'x mut X) -> BoxFuture<'x, Step<T, X>> + Send + Sync + 'static
{
}

/// A storage backend: how it runs procedures, and how it tells of commits.
pub trait Backend: Send + Sync + 'static {
    type Tx: Executor + 'static;

    /// Where the data lives, for humans (a path or a redacted URL).
    fn describe(&self) -> String;

    /// Wakes for changes committed by this process or any other process sharing the store.
    fn subscribe(&self) -> broadcast::Receiver<Wake>;

    /// Runs `procedure` as one transaction that commits whole or changes nothing, and returns
    /// only once the commit is durable. A backend may run it more than once (a lost race rolls
    /// back and runs again), so it must not act outside the transaction.
    fn transact<T: Send + 'static>(
        &self,
        access: Access,
        procedure: impl Procedure<Self::Tx, T>,
    ) -> impl Future<Output = StoreResult<T>> + Send;
}
