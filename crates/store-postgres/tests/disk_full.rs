//! A full disk under Postgres: a room whose tables live in a tablespace on a tiny tmpfs fills
//! it, and the store says what is wrong and what to do — `StoreError::Full`, the "store
//! unusable" class (503 without `Retry-After` on a relay, exit 5 in the CLI) — instead of an
//! unknown backend error. Skips, saying why, where it cannot mount a tmpfs or the server cannot
//! use a directory of this machine; with `CI=true`, a mount that should work (as root) and
//! does not is a failure.

#![allow(clippy::unwrap_used)]
#![cfg(target_os = "linux")]

use std::path::PathBuf;
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;

use switchboard_core::{
    Clock, Error, Exchange, Failure, Limits, Mailbox, NamePolicy, OpenSession, Outgoing, Store,
    StoreError, SystemClock,
};
use switchboard_proto::{PeerInfo, PeerKind, PeerName};
use switchboard_store_postgres::{Database, PgOptions};
use switchboard_testkit::scratch::{DEFAULT_ADMIN_URL, ENV, Scratch};

const TEST: &str = "a_full_tablespace_is_store_unusable";

fn skip(why: &str) {
    eprintln!("\n*** {TEST} SKIPPED: {why} ***\n");
}

/// A tmpfs owned by the Postgres server's user, unmounted (lazily if need be) when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let id = |flag: &str| {
            let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        let (Some(uid), Some(gid)) = (id("-u"), id("-g")) else {
            skip("no local `postgres` user to own a tablespace directory");
            return None;
        };
        let path = std::env::temp_dir().join(format!("swb-pgfull-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        let opts = format!("size={size},uid={uid},gid={gid},mode=0700");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(&path)
            .output();
        let why = match out {
            Ok(o) if o.status.success() => return Some(Self { path }),
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
            Err(e) => e.to_string(),
        };
        let _ = std::fs::remove_dir(&path);
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        if root && std::env::var("CI").as_deref() == Ok("true") {
            panic!("{TEST}: CI=true and running as root, but mounting a tmpfs failed: {why}");
        }
        skip(&format!("cannot mount a tmpfs here ({why})"));
        None
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let umount = |lazy: bool| {
            let mut cmd = Command::new("umount");
            if lazy {
                cmd.arg("-l");
            }
            cmd.arg(&self.path).status().is_ok_and(|s| s.success())
        };
        if !umount(false) && !umount(true) {
            eprintln!("could not unmount {}", self.path.display());
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let cfg = tokio_postgres::Config::from_str(url).unwrap();
    let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A tablespace, dropped (after the scratch database that used it) when this is dropped.
struct Tablespace {
    name: String,
}

impl Drop for Tablespace {
    fn drop(&mut self) {
        let admin = std::env::var(ENV).unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let sql = format!("DROP TABLESPACE IF EXISTS {}", self.name);
        // Drop cannot await: a thread with its own runtime, as the scratch database does.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async { connect(&admin).await.batch_execute(&sql).await })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop tablespace {}: {dropped:?}", self.name);
        }
    }
}

/// Text that does not compress much, so every message takes its room on disk.
fn noise(seed: u64, len: usize) -> String {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[(x % 36) as usize])
        })
        .collect()
}

fn session(name: &str) -> OpenSession {
    OpenSession {
        name: PeerName::parse(name).unwrap(),
        kind: PeerKind::Agent,
        info: PeerInfo::default(),
        policy: NamePolicy::Join,
        client_pid: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_tablespace_is_store_unusable_with_what_to_do() {
    let Some(disk) = Tmpfs::mount("3m") else {
        return;
    };
    let tablespace = Tablespace {
        name: format!("swb_full_{}", std::process::id()),
    };
    let Some(scratch) = Scratch::create("diskfull").await else {
        return;
    };
    let admin = connect(&scratch.url).await;
    let location = disk.path.display().to_string();
    let created = admin
        .batch_execute(&format!(
            "CREATE TABLESPACE {} LOCATION '{location}'",
            tablespace.name
        ))
        .await;
    if let Err(e) = created {
        skip(&format!(
            "the Postgres server cannot use {location} for a tablespace (is it on another \
             machine?): {e}"
        ));
        return;
    }
    let db: String = admin
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {db} SET default_tablespace = {}",
            tablespace.name
        ))
        .await
        .unwrap();
    drop(admin);

    let database = Database::connect(&PgOptions::new(&scratch.url))
        .await
        .unwrap();
    let store =
        Arc::new(database.room("full", SystemClock.now_ms()).await.unwrap()) as Arc<dyn Store>;
    let limits = Limits {
        rate_limit: 1_000_000,
        pending_cap: 1_000_000,
        ..Limits::default()
    };
    let mailbox = Mailbox::new(store, limits);
    let alice = mailbox.open_session(session("alice")).await.unwrap();
    mailbox.open_session(session("bob")).await.unwrap();

    let mut stored = 0;
    let err = loop {
        let text = noise(stored + 1, 60 * 1024);
        match mailbox
            .send(alice.peer.id, Outgoing::to_peer("bob", text))
            .await
        {
            Ok(_) => stored += 1,
            Err(e) => break e,
        }
        assert!(stored < 1_000, "a 3 MiB tablespace never filled");
    };
    assert!(
        matches!(&err, Error::Store(StoreError::Full { .. })),
        "after {stored} messages: {err:?}"
    );
    assert_eq!(err.failure(), Failure::Unusable);
    assert_eq!(err.failure().http_status(), 503);
    assert_eq!(
        err.failure().retry_after(),
        None,
        "waiting does not free a disk"
    );
    assert_eq!(err.failure().exit_code(), 5);
    let text = err.to_string();
    assert!(
        text.contains("is full") && text.contains("free space on the Postgres server's disk"),
        "says what is wrong and what to do: {text}"
    );
    // What was stored stays readable.
    let sent = mailbox
        .sent(alice.peer.id, switchboard_core::SentQuery::Recent(1_000))
        .await
        .unwrap();
    assert_eq!(sent.len(), stored as usize);
    drop(mailbox);
    drop(database);
    drop(scratch);
}
