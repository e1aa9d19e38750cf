//! The relay's JSON vocabulary: one [`Call`] per [`Exchange`] operation and the [`WireError`]
//! that carries a failure back. Both the relay (`POST /v1/<op>`) and its client use these types,
//! so the two cannot drift apart. No I/O here.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use switchboard_proto::{JobClaim, JobId, MessageId};

use crate::error::{Error, Rejection};
use crate::exchange::{Ask, Dispatch, Exchange, Outgoing, Session};
use crate::store::{
    JobOutcome, JobQuery, LogQuery, OpenSession, PeerId, QuestionQuery, Reply, SentQuery,
    SessionId, StoreError,
};

/// The longest any call may wait server-side, below every MCP client's tool timeout.
pub const MAX_WAIT: Duration = Duration::from_secs(240);

/// One operation with its arguments. Serialized with its name in `op`; over HTTP the name is
/// the last path segment (`POST /v1/send`) and the rest is the body. Peer arguments may be left
/// out when the caller's token names its peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Call {
    Operator {
        name: String,
    },
    OpenSession {
        session: OpenSession,
    },
    CloseSession {
        session: SessionId,
    },
    Peers,
    Peer {
        name: String,
    },
    PeerOfClient {
        pids: Vec<u32>,
    },
    Rename {
        #[serde(default)]
        peer: Option<PeerId>,
        name: String,
    },
    SetSummary {
        #[serde(default)]
        peer: Option<PeerId>,
        summary: String,
    },
    Send {
        #[serde(default)]
        from: Option<PeerId>,
        message: Outgoing,
    },
    Ask {
        #[serde(default)]
        from: Option<PeerId>,
        ask: Ask,
    },
    Reply {
        #[serde(default)]
        by: Option<PeerId>,
        question: MessageId,
        reply: Reply,
    },
    Questions {
        #[serde(default)]
        peer: Option<PeerId>,
        query: QuestionQuery,
    },
    Question {
        #[serde(default)]
        peer: Option<PeerId>,
        id: MessageId,
        #[serde(default, rename = "wait_secs", with = "secs")]
        wait: Option<Duration>,
    },
    Dispatch {
        #[serde(default)]
        from: Option<PeerId>,
        job: Dispatch,
    },
    Claim {
        agent: String,
        worker: String,
        #[serde(default)]
        allow_writes: bool,
        #[serde(default, rename = "wait_secs", with = "secs")]
        wait: Option<Duration>,
    },
    StartJob {
        claim: JobClaim,
    },
    Heartbeat {
        claim: JobClaim,
    },
    FinishJob {
        claim: JobClaim,
        outcome: JobOutcome,
    },
    ReleaseJob {
        claim: JobClaim,
    },
    CancelJob {
        id: JobId,
    },
    RequeueJob {
        id: JobId,
    },
    Job {
        id: JobId,
        #[serde(default, rename = "wait_secs", with = "secs")]
        wait: Option<Duration>,
    },
    Jobs {
        query: JobQuery,
    },
    Lease {
        session: Session,
        limit: u32,
        #[serde(default)]
        include_seen: bool,
        #[serde(default, rename = "wait_secs", with = "secs")]
        wait: Option<Duration>,
    },
    MarkDelivered {
        session: Session,
        ids: Vec<MessageId>,
    },
    Ack {
        #[serde(default)]
        peer: Option<PeerId>,
        ids: Vec<MessageId>,
    },
    Sent {
        #[serde(default)]
        sender: Option<PeerId>,
        query: SentQuery,
    },
    Log {
        query: LogQuery,
        #[serde(default, rename = "wait_secs", with = "secs")]
        wait: Option<Duration>,
    },
    LastMessageId,
    Gc,
    Stats,
}

impl Call {
    /// Splits the call into its operation's name (`POST /v1/<name>`) and its JSON body.
    pub fn into_parts(&self) -> Result<(String, Value), Error> {
        let encoded = serde_json::to_value(self)
            .map_err(|e| Error::Invalid(format!("cannot encode: {e}")))?;
        let Value::Object(mut map) = encoded else {
            return Err(Error::Invalid("a call encodes as a JSON object".into()));
        };
        let op = match map.remove("op") {
            Some(Value::String(op)) => op,
            _ => return Err(Error::Invalid("a call encodes with its op".into())),
        };
        Ok((op, Value::Object(map)))
    }

    /// Builds a call from the operation's name and its JSON body.
    pub fn from_parts(op: &str, body: Value) -> Result<Self, Error> {
        let mut map = match body {
            Value::Object(map) => map,
            Value::Null => serde_json::Map::new(),
            _ => {
                return Err(Error::Invalid(
                    "the request body must be a JSON object".into(),
                ));
            }
        };
        map.insert("op".into(), Value::String(op.to_owned()));
        serde_json::from_value(Value::Object(map))
            .map_err(|e| Error::Invalid(format!("bad arguments for '{op}': {e}")))
    }

