//! The one classification of failures, and the one mapping from a class to what each front end
//! says: the relay's HTTP status (with `Retry-After` for what may pass), the CLI's exit code,
//! and the stable code a class travels under when no more precise code is at hand. The relay,
//! the relay client and the CLI all read this table, so a command run against a relay ends the
//! same way as against the local store.

use std::time::Duration;

use crate::error::{Error, Rejection};
use crate::store::StoreError;

/// What kind of failure an error is. Every [`Error`] has exactly one ([`Error::failure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// The caller's input is wrong (malformed, oversized, invalid name, missing field): 400, 2.
    BadInput,
    /// An id or name that names nothing here (peer, message, question, job, session): 404, 3.
    NotFound,
    /// A limit was hit (pending cap, rate limit): 429, 4.
    Limit,
    /// The store cannot be used until someone acts (disk full, corrupt, read-only, written by
    /// a newer version, cannot be opened): 503 without `Retry-After`, 5.
    Unusable,
    /// Refused by the state of things (a closed question, a stale claim): 409, 6.
    Refused,
    /// The credentials do not allow this: 403, 7.
    Denied,
    /// Transient: the store is busy or shutting down, the connection to it or to the relay
    /// dropped. The same request may well succeed shortly: 503 with `Retry-After`, 8.
    Unavailable,
    /// Anything not recognised — a bug, not the caller's fault and not known to pass: 500, 1.
    Internal,
}

/// The exit codes of the CLI, as `--help` and the README document them. `0` is success; the
/// rest are [`Failure::exit_code`], except `FAILURE`, which also covers the CLI's own I/O.
pub mod exit {
    pub const FAILURE: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
    pub const LIMIT: u8 = 4;
    pub const UNUSABLE: u8 = 5;
    pub const REFUSED: u8 = 6;
    pub const DENIED: u8 = 7;
    pub const UNAVAILABLE: u8 = 8;
    /// Not a failure of the command: the job it waited for ended failed, dead, expired,
    /// cancelled or parked for recovery (`jobs dispatch|show --wait`).
    pub const JOB_UNSUCCESSFUL: u8 = 9;
    /// The command's `--wait` ran out before the thing waited for happened (as `timeout(1)`).
    pub const WAIT_RAN_OUT: u8 = 124;
    /// Stopped by Ctrl-C (SIGINT), as a shell reports a process the signal ended.
    pub const INTERRUPTED: u8 = 130;
}

/// How long a caller told to come back (`Retry-After`) should wait: long enough for a lock to
/// clear or a replica to come back, short enough that a person does not notice.
const RETRY_AFTER: Duration = Duration::from_secs(1);

impl Failure {
    pub const ALL: [Failure; 8] = [
        Failure::BadInput,
        Failure::NotFound,
        Failure::Limit,
        Failure::Unusable,
        Failure::Refused,
        Failure::Denied,
        Failure::Unavailable,
        Failure::Internal,
    ];

    /// The relay's HTTP status for this class.
    pub const fn http_status(self) -> u16 {
        match self {
            Failure::BadInput => 400,
            Failure::NotFound => 404,
            Failure::Limit => 429,
            Failure::Unusable | Failure::Unavailable => 503,
            Failure::Refused => 409,
            Failure::Denied => 403,
            Failure::Internal => 500,
        }
    }

    /// Set only for a failure that may pass by itself: the relay sends it as `Retry-After`.
    pub const fn retry_after(self) -> Option<Duration> {
        match self {
            Failure::Unavailable => Some(RETRY_AFTER),
            _ => None,
        }
    }

    /// The CLI's exit code for this class.
    pub const fn exit_code(self) -> u8 {
        match self {
            Failure::BadInput => exit::BAD_INPUT,
            Failure::NotFound => exit::NOT_FOUND,
            Failure::Limit => exit::LIMIT,
            Failure::Unusable => exit::UNUSABLE,
            Failure::Refused => exit::REFUSED,
            Failure::Denied => exit::DENIED,
            Failure::Unavailable => exit::UNAVAILABLE,
            Failure::Internal => exit::FAILURE,
        }
    }

