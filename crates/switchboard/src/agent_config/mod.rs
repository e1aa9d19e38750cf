//! Agent clients' configuration files: where each client keeps its MCP servers (and, for
//! Claude Code and Codex, its hooks), and how switchboard's entries are merged into them without
//! touching anything else.

mod files;
mod merge;

use std::path::PathBuf;

pub use files::{Applied, FileError, Found, apply, inspect, preview, remove};

/// The clients `setup` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AgentClient {
    ClaudeCode,
    Codex,
    ClaudeDesktop,
    Cursor,
}

impl AgentClient {
    pub const ALL: [AgentClient; 4] = [
        AgentClient::ClaudeCode,
        AgentClient::Codex,
        AgentClient::ClaudeDesktop,
        AgentClient::Cursor,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::ClaudeCode => "Claude Code",
            Self::Codex => "Codex CLI",
            Self::ClaudeDesktop => "Claude Desktop",
            Self::Cursor => "Cursor",
        }
    }
}

/// How a client is to start (or reach) switchboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// This binary's absolute path.
    pub exe: String,
    pub relay: Option<RelaySetup>,
}

/// The variable every relay configuration reads the token from.
pub const TOKEN_ENV: &str = "SWITCHBOARD_TOKEN";

/// A relay the client reaches, with its token read from an environment variable (never
/// written into a configuration file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySetup {
    pub url: String,
    pub token_env: String,
    /// The session finds the token in the stored login (`switchboard login`), so a stdio
    /// server's entry passes no token variable (a client may refuse to start a server whose
    /// variable is unset). A direct HTTP connection still takes it from `token_env`.
    pub from_login: bool,
    /// Connect the client straight to the relay's `/mcp` (Streamable HTTP) instead of through a
    /// local `switchboard mcp --relay`.
    pub http: bool,
}

impl Launch {
    pub fn local(exe: &str) -> Self {
        Self {
            exe: exe.to_owned(),
            relay: None,
        }
    }

    /// The `switchboard` command line before a subcommand: the relay flag when there is one.
    pub fn command(&self) -> String {
        match &self.relay {
            Some(r) => format!("{} --relay {}", self.exe, r.url),
            None => self.exe.clone(),
        }
    }

    /// Arguments of the stdio server.
    pub fn mcp_args(&self) -> Vec<String> {
        match &self.relay {
            Some(r) => vec!["mcp".into(), "--relay".into(), r.url.clone()],
            None => vec!["mcp".into()],
        }
    }

    /// The relay's MCP endpoint, when the client is to connect straight to it.
    pub fn http_url(&self) -> Option<String> {
        self.relay
            .as_ref()
            .filter(|r| r.http)
            .map(|r| format!("{}/mcp", r.url.trim_end_matches('/')))
    }
}

/// One file and what switchboard puts in it.
#[derive(Debug, Clone)]
pub struct Target {
    pub path: PathBuf,
    pub entry: Entry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// `mcpServers.switchboard` in a JSON file, in the given client's dialect.
    McpJson(AgentClient),
    /// Claude Code's `hooks` in its settings file.
    ClaudeHooks,
    /// Codex's `hooks` in `$CODEX_HOME/hooks.json`.
    CodexHooks,
    /// `[mcp_servers.switchboard]` in Codex's TOML, and the trust of switchboard's hooks in
    /// the `hooks.json` beside it.
    CodexToml,
}

#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error("no home directory is known for this user; set HOME")]
    NoHome,
}

/// The files a client's registration lives in, on this machine.
pub fn targets(client: AgentClient) -> Result<Vec<Target>, LocateError> {
    let base = directories::BaseDirs::new().ok_or(LocateError::NoHome)?;
    let home = base.home_dir();
    Ok(match client {
        AgentClient::ClaudeCode => vec![
            Target {
                path: home.join(".claude.json"),
                entry: Entry::McpJson(AgentClient::ClaudeCode),
            },
            Target {
                path: home.join(".claude").join("settings.json"),
                entry: Entry::ClaudeHooks,
            },
        ],
        AgentClient::Codex => {
            let dir = codex_home(home);
            // The hooks first: the configuration trusts them where they end up.
            vec![
                Target {
                    path: dir.join(CODEX_HOOKS_FILE),
                    entry: Entry::CodexHooks,
                },
                Target {
                    path: dir.join("config.toml"),
                    entry: Entry::CodexToml,
                },
            ]
        }
        AgentClient::ClaudeDesktop => {
            let dir = if cfg!(target_os = "macos") {
                home.join("Library/Application Support/Claude")
            } else {
                base.config_dir().join("Claude")
            };
            vec![Target {
                path: dir.join("claude_desktop_config.json"),
                entry: Entry::McpJson(AgentClient::ClaudeDesktop),
            }]
        }
        AgentClient::Cursor => vec![Target {
            path: home.join(".cursor").join("mcp.json"),
            entry: Entry::McpJson(AgentClient::Cursor),
        }],
    })
}

/// The name of Codex's hooks file, beside its `config.toml`.
pub const CODEX_HOOKS_FILE: &str = "hooks.json";

/// Codex's directory as Codex finds it: `$CODEX_HOME`, canonicalized (Codex does the same, and
/// its hook trust keys hold the path), else `~/.codex`.
fn codex_home(home: &std::path::Path) -> PathBuf {
    match std::env::var_os("CODEX_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            std::fs::canonicalize(&dir)
                .or_else(|_| std::path::absolute(&dir))
                .unwrap_or(dir)
        }
        None => home.join(".codex"),
    }
}

/// The shell alias that starts Claude Code with switchboard's channel enabled, so mail is
/// pushed mid-turn (research preview) and the Stop hook stands down.
pub fn claude_channel_alias() -> String {
    format!(
        "alias claude-sb='{}=1 claude --dangerously-load-development-channels server:switchboard'",
        switchboard_mcp::hooks::CHANNELS_ENV
    )
}
