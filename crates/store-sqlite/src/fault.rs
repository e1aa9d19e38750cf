//! Turns SQLite's error codes into the store errors a user can act on; `OpError` (the seam's
//! shape, see `switchboard_core::op_error!`) keeps the driver's error until then.

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
        // Some steps meet a full disk as an I/O error, not as SQLITE_FULL: sizing the
        // shared-memory file of a store opened afresh fails with SQLITE_IOERR_SHMSIZE.
        Some(ErrorCode::SystemIoFailure) if nearly_full(&path) => StoreError::Full {
            path,
            remedy: FULL_REMEDY.to_owned(),
        },
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => StoreError::Open {
            path,
            detail: e.to_string(),
        },
        _ => StoreError::Backend(match e {
            // The extended code tells one I/O failure from another; the text alone does not.
            rusqlite::Error::SqliteFailure(f, _) => {
                format!("{e} (SQLite code {})", f.extended_code)
            }
            _ => e.to_string(),
        }),
    }
}

/// Below this much space available, an I/O error is taken for a full disk.
const NEARLY_FULL_BYTES: u64 = 1024 * 1024;

/// Whether the file system holding the store file at `path` has (next to) no room left for
/// this process. Asked only once an I/O error happened, so it costs nothing otherwise.
#[cfg(unix)]
fn nearly_full(path: &str) -> bool {
    let dir = std::path::Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    match nix::sys::statvfs::statvfs(dir) {
        // The counts' integer types differ between platforms; all fit in a u64.
        #[allow(clippy::unnecessary_cast)]
        Ok(fs) => {
            (fs.blocks_available() as u64).saturating_mul(fs.fragment_size() as u64)
                < NEARLY_FULL_BYTES
        }
        Err(_) => false,
    }
}

#[cfg(not(unix))]
fn nearly_full(_path: &str) -> bool {
    false
}

switchboard_core::op_error!(Sql(rusqlite::Error), classify);
