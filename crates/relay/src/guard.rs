//! The guard: a room's mailbox seen through one caller's token. Every operation is checked
//! against what the token grants — a peer token acts as its own peer and nobody else, sessions
//! belong to the token that opened them, jobs are visible to their dispatcher and their agent —
//! before the room's mailbox does the work. The `/v1` API and the `/mcp` sessions both go
//! through it, so the two cannot differ in what they allow.

use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use tokio::sync::broadcast;

use switchboard_core::exchange::Result;
use switchboard_core::{
    Answer, Call, Error, Exchange, Limits, Mailbox, NamePolicy, PeerId, Rejection, Session, Wake,
    op,
};
use switchboard_proto::{JobClaim, JobId, JobView, Millis, PeerName};

use crate::auth::Caller;
use crate::history::Pushes;
use crate::sessions::{Attachment, Sessions};

pub struct Guard {
    mailbox: Arc<Mailbox>,
    room: String,
    caller: Caller,
    sessions: Sessions,
    /// The peer a peer token acts as, once it exists: looked up once per guard, not per check.
    me: OnceLock<PeerId>,
    /// Set for an MCP connection: the sessions it opens stay attached while it lives, and are
    /// let go (for the reaper to end once idle) when it is dropped.
    held: Option<Mutex<Vec<Attachment>>>,
    /// Where the pushes this guard's callers receive are measured (the relay's own guards).
    pushes: Option<Pushes>,
}

impl Guard {
    pub fn new(mailbox: Arc<Mailbox>, room: &str, caller: Caller, sessions: Sessions) -> Self {
        Self {
            mailbox,
            room: room.to_owned(),
            caller,
            sessions,
            me: OnceLock::new(),
            held: None,
            pushes: None,
        }
    }

    /// Records how long the messages pushed through this guard waited ([`Exchange::pushed`]).
    pub fn recording_pushes(mut self, pushes: Pushes) -> Self {
        self.pushes = Some(pushes);
        self
    }

    /// The room whose figures (what `stats` answers) this caller may read: the dashboard's
    /// charts show those figures over time, so they are allowed by the same rule as `stats`.
    pub async fn figures_room(&self) -> Result<&str> {
        let mut call = Call::Stats(op::Stats {});
        self.authorize(&mut call).await?;
        Ok(&self.room)
    }

    /// Who this guard acts for.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Keeps the sessions this guard opens attached until it is dropped.
    pub fn holding_sessions(mut self) -> Self {
        self.held = Some(Mutex::new(Vec::new()));
        self
    }

