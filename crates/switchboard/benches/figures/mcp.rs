//! The MCP server's figures: cold start, push latency into a separate session process, idle
//! CPU, peak RSS, and the size of what every session pays for (`tools/list` + instructions).
//! The bench speaks raw JSON-RPC over the child's pipes, as an agent client would.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_core::{Exchange, Mailbox, Outgoing, PeerRecord};

use super::{BIN, fmt_dur, percentiles};

const COLD_STARTS: usize = 40;
const PUSHES: usize = 300;
const IDLE_WINDOW: Duration = Duration::from_secs(30);

pub(crate) struct Session {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl Session {
    fn spawn(home: &std::path::Path, name: &str) -> Self {
        Self::spawn_with(home, name, &[])
    }

    /// A session with extra `switchboard mcp` arguments (`--relay URL --token T`).
    pub(crate) fn spawn_with(home: &std::path::Path, name: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .arg("mcp")
            .args(extra)
            .env("SWITCHBOARD_HOME", home)
            .env("SWITCHBOARD_NAME", name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn switchboard mcp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
        }
    }

    pub(crate) fn send(&mut self, msg: &Value) {
        writeln!(self.stdin, "{msg}").expect("write to the session");
        self.stdin.flush().expect("flush");
    }

    /// The next line that is the response to request `id`.
    pub(crate) fn response(&self, id: i64) -> (Instant, Value) {
        loop {
            let (at, line) = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .expect("a response");
            let v: Value = serde_json::from_str(&line).expect("json line");
            if v["id"] == id {
                return (at, v);
            }
        }
    }

    pub(crate) fn initialize(&mut self, channel: bool) -> Value {
        let caps = if channel {
            json!({"experimental": {"claude/channel": {}}})
        } else {
            json!({})
        };
        self.send(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": caps,
            "clientInfo": {"name": "claude-code", "version": "bench"}}}),
        );
        let (_, v) = self.response(1);
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        v
    }

    pub(crate) fn stop(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

pub async fn figures(home: &std::path::Path, mailbox: &Mailbox, from: &PeerRecord) {
    cold_start(home);
    let mut b = Session::spawn(home, "bench-b");
    let init = b.initialize(true);
    b.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
    let (_, tools) = b.response(2);
    let size = tools["result"]["tools"].to_string().len()
        + init["result"]["instructions"].as_str().map_or(0, str::len);
    println!("| `tools/list` + `instructions` | {size} bytes |");
    // A tool call returns only once the session is registered.
    b.send(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "peers", "arguments": {}}}));
    b.response(3);
    push_latency(&b, mailbox, from, "bench-b", "").await;
    let pid = b.child.id();
    println!(
        "| peak RSS of a session after {PUSHES} pushes | {:.1} MB |",
        peak_rss_mb(pid)
    );
    println!(
        "| idle CPU of a session over {} s | {:.3} % |",
        IDLE_WINDOW.as_secs(),
        idle_cpu_percent(pid)
    );
    b.stop();
}

fn cold_start(home: &std::path::Path) {
    let mut samples = Vec::with_capacity(COLD_STARTS);
    for i in 0..COLD_STARTS {
        let started = Instant::now();
        let mut s = Session::spawn(home, &format!("cold-{i}"));
        s.send(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "bench", "version": "0"}}}),
        );
        let (answered, _) = s.response(1);
        samples.push(answered.duration_since(started));
        s.stop();
    }
    let (p50, p99) = percentiles(&mut samples);
    println!(
        "| cold start, spawn → `initialize` result (p50 / p99 of {COLD_STARTS}) | {} / {} |",
        fmt_dur(p50),
        fmt_dur(p99)
    );
}

