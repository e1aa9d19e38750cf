//! A backend's failure inside a transaction, its shape written once: [`op_error!`](crate::op_error)
//! defines it in the backend's own crate.

/// Defines `OpError` and `OpResult` in a backend's crate: what a statement or procedure fails
/// with inside a transaction. The driver's error is kept as is (the backend reads its code:
/// a lost race is run again, a full disk becomes [`StoreError::Full`](crate::StoreError)),
/// beside the store errors the rules raise. It is a macro, not a generic type here, because
/// `?` on a driver error needs `From<DriverError>` for the enum, and the orphan rule allows that
/// impl only in the crate that defines the enum.
///
/// `op_error!(Sql(rusqlite::Error), classify)` names the driver's variant and its type, and
/// the backend's `fn classify(&DriverError, shown: &str) -> StoreError`, which
/// `OpError::into_store` uses once it knows where the data lives.
#[macro_export]
macro_rules! op_error {
    ($variant:ident($driver:ty), $classify:path) => {
        /// What a store operation can fail with inside its transaction.
        #[derive(Debug)]
        pub enum OpError {
            $variant($driver),
            Store($crate::StoreError),
        }

        impl From<$driver> for OpError {
            fn from(e: $driver) -> Self {
                Self::$variant(e)
            }
        }

        impl From<$crate::Rejection> for OpError {
            fn from(r: $crate::Rejection) -> Self {
                Self::Store(r.into())
            }
        }

        impl From<$crate::seam::ColumnError> for OpError {
            fn from(e: $crate::seam::ColumnError) -> Self {
                Self::Store($crate::StoreError::Backend(format!(
                    "a stored row could not be read: {e}"
                )))
            }
        }

        impl From<$crate::StoreError> for OpError {
            fn from(e: $crate::StoreError) -> Self {
                Self::Store(e)
            }
        }

        impl OpError {
            /// The failure as a store error naming the data (`shown`: a path, a redacted URL).
            pub fn into_store(self, shown: &str) -> $crate::StoreError {
                match self {
                    Self::$variant(e) => $classify(&e, shown),
                    Self::Store(e) => e,
                }
            }
        }

        pub type OpResult<T> = Result<T, OpError>;
    };
}

/// What the caller of a procedure that panicked gets back. A backend's writer (the embedded
/// writer thread, the Postgres write lane) runs the writes of many callers; it catches a
/// procedure's panic, undoes that write alone and carries on, rather than let one bug end the
/// thread every later write of the process waits on.
pub fn panicked(payload: &(dyn std::any::Any + Send)) -> crate::StoreError {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    crate::StoreError::Backend(format!(
        "a store procedure panicked ({what}); its write was undone and nothing of it was \
         stored. This is a bug in switchboard: please report it with the log"
    ))
}