    /// The code a failure of this class travels under when it has no more precise one (a
    /// refusal by a rule travels under its own code, e.g. `unknown_peer`).
    pub const fn code(self) -> &'static str {
        match self {
            Failure::BadInput => "bad_input",
            Failure::NotFound => "not_found",
            Failure::Limit => "limit",
            Failure::Unusable => "store_unusable",
            Failure::Refused => "refused",
            Failure::Denied => "forbidden",
            Failure::Unavailable => "unavailable",
            Failure::Internal => "internal",
        }
    }

    /// The class of a code on the wire: the class codes above, and the codes the relay's
    /// routes answer with themselves. `None` for a code this version does not know.
    pub fn of_code(code: &str) -> Option<Self> {
        if let Some(f) = Self::ALL.into_iter().find(|f| f.code() == code) {
            return Some(f);
        }
        match code {
            "unknown_session" => Some(Failure::NotFound),
            "unauthorized" | "forbidden_host" | "forbidden_origin" => Some(Failure::Denied),
            _ => None,
        }
    }

    /// The class an HTTP status stands for, for an answer that carries no code this version
    /// knows (a proxy's error page, a newer relay): the inverse of [`Self::http_status`], with
    /// a 503 read as transient and the statuses of the same meaning folded in.
    pub fn of_http_status(status: u16) -> Self {
        match status {
            400 | 413 | 414 | 415 | 422 | 431 => Failure::BadInput,
            404 | 410 => Failure::NotFound,
            409 | 412 => Failure::Refused,
            429 => Failure::Limit,
            401 | 403 => Failure::Denied,
            502..=504 => Failure::Unavailable,
            507 => Failure::Unusable,
            _ => Failure::Internal,
        }
    }
}

impl Rejection {
    /// What kind of failure this refusal is.
    pub fn failure(&self) -> Failure {
        match self {
            Rejection::UnknownPeer { .. }
            | Rejection::UnknownPeerId { .. }
            | Rejection::NotInInbox { .. }
            | Rejection::UnknownMessage { .. }
            | Rejection::UnknownReplyTo { .. }
            | Rejection::UnknownQuestion { .. }
            | Rejection::UnknownJob { .. } => Failure::NotFound,
            Rejection::InboxFull { .. } | Rejection::RateLimited { .. } => Failure::Limit,
            Rejection::NameTaken { .. } | Rejection::NoLocation { .. } => Failure::BadInput,
            Rejection::NotYourQuestion { .. }
            | Rejection::QuestionClosed { .. }
            | Rejection::StaleClaim { .. }
            | Rejection::JobState { .. }
            | Rejection::Reserved { .. } => Failure::Refused,
        }
    }
}

impl StoreError {
    /// What kind of failure this is: whether waiting helps, or someone must act.
    pub fn failure(&self) -> Failure {
        match self {
            StoreError::Rejected(r) => r.failure(),
            StoreError::Corrupt { .. }
            | StoreError::ReadOnly { .. }
            | StoreError::TooNew { .. }
            | StoreError::Open { .. }
            | StoreError::Full { .. } => Failure::Unusable,
            StoreError::Busy { .. } | StoreError::Unreachable { .. } | StoreError::Closed => {
                Failure::Unavailable
            }
            StoreError::Backend(_) => Failure::Internal,
        }
    }
}

impl Error {
    /// What kind of failure this is; the relay's status, the CLI's exit code and the code on
    /// the wire all follow from it.
    pub fn failure(&self) -> Failure {
        match self {
            Error::Name(_)
            | Error::Empty { .. }
            | Error::TooMany { .. }
            | Error::TooLong { .. }
            | Error::TtlTooLong { .. }
            | Error::NoIds
            | Error::Missing { .. }
            | Error::NulChar { .. }
            | Error::Invalid(_) => Failure::BadInput,
            // The state of the job refuses it, as the store's own check would (409, exit 6).
            Error::WrongJobAction(_) => Failure::Refused,
            Error::Rejected(r) => r.failure(),
            Error::Denied(_) => Failure::Denied,
            Error::Unavailable(_) => Failure::Unavailable,
            Error::UnknownSession => Failure::NotFound,
            Error::Store(e) => e.failure(),
            Error::Reported { failure, .. } => *failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_its_own_exit_code_and_code() {
        let mut exits: Vec<u8> = Failure::ALL.iter().map(|f| f.exit_code()).collect();
        exits.sort_unstable();
        exits.dedup();
        assert_eq!(exits.len(), Failure::ALL.len(), "one exit code per class");
        for f in Failure::ALL {
            assert_eq!(Failure::of_code(f.code()), Some(f), "{f:?}");
        }
    }

    #[test]
    fn a_status_reads_back_as_its_class() {
        for f in Failure::ALL {
            let back = Failure::of_http_status(f.http_status());
            // 503 alone cannot tell "wait" from "someone must act"; the code on the wire does.
            if f == Failure::Unusable {
                assert_eq!(back, Failure::Unavailable);
            } else {
                assert_eq!(back, f, "{f:?}");
            }
        }
    }

    #[test]
    fn only_transient_failures_ask_to_come_back() {
        for f in Failure::ALL {
            assert_eq!(
                f.retry_after().is_some(),
                f == Failure::Unavailable,
                "{f:?}"
            );
        }
    }

    #[test]
    fn bad_input_is_never_5xx_and_transient_never_4xx() {
        assert!(Failure::BadInput.http_status() < 500);
        assert!(Failure::NotFound.http_status() < 500);
        assert!(Failure::Unavailable.http_status() >= 500);
        assert!(Failure::Unusable.http_status() >= 500);
    }
}
