//! The official Python MCP SDK (`.ci/clients/requirements.txt`), whose client negotiates MCP
//! 2026-07-28 by default (`mode="auto"`): its session must be a live peer from its first
//! request, before any tool call, and go offline when it closes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::harness::{BIN, Home, wait_until};

/// Connects with the SDK's defaults, says which protocol it got, then holds the session open
/// until its stdin closes.
const CLIENT: &str = r#"
import os, sys, anyio
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

async def main():
    server = StdioServerParameters(
        command=sys.argv[1], args=["mcp"],
        env={"SWITCHBOARD_HOME": sys.argv[2], "SWITCHBOARD_NAME": "py-agent",
             "PATH": os.environ.get("PATH", "")})
    async with Client(server) as client:
        print("protocol", client.session.protocol_version, flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)

anyio.run(main)
"#;

fn online(home: &Home) -> bool {
    let peers = home.json("observer", &["peers", "--online"]);
    peers
        .as_array()
        .is_some_and(|all| all.iter().any(|p| p["name"] == "py-agent"))
}

#[test]
fn the_python_sdk_on_2026_07_28_is_online_before_any_tool_call_and_offline_after() {
    let test = "the_python_sdk_on_2026_07_28_is_online_before_any_tool_call";
    let Some(python) = super::or_skip(test, super::drive::python_sdk()) else {
        return;
    };
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("client.py");
    std::fs::write(&script, CLIENT).unwrap();
    let mut child = Command::new(python)
        .arg(&script)
        .arg(BIN)
        .arg(home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "protocol 2026-07-28", "the SDK's default era");
    wait_until("py-agent online without a tool call", || online(&home));

    // The client closes: its server sees stdin end, takes the peer offline and ends quietly
    // (it once reported a 2026-07-28 session's end as a failed start).
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("could not start"), "{said}");
    wait_until("py-agent offline", || !online(&home));
}
