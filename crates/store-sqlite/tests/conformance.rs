//! The shared storage conformance suite, run against the embedded SQLite store.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use switchboard_conformance::{Backend, conformance_suite};
use switchboard_core::Store;
use switchboard_store_sqlite::SqliteStore;

struct Sqlite {
    dir: tempfile::TempDir,
}

impl Sqlite {
    /// A new handle on the store, as a separate process would open it.
    fn store(&self) -> SqliteStore {
        SqliteStore::open(self.dir.path()).expect("open sqlite store")
    }
}

impl Backend for Sqlite {
    fn open(&self) -> Pin<Box<dyn Future<Output = Arc<dyn Store>> + Send + '_>> {
        Box::pin(async move { Arc::new(self.store()) as Arc<dyn Store> })
    }
}

async fn fresh() -> Option<Sqlite> {
    Some(Sqlite {
        dir: tempfile::tempdir().expect("temp dir"),
    })
}

conformance_suite!(fresh());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_write_fails_alone_and_the_writer_carries_on_regression() {
    let Some(backend) = fresh().await else { return };
    switchboard_conformance::panics::a_panicking_write_fails_alone_and_the_writer_carries_on_regression(
        Arc::new(backend.store()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_read_fails_as_an_error_regression() {
    let Some(backend) = fresh().await else { return };
    switchboard_conformance::panics::a_panicking_read_fails_as_an_error_regression(Arc::new(
        backend.store(),
    ))
    .await;
}
