//! `switchboard hook claude|codex <event>` (and `hook git pre-commit`, see `precommit`): reads the client's hook input on stdin and answers
//! the way that client expects. A failure exits 1 — never 2, which would block the user's
//! prompt.

use std::io::{Read, Write};
use std::time::Duration;

use switchboard_mcp::hooks::{self, Event};

use super::super::args::{ClaudeHookEvent, CodexHookEvent, GitHookEvent, HookClient};
use super::super::{CliError, Context};

/// The names the clients give themselves in MCP `clientInfo`.
const CLAUDE_CODE: &str = "claude-code";
const CODEX: &str = "codex-mcp-client";

pub async fn run(ctx: &Context, client: HookClient) -> Result<(), CliError> {
    let (event, wait, client) = match client {
        HookClient::Git(args) => {
            return match args.event {
                GitHookEvent::PreCommit => super::precommit::run(ctx).await,
            };
        }
        HookClient::Claude(args) => {
            let event = match args.event {
                ClaudeHookEvent::SessionStart => Event::SessionStart,
                ClaudeHookEvent::UserPromptSubmit => Event::UserPromptSubmit,
                ClaudeHookEvent::Wait | ClaudeHookEvent::Stop => Event::Wait,
            };
            (event, args.wait, CLAUDE_CODE)
        }
        HookClient::Codex(args) => {
            let event = match args.event {
                CodexHookEvent::SessionStart => Event::SessionStart,
                CodexHookEvent::UserPromptSubmit => Event::UserPromptSubmit,
                CodexHookEvent::Stop => Event::Stop,
            };
            (event, Duration::ZERO, CODEX)
        }
    };
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let options = hooks::Options {
        wait,
        run_dir: crate::settings::run_dir(&ctx.settings.home),
        client,
        peer: ctx.token_peer.clone(),
    };
    let emit = |outcome: &hooks::Outcome| -> std::io::Result<()> {
        if let Some(out) = &outcome.stdout {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{out}")?;
            stdout.flush()?;
        }
        if let Some(err) = &outcome.stderr {
            let mut stderr = std::io::stderr().lock();
            write!(stderr, "{err}")?;
            stderr.flush()?;
        }
        Ok(())
    };
    let code = hooks::run(ctx.mailbox.as_ref(), event, &input, &options, emit)
        .await
        .map_err(|e| CliError::Hook(e.to_string()))?;
    match code {
        0 => Ok(()),
        code => Err(CliError::Quiet(code)),
    }
}
