//! The statements on the `sessions` table.

use std::future::Future;

use switchboard_proto::Millis;

use super::{Statements, Step};
use crate::store::{PeerId, SessionId};

/// A session to start, of `peer`, for the client process `client_pid` (when known).
#[derive(Debug, Clone, Copy)]
pub struct NewSession {
    pub peer: PeerId,
    pub client_pid: Option<u32>,
    pub now: Millis,
}

pub trait SessionStatements: Statements {
    /// Whether the peer has a session that has not ended.
    fn has_live_session(&mut self, id: PeerId) -> impl Future<Output = Step<bool, Self>> + Send;

    /// Starts a session owned by this process, whose death will end it.
    fn insert_session(
        &mut self,
        s: NewSession,
    ) -> impl Future<Output = Step<SessionId, Self>> + Send;

    /// Ends one session if it has not ended; returns its peer when it did end now.
    fn end_session(
        &mut self,
        id: SessionId,
        now: Millis,
    ) -> impl Future<Output = Step<Option<PeerId>, Self>> + Send;

    /// Ends every session whose owning process is gone; returns them with their peers.
    fn end_dead_sessions(
        &mut self,
        now: Millis,
    ) -> impl Future<Output = Step<Vec<(SessionId, PeerId)>, Self>> + Send;

    /// The peer of the newest live session whose client is the process `pid`.
    fn live_peer_of_client(
        &mut self,
        pid: u32,
    ) -> impl Future<Output = Step<Option<PeerId>, Self>> + Send;
}