    /// Runs the call against `ex`; `me` stands in for a peer argument left out.
    pub async fn run(self, ex: &dyn Exchange, me: Option<PeerId>) -> Result<Value, Error> {
        let who = |given: Option<PeerId>, field: &'static str| {
            given.or(me).ok_or(Error::Missing { field })
        };
        let wait = |w: Option<Duration>| w.unwrap_or_default().min(MAX_WAIT);
        match self {
            Call::Operator { name } => json(ex.operator(&name).await?),
            Call::OpenSession { session } => json(ex.open_session(session).await?),
            Call::CloseSession { session } => json(ex.close_session(session).await?),
            Call::Peers => json(ex.peers().await?),
            Call::Peer { name } => json(ex.peer(&name).await?),
            Call::PeerOfClient { pids } => json(ex.peer_of_client(&pids).await?),
            Call::Rename { peer, name } => json(ex.rename(who(peer, "peer")?, &name).await?),
            Call::SetSummary { peer, summary } => {
                json(ex.set_summary(who(peer, "peer")?, &summary).await?)
            }
            Call::Send { from, message } => json(ex.send(who(from, "from")?, message).await?),
            Call::Ask { from, ask } => json(ex.ask(who(from, "from")?, ask).await?),
            Call::Reply {
                by,
                question,
                reply,
            } => json(ex.reply(who(by, "by")?, question, reply).await?),
            Call::Questions { peer, query } => json(ex.questions(who(peer, "peer")?, query).await?),
            Call::Question { peer, id, wait: w } => {
                let peer = who(peer, "peer")?;
                json(ex.question_wait(peer, id, wait(w)).await?)
            }
            Call::Dispatch { from, job } => json(ex.dispatch(who(from, "from")?, job).await?),
            Call::Claim {
                agent,
                worker,
                allow_writes,
                wait: w,
            } => json(
                ex.claim_wait(&agent, &worker, allow_writes, wait(w))
                    .await?,
            ),
            Call::StartJob { claim } => json(ex.start_job(&claim).await?),
            Call::Heartbeat { claim } => json(ex.heartbeat(&claim).await?),
            Call::FinishJob { claim, outcome } => json(ex.finish_job(&claim, outcome).await?),
            Call::ReleaseJob { claim } => json(ex.release_job(&claim).await?),
            Call::CancelJob { id } => json(ex.cancel_job(id).await?),
            Call::RequeueJob { id } => json(ex.requeue_job(id).await?),
            Call::Job { id, wait: w } => json(ex.job_wait(id, wait(w)).await?),
            Call::Jobs { query } => json(ex.jobs(query).await?),
            Call::Lease {
                session,
                limit,
                include_seen,
                wait: w,
            } => json(
                ex.lease_wait(&session, limit, include_seen, wait(w))
                    .await?,
            ),
            Call::MarkDelivered { session, ids } => json(ex.mark_delivered(&session, &ids).await?),
            Call::Ack { peer, ids } => json(ex.ack(who(peer, "peer")?, &ids).await?),
            Call::Sent { sender, query } => json(ex.sent(who(sender, "sender")?, query).await?),
            Call::Log { query, wait: w } => json(ex.log_wait(query, wait(w)).await?),
            Call::LastMessageId => json(ex.last_message_id().await?),
            Call::Gc => json(ex.gc().await?),
            Call::Stats => json(ex.stats().await?),
        }
    }
}

fn json<T: Serialize>(value: T) -> Result<Value, Error> {
    // Every answer is plain data; failing to encode one is a bug, not a passing outage.
    serde_json::to_value(value).map_err(|e| Error::Reported {
        failure: Failure::Internal,
        message: format!("cannot encode the answer: {e}"),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_survives_its_http_split() {
        let call = Call::Send {
            from: Some(3),
            message: Outgoing {
                ttl: Some(Duration::from_millis(1500)),
                ..Outgoing::to_peer("bob", "hi")
            },
        };
        let (op, body) = call.into_parts().unwrap();
        assert_eq!(op, "send");
        assert!(body.get("op").is_none(), "the op travels in the path");
        assert_eq!(Call::from_parts(&op, body).unwrap(), call);
    }

    #[test]
    fn unknown_fields_and_ops_are_refused_with_the_reason() {
        let err = Call::from_parts(
            "send",
            serde_json::json!({"message": {"to": {"peer": "b"}, "text": "x"}, "as": 4}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("as"), "{err}");
        let err = Call::from_parts("drop_tables", Value::Null).unwrap_err();
        assert!(err.to_string().contains("drop_tables"), "{err}");
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
            Error::Rejected(Rejection::UnknownPeerId { id: 999 }),
            Error::Rejected(Rejection::InboxFull {
                peer: "bob".into(),
                cap: 1,
            }),
            Error::Store(StoreError::Full {
                path: "/x".into(),
                remedy: "free space".into(),
            }),
            Error::Rejected(Rejection::StaleClaim { id: 1 }),
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
