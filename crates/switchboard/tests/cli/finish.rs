//! The CLI's finish, kept finished: help and tables as snapshots (colour off), the stored
//! login, completions and the man page, the demo, waiting lines and the dispatch warning.

use std::process::Output;

use serde_json::{Value, json};

use crate::harness::{BIN, Home, spawn, stderr};
use crate::mcp_client::{Agent, Kind};
use crate::relay::Relay;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A snapshot of a table or a report: every absolute and relative time a placeholder (times
/// move between runs), and the padding after a cell, which follows the time's width, one double
/// space. Column alignment itself is the table's unit test (`cli::output`).
macro_rules! table_snapshot {
    ($name:expr, $text:expr) => {{
        let mut settings = insta::Settings::clone_current();
        settings.set_prepend_module_to_snapshot(false);
        settings.set_snapshot_path("snapshots");
        settings.add_filter(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "[time]");
        settings.add_filter(
            r"just now|\d+ (s|min|h|days?) ago|in \d+ (s|min|h|days?)",
            "[ago]",
        );
        settings.add_filter(r"(\S)  +", "$1  ");
        settings.add_filter(r"/tmp/\S+", "[dir]");
        settings.bind(|| insta::assert_snapshot!($name, $text));
    }};
}

/// A snapshot taken as it is: help texts have nothing that moves.
macro_rules! snapshot {
    ($name:expr, $text:expr) => {{
        let mut settings = insta::Settings::clone_current();
        settings.set_prepend_module_to_snapshot(false);
        settings.set_snapshot_path("snapshots");
        settings.bind(|| insta::assert_snapshot!($name, $text));
    }};
}

#[test]
fn help_texts_list_each_option_once_with_global_options_apart() {
    let home = Home::new();
    for (name, args) in [
        ("help", vec!["--help"]),
        ("help_send", vec!["send", "--help"]),
        ("help_jobs_dispatch", vec!["jobs", "dispatch", "--help"]),
        ("help_setup", vec!["setup", "--help"]),
        ("help_login", vec!["login", "--help"]),
        ("help_serve", vec!["serve", "--help"]),
    ] {
        let out = home.cmd("me").args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let text = stdout(&out);
        // Regression (issue 18): `[env: X] [env: X=]`, each variable listed twice.
        for line in text.lines() {
            assert!(line.matches("[env: ").count() <= 1, "{args:?}: {line}");
        }
        snapshot!(name, text);
    }
}

#[test]
fn tables_have_headers_and_relative_times() {
    let home = Home::new();
    let run = |who: &str, args: &[&str]| {
        let out = home.cmd(who).env("TZ", "UTC").args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        out
    };
    run("bob", &["inbox"]);
    run("carol", &["inbox"]);
    run(
        "alice",
        &["send", "bob", "the users table: see migrations/001.sql"],
    );
    run("alice", &["broadcast", "standup in five minutes"]);
    run(
        "alice",
        &["ask", "bob", "which port does the API listen on?"],
    );
    run("alice", &["ask", "carol", "who owns the billing service?"]);
    run(
        "alice",
        &["jobs", "dispatch", "reviewer", "review the last commit"],
    );
    run(
        "alice",
        &["jobs", "dispatch", "tester", "run the slow tests"],
    );
    table_snapshot!("table_peers", stdout(&run("alice", &["peers"])));
    table_snapshot!("table_sent", stdout(&run("alice", &["sent"])));
    table_snapshot!("table_jobs", stdout(&run("alice", &["jobs", "list"])));
    table_snapshot!("table_questions", stdout(&run("alice", &["questions"])));
    table_snapshot!("status", stdout(&run("alice", &["status"])));
}

#[test]
fn peers_online_with_nobody_online_says_so_instead_of_no_peers_yet() {
    let home = Home::new();
    home.run("bob", &["inbox"]);
    let out = home.run("alice", &["peers", "--online"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("no peer is online now"), "{text}");
    assert!(!text.contains("no peers yet"), "{text}");
}

#[test]
fn a_job_for_an_agent_no_worker_serves_is_stored_with_a_warning() {
    let home = Home::new();
    let out = home.run("alice", &["jobs", "dispatch", "reviewer", "look at this"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: no live worker serves 'reviewer'")
            && err.contains("switchboard worker --agent reviewer"),
        "{err}"
    );
    // An agent's `dispatch` tool says the same in its answer (it said nothing).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let agent = rt.block_on(Agent::start(&home, "carol", Kind::Codex));
    let asked = json!({"agent": "reviewer", "prompt": "from an agent"});
    let job = rt.block_on(agent.ok("dispatch", asked.clone()));
    let warning = job["warning"].as_str().unwrap_or_default();
    assert!(
        warning.contains("no live worker serves 'reviewer'"),
        "{job}"
    );

    // With a worker serving it, no warning; the worker shows as a live peer.
    let mut worker = home.cmd("w");
    worker.args(["worker", "--agent", "reviewer", "--", "cat"]);
    let (mut child, _out, _err) = spawn(worker);
    rt.block_on(crate::harness::eventually(
        "the worker's presence",
        || async {
            let peers = home.json("alice", &["peers", "--online"]);
            peers
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "reviewer" && p["client_kind"] == "switchboard-worker")
                .then_some(())
        },
    ));
    let out = home.run(
        "alice",
        &["jobs", "dispatch", "reviewer", "again", "--wait", "30s"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(!err.contains("warning"), "{err}");
    let job = rt.block_on(agent.ok("dispatch", asked));
    assert!(job.get("warning").is_none(), "{job}");
    // The wait says it waits (one line), then the job's result.
    assert!(err.contains("waiting up to 30 s for job"), "{err}");
    assert!(stdout(&out).contains("completed"), "{}", stdout(&out));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn errors_say_durations_as_people_write_them() {
    let home = Home::new();
    let out = home.run("alice", &["send", "alice", "hi", "--ttl", "90d"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("a TTL of 90 days is longer than the retention window of 30 days"),
        "{err}"
    );
    assert!(!err.contains("7776000"), "{err}");
}

#[test]
fn completions_and_the_man_page_come_from_the_same_definitions() {
    let home = Home::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = home.run("me", &["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let text = stdout(&out);
        for word in ["switchboard", "dispatch", "relay-ca"] {
            assert!(text.contains(word), "{shell} completions lack {word}");
        }
    }
    let man = home.run("me", &["man"]);
    assert!(man.status.success());
    let text = stdout(&man);
    assert!(
        text.starts_with(".ie") || text.contains(".TH switchboard"),
        "{}",
        &text[..200]
    );
    for section in [
        ".SH \"SWITCHBOARD SEND\"",
        ".SH \"SWITCHBOARD LOGIN\"",
        "SWITCHBOARD_TOKEN",
    ] {
        assert!(text.contains(section), "man page lacks {section}");
    }
    let bad = home.run("me", &["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn the_demo_runs_a_message_a_question_and_a_job_between_two_real_sessions() {
    let home = Home::new();
    let out = home.run("me", &["--json", "demo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["what"].as_str().unwrap())
        .collect();
    for wanted in [
        "alice sends bob a message",
        "bob's waiting inbox has it",
        "alice checks her message: read",
        "waits: answered",
        "the worker runs it: completed, \"7\"",
    ] {
        assert!(
            steps.iter().any(|s| s.contains(wanted)),
            "{wanted} in {steps:?}"
        );
    }
    // Its store was a throwaway one, gone now; the user's own was never touched.
    let demo_home = report["home"].as_str().unwrap();
    assert!(!std::path::Path::new(demo_home).exists());
    assert!(!home.db().exists());
}

#[test]
fn login_stores_the_relay_for_every_command_and_logout_forgets_it() {
    let relay = Relay::start();
    let token = relay.token(&["--room", "team", "--peer", "alice"]);
    let home = Home::new();
    let config = home.path().join("config");

    // A token the relay refuses is not stored.
    let bad = home.run("alice", &["login", &relay.url, "--token", "swb_00_00"]);
    assert_eq!(bad.status.code(), Some(7), "{}", stderr(&bad));
    assert!(!config.join("login.toml").exists());

    let out = home.run("alice", &["login", &relay.url, "--token", &token]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("as 'alice' in room 'team'"),
        "{}",
        stdout(&out)
    );
    let file = config.join("login.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the login is readable by its owner only"
        );
    }

    // Every command now reaches the relay without --relay or SWITCHBOARD_TOKEN.
    let sent = home.json("alice", &["send", "alice", "a note to myself"]);
    assert_eq!(sent["recipients"][0]["peer"], "alice");
    let status = home.json("alice", &["status"]);
    assert!(
        status["backend"].as_str().unwrap().contains("room 'team'"),
        "{status}"
    );
    assert_eq!(
        relay.home.messages(),
        0,
        "the relay's own local store is not where it went"
    );
    // An empty --relay is the local store, once.
    let local = home.json("alice", &["--relay", "", "status"]);
    assert_eq!(local["messages"], 0);
    // ping needs no token and finds the relay from the login.
    let ping = home.run("alice", &["ping"]);
    assert!(ping.status.success(), "{}", stderr(&ping));

    let out = home.run("alice", &["logout"]);
    assert!(out.status.success());
    assert!(!file.exists());
    let after = home.json("alice", &["status"]);
    assert!(
        after["backend"].as_str().unwrap().contains("sqlite"),
        "{after}"
    );
    assert!(
        !after["backend"].as_str().unwrap().contains("room"),
        "{after}"
    );
}

#[test]
fn ping_says_when_nothing_answers() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let out = std::process::Command::new(BIN)
        .args(["ping", &url, "--timeout", "5s"])
        .env("SWITCHBOARD_CONFIG_DIR", "/nonexistent-switchboard-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not answer"), "{}", stderr(&out));
}
