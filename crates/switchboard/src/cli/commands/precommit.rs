//! `switchboard hook git pre-commit`: refuses a commit that touches paths another live peer
//! reserved exclusively, saying by whom, why and until when. A person can let it through with
//! `SWITCHBOARD_OVERRIDE="why"`; the override is logged as a message to each holder, so the
//! one whose work it crosses hears of it.

use switchboard_core::{Outgoing, Run, op};
use switchboard_proto::{Reservation, ReservationMode};

use super::super::{CliError, Context, output};
use crate::git;

/// The variable that lets a refused commit through, holding the reason.
pub const OVERRIDE_ENV: &str = "SWITCHBOARD_OVERRIDE";

/// A reservation in the commit's way, with the staged paths it holds.
struct Crossed<'a> {
    held: &'a Reservation,
    paths: Vec<&'a str>,
}

pub async fn run(ctx: &Context) -> Result<(), CliError> {
    let dir = std::env::current_dir()?;
    // A repository without a commit yet (its first commit is this one) has no key, so nothing
    // can be reserved in it.
    let Ok(repo) = switchboard_mcp::identity::repo_key(&dir) else {
        return Ok(());
    };
    let staged = git::staged_paths(&dir).map_err(|e| CliError::Hook(e.to_string()))?;
    if staged.is_empty() {
        return Ok(());
    }
    // Advisory: when the store or relay cannot be asked, the commit goes on, and says so.
    let asked = async {
        let mine = own_names(ctx).await?;
        let repo = Some(repo.clone());
        let live = ctx.mailbox.run(op::Reservations { repo }).await?;
        Ok::<_, CliError>((mine, live))
    };
    let (mine, live) = match asked.await {
        Ok(found) => found,
        Err(e) => return unchecked_if_unavailable(e),
    };
    let crossed: Vec<Crossed> = live
        .iter()
        .filter(|r| r.mode == ReservationMode::Exclusive && !mine.contains(&r.holder))
        .filter_map(|held| {
            let paths: Vec<&str> = staged
                .iter()
                .filter(|p| held.globs.iter().any(|g| g.matches(p)))
                .map(String::as_str)
                .collect();
            (!paths.is_empty()).then_some(Crossed { held, paths })
        })
        .collect();
    if crossed.is_empty() {
        return Ok(());
    }
    let mut told = String::new();
    for c in &crossed {
        told.push_str(&format!(
            "  {} — reserved by '{}' (#{}) until {} ({}): {}\n",
            c.paths.join(", "),
            c.held.holder,
            c.held.id,
            output::when(c.held.expires_at),
            output::ago(c.held.expires_at),
            c.held.reason
        ));
    }
    let reason = std::env::var(OVERRIDE_ENV).unwrap_or_default();
    if reason.trim().is_empty() {
        eprint!(
            "switchboard: this commit touches paths another agent reserved:\n{told}\
             Wait for them to be released, ask the holder (`switchboard send NAME …`), or unstage \
             those paths. To commit anyway, say why: {OVERRIDE_ENV}=\"why\" git commit … \
             (the holder is told).\n"
        );
        return Err(CliError::Quiet(1));
    }
    // Let through, on the record: each holder gets a message saying who crossed what and why.
    let me = super::operator(ctx).await?;
    for c in &crossed {
        let text = format!(
            "{} committed {} despite your reservation #{} ({}); their reason: {}",
            me.name,
            c.paths.join(", "),
            c.held.id,
            c.held.reason,
            reason.trim()
        );
        ctx.mailbox
            .send(me.id, Outgoing::to_peer(&c.held.holder, text))
            .await?;
    }
    eprint!(
        "switchboard: committing over reservations ({OVERRIDE_ENV}: {}); their holders were told:\n{told}",
        reason.trim()
    );
    Ok(())
}

/// Whether the command is this hook.
pub fn is_hook(command: &super::super::Command) -> bool {
    use super::super::args::{GitHookEvent, HookClient};
    matches!(
        command,
        super::super::Command::Hook {
            client: HookClient::Git(a)
        } if matches!(a.event, GitHookEvent::PreCommit)
    )
}

/// The one advisory rule: when the store or relay cannot be asked now, the commit goes on and
/// the person is told; any other error stands.
pub fn unchecked_if_unavailable(e: CliError) -> Result<(), CliError> {
    match e {
        CliError::Core(why) if why.failure() == switchboard_core::Failure::Unavailable => {
            eprintln!(
                "switchboard: cannot check reservations now ({why}); committing without the check"
            );
            Ok(())
        }
        other => Err(other),
    }
}

/// The names whose reservations never stand in this commit's way: the person's operator
/// name, `SWITCHBOARD_NAME`, and the agent whose session started this `git commit` (found by
/// its client process among this process's ancestors).
async fn own_names(ctx: &Context) -> Result<Vec<String>, CliError> {
    let mut names = vec![super::operator_name(ctx)?.as_str().to_owned()];
    if let Ok(name) = std::env::var("SWITCHBOARD_NAME")
        && !name.is_empty()
    {
        names.push(name);
    }
    let pids = switchboard_mcp::hooks::ancestors();
    if let Some(peer) = ctx.mailbox.run(op::PeerOfClient { pids }).await? {
        names.push(peer.name);
    }
    if let Some(peer) = &ctx.token_peer {
        names.push(peer.clone());
    }
    Ok(names)
}
