//! The git repository at hand, as reservations need it: the paths a commit stages (both sides
//! of a rename), and switchboard's pre-commit hook, installed beside any hook already there.
//! Everything goes through the `git` command, so it reads the repository exactly as git does
//! (worktrees, `core.hooksPath`, quoting of odd paths).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run git: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("git {args} failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, GitError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(GitError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out.stdout)
}

/// The paths the next commit changes, as git names them: added, modified, deleted, and both
/// the old and the new path of a rename or copy (`-z`: no quoting, spaces and all).
pub fn staged_paths(dir: &Path) -> Result<Vec<String>, GitError> {
    let out = git(dir, &["diff", "--cached", "--name-status", "-z", "-M"])?;
    let mut fields = out
        .split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| String::from_utf8_lossy(f).into_owned());
    let mut paths = Vec::new();
    while let Some(status) = fields.next() {
        // A rename or copy (R100, C75) names two paths; every other status one.
        let count = if status.starts_with('R') || status.starts_with('C') {
            2
        } else {
            1
        };
        for _ in 0..count {
            if let Some(path) = fields.next() {
                paths.push(path);
            }
        }
    }
    paths.sort();
    paths.dedup();
    Ok(paths)
}

/// The directory git runs this repository's hooks from (`core.hooksPath` or `.git/hooks`,
/// the common one for every worktree).
pub fn hooks_dir(dir: &Path) -> Result<PathBuf, GitError> {
    let out = git(
        dir,
        &["rev-parse", "--path-format=absolute", "--git-path", "hooks"],
    )?;
    Ok(PathBuf::from(String::from_utf8_lossy(&out).trim()))
}

/// The line that marks the hook as switchboard's.
const MARK: &str = "# Installed by `switchboard setup git`";
/// Where a hook that was there before ours is kept, and run by ours after it passes.
const CHAINED: &str = "pre-commit.switchboard-chained";

/// What installing the hook did.
#[derive(Debug, PartialEq, Eq)]
pub enum Installed {
    Created(PathBuf),
    /// Ours replaced an older one of ours (another binary path).
    Updated(PathBuf),
    /// The hook that was there runs after ours, from its new name.
    Chained {
        hook: PathBuf,
        kept: PathBuf,
    },
    AlreadyThere(PathBuf),
}

fn hook_text(exe: &str) -> String {
    format!(
        "#!/bin/sh\n{MARK}; `switchboard setup git --remove` takes it out.\n\
         # Refuses a commit that touches paths another live agent reserved exclusively.\n\
         '{}' hook git pre-commit || exit $?\n\
         chained=\"$(dirname \"$0\")/{CHAINED}\"\n\
         if [ -x \"$chained\" ]; then exec \"$chained\" \"$@\"; fi\n",
        exe.replace('\'', "'\\''")
    )
}

fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> GitError + '_ {
    move |source| GitError::File {
        path: path.to_owned(),
        source,
    }
}

/// Installs switchboard's pre-commit hook; a hook already there (not ours) is kept and run
/// after ours.
pub fn install_pre_commit(dir: &Path, exe: &str) -> Result<Installed, GitError> {
    let hooks = hooks_dir(dir)?;
    std::fs::create_dir_all(&hooks).map_err(file_err(&hooks))?;
    let hook = hooks.join("pre-commit");
    let text = hook_text(exe);
    let existing = match std::fs::read_to_string(&hook) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(file_err(&hook)(e)),
    };
    let outcome = match existing {
        Some(t) if t == text => return Ok(Installed::AlreadyThere(hook)),
        Some(t) if t.contains(MARK) => Installed::Updated(hook.clone()),
        Some(_) => {
            let kept = hooks.join(CHAINED);
            std::fs::rename(&hook, &kept).map_err(file_err(&hook))?;
            Installed::Chained {
                hook: hook.clone(),
                kept,
            }
        }
        None => Installed::Created(hook.clone()),
    };
    std::fs::write(&hook, text).map_err(file_err(&hook))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
            .map_err(file_err(&hook))?;
    }
    Ok(outcome)
}

/// Takes switchboard's hook out, putting back the one it chained; returns whether there was
/// one of ours.
pub fn remove_pre_commit(dir: &Path) -> Result<bool, GitError> {
    let hooks = hooks_dir(dir)?;
    let hook = hooks.join("pre-commit");
    match std::fs::read_to_string(&hook) {
        Ok(t) if t.contains(MARK) => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(file_err(&hook)(e)),
    }
    let kept = hooks.join(CHAINED);
    if kept.exists() {
        std::fs::rename(&kept, &hook).map_err(file_err(&kept))?;
    } else {
        std::fs::remove_file(&hook).map_err(file_err(&hook))?;
    }
    Ok(true)
}
