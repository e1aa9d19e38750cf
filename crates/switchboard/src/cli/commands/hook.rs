//! `switchboard hook claude <event>`: reads Claude Code's hook input on stdin and answers the
//! way Claude Code expects. A failure exits 1 — never 2, which would block the user's prompt.

use std::io::{Read, Write};

use switchboard_mcp::hooks::{self, Event};

use super::super::args::{ClaudeHookEvent, HookClient};
use super::super::{CliError, Context};

pub async fn run(ctx: &Context, client: HookClient) -> Result<(), CliError> {
    let HookClient::Claude(args) = client;
    let event = match args.event {
        ClaudeHookEvent::SessionStart => Event::SessionStart,
        ClaudeHookEvent::UserPromptSubmit => Event::UserPromptSubmit,
        ClaudeHookEvent::Stop => Event::Stop,
    };
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let outcome = hooks::run(ctx.mailbox.as_ref(), event, &input, args.wait)
        .await
        .map_err(|e| CliError::Hook(e.to_string()))?;
    if let Some(out) = outcome.stdout {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{out}")?;
        stdout.flush()?;
    }
    if let Some(err) = outcome.stderr {
        let mut stderr = std::io::stderr().lock();
        write!(stderr, "{err}")?;
        stderr.flush()?;
    }
    match outcome.code {
        0 => Ok(()),
        code => Err(CliError::Quiet(code)),
    }
}
