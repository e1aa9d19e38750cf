//! `switchboard demo`: the product doing its job in a few seconds, with nothing to set up.
//! Two real agent sessions (`switchboard mcp` children of this process, driven over MCP by
//! rmcp's client, as an agent client would) and a real worker share a throwaway embedded store;
//! they exchange a message and a reply, a grounded question and its answer, and a job, and
//! the timeline shows when each step happened and how long it took.

use std::path::Path;
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde::Serialize;
use serde_json::{Value, json};

use super::super::args::DemoArgs;
use super::super::{CliError, output};

/// Longest any one step may take before the demo gives up and says which step it was.
const STEP_LIMIT: Duration = Duration::from_secs(60);

/// One line of the timeline.
#[derive(Serialize)]
struct Step {
    /// Since the demo started.
    at_ms: f64,
    what: String,
    took_ms: f64,
}

struct Timeline {
    start: Instant,
    steps: Vec<Step>,
}

impl Timeline {
    /// Records a step that began at `began` and ended now.
    fn done(&mut self, began: Instant, what: impl Into<String>) {
        self.took(began, Instant::now(), what);
    }

    fn took(&mut self, began: Instant, ended: Instant, what: impl Into<String>) {
        self.steps.push(Step {
            at_ms: ms(began - self.start),
            what: what.into(),
            took_ms: ms(ended - began),
        });
    }

