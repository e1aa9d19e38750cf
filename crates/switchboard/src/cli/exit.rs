//! CLI errors and the documented exit codes.

use std::error::Error as _;
use std::process::ExitCode;

use switchboard_core::Error;

use crate::settings::SettingsError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Core(#[from] Error),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Login(#[from] crate::login::LoginError),
    #[error("{0}")]
    BadInput(String),
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
    #[error("hook failed: {0}")]
    Hook(String),
    /// `switchboard demo` could not complete a step (it says which).
    #[error("demo: {0}")]
    Demo(String),
    /// Not a failure: a command that speaks through its exit code (a hook's 2) and has
    /// already said everything else.
    #[error("")]
    Quiet(u8),
    /// Ctrl-C: the command stopped as asked (after giving back what it held).
    #[error("")]
    Interrupted,
    /// The job a `--wait` waited for ended without success; the job was printed.
    #[error("job {id} ended {state}")]
    JobUnsuccessful {
        id: switchboard_proto::JobId,
        state: String,
    },
    /// The wait ran out first; what was waited for was printed as it stands.
    #[error("{0}")]
    WaitRanOut(String),
}

/// Exit codes, as `--help` documents them: one table for every front end, in
/// [`switchboard_core::failure`].
pub use switchboard_core::failure::exit as code;

impl CliError {
    pub fn code(&self) -> u8 {
        match self {
            Self::BadInput(_) | Self::Settings(_) => code::BAD_INPUT,
            Self::Login(
                crate::login::LoginError::Read { .. } | crate::login::LoginError::Write { .. },
            ) => code::FAILURE,
            Self::Login(_) => code::BAD_INPUT,
            Self::Io(_) | Self::Hook(_) | Self::Demo(_) => code::FAILURE,
            Self::Quiet(code) => *code,
            Self::Interrupted => code::INTERRUPTED,
            Self::JobUnsuccessful { .. } => code::JOB_UNSUCCESSFUL,
            Self::WaitRanOut(_) => code::WAIT_RAN_OUT,
            Self::Core(e) => e.failure().exit_code(),
        }
    }
}

/// Prints `error: …` with every cause on its own line, and returns the exit code.
pub fn report(e: &CliError) -> ExitCode {
    if let CliError::Quiet(code) = e {
        return ExitCode::from(*code);
    }
    if let CliError::Interrupted = e {
        return ExitCode::from(code::INTERRUPTED);
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
