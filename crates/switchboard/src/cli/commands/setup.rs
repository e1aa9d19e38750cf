//! `switchboard setup <client> [--write | --remove]`

use serde_json::json;

use crate::agent_config::{self, AgentClient, Entry, Launch, RelaySetup, Target};

use crate::agent_config::TOKEN_ENV;

use super::super::args::SetupArgs;
use super::super::{CliError, output};

/// This binary's absolute path, as clients must be given it (Claude Desktop wants absolute).
pub fn exe() -> Result<String, CliError> {
    let path = std::env::current_exe()?;
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    Ok(path.display().to_string())
}

/// The relay a set-up points the client at, and whether its token is the stored login's.
#[derive(Debug, Clone)]
pub struct SetupRelay {
    pub url: String,
    pub logged_in: bool,
}

pub fn run(args: &SetupArgs, relay: Option<SetupRelay>, as_json: bool) -> Result<(), CliError> {
    let Some(client) = args.client.client() else {
        return git(args, as_json);
    };
    if args.remove {
        return remove(client, as_json);
    }
    let exe = exe()?;
    if args.http && relay.is_none() {
        return Err(CliError::BadInput(
            "--http connects the client straight to a relay: give --relay URL too".into(),
        ));
    }
    if args.http && client == AgentClient::ClaudeDesktop {
        return Err(CliError::BadInput(
            "Claude Desktop starts stdio servers only; set it up with --relay but without --http"
                .into(),
        ));
    }
    let launch = Launch {
        exe,
        relay: relay.map(|r| RelaySetup {
            url: r.url,
            token_env: TOKEN_ENV.to_owned(),
            from_login: r.logged_in && !args.http,
            http: args.http,
        }),
    };
    let targets = agent_config::targets(client).map_err(|e| CliError::BadInput(e.to_string()))?;
    let mut report = Vec::new();
    for target in &targets {
        let applied = agent_config::apply(target, &launch, args.write)
            .map_err(|e| CliError::BadInput(e.to_string()))?;
        report.push(json!({
            "path": applied.path,
            "changed": applied.changed,
            "written": args.write && applied.changed,
            "backup": applied.backup,
        }));
        if !as_json {
            show(target, &launch, args.write, &applied)?;
        }
    }
    match &launch.relay {
        Some(r) if r.from_login && !as_json => output::line(format!(
            "\nThe session reads the token from your stored login ({}); `switchboard logout` \
             ends that.",
            crate::login::path()?.display()
        ))?,
        Some(_) if !as_json => output::line(format!(
            "\nThe token is read from ${TOKEN_ENV} when the client starts: export it in the shell \
             (or the service) that launches {}, or run `switchboard login URL --token TOKEN` \
             once.",
            client.label()
        ))?,
        _ => {}
    }
    if client == AgentClient::ClaudeCode && !as_json {
        output::line(format!(
            "\nMail reaches Claude Code through switchboard's hooks (no flag needed): at session\n\
             start, with each prompt, and an idle session is woken when mail comes. To have it\n\
             pushed mid-turn as channel events too (research preview; needs a claude.ai login),\n\
             start Claude Code with this alias:\n  {}",
            agent_config::claude_channel_alias()
        ))?;
    }
    if client == AgentClient::Codex && !as_json {
        let (trusted, approves) = if args.write {
            ("trusted", "lets")
        } else {
            ("would trust", "would let")
        };
        output::line(format!(
            "\nCodex runs hooks only once they are trusted: setup {trusted} switchboard's own three \
             hooks (SessionStart, UserPromptSubmit, Stop in hooks.json; none of your others) by \
             their hash in config.toml's [hooks.state]. If they change, Codex asks again.\n\
             `default_tools_approval_mode = \"approve\"` {approves} Codex call switchboard's tools \
             without asking (`codex exec` refuses tools that need approval); they only exchange \
             mail."
        ))?;
    }
    if as_json {
        return output::json(&json!({ "client": client.label(), "files": report }));
    }
    if !args.write {
        let relay = match &launch.relay {
            Some(r) if r.http => format!(" --relay {} --http", r.url),
            Some(r) => format!(" --relay {}", r.url),
            None => String::new(),
        };
        output::line(format!(
            "\nRun `switchboard setup {}{relay} --write` to merge this in (the file is backed up first).",
            cli_name(client)
        ))?;
    }
    Ok(())
}