    /// The peer a peer token acts as, when it exists yet (`None` for a room token, or a peer
    /// that has not joined). A peer's id never changes and a peer token's peer cannot be
    /// renamed through it, so the first answer stands for the guard's life. A store failure is
    /// an error, never "no peer": a client retries the one and not the other.
    pub async fn me(&self) -> Result<Option<PeerId>> {
        if let Some(id) = self.me.get() {
            return Ok(Some(*id));
        }
        let Some(name) = self.caller.grant.peer() else {
            return Ok(None);
        };
        match self.mailbox.peer(name).await {
            Ok(peer) => Ok(Some(*self.me.get_or_init(|| peer.id))),
            Err(Error::Rejected(Rejection::UnknownPeer { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn denied(&self) -> Error {
        let name = self.caller.grant.peer().unwrap_or_default();
        Error::Denied(format!(
            "this token belongs to peer '{name}'; it cannot act for another peer"
        ))
    }

    /// Passes when the caller may act as `peer`.
    async fn own(&self, peer: PeerId) -> Result<()> {
        if self.caller.grant.peer().is_none() {
            return Ok(());
        }
        match self.me().await? {
            Some(me) if me == peer => Ok(()),
            _ => Err(self.denied()),
        }
    }

    /// The session as the relay opened it for this token (never the caller's copy of it).
    fn session(&self, given: &Session) -> Result<Session> {
        self.sessions
            .get(&self.room, given.id, &self.caller.token_id)
            .ok_or(Error::UnknownSession)
    }

    fn may_see(&self, job: &JobView) -> bool {
        self.caller
            .grant
            .peer()
            .is_none_or(|me| job.agent == me || job.dispatcher == me)
    }

    /// The job, if this caller may see it; an invisible job reads as unknown.
    async fn visible_job(&self, id: JobId) -> Result<JobView> {
        let job = self.mailbox.job(id).await?;
        if self.may_see(&job) {
            Ok(job)
        } else {
            Err(Rejection::UnknownJob { id }.into())
        }
    }

    /// A worker may touch a claimed job only if it serves the job's agent.
    async fn check_claim(&self, claim: &JobClaim) -> Result<()> {
        let job = self.visible_job(claim.job.id).await?;
        match self.caller.grant.peer() {
            Some(me) if job.agent != me => Err(self.denied()),
            _ => Ok(()),
        }
    }

    fn check_agent(&self, agent: &str) -> Result<()> {
        match self.caller.grant.peer() {
            Some(me) if agent != me => Err(Error::Denied(format!(
                "this token belongs to peer '{me}'; it can only run jobs addressed to '{me}'"
            ))),
            _ => Ok(()),
        }
    }

    fn check_name(&self, name: &str) -> Result<()> {
        match self.caller.grant.peer() {
            Some(me) if name != me => Err(self.denied()),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Exchange for Guard {
    fn describe(&self) -> String {
        format!("room '{}' of this relay", self.room)
    }

    fn limits(&self) -> &Limits {
        self.mailbox.limits()
    }

    fn subscribe(&self) -> broadcast::Receiver<Wake> {
        self.mailbox.subscribe()
    }

    /// Checks the call against the token, then lets the room's mailbox answer it.
    async fn call(&self, mut call: Call) -> Result<Answer> {
        if let Some(answered) = self.authorize(&mut call).await? {
            return Ok(answered);
        }
        let answer = self.mailbox.call(call).await?;
        Ok(self.shown(answer))
    }

    fn pushed(&self, created_at: Millis) {
        if let Some(pushes) = &self.pushes {
            pushes.record(created_at);
        }
    }
}

impl Guard {
    /// The one authorization match: refuses what the token may not do, fills in and checks the
    /// peer it acts as, and puts the relay's own copy of a session in place of the caller's.
    /// A few calls a peer token makes are answered here (`Some`), from its own peer.
    async fn authorize(&self, call: &mut Call) -> Result<Option<Answer>> {
        let peer_token = self.caller.grant.peer();
        match call {
            Call::Operator(o) if peer_token.is_some() => {
                self.check_name(&o.name)?;
                // A human holding a peer token acts as that peer, whatever kind it was minted
                // as. The peer may appear between the look and the creation (the agent's own
                // session registering it as an agent): then it is that peer, not a name taken.
                if let Ok(peer) = self.mailbox.peer(&o.name).await {
                    return Ok(Some(Answer::Operator(peer)));
                }
                let peer = match self.mailbox.operator(&o.name).await {
                    Err(Error::Rejected(Rejection::NameTaken { .. })) => {
                        self.mailbox.peer(&o.name).await?
                    }
                    other => other?,
                };
                return Ok(Some(Answer::Operator(peer)));
            }
            Call::Operator(o) => self.check_name(&o.name)?,
            Call::OpenSession(o) => {
                if let Some(me) = peer_token {
                    // A peer token's identity is its name and its kind, whatever the client
                    // proposed: a human using an agent's token (`switchboard inbox`) joins
                    // that agent.
                    o.session.name = PeerName::parse(me)?;
                    o.session.policy = NamePolicy::Join;
                    if let Ok(peer) = self.mailbox.peer(me).await {
                        o.session.kind = peer.kind;
                    }
                    // The peer may appear between the look and the opening (the human's
                    // `operator` call creating it): then the session joins it, in its kind.
                    let session = match self.mailbox.open_session(o.session.clone()).await {
                        Err(Error::Rejected(Rejection::NameTaken { .. })) => {
                            o.session.kind = self.mailbox.peer(me).await?.kind;
                            self.mailbox.open_session(o.session.clone()).await?
                        }
                        other => other?,
                    };
                    return Ok(Some(self.shown(Answer::OpenSession(session))));
                }
            }
            Call::CloseSession(o) => {
                self.sessions
                    .get(&self.room, o.session, &self.caller.token_id)
                    .ok_or(Error::UnknownSession)?;
                self.sessions.remove(&self.room, o.session);
            }
            Call::Peers(_) | Call::Peer(_) | Call::LastMessageId(_) | Call::Stats(_) => {}
            Call::PeerOfClient(_) => {
                if let Some(me) = peer_token {
                    return Ok(Some(Answer::PeerOfClient(self.mailbox.peer(me).await.ok())));
                }
            }
            Call::Rename(_) if peer_token.is_some() => {
                return Err(Error::Denied(
                    "a peer token's name is fixed; mint a token for the new name instead".into(),
                ));
            }
            Call::Rename(o) => o.peer = Some(self.acting(o.peer, "peer").await?),
            Call::SetSummary(o) => o.peer = Some(self.acting(o.peer, "peer").await?),
            Call::Send(o) => o.from = Some(self.acting(o.from, "from").await?),
            Call::Ask(o) => o.from = Some(self.acting(o.from, "from").await?),
            Call::Reply(o) => o.by = Some(self.acting(o.by, "by").await?),
            // A room token may list the whole room's questions by leaving the peer out.
            Call::Questions(o) if o.peer.is_none() && self.caller.grant.peer().is_none() => {}
            Call::Questions(o) => o.peer = Some(self.acting(o.peer, "peer").await?),
            Call::Question(o) => o.peer = Some(self.acting(o.peer, "peer").await?),
            Call::Dispatch(o) => o.from = Some(self.acting(o.from, "from").await?),
            Call::Ack(o) => o.peer = Some(self.acting(o.peer, "peer").await?),
            Call::Sent(o) => o.sender = Some(self.acting(o.sender, "sender").await?),
            Call::Claim(o) => self.check_agent(&o.agent)?,
            Call::StartJob(op::StartJob { claim })
            | Call::Heartbeat(op::Heartbeat { claim })
            | Call::FinishJob(op::FinishJob { claim, .. })
            | Call::ReleaseJob(op::ReleaseJob { claim }) => self.check_claim(claim).await?,
            Call::CancelJob(op::CancelJob { id })
            | Call::RequeueJob(op::RequeueJob { id })
            | Call::Job(op::Job { id, .. }) => {
                self.visible_job(*id).await?;
            }
            // Filtered by what the token may see, in [`Self::shown`].
            Call::Jobs(_) => {}
            Call::Lease(op::Lease { session, .. })
            | Call::MarkDelivered(op::MarkDelivered { session, .. }) => {
                *session = self.session(session)?;
            }
            // A peer token reads only its own part of the room's log.
            Call::Log(o) if peer_token.is_some() => {
                o.query.peer = Some(self.me().await?.ok_or_else(|| self.denied())?);
            }
            Call::Log(_) => {}
            Call::Gc(_) if peer_token.is_some() => {
                return Err(Error::Denied(
                    "garbage collection needs the room token; the relay also runs it itself".into(),
                ));
            }
            Call::Gc(_) => {}
            Call::Reserve(o) => {
                o.peer = Some(self.acting(o.peer, "peer").await?);
                // A reservation bound to a session ends with it: only the caller's own.
                if let Some(session) = o.session {
                    self.sessions
                        .get(&self.room, session, &self.caller.token_id)
                        .ok_or(Error::UnknownSession)?;
                }
                // Reserving for a job passes its dispatcher's own reservations: only the
                // worker serving the job's agent may.
                if let Some(id) = o.job {
                    let job = self.visible_job(id).await?;
                    self.check_agent(&job.agent)?;
                }
            }
            Call::Release(o) => o.peer = Some(self.acting(o.peer, "peer").await?),
            // Every reservation of the room is visible to every token of it: that is their use.
            Call::Reservations(_) => {}
        }
        Ok(None)
    }

    /// The answer as this caller sees it: a session it opened is its own from now on, jobs it
    /// may not see are left out, and where the relay keeps its files is the relay's business.
    fn shown(&self, answer: Answer) -> Answer {
        match answer {
            Answer::OpenSession(session) => {
                self.sessions
                    .insert(&self.room, session.clone(), &self.caller.token_id);
                if let Some(held) = &self.held
                    && let Some((a, _)) =
                        self.sessions
                            .attach(&self.room, session.id, &self.caller.token_id)
                    && let Ok(mut held) = held.lock()
                {
                    held.push(a);
                }
                Answer::OpenSession(session)
            }
            Answer::Jobs(mut jobs) => {
                jobs.retain(|j| self.may_see(j));
                Answer::Jobs(jobs)
            }
            Answer::Stats(mut stats) => {
                let kind = stats
                    .backend
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                stats.backend = format!("room '{}' on a relay ({kind})", self.room);
                Answer::Stats(stats)
            }
            other => other,
        }
    }

    /// The peer a call acts as: the one it names, which the caller must be allowed to act as,
    /// or else the token's own.
    async fn acting(&self, given: Option<PeerId>, field: &'static str) -> Result<PeerId> {
        let peer = match given {
            Some(peer) => peer,
            None => self.me().await?.ok_or(Error::Missing { field })?,
        };
        self.own(peer).await?;
        Ok(peer)
    }
}
