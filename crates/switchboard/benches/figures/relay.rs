//! The relay's figures: durable messages per second through `switchboard serve` over HTTP
//! (send, then lease + hand-over + ack by the recipients, all through the relay client), and
//! push latency from a send on the relay to a channel event on a `switchboard mcp --relay`
//! session's stdout. The relay is its own process; client and relay share this machine's cores.
//!
//! Both backends: the embedded store, then (when a Postgres server is reachable, see
//! `switchboard_testkit::scratch`) a scratch Postgres database, where the push is also
//! measured across two replicas: sent through one, pushed by the other.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_core::{Exchange, NamePolicy, OpenSession, Outgoing, Run, op};
use switchboard_proto::{PeerInfo, PeerKind, PeerName};
use switchboard_relay_client::RelayClient;
use switchboard_testkit::scratch::Scratch;

use super::growth::Backend;
use super::mcp::{Session, push_latency};
use super::{BIN, cpu_seconds, first3, written_bytes};

const SENDERS: usize = 64;
const RECIPIENTS: usize = 16;

struct Relay {
    child: Child,
    url: String,
}

impl Drop for Relay {
    /// SIGTERM first, so the relay drains and exits as it does in production (and a profiler
    /// running it, such as callgrind, writes its counts); SIGKILL only if it has not ended
    /// within 20 s.
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..400 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(home: &std::path::Path, database_url: Option<&str>) -> Relay {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(db_args(database_url))
        .env("SWITCHBOARD_HOME", home)
        // Many senders in one room, each inside its limits; the checks stay in the path.
        .env("SWITCHBOARD_RATE_LIMIT", "100000")
        .env("SWITCHBOARD_RATE_WINDOW", "1s")
        .env("SWITCHBOARD_PENDING_CAP", "1000000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn switchboard serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listening line");
    let url = line.trim().trim_start_matches("listening on ").to_owned();
    Relay { child, url }
}

fn db_args(database_url: Option<&str>) -> Vec<&str> {
    database_url.map_or_else(Vec::new, |url| vec!["--database-url", url])
}

fn mint(home: &std::path::Path, database_url: Option<&str>) -> String {
    let out = Command::new(BIN)
        .args(db_args(database_url))
        .args(["tokens", "create", "--room", "bench"])
        .env("SWITCHBOARD_HOME", home)
        .output()
        .expect("tokens create");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// `replicas`: how many replicas of one Postgres database the throughput runs through (the
/// embedded store has one relay).
pub async fn figures(messages: usize, backends: &[Backend], replicas: usize) {
    if backends.contains(&Backend::Embedded) {
        backend_figures("embedded SQLite", None, messages, 1).await;
    }
    if !backends.contains(&Backend::Postgres) {
        return;
    }
    match Scratch::create("bench").await {
        Some(db) => {
            super::print_vacuum(&db).await;
            backend_figures("Postgres", Some(&db.url), messages, replicas).await;
        }
        None => println!("| Postgres figures | skipped: no Postgres server reachable |"),
    }
}

async fn backend_figures(
    backend: &str,
    database_url: Option<&str>,
    messages: usize,
    replicas: usize,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let relay = start(dir.path(), database_url);
    let token = mint(dir.path(), database_url);
    let client = Arc::new(
        RelayClient::connect(&relay.url, &token)
            .await
            .expect("connect"),
    );
    // More replicas of the same database, each with a client of its own.
    let mut others = Vec::new();
    let mut clients = vec![Arc::clone(&client)];
    if let Some(url) = database_url {
        for _ in 1..replicas {
            let other = start(dir.path(), Some(url));
            let c = RelayClient::connect(&other.url, &token)
                .await
                .expect("connect");
            clients.push(Arc::new(c));
            others.push(other);
        }
    }
    let pids: Vec<u32> = std::iter::once(&relay)
        .chain(&others)
        .map(|r| r.child.id())
        .collect();
    let relays_cpu = || pids.iter().map(|&pid| cpu_seconds(pid)).sum::<f64>();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let (relay0, own0) = (relays_cpu(), cpu_seconds(std::process::id()));
    let written0 = written_bytes(relay.child.id());
    let (rate, took, mut requests) = throughput(&clients, messages).await;
    let written = written_bytes(relay.child.id()).saturating_sub(written0);
    // The relay's CPU and this load generator's own, over the same run: both share the
    // machine's cores, so a figure that leans on the generator shows it here.
    let relay_cpu = relays_cpu() - relay0;
    let own_cpu = cpu_seconds(std::process::id()) - own0;
    let core = |cpu: f64| 100.0 * cpu / took.as_secs_f64();
    let through = match clients.len() {
        1 => "the relay".to_owned(),
        n => format!(
            "{n} replicas (sender i on replica i mod {n}, recipient j on replica j + 1 mod {n})"
        ),
    };
    println!(
        "| {backend}: durable messages/s through {through} over HTTP (send + lease + hand-over + ack; {SENDERS} senders, {RECIPIENTS} recipients, {messages} messages) | {rate:.0} |"
    );
    println!(
        "| {backend}: CPU over those {:.1} s, {through} / this load generator | {relay_cpu:.1} s ({:.0} % of a core) / {own_cpu:.1} s ({:.0} %) |",
        took.as_secs_f64(),
        core(relay_cpu),
        core(own_cpu)
    );
    // What a message costs the disk (on Postgres the server writes, not the relay).
    if database_url.is_none() {
        println!(
            "| {backend}: bytes the relay wrote to disk per message (WAL and checkpoints) | {:.0} |",
            written as f64 / messages as f64
        );
    }
    // How many messages one round of lease + hand-over + ack carries decides how many
    // requests (and writes) a message costs on the recipients' side.
    println!(
        "| {backend}: requests per message: sends / leases (empty ones) / hand-overs + acks | 1 / {:.2} ({:.2}) / {:.2} |",
        requests.leases as f64 / messages as f64,
        requests.empty_leases as f64 / messages as f64,
        2.0 * requests.rounds as f64 / messages as f64,
    );
    let (p50, p99) = super::percentiles(&mut requests.sends);
    println!(
        "| {backend}: a send under that load, called → answered (p50 / p99) | {:.2} ms / {:.2} ms |",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    println!(
        "| {backend}: machine load (1/5/15 min) before → after | {} → {} |",
        first3(&load),
        first3(&std::fs::read_to_string("/proc/loadavg").unwrap_or_default())
    );
    let from = client.operator("bench-pusher").await.expect("operator");
    push_through(
        dir.path(),
        &relay.url,
        &token,
        &client,
        &from,
        backend,
        "bench-remote",
    )
    .await;
    if let Some(url) = database_url {
        // A second replica on the same database: the push crosses replicas by NOTIFY.
        let other = start(dir.path(), Some(url));
        let what = format!("{backend}, sent via replica 1, pushed by replica 2");
        push_through(
            dir.path(),
            &other.url,
            &token,
            &client,
            &from,
            &what,
            "bench-far",
        )
        .await;
    }
    drop(relay);
}

/// Push latency to a `mcp --relay` session attached to `url`, sending through `client`.
async fn push_through(
    home: &std::path::Path,
    url: &str,
    token: &str,
    client: &RelayClient,
    from: &switchboard_core::PeerRecord,
    what: &str,
    name: &str,
) {
    let mut session = Session::spawn_with(
        home,
        name,
        &["--relay", url, "--token", token, "--push", "on"],
    );
    session.initialize(true);
    session.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "peers", "arguments": {}}}));
    session.response(2);
    push_latency(
        &session,
        client,
        from,
        name,
        &format!(" through the relay ({what})"),
    )
    .await;
    session.stop();
}

