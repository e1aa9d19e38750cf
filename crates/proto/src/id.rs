//! Ids as types: a peer's id cannot be passed where a job's is meant, nor a question's where a
//! session's is. Each is a row id (a positive `i64`), the same number in JSON, in SQL and on
//! the command line, so an id is written and parsed as its bare number everywhere.
//!
//! The storage backends bind ids as SQL parameters and read them from rows. Rust's orphan rule
//! lets only this crate or the driver's implement the driver's traits for these types, so they
//! are implemented here, behind the `postgres` and `sqlite` features each backend turns on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident,)*) => {$(
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize,
            Deserialize,
        )]
        #[serde(transparent)]
        #[cfg_attr(
            feature = "postgres",
            derive(postgres_types::ToSql, postgres_types::FromSql),
            postgres(transparent)
        )]
        pub struct $name(pub i64);

        #[cfg(feature = "sqlite")]
        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.0.into())
            }
        }

        #[cfg(feature = "sqlite")]
        impl rusqlite::types::FromSql for $name {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                i64::column_result(value).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                Self(id)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    )*};
}

ids! {
    /// A peer: one identity, kept across its sessions.
    PeerId,
    /// One session of a peer (one running MCP server, CLI or hook).
    SessionId,
    /// A message, question, answer or notice: every item in an inbox, and the log's cursor.
    MessageId,
    /// A question, which is stored as a message of kind `question`: the same number.
    QuestionId,
    /// A job.
    JobId,
    /// A reservation of paths in one repository.
    ReservationId,
}

impl From<QuestionId> for MessageId {
    fn from(q: QuestionId) -> Self {
        MessageId(q.0)
    }
}

impl From<MessageId> for QuestionId {
    fn from(m: MessageId) -> Self {
        QuestionId(m.0)
    }
}
