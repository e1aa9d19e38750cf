//! A team relay: several `serve` replicas sharing one Postgres database (a scratch database
//! per test). Agents on different replicas message and push each other, jobs cross replicas,
//! and a replica SIGKILLed mid-traffic loses nothing acknowledged and runs nothing twice.
//!
//! Without a reachable Postgres these tests skip (saying so); with `CI=true` they must run.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Child;
use std::time::Instant;

use serde_json::{Value, json};
use switchboard_testkit::scratch::Scratch;

use crate::harness::{Home, http, wait_until};
use crate::mcp::await_peer;
use crate::mcp_client::Kind;
use crate::relay::{Relay, ShowOnPanic, cli, remote_agent, worker, worker_log};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_and_a_job_cross_from_one_replica_to_another() {
    let Some(db) = Scratch::create("team").await else {
        return;
    };
    let (a, b) = (Relay::replica(&db.url), Relay::replica(&db.url));
    let alice_token = a.token(&["--room", "team", "--peer", "alice"]);
    // A token minted through one replica works on every replica: tokens are shared.
    let bob_token = b.token(&["--room", "team", "--peer", "bob"]);
    let builder_token = b.token(&["--room", "team", "--peer", "builder"]);
    let (machine_a, machine_b) = (Home::new(), Home::new());

    let alice = remote_agent(&a, &machine_a, Kind::ClaudeCode, &alice_token).await;
    let bob = remote_agent(&b, &machine_b, Kind::Codex, &bob_token).await;
    await_peer(&alice, "bob", true).await;

    // Bob, on replica B, messages alice, on replica A: a push on A from a commit on B.
    let sent_at = Instant::now();
    bob.ok(
        "send",
        json!({"to": "alice", "text": "the build is green on B"}),
    )
    .await;
    let pushed = alice.pushes(1).await;
    eprintln!("push across replicas after {:?}", sent_at.elapsed());
    assert!(
        pushed[0]["content"]
            .as_str()
            .unwrap()
            .contains("green on B"),
        "{pushed:?}"
    );

    // A job dispatched on A is run by a worker attached to B.
    let mut worker = worker(
        &b,
        &machine_b,
        &builder_token,
        "builder",
        "echo \"built: $(cat)\"",
    );
    let job = alice
        .ok(
            "dispatch",
            json!({"agent": "builder", "prompt": "release 1.4"}),
        )
        .await;
    let id = job["id"].as_i64().unwrap();
    let pushed = alice.pushes(2).await;
    assert_eq!(pushed[1]["meta"]["kind"], "job", "{pushed:?}");
    let done = alice.ok("job", json!({"id": id})).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert!(
        done["result"]
            .as_str()
            .unwrap()
            .contains("built: release 1.4")
    );
    sigkill(&mut worker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_traffic_loses_nothing_acknowledged_and_runs_nothing_twice() {
    let Some(db) = Scratch::create("teamkill").await else {
        return;
    };
    let (mut a, b) = (Relay::replica(&db.url), Relay::replica(&db.url));
    let alice_token = a.token(&["--room", "team", "--peer", "alice"]);
    let bob_token = a.token(&["--room", "team", "--peer", "bob"]);
    let builder_token = a.token(&["--room", "team", "--peer", "builder"]);
    let (machine_a, machine_b) = (Home::new(), Home::new());

    // Jobs queued through B, run by a worker attached to A (the replica that will die).
    const JOBS: usize = 12;
    for i in 0..JOBS {
        let out = cli(&b, &machine_b, &alice_token)
            .args(["--json", "jobs", "dispatch", "builder", &format!("job {i}")])
            .args(["--request-id", &format!("r{i}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let runs = machine_a.path().join("runs.log");
    let script = format!(
        "cat >/dev/null; echo \"$SWITCHBOARD_JOB_ID\" >> '{}'; sleep 0.2; echo done",
        runs.display()
    );
    let mut worker = worker(&a, &machine_a, &builder_token, "builder", &script);
    let _shown = ShowOnPanic(worker_log(&machine_a, "builder"));

    // Alice sends through A; A is killed and restarted partway through.
    let alice = remote_agent(&a, &machine_a, Kind::Codex, &alice_token).await;
    const SENDS: usize = 80;
    let mut acked: BTreeMap<String, i64> = BTreeMap::new();
    for i in 0..SENDS {
        if i == SENDS / 3 {
            a.crash_and_restart();
        }
        let text = format!("message {i}");
        let r = alice.call("send", json!({"to": "bob", "text": text})).await;
        if r.is_error == Some(false) {
            let id = r.structured_content.unwrap()["id"].as_i64().unwrap();
            acked.insert(text, id);
        }
    }
    assert!(
        acked.len() >= SENDS - 5,
        "the agent recovered from the crash: only {} of {SENDS} sends acknowledged",
        acked.len()
    );

    // Bob reads through B: every acknowledged message is there, each once.
    let mut received: BTreeMap<i64, String> = BTreeMap::new();
    wait_until("bob has every acknowledged message", || {
        for item in inbox(&b, &machine_b, &bob_token) {
            let id = item["id"].as_i64().unwrap();
            let text = item["text"].as_str().unwrap().to_owned();
            assert!(
                received.insert(id, text).is_none(),
                "message {id} was handed over again after its ack"
            );
        }
        acked.values().all(|id| received.contains_key(id))
    });
    for (text, id) in &acked {
        assert_eq!(received.get(id), Some(text), "message {id}");
    }

    // Every job completed, and each command ran exactly once.
    wait_until("every job finished", || {
        let out = cli(&b, &machine_b, &alice_token)
            .args(["--json", "jobs", "list", "--all", "--limit", "100"])
            .output()
            .unwrap();
        let jobs: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        jobs.as_array()
            .is_some_and(|all| all.len() == JOBS && all.iter().all(|j| j["state"] == "completed"))
    });

    // The worker outlived its replica's death: it runs what is dispatched after it, too.
    let out = cli(&b, &machine_b, &alice_token)
        .args([
            "--json", "jobs", "dispatch", "builder", "after", "--wait", "60s",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the worker still runs"
    );
    sigkill(&mut worker);
    let log = std::fs::read_to_string(&runs).unwrap();
    let ids: Vec<&str> = log.lines().collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), JOBS + 1, "runs: {ids:?}");
    assert_eq!(unique.len(), JOBS + 1, "no job ran twice: {ids:?}");
}

/// Bob's unread messages through `relay`, acknowledged as read.
fn inbox(relay: &Relay, machine: &Home, token: &str) -> Vec<Value> {
    let out = cli(relay, machine, token)
        .args(["--json", "inbox"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .or_else(|| v["items"].as_array())
        .cloned()
        .unwrap_or_default()
}

fn sigkill(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_and_doctor_report_the_shared_database_and_never_its_password() {
    let Some(db) = Scratch::create("teamcli").await else {
        return;
    };
    let home = Home::new();
    let run = |args: &[&str]| {
        home.run(
            "ops",
            &[&["--database-url", db.url.as_str()], args].concat(),
        )
    };
    let out = run(&["tokens", "create", "--room", "ops-room", "--peer", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["migrate"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("room ops-room: current"),
        "{text}"
    );
    let out = run(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("database") && text.contains("schema v1, 1 rooms"),
        "{text}"
    );
    // Autovacuum off is a warning, not a problem: the relay works, and slows as it grows.
    let vacuums = db.setting("autovacuum").await == "on";
    assert_eq!(
        text.contains("autovacuum is off on this server"),
        !vacuums,
        "{text}"
    );
    assert!(out.status.success(), "{text}");

    // Unreachable: exit 5, the URL shown without its password.
    let out = home.run(
        "ops",
        &[
            "--database-url",
            "postgres://ops:hunter2@127.0.0.1:1/nowhere",
            "tokens",
            "list",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(
        err.contains("postgres://ops@127.0.0.1:1/nowhere") && !err.contains("hunter2"),
        "{err}"
    );
    // Not Postgres at all: bad input, nothing touched.
    let out = home.run("ops", &["--database-url", "mysql://x@y/z", "migrate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_database_backends_cost_retries_never_a_4xx_or_a_message_regression() {
    // Found by a tester: during a Postgres hiccup a peer token's call got 400 "`from` is
    // missing; this token names no peer" — a passing failure reported as bad input, which no
    // client retries.
    let Some(db) = Scratch::create("hiccup").await else {
        return;
    };
    let relay = Relay::replica(&db.url);
    let alice = relay.token(&["--room", "team", "--peer", "alice"]);
    let bob = relay.token(&["--room", "team", "--peer", "bob"]);
    let http = http();
    for (token, name) in [(&alice, "alice"), (&bob, "bob")] {
        until_done(&http, &relay.url, token, "operator", json!({"name": name})).await;
    }

    // The database drops the relay's connections again and again while alice sends.
    let stop = tokio_util::sync::CancellationToken::new();
    let killer = terminate_until(&db, &stop);
    let retried = |token: &str, op: &str, body: Value| {
        let (http, url) = (&http, &relay.url);
        let (token, op) = (token.to_owned(), op.to_owned());
        async move { until_done(http, url, &token, &op, body).await }
    };
    const SENDS: usize = 60;
    let sender = async {
        let mut retries = 0;
        let mut acked = BTreeMap::new();
        for i in 0..SENDS {
            let body = json!({"message": {"to": {"peer": "bob"}, "text": format!("hiccup {i}"),
                "idempotency_key": format!("k{i}")}});
            let (answer, tries) = retried(&alice, "send", body).await;
            acked.insert(i, answer["id"].as_i64().unwrap());
            retries += tries;
        }
        stop.cancel();
        (acked, retries)
    };
    let (ended, (acked, retries)) = tokio::join!(killer, sender);
    eprintln!("{ended} backends terminated; {retries} sends retried after a 503");
    assert!(ended > 0, "the hiccup happened");

    // Bob has every send once, in the order sent.
    let query = json!({"query": {"after": 0, "limit": 1000}});
    let (log, _) = retried(&bob, "log", query).await;
    let texts: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..SENDS).map(|i| format!("hiccup {i}")).collect();
    assert_eq!(texts, want, "nothing lost, nothing twice");
    let ids: BTreeSet<i64> = acked.values().copied().collect();
    assert_eq!(ids.len(), SENDS);
}

/// Posts a call as a client makes it: a 503 (a passing failure) is retried with the same body
/// (the same idempotency key for a send); anything but 200 or 503 fails the test. A pooled
/// connection the database ended is found dead only when next used, so this holds after a
/// hiccup too. Returns the answer and how many retries it took.
async fn until_done(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    op: &str,
    body: Value,
) -> (Value, u32) {
    let mut retries = 0;
    loop {
        let res = http
            .post(format!("{url}/v1/{op}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let answer: Value = res.json().await.unwrap_or(Value::Null);
        match status.as_u16() {
            200 => return (answer, retries),
            503 => retries += 1,
            _ => panic!("{op} got {status} during the hiccup: {answer}"),
        }
    }
}

/// Ends every connection to the scratch database every 30 ms until `stop`; how many it ended.
async fn terminate_until(db: &Scratch, stop: &tokio_util::sync::CancellationToken) -> u64 {
    let mut ended = 0;
    while !stop.is_cancelled() {
        ended += db.terminate_backends().await;
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(std::time::Duration::from_millis(30)) => {}
        }
    }
    ended
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_side_by_side_in_the_write_lane_survive_terminated_backends_regression() {
    // The Postgres write lane runs a batch's sends side by side on one connection: a
    // connection ended mid-side must leave each acknowledged send stored once, and each
    // sender's in its order, however the side was cut.
    let Some(db) = Scratch::create("sides").await else {
        return;
    };
    let relay = Relay::replica(&db.url);
    let bob = relay.token(&["--room", "team", "--peer", "bob"]);
    const SENDERS: usize = 8;
    const SENDS: usize = 15;
    let senders: Vec<String> = (0..SENDERS)
        .map(|i| relay.token(&["--room", "team", "--peer", &format!("s{i}")]))
        .collect();
    let http = http();
    let url = relay.url.clone();
    let names = (0..SENDERS).map(|i| format!("s{i}"));
    for (token, name) in senders
        .iter()
        .chain([&bob])
        .zip(names.chain(["bob".to_owned()]))
    {
        until_done(&http, &url, token, "operator", json!({ "name": name })).await;
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let killer = terminate_until(&db, &stop);
    let sending = async {
        let mut each = tokio::task::JoinSet::new();
        for (s, token) in senders.iter().cloned().enumerate() {
            let (http, url) = (http.clone(), url.clone());
            each.spawn(async move {
                let mut retries = 0;
                for i in 0..SENDS {
                    let body = json!({"message": {"to": {"peer": "bob"},
                        "text": format!("s{s} {i}"), "idempotency_key": format!("s{s}-{i}")}});
                    retries += until_done(&http, &url, &token, "send", body).await.1;
                }
                retries
            });
        }
        let mut retries = 0;
        while let Some(done) = each.join_next().await {
            retries += done.expect("a sender");
        }
        stop.cancel();
        retries
    };
    let (ended, retries) = tokio::join!(killer, sending);
    eprintln!("{ended} backends terminated; {retries} sends retried after a 503");
    assert!(ended > 0, "the hiccup happened");

    let query = json!({"query": {"after": 0, "limit": 1000}});
    let (log, _) = until_done(&http, &url, &bob, "log", query).await;
    let texts: Vec<String> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        texts.len(),
        SENDERS * SENDS,
        "nothing lost, nothing twice: {texts:?}"
    );
    for s in 0..SENDERS {
        let mine: Vec<&String> = texts
            .iter()
            .filter(|t| t.starts_with(&format!("s{s} ")))
            .collect();
        let want: Vec<String> = (0..SENDS).map(|i| format!("s{s} {i}")).collect();
        assert_eq!(
            mine,
            want.iter().collect::<Vec<_>>(),
            "sender s{s}, in its order"
        );
    }
}
