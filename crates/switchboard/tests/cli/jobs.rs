//! Durable jobs end to end: real worker processes running executor scripts.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use serde_json::Value;

use crate::harness::{Home, stderr};

/// An executor script in the test's directory.
fn script(home: &Home, name: &str, body: &str) -> PathBuf {
    let path = home.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

/// A worker with a 1 s job lease, so the tests of dead workers do not wait long.
fn worker(home: &Home, args: &[&str], command: &Path) -> Child {
    worker_with_lease(home, args, command, "1s")
}

fn worker_with_lease(home: &Home, args: &[&str], command: &Path, lease: &str) -> Child {
    home.cmd("ops")
        .env("SWITCHBOARD_JOB_LEASE", lease)
        .args(["worker", "--agent", "codex"])
        .args(args)
        .arg("--")
        .arg(command)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn dispatch(home: &Home, extra: &[&str]) -> Value {
    let mut args = vec!["jobs", "dispatch", "codex"];
    args.extend_from_slice(extra);
    home.json("alice", &args)
}

/// The job after waiting for it, whatever state it ended in (the exit code says which; see
/// `waits_exit_by_how_the_job_ended`).
fn show(home: &Home, id: i64, wait: &str) -> Value {
    shown(home, id, wait).1
}

/// `jobs show --wait`: its exit code and the job it printed.
fn shown(home: &Home, id: i64, wait: &str) -> (i32, Value) {
    let id = id.to_string();
    let out = home.run("alice", &["--json", "jobs", "show", &id, "--wait", wait]);
    let job = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("no job printed: {}", stderr(&out)));
    (out.status.code().unwrap_or(-1), job)
}

fn sigkill(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_worker_runs_a_job_and_the_dispatcher_is_told_only_id_and_state() {
    let home = Home::new();
    let exec = script(
        &home,
        "exec.sh",
        "prompt=$(cat)\necho \"reviewed: $prompt\"",
    );
    let mut w = worker(&home, &[], &exec);
    let job = dispatch(&home, &["review the diff"]);
    let id = job["id"].as_i64().unwrap();
    let done = show(&home, id, "20s");
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["result"], "reviewed: review the diff\n");
    let inbox = home.json("alice", &["inbox"]);
    let notice = &inbox[0];
    assert_eq!(notice["kind"], "job");
    assert_eq!(notice["text"], format!("Job #{id} for codex is completed."));
    sigkill(&mut w);
}

#[test]
fn a_failing_command_reports_its_exit_and_stderr_tail() {
    let home = Home::new();
    let exec = script(
        &home,
        "fail.sh",
        "cat >/dev/null\necho 'tests failed: 3' >&2\nexit 3",
    );
    let mut w = worker(&home, &[], &exec);
    let id = dispatch(&home, &["run the tests"])["id"].as_i64().unwrap();
    let done = show(&home, id, "20s");
    assert_eq!(done["state"], "failed");
    let error = done["error"].as_str().unwrap();
    assert!(
        error.contains("exit status: 3") && error.contains("tests failed: 3"),
        "{error}"
    );
    sigkill(&mut w);
}

#[test]
fn a_killed_worker_loses_nothing_read_jobs_rerun_once_write_jobs_wait_for_recovery() {
    let home = Home::new();
    let slow = script(&home, "slow.sh", "cat >/dev/null\nsleep 10");
    let mut first = worker(&home, &["--allow-writes"], &slow);
    let read = dispatch(&home, &["read only"])["id"].as_i64().unwrap();
    crate::harness::wait_until("the read job is running", || {
        home.json("alice", &["jobs", "show", &read.to_string()])["state"] == "running"
    });
    sigkill(&mut first);

    let log = home.path().join("runs.log");
    let quick = script(
        &home,
        "quick.sh",
        &format!(
            "cat >/dev/null\necho \"ran $SWITCHBOARD_JOB_ID\" >> '{}'\necho ok",
            log.display()
        ),
    );
    let mut second = worker(&home, &[], &quick);
    let done = show(&home, read, "30s");
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["attempts"], 2);
    sigkill(&mut second);
    let runs = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(runs.lines().count(), 1, "completed once: {runs}");

    let mut third = worker(&home, &["--allow-writes"], &slow);
    let write = dispatch(&home, &["edit files", "--write"])["id"]
        .as_i64()
        .unwrap();
    crate::harness::wait_until("the write job is running", || {
        home.json("alice", &["jobs", "show", &write.to_string()])["state"] == "running"
    });
    sigkill(&mut third);
    let mut fourth = worker(&home, &["--allow-writes"], &quick);
    crate::harness::wait_until("the write job is parked", || {
        home.json("alice", &["jobs", "show", &write.to_string()])["state"] == "needs_recovery"
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(
        home.json("alice", &["jobs", "show", &write.to_string()])["state"],
        "needs_recovery",
        "never re-run silently"
    );
    let retry = home.run("alice", &["jobs", "retry", &write.to_string()]);
    assert_eq!(
        retry.status.code(),
        Some(6),
        "retry is not recover: {}",
        stderr(&retry)
    );
    home.json("alice", &["jobs", "recover", &write.to_string()]);
    assert_eq!(show(&home, write, "30s")["state"], "completed");
    sigkill(&mut fourth);
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet: it runs no more).
fn gone(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
}

#[test]
#[cfg(target_os = "linux")]
fn a_sigkilled_workers_command_dies_with_it_regression() {
    // Found by a tester: a SIGKILLed worker left its job's command running (re-parented to
    // init, in its own process group), so a read-only job then ran twice at once.
    let home = Home::new();
    let pids = home.path().join("pids");
    let body = format!(
        "cat >/dev/null\nsleep 600 &\necho \"$$ $!\" > '{}'\nwait",
        pids.display()
    );
    let exec = script(&home, "long.sh", &body);
    let mut w = worker_with_lease(&home, &[], &exec, "60s");
    dispatch(&home, &["long task"]);
    crate::harness::wait_until("the command started", || {
        std::fs::read_to_string(&pids).is_ok_and(|p| p.split_whitespace().count() == 2)
    });
    let text = std::fs::read_to_string(&pids).unwrap();
    let started: Vec<&str> = text.split_whitespace().collect();
    let killed = std::time::Instant::now();
    sigkill(&mut w);
    crate::harness::wait_until("the command and its child are gone", || {
        started.iter().all(|pid| gone(pid))
    });
    eprintln!("gone {:?} after the worker's SIGKILL", killed.elapsed());
}

#[test]
fn a_cancel_kills_the_running_command_and_its_children() {
    let home = Home::new();
    let pid_file = home.path().join("pid");
    let body = format!(
        "cat >/dev/null\necho $$ > '{}'\nsleep 60 & wait",
        pid_file.display()
    );
    let exec = script(&home, "long.sh", &body);
    let mut w = worker(&home, &[], &exec);
    let id = dispatch(&home, &["long task"])["id"].as_i64().unwrap();
    crate::harness::wait_until("the command started", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|p| !p.trim().is_empty())
    });
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_owned();
    let cancelled = home.json("alice", &["jobs", "cancel", &id.to_string()]);
    assert_eq!(cancelled["state"], "cancelled");
    crate::harness::wait_until("the command's process group is gone", || gone(&pid));
    sigkill(&mut w);
}

