//! Reading, merging and writing a client's configuration file safely: a file that does not
//! parse is never overwritten, the previous version is backed up before any change, and the
//! new version replaces the old one atomically.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use toml_edit::DocumentMut;

use super::{Entry, Launch, Target, merge};

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not valid {format} ({detail}); fix or move it, then run setup again — nothing was changed"
    )]
    Parse {
        path: PathBuf,
        format: &'static str,
        detail: String,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a merge did (or, without `write`, would do).
#[derive(Debug)]
pub struct Applied {
    pub path: PathBuf,
    pub changed: bool,
    pub backup: Option<PathBuf>,
    /// The file's content after the merge.
    pub content: String,
}

/// How a file stands, for `doctor`.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    NoFile,
    Missing,
    Configured,
    /// Configured, but for another switchboard binary or with other settings.
    Different,
}

enum Doc {
    Json(Value),
    Toml(DocumentMut),
}

fn read(path: &Path, entry: Entry) -> Result<Option<Doc>, FileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(FileError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let parse_err = |format, detail: String| FileError::Parse {
        path: path.to_owned(),
        format,
        detail,
    };
    Ok(Some(match entry {
        Entry::CodexToml => Doc::Toml(
            text.parse()
                .map_err(|e: toml_edit::TomlError| parse_err("TOML", e.to_string()))?,
        ),
        _ if text.trim().is_empty() => Doc::Json(Value::Object(Default::default())),
        _ => Doc::Json(serde_json::from_str(&text).map_err(|e| parse_err("JSON", e.to_string()))?),
    }))
}

/// A file that parses but is not shaped as the client's configuration.
fn shape_err(path: &Path) -> impl Fn(String) -> FileError + '_ {
    move |detail| FileError::Parse {
        path: path.to_owned(),
        format: "a configuration of this client",
        detail,
    }
}

fn empty(entry: Entry) -> Doc {
    match entry {
        Entry::CodexToml => Doc::Toml(DocumentMut::new()),
        _ => Doc::Json(Value::Object(Default::default())),
    }
}

/// Merges switchboard's entry into the target's file; writes it only when `write` is set.
pub fn apply(target: &Target, launch: &Launch, write: bool) -> Result<Applied, FileError> {
    let existing = read(&target.path, target.entry)?;
    let existed = existing.is_some();
    let mut doc = existing.unwrap_or_else(|| empty(target.entry));
    let shape_err = shape_err(&target.path);
    let (changed, content) = match &mut doc {
        Doc::Json(v) => {
            let changed = merge::json(v, target.entry, launch).map_err(shape_err)?;
            let text = serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
            (changed, text)
        }
        Doc::Toml(d) => {
            let trust = codex_trust(&target.path, launch)?;
            let changed = merge::toml(d, launch, &trust).map_err(shape_err)?;
            (changed, d.to_string())
        }
    };
    settle(target, changed, content, write && changed, existed)
}

/// Takes switchboard's entry out of the target's file; writes it only when `write` is set
/// (after a backup, as a merge does). A file that does not exist is left so.
pub fn remove(target: &Target, write: bool) -> Result<Applied, FileError> {
    let Some(mut doc) = read(&target.path, target.entry)? else {
        return Ok(Applied {
            path: target.path.clone(),
            changed: false,
            backup: None,
            content: String::new(),
        });
    };
    let shape_err = shape_err(&target.path);
    let (changed, content) = match &mut doc {
        Doc::Json(v) => {
            let changed = merge::json_remove(v, target.entry).map_err(shape_err)?;
            (
                changed,
                serde_json::to_string_pretty(v).unwrap_or_default() + "\n",
            )
        }
        Doc::Toml(d) => {
            // The trust to take out is that of our handlers where they stand now, so the
            // hooks file must still hold them: `setup --remove` does this file first.
            let hooks = target.path.with_file_name(super::CODEX_HOOKS_FILE);
            let trust = match read(&hooks, Entry::CodexHooks)? {
                Some(Doc::Json(v)) => merge::codex_trust(&v, &hooks.display().to_string()),
                _ => Vec::new(),
            };
            (merge::toml_remove(d, &trust), d.to_string())
        }
    };
    settle(target, changed, content, write && changed, true)
}

