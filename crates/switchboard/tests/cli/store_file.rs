//! The store file itself: permissions, a crowd of first opens, corrupt and read-only files.

use std::process::Stdio;

use crate::harness::{Home, stderr};
use switchboard_store_sqlite::migrate;

const STORE: i32 = 5;

#[cfg(unix)]
#[test]
fn store_is_private_to_its_user() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    let nested = home.path().join("fresh/dir");
    let out = std::process::Command::new(crate::harness::BIN)
        .args(["--home", nested.to_str().unwrap(), "status"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&nested), 0o700);
    assert_eq!(mode(&nested.join("switchboard.db")), 0o600);
}

#[test]
fn ten_processes_opening_a_fresh_store_at_once_agree_on_one_schema() {
    let home = Home::new();
    let children: Vec<_> = (0..10)
        .map(|_| {
            home.cmd("alice")
                .args(["--json", "status"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(status["schema_version"], migrate::latest());
    }
    let conn = rusqlite::Connection::open(home.db()).unwrap();
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM schema_version ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        versions,
        (1..=i64::from(migrate::latest())).collect::<Vec<_>>(),
        "each migration ran exactly once"
    );
}

#[test]
fn corrupt_store_file_is_reported_and_left_alone() {
    let home = Home::new();
    std::fs::write(
        home.db(),
        b"this is not a database, it is a shopping list\n".repeat(200),
    )
    .unwrap();
    let before = std::fs::read(home.db()).unwrap();
    for args in [&["status"][..], &["send", "bob", "hi"]] {
        let out = home.run("alice", args);
        assert_eq!(out.status.code(), Some(STORE), "{args:?}");
        assert!(
            stderr(&out).contains("is not a valid switchboard database"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(
        std::fs::read(home.db()).unwrap(),
        before,
        "not a byte changed"
    );
}

#[cfg(unix)]
#[test]
fn read_only_store_file_refuses_writes_and_stays_unchanged() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    home.json("bob", &["inbox"]);
    home.json("alice", &["send", "bob", "before"]);
    std::fs::set_permissions(home.db(), std::fs::Permissions::from_mode(0o400)).unwrap();
    let before = std::fs::read(home.db()).unwrap();
    let out = home.run("alice", &["send", "bob", "after"]);
    assert_eq!(out.status.code(), Some(STORE));
    assert!(stderr(&out).contains("is read-only"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(home.db()).unwrap(),
        before,
        "not a byte changed"
    );
    let peers = home.json("observer", &["peers"]);
    assert_eq!(peers.as_array().unwrap().len(), 2, "reading still works");
}

/// A small tmpfs of its own, unmounted (lazily, if something still holds it) when dropped.
#[cfg(target_os = "linux")]
struct Tmpfs {
    dir: tempfile::TempDir,
}

#[cfg(target_os = "linux")]
impl Tmpfs {
    /// Mounts one, or says on stderr why it cannot and returns `None`. Under `CI=true` a
    /// mount that should work (we are root) and does not is a failure, not a skip.
    fn mount(size: &str, test: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("mount point");
        let mounted = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        let why = match mounted {
            Ok(out) if out.status.success() => return Some(Self { dir }),
            Ok(out) => stderr(&out),
            Err(e) => e.to_string(),
        };
        // Root can mount; anyone else is expected not to.
        let expected = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        if expected && std::env::var("CI").as_deref() == Ok("true") {
            panic!("{test}: CI=true and running as root, but mounting a tmpfs failed: {why}");
        }
        eprintln!("\n*** {test} SKIPPED: cannot mount a tmpfs here ({why}) ***\n");
        None
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Writes a file until the file system refuses for want of space; returns its path.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 4096];
        loop {
            match file.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        path
    }
}

#[cfg(target_os = "linux")]
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let umount = |args: &[&str]| {
            std::process::Command::new("umount")
                .args(args)
                .arg(self.dir.path())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !umount(&[]) && !umount(&["-l"]) {
            eprintln!("could not unmount {}", self.dir.path().display());
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_store_unusable_with_what_to_do_and_loses_nothing() {
    let Some(disk) = Tmpfs::mount("2m", "a_full_disk_is_store_unusable") else {
        return;
    };
    let home = Home::new_in(disk.path());
    home.json("bob", &["inbox"]);
    home.json("alice", &["send", "bob", "before the disk filled"]);
    // Two ways to meet a full disk: with the store open elsewhere (its write-ahead log and
    // shared memory exist, and appending to the log fails), and with nobody holding it (the
    // next process cannot even size the shared-memory file, an I/O error to SQLite).
    for held_open in [true, false] {
        // The write-ahead log keeps its size after a checkpoint, and a send that fits in space
        // it already has needs no more disk: empty it first, or the send may well succeed (it
        // did, 1 run in 5 on a loaded machine).
        rusqlite::Connection::open(home.db())
            .unwrap()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let other = held_open.then(|| {
            let conn = rusqlite::Connection::open(home.db()).unwrap();
            let n: i64 = conn
                .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 1);
            conn
        });
        let filler = disk.fill();
        let out = home.run("alice", &["send", "bob", "while the disk is full"]);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(STORE),
            "held open: {held_open}: {err}"
        );
        assert!(
            err.contains(&format!(
                "the disk holding the store at {}",
                home.db().display()
            )) && err.contains("is full")
                && err.contains("free space")
                && err.contains("SWITCHBOARD_HOME"),
            "says what is wrong and what to do: {err}"
        );
        assert!(!err.contains("disk I/O error"), "not SQLite's words: {err}");
        std::fs::remove_file(filler).unwrap();
        drop(other);
    }

    let inbox = home.json("bob", &["inbox"]);
    let texts: Vec<&str> = inbox
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["before the disk filled"],
        "what was acknowledged is kept, what was refused was never stored"
    );
    home.json("alice", &["send", "bob", "after space was freed"]);
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_under_a_relay_ends_the_cli_the_same_way() {
    use crate::relay::{Relay, cli};
    let Some(disk) = Tmpfs::mount("4m", "a_full_disk_under_a_relay") else {
        return;
    };
    let relay = Relay::start_in(Home::new_in(disk.path()), "127.0.0.1:0");
    let token = relay.token(&["--room", "team"]);
    let machine = Home::new();
    let run = |who: &str, args: &[&str]| {
        cli(&relay, &machine, &token)
            .env("SWITCHBOARD_OPERATOR", who)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run("bob", &["inbox"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run("alice", &["send", "bob", "before"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let filler = disk.fill();
    let out = run("alice", &["send", "bob", "while full"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(STORE), "{err}");
    assert!(
        err.contains("disk is full") && err.contains("free space"),
        "{err}"
    );
    // Where the relay keeps its files is the relay's business.
    let home = disk.path().display().to_string();
    assert!(!err.contains(&home), "{err}");
    std::fs::remove_file(filler).unwrap();
    let out = run("alice", &["send", "bob", "after"]);
    assert!(out.status.success(), "{}", stderr(&out));
    drop(relay);
}
