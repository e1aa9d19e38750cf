//! [`LiteTx`]: a connection of the embedded store, inside a transaction, as the seam's
//! [`Statements`] see it. The writer thread owns one for its whole life and lends it to each
//! write in turn (inside that write's savepoint); readers are pooled ones that cannot write.

use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use rusqlite::Connection;

use switchboard_core::StoreError;
use switchboard_core::seam::{Pending, Procedure, Statements};

use crate::fault::{OpError, OpResult};
use crate::liveness::Liveness;

pub struct LiteTx {
    pub(crate) conn: Connection,
    /// The wakes of the write running now (the writer takes them after each write).
    pub(crate) pending: Pending,
    /// This process's liveness: its sessions are stored under its key.
    pub(crate) live: Arc<Liveness>,
}

impl LiteTx {
    pub fn new(conn: Connection, live: Arc<Liveness>, writable: bool) -> Self {
        Self {
            conn,
            pending: Pending {
                wakes: Vec::new(),
                writable,
            },
            live,
        }
    }
}

/// Runs a procedure to its end here and now. Every statement of this store is synchronous, so a
/// procedure's future is ready on its first poll; no async runtime is needed on the writer
/// thread, a reader's, or the token file's.
pub fn run<X, T>(x: &mut X, procedure: &impl Procedure<X, T>) -> OpResult<T>
where
    X: Statements<Error = OpError>,
{
    let mut future = pin!(procedure(x));
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => out,
        Poll::Pending => Err(OpError::Store(StoreError::Backend(
            "an embedded store procedure waited, which it never should".into(),
        ))),
    }
}

impl Statements for LiteTx {
    type Error = OpError;

    fn pending(&mut self) -> &mut Pending {
        &mut self.pending
    }
}
