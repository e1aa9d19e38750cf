//! The shared storage conformance suite, run against the Postgres store: every story runs in
//! its own scratch database, each `open` a separate "process" with its own holder connection.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use switchboard_conformance::{Backend, T0, conformance_suite};
use switchboard_core::Store;
use switchboard_store_postgres::{Database, PgOptions, PgStore};
use switchboard_testkit::scratch::Scratch;

struct Postgres {
    scratch: Scratch,
}

impl Postgres {
    /// A new handle on the scratch database's room, as a separate process would open it.
    async fn room(&self) -> PgStore {
        let mut opts = PgOptions::new(&self.scratch.url);
        opts.pool_size = 8;
        let db = Database::connect(&opts)
            .await
            .expect("connect to scratch db");
        db.room("conformance", T0).await.expect("open room")
    }
}

impl Backend for Postgres {
    fn open(&self) -> Pin<Box<dyn Future<Output = Arc<dyn Store>> + Send + '_>> {
        Box::pin(async move { Arc::new(self.room().await) as Arc<dyn Store> })
    }
}

async fn fresh() -> Option<Postgres> {
    Some(Postgres {
        scratch: Scratch::create("conformance").await?,
    })
}

conformance_suite!(fresh());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_write_fails_alone_and_the_lane_carries_on_regression() {
    let Some(backend) = fresh().await else { return };
    switchboard_conformance::panics::a_panicking_write_fails_alone_and_the_writer_carries_on_regression(
        Arc::new(backend.room().await),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_read_fails_as_an_error_regression() {
    let Some(backend) = fresh().await else { return };
    switchboard_conformance::panics::a_panicking_read_fails_as_an_error_regression(Arc::new(
        backend.room().await,
    ))
    .await;
}
