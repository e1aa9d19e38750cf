//! The relay end to end: `switchboard serve` as its own process, agents on other "machines"
//! (other HOMEs) reaching it with `switchboard mcp --relay`, workers and the human CLI too.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Home, Lines, PATIENCE, eventually};
use crate::mcp::await_peer;
use crate::mcp_client::{Agent, Kind, text};

/// A relay process on loopback; killed (by its PID) when dropped.
pub struct Relay {
    pub home: Home,
    pub url: String,
    /// The shared database of a team relay; `None` for the embedded store.
    pub database_url: Option<String>,
    child: Child,
    _out: Lines,
}

impl Relay {
    pub fn start() -> Self {
        Self::start_in(Home::new(), "127.0.0.1:0")
    }

    pub fn start_in(home: Home, listen: &str) -> Self {
        Self::start_with(home, listen, &[])
    }

    pub fn start_with(home: Home, listen: &str, extra: &[&str]) -> Self {
        let (child, out, url) = spawn_relay(&home, listen, extra);
        Self {
            home,
            url,
            database_url: None,
            child,
            _out: out,
        }
    }

    /// A replica of a team relay on the shared database at `database_url`.
    pub fn replica(database_url: &str) -> Self {
        let home = Home::new();
        let extra = ["--database-url", database_url];
        let (child, out, url) = spawn_relay(&home, "127.0.0.1:0", &extra);
        Self {
            home,
            url,
            database_url: Some(database_url.to_owned()),
            child,
            _out: out,
        }
    }

    fn db_args(&self) -> Vec<&str> {
        match &self.database_url {
            Some(url) => vec!["--database-url", url],
            None => Vec::new(),
        }
    }

    /// SIGKILLs the relay (no drain, no goodbye) and starts it again on the same port.
    pub fn crash_and_restart(&mut self) {
        self.crash();
        self.restart();
    }

