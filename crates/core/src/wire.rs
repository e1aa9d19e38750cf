//! The relay's JSON framing of the operations in [`crate::op`]: how a [`Call`] splits into a
//! path and a body and back, and the [`WireError`] that carries a failure back. Both the relay
//! (`POST /v1/<op>`) and its client use these, so the two cannot drift apart. No I/O here.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::error::Category;

use crate::error::{Error, Rejection};
use crate::store::StoreError;

pub use crate::op::{Answer, Call};

/// The longest any call may wait server-side, below every MCP client's tool timeout.
pub const MAX_WAIT: Duration = Duration::from_secs(240);

impl Call {
    /// Splits the call into its operation's name (`POST /v1/<name>`) and its JSON body.
    pub fn into_parts(&self) -> Result<(&'static str, Vec<u8>), Error> {
        let body = self
            .body()
            .map_err(|e| Error::Invalid(format!("cannot encode: {e}")))?;
        Ok((self.name(), body))
    }

    /// Builds a call from the operation's name and its JSON body, read straight into the
    /// operation's type (no intermediate JSON tree: that cost the relay about a tenth of its
    /// instructions per message). An empty body, or `null`, is an operation without
    /// arguments, as `{}`.
    pub fn from_parts(op: &str, body: &[u8]) -> Result<Self, Error> {
        let trimmed = body.trim_ascii();
        let body = if trimmed.is_empty() || trimmed == b"null" {
            b"{}"
        } else {
            body
        };
        match Call::read_named(op, body) {
            Some(Ok(call)) => Ok(call),
            None => Err(Error::Invalid(format!(
                "there is no operation '{op}'; the operations are: {}",
                Call::NAMES.join(", ")
            ))),
            Some(Err(e)) => Err(Error::Invalid(match e.classify() {
                Category::Syntax | Category::Eof | Category::Io => {
                    format!("the request body is not JSON: {e}")
                }
                Category::Data if !trimmed.starts_with(b"{") => {
                    "the request body must be a JSON object".to_owned()
                }
                Category::Data => format!("bad arguments for '{op}': {e}"),
            })),
        }
    }
}

/// A failure as it crosses the wire. `code` is stable and machine-readable; a refusal by a rule
/// travels whole in `rejection`, so the caller rebuilds the very same [`Rejection`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<Rejection>,
}

pub use crate::failure::Failure;

impl WireError {
    /// The failure as it is sent, with its class (which decides the HTTP status). A refusal
    /// travels under its own code; anything else under its class's code, except a session the
    /// relay does not know, which a client tells apart to reopen it.
    pub fn of(e: &Error) -> (Failure, Self) {
        let failure = e.failure();
        let (code, rejection) = match e {
            Error::Rejected(r) | Error::Store(StoreError::Rejected(r)) => {
                (rejection_code(r), Some(r.clone()))
            }
            Error::UnknownSession => ("unknown_session".to_owned(), None),
            _ => (failure.code().to_owned(), None),
        };
        (
            failure,
            Self {
                code,
                message: e.to_string(),
                rejection,
            },
        )
    }

    /// The error this stands for, on the calling side, given the HTTP status it came with: of
    /// the same class as the error the relay sent, so the caller acts (and exits) as it would
    /// have against a local store. The status decides only for a code this version does not
    /// know.
    pub fn into_error(self, status: u16) -> Error {
        if let Some(r) = self.rejection {
            return Error::Rejected(r);
        }
        if self.code == "unknown_session" {
            return Error::UnknownSession;
        }
        let failure =
            Failure::of_code(&self.code).unwrap_or_else(|| Failure::of_http_status(status));
        match failure {
            Failure::BadInput => Error::Invalid(self.message),
            Failure::Denied => Error::Denied(self.message),
            Failure::Unavailable => Error::Unavailable(self.message),
            failure => Error::Reported {
                failure,
                message: self.message,
            },
        }
    }
}

fn rejection_code(r: &Rejection) -> String {
    match serde_json::to_value(r) {
        Ok(Value::Object(map)) => map
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("refused")
            .to_owned(),
        _ => "refused".to_owned(),
    }
}

/// `Duration` as seconds (fractions allowed) in JSON.
pub mod dur {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        super::secs::deserialize(d)?
            .ok_or_else(|| serde::de::Error::custom("a duration is required"))
    }
}

