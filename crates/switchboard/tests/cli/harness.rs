//! Running the binary in a private store directory and reading what it prints.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// A private store directory; every command run through it uses that store.
pub struct Home {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Home {
    pub fn new() -> Self {
        Self::in_dir(tempfile::tempdir().expect("temp dir"))
    }

    /// A store directory on the file system holding `parent` (a small one, say).
    pub fn new_in(parent: &Path) -> Self {
        Self::in_dir(tempfile::tempdir_in(parent).expect("temp dir"))
    }

    fn in_dir(dir: tempfile::TempDir) -> Self {
        // A 0700 directory, as switchboard would create it: a temp dir is world-readable.
        let path = dir.path().join("home");
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&path).expect("home dir");
        Self { _dir: dir, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn db(&self) -> PathBuf {
        self.path().join("switchboard.db")
    }

    /// The binary, acting as operator `who`, with nothing from the caller's environment that
    /// could change its behaviour.
    pub fn cmd(&self, who: &str) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env("SWITCHBOARD_HOME", self.path())
            // A relay login stored on the machine running the tests must not reach them.
            .env("SWITCHBOARD_CONFIG_DIR", self.path().join("config"))
            .env_remove("SWITCHBOARD_RELAY")
            .env_remove("SWITCHBOARD_TOKEN")
            .env("SWITCHBOARD_OPERATOR", who)
            .env_remove("SWITCHBOARD_PENDING_CAP")
            .env_remove("SWITCHBOARD_RATE_LIMIT")
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, who: &str, args: &[&str]) -> Output {
        self.cmd(who).args(args).output().expect("run switchboard")
    }

    /// Runs with `input` on stdin.
    pub fn run_fed(&self, who: &str, args: &[&str], input: &[u8]) -> Output {
        let mut cmd = self.cmd(who);
        cmd.args(args);
        fed(cmd, input)
            .wait_with_output()
            .expect("wait for switchboard")
    }

    /// Runs with `--json`, insists on success and parses stdout.
    pub fn json(&self, who: &str, args: &[&str]) -> Value {
        let out = self.run(who, &[&["--json"], args].concat());
        assert!(
            out.status.success(),
            "switchboard {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json output")
    }

    /// The store's message count, as `status` reports it.
    pub fn messages(&self) -> u64 {
        self.json("observer", &["status"])["messages"]
            .as_u64()
            .expect("message count")
    }
}

/// Lines a spawned process prints, read on a thread so a test can wait with a timeout.
pub struct Lines {
    rx: mpsc::Receiver<String>,
}

impl Lines {
    pub fn of(stream: impl std::io::Read + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { rx }
    }

    pub fn next(&self, within: Duration) -> Option<String> {
        self.rx.recv_timeout(within).ok()
    }

    /// Waits for a line containing `needle`, failing the test after `within`.
    pub fn expect(&self, needle: &str, within: Duration) -> String {
        loop {
            match self.rx.recv_timeout(within) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(_) => panic!("no line containing {needle:?} within {within:?}"),
            }
        }
    }
}

/// Spawns a command with `input` written to its stdin (then closed) and its output piped.
pub fn fed(mut cmd: Command, input: &[u8]) -> Child {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn switchboard");
    let mut stdin = child.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut stdin, input).expect("write stdin");
    child
}

/// Spawns the binary with piped stdout and stderr.
pub fn spawn(mut cmd: Command) -> (Child, Lines, Lines) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn switchboard");
    let out = Lines::of(child.stdout.take().expect("stdout"));
    let err = Lines::of(child.stderr.take().expect("stderr"));
    (child, out, err)
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub const PATIENCE: Duration = Duration::from_secs(20);

/// Polls a blocking `check` until it holds; shared with the real-client driver.
pub use crate::real_clients::drive::wait_until;

/// Polls `check` until it yields a value; fails the test with `what` after [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A session of the agent `name` (in `/work/<name>`), joining the peer if it exists: what the
/// in-process tests open through a store or a relay.
pub fn agent(name: &str) -> switchboard_core::OpenSession {
    use switchboard_proto::{PeerInfo, PeerKind, PeerName};
    switchboard_core::OpenSession {
        name: PeerName::parse(name).unwrap(),
        kind: PeerKind::Agent,
        info: PeerInfo {
            client_kind: Some("test".into()),
            cwd: Some(format!("/work/{name}")),
            ..PeerInfo::default()
        },
        policy: switchboard_core::NamePolicy::Join,
        client_pid: None,
    }
}

/// Chooses the process's TLS crypto provider, which reqwest and rmcp's HTTP transport need
/// even for plain HTTP: the workspace builds them without a default and picks `ring`.
/// Choosing it again is a no-op.
pub fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A plain HTTP client for talking to a relay from a test.
pub fn http() -> reqwest::Client {
    crypto();
    reqwest::Client::new()
}