/// What a merge or a removal did; when `write`, the file is replaced by `content`, after a
/// backup of the version that `existed`.
fn settle(
    target: &Target,
    changed: bool,
    content: String,
    write: bool,
    existed: bool,
) -> Result<Applied, FileError> {
    let mut applied = Applied {
        path: target.path.clone(),
        changed,
        backup: None,
        content,
    };
    if write {
        if existed {
            applied.backup = Some(backup(&target.path)?);
        }
        replace(&target.path, &applied.content)?;
    }
    Ok(applied)
}

/// How the target's file stands today.
pub fn inspect(target: &Target, launch: &Launch) -> Result<Found, FileError> {
    let Some(doc) = read(&target.path, target.entry)? else {
        return Ok(Found::NoFile);
    };
    let (configured, mentioned) = match &doc {
        Doc::Json(v) => (
            merge::json_has(v, target.entry, launch),
            v.to_string().contains(merge::SERVER),
        ),
        Doc::Toml(d) => (
            merge::toml_has(d, launch, &codex_trust(&target.path, launch)?),
            d.get("mcp_servers")
                .and_then(|s| s.get(merge::SERVER))
                .is_some(),
        ),
    };
    Ok(match (configured, mentioned) {
        (true, _) => Found::Configured,
        (false, true) => Found::Different,
        (false, false) => Found::Missing,
    })
}

/// Switchboard's part of the target's file alone, as it would stand in an empty file (for
/// Codex's configuration, with the hook trust the real `hooks.json` beside it needs).
pub fn preview(target: &Target, launch: &Launch) -> Result<String, FileError> {
    let shape_err = shape_err(&target.path);
    Ok(match empty(target.entry) {
        Doc::Json(mut v) => {
            merge::json(&mut v, target.entry, launch).map_err(shape_err)?;
            serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
        }
        Doc::Toml(mut d) => {
            let trust = codex_trust(&target.path, launch)?;
            merge::toml(&mut d, launch, &trust).map_err(shape_err)?;
            d.to_string()
        }
    })
}

/// The trust entries Codex's configuration at `config` needs for switchboard's hooks, as they
/// stand in the `hooks.json` beside it once merged (merging is idempotent, so this holds
/// before and after that file is written).
fn codex_trust(config: &Path, launch: &Launch) -> Result<Vec<merge::Trust>, FileError> {
    let hooks = config.with_file_name(super::CODEX_HOOKS_FILE);
    let mut doc = match read(&hooks, Entry::CodexHooks)? {
        Some(Doc::Json(v)) => v,
        _ => Value::Object(Default::default()),
    };
    merge::json(&mut doc, Entry::CodexHooks, launch).map_err(|detail| FileError::Parse {
        path: hooks.clone(),
        format: "a configuration of this client",
        detail,
    })?;
    Ok(merge::codex_trust(&doc, &hooks.display().to_string()))
}

fn backup(path: &Path) -> Result<PathBuf, FileError> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".switchboard-backup-{stamp}"));
    let copy = path.with_file_name(name);
    std::fs::copy(path, &copy).map_err(|source| FileError::Write {
        path: copy.clone(),
        source,
    })?;
    Ok(copy)
}

/// Writes beside the file, then renames over it: a crash leaves the old or the new file whole.
fn replace(path: &Path, content: &str) -> Result<(), FileError> {
    let err = |source| FileError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".switchboard-tmp");
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, content).map_err(err)?;
    if let Ok(meta) = std::fs::metadata(path) {
        // Keep the original's permissions: a config may hold secrets of other servers.
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path).map_err(err)
}