/// `Option<Duration>` as seconds (fractions allowed) in JSON.
pub mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<f64>::deserialize(d)? {
            None => Ok(None),
            Some(v) => Duration::try_from_secs_f64(v).map(Some).map_err(|_| {
                serde::de::Error::custom(
                    "a duration must be a finite number of seconds, at least 0",
                )
            }),
        }
    }
}

/// A wait in JSON: seconds (fractions allowed); left out or `null` means not to wait.
pub mod wait {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(super::secs::deserialize(d)?.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::Outgoing;
    use switchboard_proto::{JobId, PeerId};

    #[test]
    fn a_call_survives_its_http_split() {
        let call = Call::Send(crate::op::Send {
            from: Some(PeerId(3)),
            message: Outgoing {
                ttl: Some(Duration::from_millis(1500)),
                ..Outgoing::to_peer("bob", "hi")
            },
        });
        let (op, body) = call.into_parts().unwrap();
        assert_eq!(op, "send");
        let fields: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(fields.get("op").is_none(), "the op travels in the path");
        assert_eq!(Call::from_parts(op, &body).unwrap(), call);
    }

    #[test]
    fn unknown_fields_and_ops_are_refused_with_the_reason() {
        let err = Call::from_parts(
            "send",
            br#"{"message": {"to": {"peer": "b"}, "text": "x"}, "as": 4}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("bad arguments for 'send'"),
            "{err}"
        );
        assert!(err.to_string().contains("as"), "{err}");
        let err = Call::from_parts("drop_tables", b"").unwrap_err();
        assert!(err.to_string().contains("drop_tables"), "{err}");
        assert!(
            err.to_string().contains("last_message_id"),
            "names what there is: {err}"
        );
    }

    #[test]
    fn a_body_that_is_no_json_object_is_told_apart_from_bad_arguments() {
        let err = Call::from_parts("peers", b"{\"online_only\": tru").unwrap_err();
        assert!(err.to_string().contains("is not JSON"), "{err}");
        let err = Call::from_parts("peers", b"[1, 2]").unwrap_err();
        assert!(err.to_string().contains("must be a JSON object"), "{err}");
        for empty in [&b""[..], b" ", b"null", b" {} "] {
            assert!(
                matches!(Call::from_parts("peers", empty), Ok(Call::Peers(_))),
                "{:?} is an operation without arguments",
                String::from_utf8_lossy(empty)
            );
        }
    }

    #[test]
    fn a_rejection_comes_back_as_itself() {
        let original = Error::Rejected(Rejection::UnknownPeer {
            name: "zed".into(),
            known: vec!["amy".into()],
        });
        let (failure, wire) = WireError::of(&original);
        assert_eq!(failure, Failure::NotFound);
        assert_eq!(wire.code, "unknown_peer");
        let back: WireError = serde_json::from_str(&serde_json::to_string(&wire).unwrap()).unwrap();
        assert!(matches!(
            back.into_error(404),
            Error::Rejected(Rejection::UnknownPeer { .. })
        ));
    }

    #[test]
    fn every_failure_comes_back_in_its_class() {
        let errors = [
            Error::Empty { field: "text" },
            Error::Rejected(Rejection::UnknownPeerId { id: PeerId(999) }),
            Error::Rejected(Rejection::InboxFull {
                peer: "bob".into(),
                cap: 1,
            }),
            Error::Store(StoreError::Full {
                path: "/x".into(),
                remedy: "free space".into(),
            }),
            Error::Rejected(Rejection::StaleClaim { id: JobId(1) }),
            Error::Denied("no".into()),
            Error::Store(StoreError::Busy { path: "/x".into() }),
            Error::UnknownSession,
            Error::Store(StoreError::Backend("boom".into())),
        ];
        for e in errors {
            let (failure, wire) = WireError::of(&e);
            assert_eq!(failure, e.failure());
            let json = serde_json::to_string(&wire).unwrap();
            let back: WireError = serde_json::from_str(&json).unwrap();
            let back = back.into_error(failure.http_status());
            assert_eq!(back.failure(), failure, "{e:?} came back as {back:?}");
            assert_eq!(back.to_string(), e.to_string());
        }
    }

    #[test]
    fn an_unknown_code_falls_back_on_the_status() {
        let wire = WireError {
            code: "from_the_future".into(),
            message: "x".into(),
            rejection: None,
        };
        assert_eq!(wire.clone().into_error(404).failure(), Failure::NotFound);
        assert_eq!(wire.clone().into_error(503).failure(), Failure::Unavailable);
        assert_eq!(wire.into_error(418).failure(), Failure::Internal);
    }
}