pub(crate) async fn push_latency(
    b: &Session,
    mailbox: &dyn Exchange,
    from: &PeerRecord,
    to: &str,
    what: &str,
) {
    let mut from_return = Vec::with_capacity(PUSHES);
    let mut from_call = Vec::with_capacity(PUSHES);
    for i in 0..PUSHES {
        let called = Instant::now();
        mailbox
            .send(from.id, Outgoing::to_peer(to, format!("push {i}")))
            .await
            .expect("send");
        let returned = Instant::now();
        let pushed = loop {
            let (at, line) = b
                .lines
                .recv_timeout(Duration::from_secs(30))
                .expect("a push");
            if line.contains("notifications/claude/channel") {
                break at;
            }
        };
        from_return.push(pushed.saturating_duration_since(returned));
        from_call.push(pushed.saturating_duration_since(called));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (r50, r99) = percentiles(&mut from_return);
    let (c50, c99) = percentiles(&mut from_call);
    println!(
        "| push{what}, `send` returns → `notifications/claude/channel` on the session's stdout (p50 / p99) | {} / {} |",
        fmt_dur(r50),
        fmt_dur(r99)
    );
    println!(
        "| push{what}, `send` called (incl. commit) → on stdout (p50 / p99) | {} / {} |",
        fmt_dur(c50),
        fmt_dur(c99)
    );
}

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU time used while idle, from /proc, as a percentage of one core.
fn idle_cpu_percent(pid: u32) -> f64 {
    let ticks = || -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    };
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    let before = ticks().unwrap_or(0);
    std::thread::sleep(IDLE_WINDOW);
    let after = ticks().unwrap_or(0);
    (after - before) as f64 / hz / IDLE_WINDOW.as_secs_f64() * 100.0
}

/// How long a session takes to end once told to: SIGTERM, SIGINT or stdin EOF, with stdin a
/// pipe or a socket (as Claude Code gives it). Measured from the signal (or the close) to the
/// process's exit as its parent sees it.
pub(crate) fn exit_figures() {
    use std::os::unix::net::UnixStream;
    const SAMPLES: usize = 20;
    for (how, socket) in [
        ("SIGTERM", false),
        ("SIGTERM", true),
        ("SIGINT", true),
        ("EOF", false),
        ("EOF", true),
    ] {
        let mut samples = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let home = tempfile::tempdir().expect("temp dir");
            let mut cmd = Command::new(BIN);
            cmd.arg("mcp")
                .env("SWITCHBOARD_HOME", home.path())
                .env("SWITCHBOARD_NAME", "exiting")
                .stderr(Stdio::null());
            let mut socket_end = None;
            let (mut child, mut ours_w, ours_r): (Child, Box<dyn Write>, Box<dyn BufRead>) =
                if socket {
                    let (ours, theirs) = UnixStream::pair().expect("socket pair");
                    let child = cmd
                        .stdin(Stdio::from(std::os::fd::OwnedFd::from(
                            theirs.try_clone().expect("clone"),
                        )))
                        .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
                        .spawn()
                        .expect("spawn");
                    let reader = BufReader::new(ours.try_clone().expect("clone"));
                    socket_end = Some(ours.try_clone().expect("clone"));
                    (child, Box::new(ours), Box::new(reader))
                } else {
                    let mut child = cmd
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .spawn()
                        .expect("spawn");
                    let w = child.stdin.take().expect("stdin");
                    let r = BufReader::new(child.stdout.take().expect("stdout"));
                    (child, Box::new(w), Box::new(r))
                };
            let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"}}});
            writeln!(ours_w, "{init}").expect("write");
            ours_w.flush().expect("flush");
            let mut lines = ours_r.lines();
            let _ = lines.next();
            let started = Instant::now();
            match how {
                "EOF" => match &socket_end {
                    // A socket has other handles open here: the client shuts its sending half.
                    Some(end) => end.shutdown(std::net::Shutdown::Write).expect("shutdown"),
                    None => drop(ours_w),
                },
                signal => {
                    let flag = if signal == "SIGTERM" { "-TERM" } else { "-INT" };
                    Command::new("kill")
                        .args([flag, &child.id().to_string()])
                        .status()
                        .expect("kill");
                }
            }
            child.wait().expect("wait");
            samples.push(started.elapsed());
        }
        let (p50, p99) = percentiles(&mut samples);
        let stdin = if socket { "socket" } else { "pipe" };
        println!(
            "| `switchboard mcp` ends after {how}, stdin a {stdin} (p50 / p99) | {} / {} |",
            fmt_dur(p50),
            fmt_dur(p99)
        );
    }
}
