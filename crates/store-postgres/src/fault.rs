//! Turns Postgres errors into the store errors a user can act on, and tells which ones mean
//! "another transaction got there first, run it again".

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use tokio_postgres::error::SqlState;

use switchboard_core::{StoreError, seam};

switchboard_core::op_error!(Pg(tokio_postgres::Error), classify);

impl OpError {
    /// True when the transaction lost a race that running it again resolves: a serialization
    /// failure, a deadlock, or a unique key another transaction inserted meanwhile (the retry
    /// then finds that row and answers as if it had been there all along).
    pub fn is_conflict(&self) -> bool {
        let Self::Pg(e) = self else { return false };
        matches!(
            e.code(),
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::UNIQUE_VIOLATION
        )
    }
}

/// Runs a procedure's future; a panic in it counts as the procedure failing, with an error
/// that names the panic. Every caller undoes a failed procedure (its savepoint or its whole
/// transaction), so nothing a panicking one changed survives, which is why asserting unwind
/// safety is sound. The call that makes the future belongs inside `run`: a procedure may
/// panic before it returns its future.
pub async fn caught<T>(run: impl Future<Output = OpResult<T>>) -> OpResult<T> {
    match AssertUnwindSafe(run).catch_unwind().await {
        Ok(out) => out,
        Err(payload) => Err(OpError::Store(seam::panicked(payload.as_ref()))),
    }
}

/// A Postgres error as a store error, naming the (redacted) database. Codes are matched one by
/// one, never the text: a full disk and a lost connection are told apart from a bug.
pub fn classify(e: &tokio_postgres::Error, shown: &str) -> StoreError {
    let path = shown.to_owned();
    // A connection that was up and then dropped (a restart, a failover, a killed backend).
    if e.is_closed() {
        return StoreError::Unreachable {
            path,
            detail: chain(e),
        };
    }
    // No code and no server error: the connection could not be made at all.
    let Some(code) = e.code() else {
        return StoreError::Open {
            path,
            detail: chain(e),
        };
    };
    match code {
        c if *c == SqlState::DISK_FULL => StoreError::Full {
            path,
            remedy: format!(
                "free space on the Postgres server's disk (it said: {})",
                e.as_db_error()
                    .map_or_else(|| chain(e), |d| d.message().to_owned())
            ),
        },
        c if *c == SqlState::READ_ONLY_SQL_TRANSACTION => StoreError::ReadOnly { path },
        c if *c == SqlState::LOCK_NOT_AVAILABLE
            || *c == SqlState::QUERY_CANCELED
            // Still losing races after every retry: contention, which passes.
            || *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            StoreError::Busy { path }
        }
        c if c.code().starts_with("08")
            || *c == SqlState::ADMIN_SHUTDOWN
            || *c == SqlState::CRASH_SHUTDOWN
            || *c == SqlState::CANNOT_CONNECT_NOW
            || *c == SqlState::TOO_MANY_CONNECTIONS =>
        {
            StoreError::Unreachable {
                path,
                detail: chain(e),
            }
        }
        _ => StoreError::Backend(chain(e)),
    }
}

/// The error with its causes, which tokio-postgres keeps apart (`db error` alone says nothing).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
