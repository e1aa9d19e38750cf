//! Reservations end to end: the CLI, an agent's `reserve` tool, two machines through one
//! relay, a holder killed, and the git pre-commit hook in a real repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::harness::{Home, stderr};
use crate::mcp_client::{Agent, Kind, text};
use crate::relay::Relay;

/// A git repository with one commit holding `files`, in a temporary directory.
struct Repo {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Repo {
    fn new(files: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repo");
        std::fs::create_dir(&path).unwrap();
        let repo = Self { _dir: dir, path };
        repo.git(&["init", "-q"]);
        repo.git(&["config", "user.email", "dev@example.invalid"]);
        repo.git(&["config", "user.name", "Dev"]);
        repo.git(&["config", "commit.gpgsign", "false"]);
        for f in files {
            repo.write(f, "first\n");
        }
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-qm", "first"]);
        repo
    }

    fn write(&self, file: &str, text: &str) {
        let path = self.path.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn git(&self, args: &[&str]) -> Output {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.path)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
        out
    }
}

/// `git` in `dir` with the environment the binary would get as `who` (the test's store,
/// operator and config directory), so the hooks git runs use them.
fn git_as(home: &Home, who: &str, dir: &Path) -> Command {
    let mut git = Command::new("git");
    for (k, v) in home.cmd(who).get_envs() {
        match v {
            Some(v) => git.env(k, v),
            None => git.env_remove(k),
        };
    }
    git.current_dir(dir).env_remove("SWITCHBOARD_OVERRIDE");
    git
}

/// Runs the binary in `dir` as `who`.
fn run_in(home: &Home, who: &str, dir: &Path, args: &[&str]) -> Output {
    home.cmd(who).current_dir(dir).args(args).output().unwrap()
}

#[test]
fn a_person_reserves_and_another_is_refused_with_who_and_why() {
    let home = Home::new();
    let repo = Repo::new(&["src/api/routes.rs", "docs/guide.md"]);
    let p = &repo.path;
    let out = run_in(
        &home,
        "alice",
        p,
        &["reserve", "src/api/**", "--reason", "refactoring the API"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let refused = run_in(
        &home,
        "bob",
        p,
        &["reserve", "src/api/routes.rs", "--reason", "a fix"],
    );
    assert_eq!(
        refused.status.code(),
        Some(6),
        "refused by the state of things"
    );
    let err = stderr(&refused);
    assert!(
        err.contains("'alice'")
            && err.contains("refactoring the API")
            && err.contains("src/api/**"),
        "{err}"
    );
    // Shared reservations of other paths stand side by side.
    for who in ["bob", "carol"] {
        let out = run_in(
            &home,
            who,
            p,
            &["reserve", "docs/", "--shared", "--reason", "reading"],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let listed: Value =
        serde_json::from_slice(&run_in(&home, "bob", p, &["--json", "reservations"]).stdout)
            .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    let table =
        String::from_utf8_lossy(&run_in(&home, "bob", p, &["reservations"]).stdout).into_owned();
    assert!(
        table.starts_with("ID") && table.contains("refactoring the API"),
        "{table}"
    );
    let peers = String::from_utf8_lossy(&run_in(&home, "bob", p, &["peers"]).stdout).into_owned();
    assert!(
        peers.contains("RESERVED") && peers.contains("src/api/**"),
        "{peers}"
    );
    // `peers --json` carries them too (it left them out), as the MCP `peers` tool does.
    let peers: Value =
        serde_json::from_slice(&run_in(&home, "bob", p, &["--json", "peers"]).stdout).unwrap();
    let held = |name: &str| {
        peers
            .as_array()
            .unwrap()
            .iter()
            .find(|peer| peer["name"] == name)
            .map(|peer| peer["reserved"].clone())
            .unwrap()
    };
    assert_eq!(held("alice")[0]["paths"], json!(["src/api/**"]), "{peers}");
    assert_eq!(held("alice")[0]["mode"], "exclusive", "{peers}");
    assert_eq!(held("carol")[0]["reason"], "reading", "{peers}");
    // Released, the paths are free; outside a repository there is nothing to reserve.
    let out = run_in(&home, "alice", p, &["release"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("released 1"),
        "{}",
        stderr(&out)
    );
    let out = run_in(
        &home,
        "bob",
        p,
        &["reserve", "src/api/routes.rs", "--reason", "a fix"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let outside = run_in(
        &home,
        "bob",
        home.path(),
        &["reserve", "x", "--reason", "y"],
    );
    assert_eq!(outside.status.code(), Some(2));
    assert!(
        stderr(&outside).contains("not inside a git repository"),
        "{}",
        stderr(&outside)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_reservation_shows_in_peers_and_ends_when_it_is_killed() {
    let home = Home::new();
    let repo = Repo::new(&["src/lib.rs"]);
    let alice = Agent::start_in(&home, "alice", Kind::Codex, &repo.path).await;
    let taken = alice
        .ok(
            "reserve",
            json!({"paths": ["src/"], "reason": "rewriting the parser"}),
        )
        .await;
    assert_eq!(taken["reservation"]["holder"], "alice");
    assert_eq!(taken["reservation"]["session_bound"], true);
    let bob = Agent::start_in(&home, "bob", Kind::Codex, &repo.path).await;
    let refused = bob
        .call("reserve", json!({"paths": ["src/lib.rs"], "reason": "fix"}))
        .await;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text(&refused).contains("rewriting the parser"),
        "{}",
        text(&refused)
    );
    let peers = bob.ok("peers", json!({})).await;
    let alice_row = peers["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "alice")
        .cloned()
        .unwrap();
    assert_eq!(
        alice_row["reserved"][0]["paths"],
        json!(["src/"]),
        "{alice_row}"
    );
    // Killed without a goodbye: its reservation is free at once on this machine.
    alice.kill();
    let retried = bob
        .ok(
            "reserve",
            json!({"paths": ["src/lib.rs"], "reason": "fix", "wait": 30}),
        )
        .await;
    assert_eq!(retried["reservation"]["holder"], "bob");
    let listed = bob.ok("reserve", json!({})).await;
    assert_eq!(
        listed["reservations"].as_array().unwrap().len(),
        1,
        "{listed}"
    );
    let released = bob.ok("reserve", json!({"release": []})).await;
    assert_eq!(released["released"], 1);
}

#[test]
fn two_machines_through_one_relay_cannot_both_hold_a_path() {
    let relay = Relay::start();
    let alice_token = relay.token(&["--room", "team", "--peer", "alice"]);
    let bob_token = relay.token(&["--room", "team", "--peer", "bob"]);
    // Two homes, as two machines: each its own clone of one repository.
    let (laptop, desktop) = (Home::new(), Home::new());
    let origin = Repo::new(&["Cargo.toml", "src/main.rs"]);
    let clone_dir = tempfile::tempdir().unwrap();
    let clone = clone_dir.path().join("clone");
    let out = Command::new("git")
        .args(["clone", "-q"])
        .arg(&origin.path)
        .arg(&clone)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let via = |home: &Home, token: &str, dir: &Path, args: &[&str]| {
        home.cmd("x")
            .current_dir(dir)
            .args(["--relay", &relay.url, "--token", token])
            .args(args)
            .output()
            .unwrap()
    };
    let out = via(
        &laptop,
        &alice_token,
        &origin.path,
        &["reserve", "Cargo.toml", "--reason", "bumping deps"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let refused = via(
        &desktop,
        &bob_token,
        &clone,
        &["reserve", "Cargo.*", "--reason", "new crate"],
    );
    assert_eq!(refused.status.code(), Some(6), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("'alice'") && stderr(&refused).contains("bumping deps"),
        "{}",
        stderr(&refused)
    );
    let out = via(
        &desktop,
        &bob_token,
        &clone,
        &["reserve", "Cargo.*", "--shared", "--reason", "reading"],
    );
    assert_eq!(
        out.status.code(),
        Some(6),
        "an exclusive one keeps shared ones out too"
    );
    let out = via(
        &desktop,
        &bob_token,
        &clone,
        &["reserve", "src/", "--reason", "mine"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // A peer token releases only its own.
    let listed: Value = serde_json::from_slice(
        &via(&desktop, &bob_token, &clone, &["--json", "reservations"]).stdout,
    )
    .unwrap();
    let alices = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["holder"] == "alice")
        .unwrap()["id"]
        .to_string();
    let out = via(&desktop, &bob_token, &clone, &["release", &alices]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing to release"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_pre_commit_hook_refuses_then_allows_a_commit_in_a_real_repository() {
    let home = Home::new();
    let repo = Repo::new(&["src/api/routes.rs", "docs/my notes.md", "README.md"]);
    let p = &repo.path;
    // A hook already there keeps running, after switchboard's.
    repo.write(".git/hooks/pre-commit", "#!/bin/sh\necho theirs-ran >&2\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let hook = p.join(".git/hooks/pre-commit");
        std::fs::set_permissions(hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = run_in(&home, "me", p, &["setup", "git", "--write"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_in(
        &home,
        "alice",
        p,
        &["reserve", "docs/", "--reason", "rewriting the guide"],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // A rename out of a reserved directory touches it: refused, naming holder and reason.
    repo.git(&["mv", "docs/my notes.md", "notes.md"]);
    let commit = |who: &str, extra: &[(&str, &str)]| {
        let mut git = git_as(&home, who, p);
        git.envs(extra.iter().copied());
        git.args(["commit", "-qm", "change"]).output().unwrap()
    };
    let refused = commit("bob", &[]);
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert!(
        err.contains("docs/my notes.md")
            && err.contains("'alice'")
            && err.contains("rewriting the guide"),
        "{err}"
    );
    assert!(
        !err.contains("theirs-ran"),
        "a refused commit stops before the next hook"
    );
    // The holder commits freely: it is her reservation.
    let own = commit("alice", &[]);
    assert!(own.status.success(), "{}", stderr(&own));
    assert!(stderr(&own).contains("theirs-ran"), "{}", stderr(&own));

    // Overridden on the record: the commit goes in and the holder is told why.
    repo.write("docs/other.md", "new\n");
    repo.git(&["add", "-A"]);
    let forced = commit("bob", &[("SWITCHBOARD_OVERRIDE", "the release needs it")]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    let inbox = home.json("alice", &["inbox"]);
    let told = inbox.as_array().unwrap().iter().any(|i| {
        i["from"] == "bob" && i["text"].as_str().unwrap().contains("the release needs it")
    });
    assert!(told, "{inbox}");

    // Released: nothing stands in the way; removed: the user's hook is back alone.
    run_in(&home, "alice", p, &["release"]);
    repo.write("docs/third.md", "x\n");
    repo.git(&["add", "-A"]);
    assert!(commit("bob", &[]).status.success());
    let out = run_in(&home, "me", p, &["setup", "git", "--remove"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let hook = std::fs::read_to_string(p.join(".git/hooks/pre-commit")).unwrap();
    assert_eq!(hook, "#!/bin/sh\necho theirs-ran >&2\n");
}

#[test]
fn paths_git_reports_are_matched_as_written() {
    // Spaces, renames and case: `git diff --cached -z` names them exactly, and patterns are
    // compared as git writes paths (case-sensitively, even where the file system is not).
    let repo = Repo::new(&["My Docs/a b.md", "Src/Main.rs"]);
    repo.git(&["mv", "My Docs/a b.md", "My Docs/c d.md"]);
    repo.write("Src/Main.rs", "changed\n");
    repo.git(&["add", "-A"]);
    let staged = switchboard::git::staged_paths(&repo.path).unwrap();
    assert_eq!(staged, ["My Docs/a b.md", "My Docs/c d.md", "Src/Main.rs"]);
    let g = |p: &str| switchboard_proto::Glob::parse(p).unwrap();
    assert!(g("My Docs/").matches(&staged[0]));
    assert!(g("My Docs/*.md").matches(&staged[1]));
    assert!(!g("src/").matches(&staged[2]), "case as git writes it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_jobs_paths_are_held_while_it_runs_and_freed_when_it_ends() {
    let home = Home::new();
    let repo = Repo::new(&["src/lib.rs", "README.md"]);
    let p = &repo.path;
    // The dispatcher's own reservation of those paths does not stand in her job's way.
    let out = run_in(
        &home,
        "alice",
        p,
        &["reserve", "src/", "--reason", "planning the change"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_in(
        &home,
        "alice",
        p,
        &[
            "jobs",
            "dispatch",
            "writer",
            "rename the parser",
            "--write",
            "--reserve",
            "src/",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The job's command runs until the test lets it end.
    let gate = home.path().join("let-it-end");
    let mut worker = home.cmd("w");
    worker
        .current_dir(p)
        .args(["worker", "--agent", "writer", "--allow-writes", "--"])
        .args(["sh", "-c", "while [ ! -e \"$0\" ]; do sleep 0.05; done"])
        .arg(&gate);
    let (mut child, _out, _err) = crate::harness::spawn(worker);
    let held = crate::harness::eventually("the job's reservation", || async {
        let listed = home.json("bob", &["reservations", "--all"]);
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["holder"] == "writer")
            .cloned()
    })
    .await;
    assert_eq!(held["globs"], json!(["src/"]));
    assert!(
        held["reason"].as_str().unwrap().starts_with("job #1"),
        "{held}"
    );
    let refused = run_in(
        &home,
        "bob",
        p,
        &["reserve", "src/lib.rs", "--reason", "fix"],
    );
    assert_eq!(refused.status.code(), Some(6));
    std::fs::write(&gate, "").unwrap();
    crate::harness::eventually("the job's end to free its paths", || async {
        let listed = home.json("bob", &["reservations", "--all"]);
        let any_writer = listed
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["holder"] == "writer");
        (!any_writer).then_some(())
    })
    .await;
    let job = home.json("alice", &["jobs", "show", "1"]);
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["reserve"]["paths"], json!(["src/"]));
    child.kill().unwrap();
    child.wait().unwrap();
    // A read-only job reserves nothing: refused at dispatch.
    let out = run_in(
        &home,
        "alice",
        p,
        &["jobs", "dispatch", "writer", "x", "--reserve", "src/"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn the_pre_commit_hook_does_not_block_commits_when_the_relay_is_unreachable_regression() {
    // Reservations are advisory: a relay that cannot be asked (offline, restarting) must not
    // stop work; the hook says it could not check and lets the commit through.
    let home = Home::new();
    let repo = Repo::new(&["a.txt"]);
    let p = &repo.path;
    let out = run_in(&home, "me", p, &["setup", "git", "--write"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    repo.write("a.txt", "changed\n");
    repo.git(&["add", "-A"]);
    let started = std::time::Instant::now();
    let out = git_as(&home, "me", p)
        .env("SWITCHBOARD_RELAY", &url)
        .env("SWITCHBOARD_TOKEN", "swb_0_0")
        .args(["commit", "-qm", "offline"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Not a speed figure: the hook tries for 2 s where a command's client waits out 15 s of an
    // outage; a commit hung those 15 s before, and must not.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(12),
        "the commit waited {:?} for an unreachable relay",
        started.elapsed()
    );
    assert!(
        stderr(&out).contains("cannot check reservations now"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_pre_commit_hook_lets_a_repositorys_first_commit_through_regression() {
    // Before its first commit a repository has no root commit to be named by: nothing can be
    // reserved in it, and the hook must not stand in the way of that commit.
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let git = |args: &[&str]| git_as(&home, "me", p).args(args).output().unwrap();
    assert!(git(&["init", "-q"]).status.success());
    git(&["config", "user.email", "dev@example.invalid"]);
    git(&["config", "user.name", "Dev"]);
    let out = run_in(&home, "me", p, &["setup", "git", "--write"]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::write(p.join("first.txt"), "hello\n").unwrap();
    assert!(git(&["add", "-A"]).status.success());
    let out = git(&["commit", "-qm", "first"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
