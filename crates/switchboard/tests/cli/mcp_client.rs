//! An MCP client for tests: rmcp's own client driving a spawned `switchboard mcp`, recording
//! every channel push and resource notification it receives.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, CustomNotification,
    Implementation, JsonObject, ProtocolVersion, ResourceUpdatedNotificationParam,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt};
use serde_json::Value;
use tokio::sync::Notify;

use crate::harness::{BIN, Home};

#[derive(Clone)]
pub struct Recorder {
    info: ClientConfig,
    pub pushes: Arc<Mutex<Vec<(Instant, Value)>>>,
    pub updates: Arc<Mutex<Vec<String>>>,
    pub signal: Arc<Notify>,
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    async fn on_custom_notification(
        &self,
        n: CustomNotification,
        _context: NotificationContext<RoleClient>,
    ) {
        if n.method == "notifications/claude/channel" {
            let params = n.params.unwrap_or(Value::Null);
            self.pushes.lock().unwrap().push((Instant::now(), params));
            self.signal.notify_waiters();
        }
    }

    async fn on_resource_updated(
        &self,
        p: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.updates.lock().unwrap().push(p.uri);
        self.signal.notify_waiters();
    }
}

/// What kind of client a test agent pretends to be.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Claude Code: declares the channel capability and uses the initialize handshake.
    ClaudeCode,
    /// Codex: no push; initialize handshake.
    Codex,
    /// A client on the stateless 2026-07-28 revision.
    Stateless,
}

pub struct Agent {
    pub client: RunningService<RoleClient, Recorder>,
    pub recorder: Recorder,
    pub pid: u32,
}

impl Agent {
    pub async fn start(home: &Home, name: &str, kind: Kind) -> Self {
        Self::start_with(home, name, kind, &[]).await
    }

    /// Starts a session with extra `switchboard mcp` arguments.
    pub async fn start_with(home: &Home, name: &str, kind: Kind, extra: &[&str]) -> Self {
        Self::start_at(home, name, kind, extra, None).await
    }

    /// Starts a session working in `dir` (its client's project directory).
    pub async fn start_in(home: &Home, name: &str, kind: Kind, dir: &std::path::Path) -> Self {
        Self::start_at(home, name, kind, &[], Some(dir)).await
    }

    async fn start_at(
        home: &Home,
        name: &str,
        kind: Kind,
        extra: &[&str],
        dir: Option<&std::path::Path>,
    ) -> Self {
        let (client_name, caps, version) = match kind {
            Kind::ClaudeCode => {
                let mut experimental = std::collections::BTreeMap::new();
                experimental.insert("claude/channel".to_owned(), JsonObject::new());
                let caps = ClientCapabilities::builder()
                    .enable_experimental_with(experimental)
                    .build();
                ("claude-code", caps, ProtocolVersion::LATEST_WITH_INITIALIZE)
            }
            Kind::Codex => (
                "codex-mcp-client",
                ClientCapabilities::default(),
                ProtocolVersion::LATEST_WITH_INITIALIZE,
            ),
            Kind::Stateless => (
                "codex-mcp-client",
                ClientCapabilities::default(),
                ProtocolVersion::LATEST,
            ),
        };
        let info = ClientConfig::new(caps, Implementation::new(client_name, "9.9.9"))
            .with_protocol_version(version);
        let recorder = Recorder {
            info,
            pushes: Arc::default(),
            updates: Arc::default(),
            signal: Arc::new(Notify::new()),
        };
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.arg("mcp")
            .args(extra)
            .env("SWITCHBOARD_HOME", home.path())
            .env("SWITCHBOARD_NAME", name)
            .env_remove("CLAUDE_PROJECT_DIR");
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        let transport = TokioChildProcess::new(cmd).expect("spawn switchboard mcp");
        let pid = transport.id().expect("child pid");
        let client = match kind {
            // The 2026-07-28 revision has no initialize: the client discovers the server and
            // sends its identity with every request.
            Kind::Stateless => recorder
                .clone()
                .serve_with_lifecycle(
                    transport,
                    ClientLifecycleMode::Discover {
                        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                    },
                )
                .await
                .expect("mcp discover"),
            _ => recorder
                .clone()
                .serve(transport)
                .await
                .expect("mcp handshake"),
        };
        Self {
            client,
            recorder,
            pid,
        }
    }

    pub async fn call(&self, tool: &'static str, args: Value) -> CallToolResult {
        let Value::Object(map) = args else {
            panic!("arguments must be an object")
        };
        self.client
            .call_tool(CallToolRequestParams::new(tool).with_arguments(map))
            .await
            .expect("tools/call")
    }

    /// Calls a tool that must succeed; returns its structured output.
    pub async fn ok(&self, tool: &'static str, args: Value) -> Value {
        let r = self.call(tool, args).await;
        assert_eq!(r.is_error, Some(false), "{tool} failed: {:?}", text(&r));
        r.structured_content.expect("structured output")
    }

    /// Waits until `count` channel pushes have arrived.
    pub async fn pushes(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + crate::harness::PATIENCE;
        loop {
            let notified = self.recorder.signal.notified();
            {
                let got = self.recorder.pushes.lock().unwrap();
                if got.len() >= count {
                    return got.iter().map(|(_, v)| v.clone()).collect();
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "expected {count} channel pushes");
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), notified).await;
        }
    }

    /// Ends the process with SIGKILL: no goodbye, no cleanup.
    pub fn kill(&self) {
        let status = std::process::Command::new("kill")
            .args(["-9", &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }
}

/// All text content of a tool result, joined.
pub fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}
