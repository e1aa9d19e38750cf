//! `switchboard reserve`, `release` and `reservations`: a person's reservations of paths in
//! the repository at hand. A person's reservation has no session: it holds until released or
//! until its TTL, not until the command exits.

use std::path::Path;

use serde_json::json;
use switchboard_core::{Releasing, Run, op};
use switchboard_mcp::identity::repo_key;
use switchboard_proto::{Glob, Reservation, ReservationMode};

use super::super::args::{ReleaseArgs, ReservationsArgs, ReserveArgs};
use super::super::{CliError, Context, output};

/// The repository key of the directory, as a person's error when there is none.
pub fn repo_of(dir: &Path) -> Result<String, CliError> {
    repo_key(dir).map_err(|e| CliError::BadInput(e.to_string()))
}

pub async fn reserve(ctx: &Context, args: ReserveArgs) -> Result<(), CliError> {
    let repo = repo_of(&args.repo)?;
    let globs = args
        .paths
        .iter()
        .map(|p| Glob::parse(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::BadInput(e.to_string()))?;
    let me = super::operator(ctx).await?;
    let wait = args.wait.unwrap_or_default();
    if !wait.is_zero() {
        output::progress(format!(
            "waiting up to {} for conflicting reservations to end…",
            output::duration(wait)
        ));
    }
    let taken = ctx
        .mailbox
        .run(op::Reserve {
            peer: Some(me.id),
            session: None,
            repo,
            globs,
            mode: if args.shared {
                ReservationMode::Shared
            } else {
                ReservationMode::Exclusive
            },
            reason: args.reason,
            ttl: args.ttl,
            wait,
            job: None,
        })
        .await?;
    if ctx.json {
        return output::json(&taken);
    }
    output::line(format!(
        "reserved #{} ({}): {} until {} ({}); `switchboard release {}` gives it back",
        taken.id,
        taken.mode,
        paths(&taken),
        output::when(taken.expires_at),
        output::ago(taken.expires_at),
        taken.id
    ))
}

pub async fn release(ctx: &Context, args: ReleaseArgs) -> Result<(), CliError> {
    let which = match (args.all, args.ids.is_empty()) {
        (true, _) => Releasing::All,
        (false, false) => Releasing::Ids(args.ids),
        (false, true) => Releasing::Repo(repo_of(&args.repo)?),
    };
    let me = super::operator(ctx).await?;
    let released = ctx
        .mailbox
        .run(op::Release {
            peer: Some(me.id),
            which,
        })
        .await?;
    if ctx.json {
        return output::json(&json!({ "released": released }));
    }
    output::line(match released {
        0 => "nothing to release: you hold no such reservation".to_owned(),
        1 => "released 1 reservation".to_owned(),
        n => format!("released {n} reservations"),
    })
}

pub async fn list(ctx: &Context, args: ReservationsArgs) -> Result<(), CliError> {
    let repo = if args.all {
        None
    } else {
        Some(repo_of(&args.repo)?)
    };
    let all = ctx.mailbox.run(op::Reservations { repo }).await?;
    if ctx.json {
        return output::json(&all);
    }
    if all.is_empty() {
        return output::line("no reservations: every path is free");
    }
    output::reservations(&all, args.all)
}

/// The patterns of a reservation, comma-separated.
pub fn paths(r: &Reservation) -> String {
    r.globs
        .iter()
        .map(Glob::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
