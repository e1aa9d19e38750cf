//! CLI errors and the documented exit codes.

use std::error::Error as _;
use std::process::ExitCode;

use switchboard_core::wire::{Failure, failure_of};
use switchboard_core::{Error, StoreError};

use crate::settings::SettingsError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Core(#[from] Error),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("{0}")]
    BadInput(String),
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
    #[error("hook failed: {0}")]
    Hook(String),
    /// Not a failure: a command that speaks through its exit code (a hook's 2) and has
    /// already said everything else.
    #[error("")]
    Quiet(u8),
}

/// Exit codes, as `--help` documents them.
pub mod code {
    pub const FAILURE: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
    pub const LIMIT: u8 = 4;
    pub const STORE: u8 = 5;
    pub const REFUSED: u8 = 6;
    pub const DENIED: u8 = 7;
}

impl CliError {
    pub fn code(&self) -> u8 {
        match self {
            Self::BadInput(_) | Self::Settings(_) => code::BAD_INPUT,
            Self::Io(_) | Self::Hook(_) => code::FAILURE,
            Self::Quiet(code) => *code,
            Self::Core(e) if e.is_bad_input() => code::BAD_INPUT,
            Self::Core(Error::Rejected(r)) => match failure_of(r) {
                Failure::NotFound => code::NOT_FOUND,
                Failure::Refused => code::REFUSED,
                Failure::Limit => code::LIMIT,
                Failure::BadInput => code::BAD_INPUT,
                Failure::Denied => code::DENIED,
                Failure::Unavailable => code::FAILURE,
            },
            Self::Core(Error::Store(e)) => match e {
                StoreError::Backend(_) | StoreError::Closed | StoreError::Rejected(_) => {
                    code::FAILURE
                }
                _ => code::STORE,
            },
            Self::Core(Error::Denied(_)) => code::DENIED,
            Self::Core(Error::Unavailable(_)) => code::STORE,
            Self::Core(_) => code::FAILURE,
        }
    }
}

/// Prints `error: …` with every cause on its own line, and returns the exit code.
pub fn report(e: &CliError) -> ExitCode {
    if let CliError::Quiet(code) = e {
        return ExitCode::from(*code);
    }
    eprintln!("error: {e}");
    let mut source = e.source();
    while let Some(cause) = source {
        // Transparent wrappers repeat their inner message; print each distinct cause once.
        let text = cause.to_string();
        if !e.to_string().contains(&text) {
            eprintln!("  caused by: {text}");
        }
        source = cause.source();
    }
    ExitCode::from(e.code())
}