/// The recipients' requests over a throughput run.
#[derive(Default)]
struct Requests {
    leases: u64,
    empty_leases: u64,
    /// Leases that brought something, each followed by one hand-over and one ack.
    rounds: u64,
    /// How long each send took, call to answer: with a fixed number of senders, each
    /// waiting for its answer, this is what bounds the rate when the machine is not busy.
    sends: Vec<Duration>,
}

/// Messages per second, the time they took, and the recipients' requests. Sender `i` sends
/// through `clients[i % n]`, recipient `j` reads through `clients[(j + 1) % n]`: with more than
/// one replica, most mail crosses from one to another.
async fn throughput(clients: &[Arc<RelayClient>], messages: usize) -> (f64, Duration, Requests) {
    let n = clients.len();
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        let client = &clients[i % n];
        senders.push(client.operator(&format!("s{i}")).await.expect("sender"));
    }
    let mut sessions = Vec::new();
    for i in 0..RECIPIENTS {
        let req = OpenSession {
            name: PeerName::parse(&format!("r{i}")).expect("name"),
            kind: PeerKind::Agent,
            info: PeerInfo::default(),
            policy: NamePolicy::Join,
            client_pid: None,
        };
        let client = &clients[(i + 1) % n];
        sessions.push((
            Arc::clone(client),
            client.open_session(req).await.expect("session"),
        ));
    }
    let acked = Arc::new(AtomicU64::new(0));
    let (leases, rounds) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let target = messages as u64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (client, session) in sessions {
        let acked = Arc::clone(&acked);
        let (leases, rounds) = (Arc::clone(&leases), Arc::clone(&rounds));
        tasks.push(tokio::spawn(async move {
            while acked.load(Ordering::Relaxed) < target {
                leases.fetch_add(1, Ordering::Relaxed);
                let items = client
                    .run(op::Lease {
                        wait: Duration::from_millis(200),
                        ..op::Lease::new(&session, 500)
                    })
                    .await
                    .expect("lease");
                if items.is_empty() {
                    continue;
                }
                rounds.fetch_add(1, Ordering::Relaxed);
                let ids: Vec<_> = items.iter().map(|i| i.id).collect();
                client
                    .mark_delivered(&session, &ids)
                    .await
                    .expect("hand over");
                client.ack(session.peer.id, &ids).await.expect("ack");
                acked.fetch_add(ids.len() as u64, Ordering::Relaxed);
            }
        }));
    }
    let per_sender = messages / SENDERS;
    let mut sending = Vec::new();
    for (i, from) in senders.into_iter().enumerate() {
        let client = Arc::clone(&clients[i % n]);
        sending.push(tokio::spawn(async move {
            let mut took = Vec::with_capacity(per_sender);
            for n in 0..per_sender {
                let to = format!("r{}", (i + n) % RECIPIENTS);
                let began = Instant::now();
                client
                    .send(from.id, Outgoing::to_peer(to, format!("m{n}")))
                    .await
                    .expect("send");
                took.push(began.elapsed());
            }
            took
        }));
    }
    let sent = (per_sender * SENDERS) as u64;
    while acked.load(Ordering::Relaxed) < sent {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    acked.store(u64::MAX / 2, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let mut sends = Vec::with_capacity(messages);
    for t in sending {
        sends.extend(t.await.expect("a sender"));
    }
    let (leases, rounds) = (
        leases.load(Ordering::Relaxed),
        rounds.load(Ordering::Relaxed),
    );
    let requests = Requests {
        leases,
        empty_leases: leases - rounds,
        rounds,
        sends,
    };
    (sent as f64 / elapsed.as_secs_f64(), elapsed, requests)
}
