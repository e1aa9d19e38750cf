//! Turns SQLite's error codes into the store errors a user can act on.

use rusqlite::ErrorCode;
use switchboard_core::StoreError;

/// What to do about a full disk: the store's directory is the `home` setting.
pub const FULL_REMEDY: &str = "free space on that disk, or move the store's directory to a disk \
     with room and point SWITCHBOARD_HOME (or --home) at it";

pub fn classify(e: &rusqlite::Error, path: &str) -> StoreError {
    let path = path.to_owned();
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path,
            detail: e.to_string(),
        },
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { path },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy { path },
        Some(ErrorCode::DiskFull) => StoreError::Full {
            path,
            remedy: FULL_REMEDY.to_owned(),
        },
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => StoreError::Open {
            path,
            detail: e.to_string(),
        },
        _ => StoreError::Backend(e.to_string()),
    }
}

/// What a store operation can fail with before the path is known to name it.
#[derive(Debug)]
pub enum OpError {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for OpError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

impl From<switchboard_core::Rejection> for OpError {
    fn from(r: switchboard_core::Rejection) -> Self {
        Self::Store(r.into())
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl OpError {
    pub fn into_store(self, path: &str) -> StoreError {
        match self {
            Self::Sql(e) => classify(&e, path),
            Self::Store(e) => e,
        }
    }
}

pub type OpResult<T> = Result<T, OpError>;