#[test]
fn four_workers_complete_a_thousand_jobs_exactly_once() {
    let home = Home::new();
    let log = home.path().join("runs.log");
    let exec = script(
        &home,
        "count.sh",
        &format!(
            "cat >/dev/null\necho \"$SWITCHBOARD_JOB_ID\" >> '{}'\necho done",
            log.display()
        ),
    );
    for i in 0..1000 {
        dispatch(
            &home,
            &[&format!("job {i}"), "--request-id", &format!("r{i}")],
        );
        if i == 0 {
            // A repeated request id creates no second job.
            let again = dispatch(&home, &["job 0", "--request-id", "r0"]);
            assert_eq!(again["duplicate"], true);
        }
    }
    // Regression: with a 1 s lease, a worker starved of CPU by the rest of the suite missed its
    // heartbeat, its job was (correctly) handed to another worker, and the command ran twice.
    // Exactly-once runs are what this test checks, so no lease may lapse here.
    let mut workers: Vec<Child> = (0..4)
        .map(|_| worker_with_lease(&home, &[], &exec, "60s"))
        .collect();
    crate::harness::wait_until("every job finished", || {
        home.json("alice", &["jobs", "list", "--limit", "1"])
            .as_array()
            .is_some_and(Vec::is_empty)
    });
    for w in &mut workers {
        sigkill(w);
    }
    let runs = std::fs::read_to_string(&log).unwrap();
    let mut ids: Vec<i64> = runs.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(ids.len(), 1000, "1000 runs");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 1000, "no job ran twice");
    let all = home.json("alice", &["jobs", "list", "--all", "--limit", "2000"]);
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 1000);
    assert!(all.iter().all(|j| j["state"] == "completed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatching_session_is_woken_with_the_job_id_and_state_only() {
    use crate::mcp_client::{Agent, Kind};
    use serde_json::json;
    let home = Home::new();
    let exec = script(
        &home,
        "exec.sh",
        "prompt=$(cat)\necho \"secret result for: $prompt\"",
    );
    let mut w = worker(&home, &[], &exec);
    let claude = Agent::start(&home, "claude-web", Kind::ClaudeCode).await;
    let job = claude
        .ok(
            "dispatch",
            json!({"agent": "codex", "prompt": "review", "request_id": "rv-1"}),
        )
        .await;
    let id = job["id"].as_i64().unwrap();
    let again = claude
        .ok(
            "dispatch",
            json!({"agent": "codex", "prompt": "review", "request_id": "rv-1"}),
        )
        .await;
    assert_eq!(
        (again["id"].as_i64(), again["duplicate"].as_bool()),
        (Some(id), Some(true))
    );

    // Regression (a flake): a fast worker can finish between the two dispatches; the notice
    // then rides the second dispatch's result (piggyback) instead of a push. Either way the
    // session is told, once, with the id and state only.
    let notice = match again["inbox"].as_array().and_then(|items| items.first()) {
        Some(item) => {
            assert_eq!(item["kind"], "job", "{item}");
            item["text"].as_str().unwrap().to_owned()
        }
        None => {
            let pushed = claude.pushes(1).await;
            assert_eq!(pushed[0]["meta"]["kind"], "job");
            pushed[0]["content"].as_str().unwrap().to_owned()
        }
    };
    let content = notice.as_str();
    assert!(
        content.contains(&format!("Job #{id} for codex is completed.")),
        "{content}"
    );
    assert!(
        !content.contains("secret result"),
        "never the payload: {content}"
    );
    let fetched = claude.ok("job", json!({"id": id})).await;
    assert_eq!(fetched["result"], "secret result for: review\n");
    let mine = claude.ok("job", json!({})).await;
    assert_eq!(mine["jobs"].as_array().unwrap().len(), 1);
    sigkill(&mut w);
}

#[test]
fn a_write_job_runs_in_a_fresh_worktree_and_reports_its_branch() {
    let home = Home::new();
    let repo = home.path().join("webapp");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README"), "hi\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "init"]);
    let exec = script(
        &home,
        "edit.sh",
        "cat >/dev/null\necho edited > CHANGED\ngit rev-parse --abbrev-ref HEAD",
    );
    let mut w = home
        .cmd("ops")
        .current_dir(&repo)
        .args([
            "worker",
            "--agent",
            "codex",
            "--allow-writes",
            "--worktree",
            "--",
        ])
        .arg(&exec)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let id = dispatch(&home, &["edit something", "--write"])["id"]
        .as_i64()
        .unwrap();
    let done = show(&home, id, "30s");
    assert_eq!(done["state"], "completed", "{done}");
    let branch = format!("switchboard/job-{id}");
    assert_eq!(done["branch"], branch.as_str());
    assert_eq!(done["result"].as_str().unwrap().trim(), branch);
    assert!(
        !repo.join("CHANGED").exists(),
        "the main checkout is untouched"
    );
    assert!(
        home.path()
            .join(format!("webapp-switchboard-job-{id}/CHANGED"))
            .exists()
    );
    sigkill(&mut w);
}