    /// The steps in the order they began (concurrent ones are recorded as they end).
    fn print(&mut self) -> Result<(), CliError> {
        self.steps.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        let mut table = output::Table::new(&["AT", "TOOK", "STEP"]);
        for s in &self.steps {
            table.row(vec![
                (format!("{:.1} ms", s.at_ms), anstyle::Style::new()),
                (format!("{:.1} ms", s.took_ms), anstyle::Style::new().bold()),
                (s.what.clone(), anstyle::Style::new()),
            ]);
        }
        table.print()
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn failed(step: &str, e: impl std::fmt::Display) -> CliError {
    CliError::Demo(format!("{step}: {e}"))
}

/// An agent session: `switchboard mcp` on the demo's store, under a fixed name.
struct Agent {
    name: &'static str,
    client: RunningService<RoleClient, ClientConfig>,
}

impl Agent {
    async fn start(exe: &Path, home: &Path, name: &'static str) -> Result<Self, CliError> {
        let mut cmd = tokio::process::Command::new(exe);
        cmd.arg("mcp")
            .env("SWITCHBOARD_HOME", home)
            .env("SWITCHBOARD_NAME", name)
            // The local store, whatever relay this machine's login names.
            .env("SWITCHBOARD_RELAY", "")
            .env_remove("SWITCHBOARD_TOKEN");
        let transport = TokioChildProcess::new(cmd).map_err(|e| failed("start a session", e))?;
        let client = ClientConfig::default()
            .serve(transport)
            .await
            .map_err(|e| failed("MCP handshake", e))?;
        Ok(Self { name, client })
    }

    /// Calls a tool and returns its structured result; a tool error ends the demo with it.
    async fn call(&self, tool: &'static str, args: Value) -> Result<Value, CliError> {
        let Value::Object(args) = args else {
            return Err(failed(tool, "arguments must be an object"));
        };
        let call = self
            .client
            .call_tool(CallToolRequestParams::new(tool).with_arguments(args));
        let result = tokio::time::timeout(STEP_LIMIT, call)
            .await
            .map_err(|_| failed(tool, "no answer within a minute"))?
            .map_err(|e| failed(tool, e))?;
        if result.is_error == Some(true) {
            let text: Vec<String> = result
                .content
                .iter()
                .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                .collect();
            return Err(failed(&format!("{} {tool}", self.name), text.join(" ")));
        }
        result
            .structured_content
            .ok_or_else(|| failed(tool, "no structured result"))
    }
}

/// The first inbox item of `kind` in an `inbox` result, as (id, text).
fn first_item(inbox: &Value, kind: &str) -> Result<(i64, String), CliError> {
    inbox["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["kind"] == kind))
        .and_then(|i| Some((i["id"].as_i64()?, i["text"].as_str()?.to_owned())))
        .ok_or_else(|| failed("inbox", format!("no {kind} arrived: {inbox}")))
}

pub async fn run(args: DemoArgs, json: bool) -> Result<(), CliError> {
    let exe = std::env::current_exe()?;
    let dir = tempfile::Builder::new()
        .prefix("switchboard-demo-")
        .tempdir()?;
    let home = dir.path().to_owned();
    // The store refuses to be private in a directory others can enter; a demo store is private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700))?;
    }
    if !json {
        output::line(format!(
            "Two agent sessions (alice, bob) and a worker on a throwaway embedded store in {}\n",
            home.display()
        ))?;
    }
    let mut t = Timeline {
        start: Instant::now(),
        steps: Vec::new(),
    };
    let outcome = story(&exe, &home, &mut t).await;
    if args.keep {
        let kept = dir.keep();
        if !json {
            output::line(format!(
                "\nKept the store: switchboard --home {} peers",
                kept.display()
            ))?;
        }
    }
    outcome?;
    if json {
        return output::json(&json!({ "steps": t.steps, "home": home }));
    }
    t.print()?;
    output::line(
        "\nEach step went through a real `switchboard mcp` session over MCP, as an agent client \
         drives it; every message was on disk before its sender heard \"ok\".\nNext: \
         `switchboard setup claude-code` (or codex, cursor, claude-desktop) connects your own \
         agents.",
    )
}

async fn story(exe: &Path, home: &Path, t: &mut Timeline) -> Result<(), CliError> {
    let began = Instant::now();
    let alice = Agent::start(exe, home, "alice").await?;
    t.done(
        began,
        "alice's session starts (switchboard mcp, MCP handshake)",
    );
    let began = Instant::now();
    let bob = Agent::start(exe, home, "bob").await?;
    t.done(began, "bob's session starts");
    let began = Instant::now();
    let peers = bob.call("peers", json!({})).await?;
    let others = peers["peers"]
        .as_array()
        .map(|p| {
            p.iter()
                .filter_map(|p| p["name"].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    t.done(began, format!("bob asks who is there: {others}"));

    // A worker serving the agent name `counter`: each job's prompt on its stdin, `wc -w` the
    // command. Ended when the demo ends (kill_on_drop), by this process, which started it.
    let began = Instant::now();
    let mut worker = tokio::process::Command::new(exe);
    worker
        .args(["worker", "--agent", "counter", "--", "wc", "-w"])
        .env("SWITCHBOARD_HOME", home)
        .env("SWITCHBOARD_RELAY", "")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let _worker = worker.spawn().map_err(|e| failed("start the worker", e))?;
    t.done(
        began,
        "a worker for agent 'counter' starts (`wc -w` as its command)",
    );

    // A message: bob is already waiting in `inbox` when alice sends.
    let waiting = bob.call("inbox", json!({ "wait": 30 }));
    let sending = async {
        let began = Instant::now();
        let sent = alice
            .call(
                "send",
                json!({ "to": "bob", "text": "What does the users table look like?" }),
            )
            .await?;
        Ok::<_, CliError>((began, Instant::now(), sent))
    };
    let (inbox, sent) = tokio::join!(waiting, sending);
    let (began, acked, _) = sent?;
    let (id, _) = first_item(&inbox?, "message")?;
    t.took(
        began,
        acked,
        "alice sends bob a message (on disk before \"ok\")",
    );
    t.done(began, "bob's waiting inbox has it (time from the send)");

    let began = Instant::now();
    bob.call(
        "send",
        json!({ "to": "alice", "text": "id, email, created_at; see migrations/001.sql", "reply_to": id }),
    )
    .await?;
    t.done(began, "bob replies (the message is marked read)");
    let began = Instant::now();
    let read = alice.call("sent", json!({ "id": id })).await?;
    let state = read["messages"][0]["recipients"][0]["state"]
        .as_str()
        .unwrap_or("?")
        .to_owned();
    t.done(began, format!("alice checks her message: {state}"));

    // A grounded question: alice waits for the answer while bob finds and answers it.
    let asking = async {
        let began = Instant::now();
        let q = alice
            .call(
                "ask",
                json!({ "to": "bob", "question": "Which file defines the users table?", "wait": 30 }),
            )
            .await?;
        Ok::<_, CliError>((began, q))
    };
    let answering = async {
        let inbox = bob
            .call("inbox", json!({ "wait": 30, "ack": [id] }))
            .await?;
        let (qid, _) = first_item(&inbox, "question")?;
        let began = Instant::now();
        bob.call(
            "answer",
            json!({ "id": qid, "text": "migrations/001.sql, lines 1-12", "basis": "verified",
                    "sources": ["migrations/001.sql:1"] }),
        )
        .await?;
        Ok::<_, CliError>(began)
    };
    let (asked, answered) = tokio::join!(asking, answering);
    let (began, q) = asked?;
    let answered = answered?;
    let state = q["state"].as_str().unwrap_or("?").to_owned();
    t.done(
        answered,
        "bob answers it, grounded (verified, with its source)",
    );
    t.done(
        began,
        format!("alice asks bob a question and waits: {state}"),
    );

    // A durable job: alice dispatches to `counter` and waits for the worker's result.
    let began = Instant::now();
    let job = alice
        .call(
            "dispatch",
            json!({ "agent": "counter", "prompt": "count the words of this short prompt", "wait": 60 }),
        )
        .await?;
    let result = job["result"].as_str().unwrap_or("").trim().to_owned();
    let state = job["state"].as_str().unwrap_or("?").to_owned();
    if state != "completed" {
        return Err(failed("job", format!("it ended {state}: {job}")));
    }
    t.done(
        began,
        format!("alice dispatches a job; the worker runs it: {state}, \"{result}\""),
    );
    drop(alice);
    drop(bob);
    Ok(())
}
