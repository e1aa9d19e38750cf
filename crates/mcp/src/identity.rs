//! Who this session is: its peer name and the declared facts about where it works (SPEC 3).
//!
//! The name is `SWITCHBOARD_NAME` when set, else the client's kind and the working directory
//! (`claude-webapp`, `codex-api`). Location facts are read from the file system — the git
//! repository and branch from `.git` directly, without spawning `git` on the start-up path.

use std::path::{Path, PathBuf};

use switchboard_proto::{PeerInfo, PeerName};

/// What the process knows about itself before the client says who it is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// An explicit name (`SWITCHBOARD_NAME` or `--name`).
    pub name: Option<String>,
    /// The working directory: `CLAUDE_PROJECT_DIR` when the client sets it, else the cwd.
    pub cwd: Option<PathBuf>,
    pub host: Option<String>,
    /// Whether the working directory, repository and branch are declared to the room. Always
    /// in the local room; on a relay only when the user opts in (SPEC 7, `share_location`).
    pub share_location: bool,
}

impl Identity {
    pub fn from_env(name: Option<String>) -> Self {
        let cwd = std::env::var_os("CLAUDE_PROJECT_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::current_dir().ok());
        Self {
            name: name
                .or_else(|| std::env::var("SWITCHBOARD_NAME").ok())
                .filter(|n| !n.is_empty()),
            cwd,
            host: hostname(),
            share_location: true,
        }
    }

    /// A session opened over HTTP: the relay knows nothing of the client's machine.
    pub fn remote() -> Self {
        Self {
            name: None,
            cwd: None,
            host: None,
            share_location: false,
        }
    }

    /// The peer name to ask for, given the client's self-reported name.
    pub fn peer_name(&self, client_name: &str) -> Result<PeerName, switchboard_proto::NameError> {
        if let Some(name) = &self.name {
            return PeerName::parse(name);
        }
        let dir = self
            .cwd
            .as_deref()
            .and_then(Path::file_name)
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_default();
        let kind = client_kind(client_name);
        let joined = if dir.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}-{dir}")
        };
        Ok(PeerName::sanitize(&joined)
            .unwrap_or_else(|| PeerName::parse("agent").unwrap_or_else(|_| unreachable!())))
    }

    /// The declared peer fields for this session.
    pub fn info(&self, client_name: &str, client_version: &str) -> PeerInfo {
        let cwd = self.cwd.as_deref().filter(|_| self.share_location);
        let git = cwd.and_then(git_location);
        PeerInfo {
            client_kind: Some(client_name.to_owned()),
            client_version: Some(client_version.to_owned()),
            host: self.host.clone(),
            cwd: cwd.map(|c| c.display().to_string()),
            git_root: git.as_ref().map(|g| g.0.display().to_string()),
            git_branch: git.and_then(|g| g.1),
        }
    }
}

/// A short kind for a client's self-reported name, used as the name's prefix.
pub fn client_kind(client_name: &str) -> &'static str {
    let n = client_name.to_ascii_lowercase();
    if n.contains("claude-code") || n.contains("claude code") {
        "claude"
    } else if n.contains("codex") {
        "codex"
    } else if n.contains("cursor") {
        "cursor"
    } else if n.contains("gemini") {
        "gemini"
    } else if n.contains("claude") {
        "desktop"
    } else {
        "agent"
    }
}

/// The repository root and branch containing `dir`, if any.
fn git_location(dir: &Path) -> Option<(PathBuf, Option<String>)> {
    let root = dir.ancestors().find(|d| d.join(".git").exists())?;
    let dot_git = root.join(".git");
    let git_dir = if dot_git.is_file() {
        // A worktree or submodule: `.git` names the real git directory.
        let text = std::fs::read_to_string(&dot_git).ok()?;
        let target = text.trim().strip_prefix("gitdir:")?.trim();
        root.join(target)
    } else {
        dot_git
    };
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok();
    let branch = head
        .as_deref()
        .and_then(|h| h.trim().strip_prefix("ref: refs/heads/"))
        .map(str::to_owned);
    Some((root.to_path_buf(), branch))
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(dir: &str) -> Identity {
        Identity {
            name: None,
            cwd: Some(PathBuf::from(dir)),
            host: None,
            share_location: true,
        }
    }

    #[test]
    fn names_come_from_client_and_directory() {
        assert_eq!(
            at("/home/u/webapp")
                .peer_name("claude-code")
                .unwrap()
                .as_str(),
            "claude-webapp"
        );
        assert_eq!(
            at("/home/u/api")
                .peer_name("codex-mcp-client")
                .unwrap()
                .as_str(),
            "codex-api"
        );
        assert_eq!(
            at("/home/u/My Project")
                .peer_name("Cursor")
                .unwrap()
                .as_str(),
            "cursor-my-project"
        );
        assert_eq!(at("/").peer_name("weird client").unwrap().as_str(), "agent");
    }

    #[test]
    fn an_explicit_name_wins_and_is_validated() {
        let mut id = at("/x");
        id.name = Some("reviewer".into());
        assert_eq!(id.peer_name("claude-code").unwrap().as_str(), "reviewer");
        id.name = Some("Bad Name".into());
        assert!(id.peer_name("claude-code").is_err());
    }

    #[test]
    fn git_root_and_branch_are_read_from_dot_git() {
        let dir = std::env::temp_dir().join(format!("sb-git-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        std::fs::create_dir_all(dir.join("src/deep")).unwrap();
        std::fs::write(dir.join(".git/HEAD"), "ref: refs/heads/feature/x\n").unwrap();
        let (root, branch) = git_location(&dir.join("src/deep")).unwrap();
        assert_eq!(root, dir);
        assert_eq!(branch.as_deref(), Some("feature/x"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Why a directory has no repository key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoKeyError {
    #[error("{0} is not inside a git repository; reservations name paths of one")]
    NotARepo(String),
    #[error(
        "the repository at {0} has no commit yet; reservations need its first commit to name it"
    )]
    NoCommit(String),
    #[error("cannot run git: {0}")]
    Git(String),
}

/// The key reservations name a repository by: its root commit (of several roots, the smallest
/// hash), which every clone on every machine shares, whatever its path or remote. Spawns
/// `git`, so it is asked only when a reservation is made or checked, never at start-up.
pub fn repo_key(dir: &Path) -> Result<String, RepoKeyError> {
    // Named as a person recognises it: `.` says nothing in an error.
    let shown = std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string();
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-list", "--max-parents=0", "HEAD"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| RepoKeyError::Git(e.to_string()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(if err.contains("not a git repository") {
            RepoKeyError::NotARepo(shown)
        } else {
            RepoKeyError::NoCommit(shown)
        });
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .min()
        .map(str::to_owned)
        .ok_or(RepoKeyError::NoCommit(shown))
}