#[cfg(unix)]
#[test]
fn a_worker_asked_to_stop_gives_its_running_job_back() {
    let home = Home::new();
    let exec = script(&home, "slow.sh", "cat >/dev/null\nsleep 10");
    let mut w = worker(&home, &[], &exec);
    let id = dispatch(&home, &["long"])["id"].as_i64().unwrap();
    crate::harness::wait_until("the job is running", || {
        home.json("alice", &["jobs", "show", &id.to_string()])["state"] == "running"
    });
    let term = std::process::Command::new("kill")
        .args(["-TERM", &w.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(w.wait().unwrap().success(), "a graceful stop exits 0");
    let job = home.json("alice", &["jobs", "show", &id.to_string()]);
    assert_eq!(job["state"], "queued", "{job}");
    assert_eq!(
        job["attempts"], 0,
        "giving a job back is not a failed attempt"
    );
}

#[test]
fn waits_exit_by_how_the_job_ended_regression() {
    // Found by a tester: `jobs dispatch … --wait 10m && deploy` deployed after a failure, since
    // the wait exited 0 whether the job failed or the wait ran out.
    let home = Home::new();
    let exec = script(
        &home,
        "by-prompt.sh",
        "case \"$(cat)\" in fail*) exit 3 ;; *) echo ok ;; esac",
    );

    // No worker yet: the wait runs out (124), and a cancelled job is unsuccessful (9).
    let waiting = dispatch(&home, &["succeed later"])["id"].as_i64().unwrap();
    let (code, job) = shown(&home, waiting, "200ms");
    assert_eq!(
        (code, job["state"].as_str()),
        (124, Some("queued")),
        "{job}"
    );
    let cancelled = dispatch(&home, &["never"])["id"].as_i64().unwrap();
    home.json("alice", &["jobs", "cancel", &cancelled.to_string()]);
    let (code, job) = shown(&home, cancelled, "5s");
    assert_eq!((code, job["state"].as_str()), (9, Some("cancelled")));

    // With a worker: completed is 0 and failed is 9, also straight from `dispatch --wait`.
    let mut w = worker(&home, &[], &exec);
    let (code, job) = shown(&home, waiting, "60s");
    assert_eq!((code, job["state"].as_str()), (0, Some("completed")));
    let out = home.run(
        "alice",
        &[
            "--json", "jobs", "dispatch", "codex", "fail now", "--wait", "60s",
        ],
    );
    let job: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(out.status.code(), Some(9), "{}", stderr(&out));
    assert!(stderr(&out).contains("ended failed"), "{}", stderr(&out));
    sigkill(&mut w);
}

#[test]
#[cfg(unix)]
fn ctrl_c_exits_130_from_watch_and_worker_regression() {
    // Found by a tester: Ctrl-C during a wait exited 0, as if the command had done its work.
    let home = Home::new();
    let exec = script(&home, "ok.sh", "cat >/dev/null; echo ok");
    let mut watch = home.cmd("alice");
    watch.arg("watch");
    let mut worker = home.cmd("ops");
    worker.args(["worker", "--agent", "codex", "--"]).arg(&exec);
    for (cmd, says) in [(watch, "watching"), (worker, "worker for")] {
        let (mut child, _out, err) = crate::harness::spawn(cmd);
        err.expect(says, std::time::Duration::from_secs(60));
        let sent = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        // Both listen for Ctrl-C before they say they run, so the exit is their own 130.
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{says}: {status:?}");
    }
}