fn show(
    target: &Target,
    launch: &Launch,
    write: bool,
    applied: &agent_config::Applied,
) -> Result<(), CliError> {
    let path = target.path.display();
    if write {
        return output::line(match (&applied.changed, &applied.backup) {
            (false, _) => format!("{path}: already set up"),
            (true, Some(b)) => format!("{path}: updated (previous version: {})", b.display()),
            (true, None) => format!("{path}: created"),
        });
    }
    // Only switchboard's own part, as it would stand in an empty file.
    let snippet = agent_config::preview(target, launch).unwrap_or_default();
    let what = match target.entry {
        Entry::McpJson { .. } => "the MCP server",
        Entry::ClaudeHooks | Entry::CodexHooks => "the hooks",
        Entry::CodexToml => "the MCP server and the trust of the hooks",
    };
    output::line(format!("# {what}, in {path}\n{}", snippet.trim_end()))
}

/// `setup CLIENT --remove`: takes switchboard's entries out of the client's files (the
/// others stay). It acts at once, without `--write`: each changed file's backup is the undo.
fn remove(client: AgentClient, as_json: bool) -> Result<(), CliError> {
    let targets = agent_config::targets(client).map_err(|e| CliError::BadInput(e.to_string()))?;
    let mut report = Vec::new();
    // Codex's configuration first: the hook trust it drops is found in the hooks file, which
    // must still hold our hooks then.
    for target in targets.iter().rev() {
        let applied =
            agent_config::remove(target, true).map_err(|e| CliError::BadInput(e.to_string()))?;
        report.push(json!({
            "path": applied.path,
            "changed": applied.changed,
            "backup": applied.backup,
        }));
        if !as_json {
            let path = target.path.display();
            output::line(match (&applied.changed, &applied.backup) {
                (false, _) => format!("{path}: nothing of switchboard's there"),
                (true, Some(b)) => {
                    format!(
                        "{path}: switchboard's entries removed (previous version: {})",
                        b.display()
                    )
                }
                (true, None) => format!("{path}: switchboard's entries removed"),
            })?;
        }
    }
    if as_json {
        return output::json(&json!({ "client": client.label(), "files": report }));
    }
    output::line(format!(
        "{} no longer starts switchboard (sessions already running keep it until they end).",
        client.label()
    ))
}

/// `setup git [--remove]`: switchboard's pre-commit hook in the repository at hand, beside
/// any hook already there.
fn git(args: &SetupArgs, as_json: bool) -> Result<(), CliError> {
    use crate::git::{self, Installed};
    let dir = std::env::current_dir()?;
    let failed = |e: git::GitError| CliError::BadInput(e.to_string());
    if args.remove {
        let removed = git::remove_pre_commit(&dir).map_err(failed)?;
        if as_json {
            return output::json(&json!({ "removed": removed }));
        }
        return output::line(if removed {
            "switchboard's pre-commit hook is out (a hook it chained is back in its place)"
        } else {
            "no switchboard pre-commit hook here"
        });
    }
    if !args.write {
        return output::line(
            "`switchboard setup git --write` installs a pre-commit hook in this repository that \
             refuses commits touching paths another live agent reserved exclusively (a hook \
             already there keeps running, after it). `SWITCHBOARD_OVERRIDE=\"why\" git commit …` \
             lets one through and tells the holder.",
        );
    }
    let installed = git::install_pre_commit(&dir, &exe()?).map_err(failed)?;
    if as_json {
        return output::json(&json!({ "hook": format!("{installed:?}") }));
    }
    output::line(match installed {
        Installed::Created(h) => format!("{}: created", h.display()),
        Installed::Updated(h) => format!("{}: updated", h.display()),
        Installed::AlreadyThere(h) => format!("{}: already set up", h.display()),
        Installed::Chained { hook, kept } => format!(
            "{}: installed; the hook that was there is now {} and runs after it",
            hook.display(),
            kept.display()
        ),
    })
}

pub fn cli_name(client: AgentClient) -> &'static str {
    match client {
        AgentClient::ClaudeCode => "claude-code",
        AgentClient::Codex => "codex",
        AgentClient::ClaudeDesktop => "claude-desktop",
        AgentClient::Cursor => "cursor",
    }
}