    /// SIGKILLs the relay (no drain, no goodbye); [`Self::restart`] brings it back.
    pub fn crash(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts the relay again on its port, after [`Self::crash`].
    pub fn restart(&mut self) {
        let listen = format!("127.0.0.1:{}", self.port());
        let (child, out, url) = spawn_relay(&self.home, &listen, &self.db_args());
        assert_eq!(url, self.url);
        self.child = child;
        self._out = out;
    }

    /// Mints a token: `tokens create` with these arguments.
    pub fn token(&self, args: &[&str]) -> String {
        let out = self.home.run(
            "relay",
            &[self.db_args().as_slice(), &["tokens", "create"], args].concat(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    pub fn port(&self) -> String {
        self.url.rsplit(':').next().unwrap().to_owned()
    }
}

fn spawn_relay(home: &Home, listen: &str, extra: &[&str]) -> (Child, Lines, String) {
    let mut child = home
        .cmd("relay")
        .args(["serve", "--listen", listen, "--session-idle", "2s"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = Lines::of(child.stdout.take().unwrap());
    let line = out.expect("listening on", PATIENCE);
    let url = line.trim_start_matches("listening on ").to_owned();
    (child, out, url)
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An agent on its own machine (HOME), connected through the relay.
pub async fn remote_agent(relay: &Relay, machine: &Home, kind: Kind, token: &str) -> Agent {
    Agent::start_with(
        machine,
        "ignored-by-peer-tokens",
        kind,
        &["--relay", &relay.url, "--token", token],
    )
    .await
}

/// A worker on `machine` serving `agent` through the relay, running `sh -c script` (the job's
/// prompt on its stdin), with a job lease that cannot lapse under a loaded CI.
/// A worker through the relay; its stderr goes to [`worker_log`], which a failing test shows.
pub fn worker(relay: &Relay, machine: &Home, token: &str, agent: &str, script: &str) -> Child {
    let log = std::fs::File::create(worker_log(machine, agent)).unwrap();
    cli(relay, machine, token)
        .env("SWITCHBOARD_JOB_LEASE", "60s")
        .args(["worker", "--agent", agent, "--", "sh", "-c", script])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Where [`worker`] writes the stderr of the worker for `agent` on `machine`.
pub fn worker_log(machine: &Home, agent: &str) -> std::path::PathBuf {
    machine.path().join(format!("worker-{agent}.log"))
}

/// The human CLI on `machine`, through the relay.
pub fn cli(relay: &Relay, machine: &Home, token: &str) -> Command {
    let mut cmd = machine.cmd("human");
    cmd.env("SWITCHBOARD_RELAY", &relay.url)
        .env("SWITCHBOARD_TOKEN", token);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_two_machines_ask_answer_message_and_job_through_the_relay() {
    let relay = Relay::start();
    let alice_token = relay.token(&["--room", "team", "--peer", "alice"]);
    let bob_token = relay.token(&["--room", "team", "--peer", "bob"]);
    let reviewer_token = relay.token(&["--room", "team", "--peer", "reviewer"]);
    let (machine_a, machine_b) = (Home::new(), Home::new());

    let alice = remote_agent(&relay, &machine_a, Kind::ClaudeCode, &alice_token).await;
    let bob = remote_agent(&relay, &machine_b, Kind::Codex, &bob_token).await;
    let me = alice.ok("peers", json!({})).await;
    assert_eq!(
        me["me"]["name"], "alice",
        "the peer token decides the name: {me}"
    );
    await_peer(&alice, "bob", true).await;

    // A question with a context hint, answered with sources and a basis.
    let q = alice
        .ok(
            "ask",
            json!({"to": "bob", "question": "where is the session cookie set?",
                   "context_hint": "login fails after the 2.3 upgrade"}),
        )
        .await;
    let qid = q["id"].as_i64().unwrap();
    let got = bob.call("inbox", json!({"wait": 10})).await;
    let shown = text(&got);
    assert!(
        shown.contains("session cookie") && shown.contains("2.3 upgrade"),
        "{shown}"
    );
    bob.ok(
        "answer",
        json!({"id": qid, "text": "in session.ts, on login",
               "sources": ["src/auth/session.ts:42", "a1b2c3d"], "basis": "verified"}),
    )
    .await;
    let pushed = alice.pushes(1).await;
    let content = pushed[0]["content"].as_str().unwrap_or_default();
    assert!(content.contains("src/auth/session.ts:42"), "{content}");
    assert!(content.contains("verified"), "{content}");

    // A plain message back, pushed into alice's session.
    bob.ok(
        "send",
        json!({"to": "alice", "text": "also check the CSRF token"}),
    )
    .await;
    let pushed = alice.pushes(2).await;
    assert!(pushed[1]["content"].as_str().unwrap().contains("CSRF"));

    // A job: dispatched by alice, run by a worker on machine B, alice woken with a notice.
    let mut worker = worker(
        &relay,
        &machine_b,
        &reviewer_token,
        "reviewer",
        "echo \"reviewed: $(cat)\"",
    );
    let job = alice
        .ok(
            "dispatch",
            json!({"agent": "reviewer", "prompt": "the login diff"}),
        )
        .await;
    let id = job["id"].as_i64().unwrap();
    // Woken by a pushed notice (id and state only), then the result is fetched.
    let pushed = alice.pushes(3).await;
    assert!(
        pushed.iter().any(|p| p["meta"]["kind"] == "job"),
        "a job notice was pushed: {pushed:?}"
    );
    let done = alice.ok("job", json!({"id": id})).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert!(
        done["result"]
            .as_str()
            .unwrap()
            .contains("reviewed: the login diff")
    );
    worker.kill().unwrap();
    worker.wait().unwrap();

    // The human CLI on machine A reads the same room.
    let out = cli(&relay, &machine_a, &alice_token)
        .args(["--json", "sent"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(sent.to_string().contains("session cookie"), "{sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_restart_loses_nothing_acknowledged_and_agents_carry_on() {
    let mut relay = Relay::start();
    let alice_token = relay.token(&["--room", "team", "--peer", "alice"]);
    let bob_token = relay.token(&["--room", "team", "--peer", "bob"]);
    let (machine_a, machine_b) = (Home::new(), Home::new());
    let alice = remote_agent(&relay, &machine_a, Kind::ClaudeCode, &alice_token).await;
    let bob = remote_agent(&relay, &machine_b, Kind::Codex, &bob_token).await;

    let before = alice
        .ok(
            "send",
            json!({"to": "bob", "text": "sent before the crash"}),
        )
        .await;
    relay.crash_and_restart();

    // The sender carries on (its call retries while the relay comes back).
    let after = alice
        .ok(
            "send",
            json!({"to": "bob", "text": "sent after the restart"}),
        )
        .await;
    let items = eventually("bob sees both messages", || async {
        let r = bob.ok("inbox", json!({"wait": 5})).await;
        let items = r["items"].as_array().cloned().unwrap_or_default();
        (items.len() >= 2).then_some(items)
    })
    .await;
    let ids: Vec<i64> = items.iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert!(ids.contains(&before["id"].as_i64().unwrap()), "{items:?}");
    assert!(ids.contains(&after["id"].as_i64().unwrap()), "{items:?}");
    bob.ok("inbox", json!({"ack": ids})).await;

    // Pushes flow again: the reopened session's event stream resumed.
    bob.ok(
        "send",
        json!({"to": "alice", "text": "all good after the restart"}),
    )
    .await;
    let pushed = alice.pushes(1).await;
    assert!(
        pushed[0]["content"]
            .as_str()
            .unwrap()
            .contains("after the restart")
    );
    // Both are online again.
    let peers = alice.ok("peers", json!({})).await;
    assert!(peers.to_string().contains("\"online\":true"), "{peers}");
    drop(relay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamable_http_client_talks_to_mcp_directly() {
    use rmcp::ServiceExt;
    use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    let relay = Relay::start();
    let cursor_token = relay.token(&["--room", "team", "--peer", "cursor"]);
    let bob_token = relay.token(&["--room", "team", "--peer", "bob"]);
    let bob = remote_agent(&relay, &Home::new(), Kind::ClaudeCode, &bob_token).await;
    crate::harness::crypto();
    let config = StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", relay.url))
        .auth_header(cursor_token);
    let transport = StreamableHttpClientTransport::from_config(config);
    let info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("cursor", "1.0"),
    );
    let client = info.serve(transport).await.expect("initialize over HTTP");
    let call = |tool: &'static str, args: Value| {
        let Value::Object(map) = args else { panic!() };
        client.call_tool(CallToolRequestParams::new(tool).with_arguments(map))
    };
    let me = call("peers", json!({})).await.unwrap();
    let me = me.structured_content.unwrap();
    assert_eq!(me["me"]["name"], "cursor", "{me}");
    let sent = call(
        "send",
        json!({"to": "bob", "text": "hello over plain HTTP"}),
    )
    .await
    .unwrap();
    assert_eq!(sent.is_error, Some(false), "{}", text(&sent));
    let pushed = bob.pushes(1).await;
    assert!(
        pushed[0]["content"]
            .as_str()
            .unwrap()
            .contains("plain HTTP")
    );
    client.cancel().await.unwrap();
}

#[test]
fn the_relay_serves_tls_and_the_cli_trusts_a_private_ca() {
    let home = Home::new();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = home.path().join("relay.crt");
    let key_path = home.path().join("relay.key");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let (cert_arg, key_arg) = (cert_path.to_str().unwrap(), key_path.to_str().unwrap());
    let relay = Relay::start_with(
        home,
        "127.0.0.1:0",
        &["--tls-cert", cert_arg, "--tls-key", key_arg],
    );
    assert!(relay.url.starts_with("https://"), "{}", relay.url);
    let token = relay.token(&["--room", "team"]);
    let url = format!("https://localhost:{}", relay.port());
    let run = |ca: Option<&std::path::Path>| {
        let mut cmd = Home::new().cmd("human");
        cmd.args(["--relay", &url, "--token", &token, "status"]);
        if let Some(ca) = ca {
            cmd.arg("--relay-ca").arg(ca);
        }
        cmd.output().unwrap()
    };
    let untrusted = run(None);
    assert!(
        !untrusted.status.success(),
        "an unknown certificate is refused"
    );
    let trusted = run(Some(&cert_path));
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert!(String::from_utf8_lossy(&trusted.stdout).contains("room 'team'"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_hooks_bring_relay_mail_into_the_session() {
    let relay = Relay::start();
    let alice_token = relay.token(&["--room", "team", "--peer", "alice"]);
    let bob_token = relay.token(&["--room", "team", "--peer", "bob"]);
    let machine_a = Home::new();
    let alice = remote_agent(&relay, &machine_a, Kind::Codex, &alice_token).await;
    alice.ok("peers", json!({})).await;
    let out = cli(&relay, &Home::new(), &bob_token)
        .args(["send", "alice", "the schema moved to db/v2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let input = crate::hooks::fixture("user-prompt-submit");
    let mut hook = cli(&relay, &machine_a, &alice_token);
    hook.args(["hook", "claude", "user-prompt-submit"]);
    let out = crate::harness::fed(hook, input.as_bytes())
        .wait_with_output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let context = json["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap();
    assert!(context.contains("the schema moved to db/v2"), "{context}");
    assert!(context.contains("from bob"), "{context}");
}

/// Regression: `inbox` with a peer token failed with "the name is taken": the CLI opens an
/// operator session, and the token's peer had been minted as an agent.
#[test]
fn a_human_reads_the_inbox_of_a_peer_token_from_the_cli() {
    let relay = Relay::start();
    let alice = relay.token(&["--room", "team", "--peer", "alice"]);
    let carol = relay.token(&["--room", "team", "--peer", "carol"]);
    let machine = Home::new();
    let out = cli(&relay, &machine, &alice)
        .args(["send", "carol", "lunch at noon?"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&relay, &machine, &carol)
        .args(["inbox"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("lunch at noon?"));
    let out = cli(&relay, &machine, &alice)
        .args(["--json", "sent"])
        .output()
        .unwrap();
    let sent: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        sent.to_string().contains("\"read\""),
        "carol's inbox acknowledged it: {sent}"
    );
}

/// A worker attached to a relay used to exit when the relay restarted (its long wait for a
/// job failed mid-request): it now waits the outage out and runs what is dispatched after.
#[test]
fn a_relay_worker_rides_out_a_relay_restart_regression() {
    let mut relay = Relay::start();
    let worker_token = relay.token(&["--room", "team", "--peer", "reviewer"]);
    let alice_token = relay.token(&["--room", "team", "--peer", "alice"]);
    let machine = Home::new();
    let mut w = worker(
        &relay,
        &machine,
        &worker_token,
        "reviewer",
        "echo \"ok: $(cat)\"",
    );
    let dispatch = |relay: &Relay, prompt: &str| {
        let out = cli(relay, &machine, &alice_token)
            .args([
                "--json", "jobs", "dispatch", "reviewer", prompt, "--wait", "60s",
            ])
            .output()
            .unwrap();
        let view: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        (
            view["state"].clone(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let _shown = ShowOnPanic(worker_log(&machine, "reviewer"));
    // `watch` follows alice's part of the room through the same restart.
    let mut watch = cli(&relay, &machine, &alice_token);
    watch.arg("watch");
    let (mut watcher, seen, said) = crate::harness::spawn(watch);
    said.expect("watching", Duration::from_secs(60));
    let send = |relay: &Relay, text: &str| {
        let out = cli(relay, &machine, &worker_token)
            .args(["send", "alice", text])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", crate::harness::stderr(&out));
    };
    let (state, err) = dispatch(&relay, "before");
    assert_eq!(state, "completed", "{err}");
    send(&relay, "seen before");
    seen.expect("seen before", Duration::from_secs(60));
    relay.crash_and_restart();
    let (state, err) = dispatch(&relay, "after the restart");
    assert_eq!(state, "completed", "{err}");
    send(&relay, "seen after");
    seen.expect("seen after", Duration::from_secs(60));
    said.expect("unreachable", Duration::from_secs(1));
    for (what, child) in [("worker", &mut w), ("watch", &mut watcher)] {
        assert!(child.try_wait().unwrap().is_none(), "the {what} still runs");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// Shows a log file on stderr if the test fails while this is held, so the failure explains
/// itself.
pub struct ShowOnPanic(pub std::path::PathBuf);

impl Drop for ShowOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.0).unwrap_or_default();
            eprintln!("--- {} ---\n{text}--- end ---", self.0.display());
        }
    }
}
