//! Settings, layered: built-in defaults, then `<home>/config.toml`, then `SWITCHBOARD_*`
//! environment variables, then command-line flags (applied by the CLI).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use switchboard_core::Limits;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid settings: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{origin}: '{value}' is not {expected}")]
    Value {
        origin: String,
        value: String,
        expected: &'static str,
    },
    #[error("no data directory is known for this user; set SWITCHBOARD_HOME or pass --home")]
    NoHome,
}

/// The settings file's own shape: every key optional, unknown keys refused (a typo must not be
/// silently ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    operator: Option<String>,
    pending_cap: Option<u32>,
    rate_limit: Option<u32>,
    rate_window: Option<String>,
    default_ttl: Option<String>,
    retention: Option<String>,
    lease: Option<String>,
    max_attempts: Option<u32>,
    job_lease: Option<String>,
    job_max_attempts: Option<u32>,
    job_ttl: Option<String>,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub home: PathBuf,
    /// The human's peer name, if configured; otherwise derived from the OS user.
    pub operator: Option<String>,
    pub limits: Limits,
}

/// Where this machine's sessions leave marks for their hooks (`switchboard_mcp::idle`); kept
/// beside the store even when the store is a relay's, because hooks and servers meet here.
pub fn run_dir(home: &Path) -> PathBuf {
    home.join("run")
}

/// The store directory: `--home`, else `SWITCHBOARD_HOME`, else the platform data directory.
pub fn resolve_home(flag: Option<&Path>) -> Result<PathBuf, SettingsError> {
    if let Some(home) = flag {
        return Ok(home.to_path_buf());
    }
    if let Some(home) = std::env::var_os("SWITCHBOARD_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    directories::ProjectDirs::from("", "", "switchboard")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or(SettingsError::NoHome)
}

pub const CONFIG_FILE: &str = "config.toml";

pub fn load(home: PathBuf) -> Result<Settings, SettingsError> {
    let file = read_file(&home.join(CONFIG_FILE))?;
    let mut s = Settings {
        home,
        operator: None,
        limits: Limits::default(),
    };
    apply(&mut s, file, CONFIG_FILE)?;
    apply(&mut s, from_env()?, "environment")?;
    Ok(s)
}

fn read_file(path: &Path) -> Result<FileSettings, SettingsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileSettings::default()),
        Err(source) => {
            return Err(SettingsError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    toml::from_str(&text).map_err(|e| SettingsError::Parse {
        path: path.to_owned(),
        source: Box::new(e),
    })
}

fn from_env() -> Result<FileSettings, SettingsError> {
    let var = |name: &str| std::env::var(format!("SWITCHBOARD_{name}")).ok();
    let number = |name: &str| -> Result<Option<u32>, SettingsError> {
        var(name)
            .map(|v| {
                v.trim().parse().map_err(|_| SettingsError::Value {
                    origin: format!("SWITCHBOARD_{name}"),
                    value: v,
                    expected: "a whole number",
                })
            })
            .transpose()
    };
    Ok(FileSettings {
        operator: var("OPERATOR"),
        pending_cap: number("PENDING_CAP")?,
        rate_limit: number("RATE_LIMIT")?,
        rate_window: var("RATE_WINDOW"),
        default_ttl: var("DEFAULT_TTL"),
        retention: var("RETENTION"),
        lease: var("LEASE"),
        max_attempts: number("MAX_ATTEMPTS")?,
        job_lease: var("JOB_LEASE"),
        job_max_attempts: number("JOB_MAX_ATTEMPTS")?,
        job_ttl: var("JOB_TTL"),
    })
}

fn apply(s: &mut Settings, f: FileSettings, origin: &str) -> Result<(), SettingsError> {
    let duration = |key: &str, v: &str| -> Result<Duration, SettingsError> {
        humantime::parse_duration(v).map_err(|_| SettingsError::Value {
            origin: format!("{origin}: {key}"),
            value: v.to_owned(),
            expected: "a duration such as 30s, 10m or 7d",
        })
    };
    if let Some(v) = f.operator {
        s.operator = Some(v);
    }
    let l = &mut s.limits;
    if let Some(v) = f.pending_cap {
        l.pending_cap = v;
    }
    if let Some(v) = f.rate_limit {
        l.rate_limit = v;
    }
    if let Some(v) = f.max_attempts {
        l.max_attempts = v;
    }
    if let Some(v) = f.job_max_attempts {
        l.job_max_attempts = v;
    }
    for (key, value, slot) in [
        ("rate_window", f.rate_window, &mut l.rate_window),
        ("default_ttl", f.default_ttl, &mut l.default_ttl),
        ("retention", f.retention, &mut l.retention),
        ("lease", f.lease, &mut l.lease),
        ("job_lease", f.job_lease, &mut l.job_lease),
        ("job_ttl", f.job_ttl, &mut l.job_ttl),
    ] {
        if let Some(v) = value {
            *slot = duration(key, &v)?;
        }
    }
    Ok(())
}
