//! The stored relay login (`switchboard login` / `logout`): one relay's URL and token in the
//! user's configuration directory, readable by the user alone, used by every command when no
//! `--relay` / `SWITCHBOARD_RELAY` says otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file's name in the configuration directory.
pub const FILE: &str = "login.toml";

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("no configuration directory is known for this user; set SWITCHBOARD_CONFIG_DIR")]
    NoConfigDir,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid login ({source}); run `switchboard login` again or delete it")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A relay and the credentials for it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub relay: String,
    pub token: String,
    /// A private CA the relay's certificate chains to (`--relay-ca` at login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("relay", &self.relay)
            .field("token", &"<redacted>")
            .field("ca", &self.ca)
            .finish()
    }
}

/// `SWITCHBOARD_CONFIG_DIR`, else the platform's configuration directory
/// (`~/.config/switchboard` on Linux, `~/Library/Application Support/switchboard` on macOS).
pub fn config_dir() -> Result<PathBuf, LoginError> {
    if let Some(dir) = std::env::var_os("SWITCHBOARD_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "switchboard")
        .map(|d| d.config_dir().to_path_buf())
        .ok_or(LoginError::NoConfigDir)
}

pub fn path() -> Result<PathBuf, LoginError> {
    Ok(config_dir()?.join(FILE))
}

/// The stored login, if there is one.
pub fn load() -> Result<Option<Login>, LoginError> {
    load_from(&path()?)
}

pub fn load_from(path: &Path) -> Result<Option<Login>, LoginError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LoginError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    toml::from_str(&text)
        .map(Some)
        .map_err(|e| LoginError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })
}

/// Writes the login readable and writable by the user alone (0600 on Unix), replacing any
/// earlier one whole: a temporary file created with that mode, then renamed over the old.
pub fn store(login: &Login) -> Result<PathBuf, LoginError> {
    let path = path()?;
    let err = |source| LoginError::Write {
        path: path.clone(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let text = format!(
        "# Written by `switchboard login`; `switchboard logout` removes it. Keep it private.\n{}",
        toml::to_string(login).map_err(|e| err(std::io::Error::other(e)))?
    );
    let tmp = path.with_extension("toml.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(err)?;
    // A file left by an earlier run keeps its mode through `open`: set it explicitly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(err)?;
    }
    file.write_all(text.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(path)
}

/// Removes the stored login; returns where it was, or `None` when there was none.
pub fn remove() -> Result<Option<PathBuf>, LoginError> {
    let path = path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(Some(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LoginError::Write { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_reads_back_as_written_and_never_prints_its_token() {
        let login = Login {
            relay: "https://relay.example:7700".into(),
            token: "swb_secret".into(),
            ca: None,
        };
        let text = toml::to_string(&login).expect("serializes");
        let back: Login = toml::from_str(&text).expect("parses");
        assert_eq!(back, login);
        assert!(!format!("{login:?}").contains("swb_secret"));
    }
}
