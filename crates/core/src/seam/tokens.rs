//! The statements on the relay's `tokens` table, the backend that runs them, and the
//! [`TokenStore`] of every such backend, written once. Tokens live apart from any room (the
//! embedded relay keeps them in a file of their own), so their backend is not a [`Backend`]
//! (super::Backend): it only runs a procedure as one transaction.

use std::future::Future;

use async_trait::async_trait;

use switchboard_proto::Millis;

use super::columns::{Col, Columns};
use super::{Access, Procedure, Statements, Step};
use crate::procedures::tokens;
use crate::store::StoreResult;
use crate::tokens::{Grant, TokenRecord, TokenStore};

/// The columns [`token`] decodes, in order, from `tokens`.
pub const TOKEN_COLUMNS: &str = "id, kind, room, peer, label, secret_hash, created_at, revoked_at";

/// A token read with [`TOKEN_COLUMNS`].
pub fn token(r: &dyn Columns) -> Col<TokenRecord> {
    let grant = match (r.text(1)?.as_str(), r.opt_text(2)?, r.opt_text(3)?) {
        ("room", Some(room), _) => Grant::Room { room },
        ("peer", Some(room), Some(peer)) => Grant::Peer { room, peer },
        // An unknown kind grants nothing a room or peer would: the least a row can mean.
        _ => Grant::Admin,
    };
    Ok(TokenRecord {
        id: r.text(0)?,
        grant,
        label: r.text(4)?,
        secret_hash: r.bytes(5)?,
        created_at: r.int(6)?,
        revoked_at: r.opt_int(7)?,
    })
}

/// A grant as bound to `kind, room, peer`, in that order.
pub fn grant_values(grant: &Grant) -> (&'static str, Option<&str>, Option<&str>) {
    let kind = match grant {
        Grant::Room { .. } => "room",
        Grant::Peer { .. } => "peer",
        Grant::Admin => "admin",
    };
    (kind, grant.room(), grant.peer())
}

pub trait TokenStatements: Statements {
    fn insert_token(&mut self, t: &TokenRecord) -> impl Future<Output = Step<(), Self>> + Send;

    fn token_by_id(
        &mut self,
        id: &str,
    ) -> impl Future<Output = Step<Option<TokenRecord>, Self>> + Send;

    /// Every token, oldest first.
    fn all_tokens(&mut self) -> impl Future<Output = Step<Vec<TokenRecord>, Self>> + Send;

    /// Marks a token revoked unless it already was; returns how many changed (0 or 1).
    fn revoke_token(
        &mut self,
        id: &str,
        now: Millis,
    ) -> impl Future<Output = Step<u64, Self>> + Send;

    /// Records that the tokens changed, so [`TokenStatements::tokens_version`] moves.
    fn count_token_change(&mut self) -> impl Future<Output = Step<(), Self>> + Send;

    /// A number that changes whenever any token changes, through any handle or process.
    fn tokens_version(&mut self) -> impl Future<Output = Step<u64, Self>> + Send;
}

/// Where tokens are kept: how a token procedure runs as one transaction.
pub trait TokenBackend: Send + Sync + 'static {
    type Tx: TokenStatements + 'static;

    /// As [`Backend::transact`](super::Backend::transact).
    fn transact<T: Send + 'static>(
        &self,
        access: Access,
        procedure: impl Procedure<Self::Tx, T>,
    ) -> impl Future<Output = StoreResult<T>> + Send;
}

// Each procedure may be run again (a lost race), so the arguments it owns are cloned per run.
#[async_trait]
impl<B: TokenBackend> TokenStore for B {
    async fn insert_token(&self, token: TokenRecord) -> StoreResult<()> {
        self.transact(Access::Write, move |x| {
            Box::pin(tokens::insert(x, token.clone()))
        })
        .await
    }

    async fn token(&self, id: &str) -> StoreResult<Option<TokenRecord>> {
        let id = id.to_owned();
        self.transact(Access::Read, move |x| Box::pin(tokens::get(x, id.clone())))
            .await
    }

    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.transact(Access::Read, |x| Box::pin(x.all_tokens()))
            .await
    }

    async fn revoke_token(&self, id: &str, now: Millis) -> StoreResult<bool> {
        let id = id.to_owned();
        self.transact(Access::Write, move |x| {
            Box::pin(tokens::revoke(x, id.clone(), now))
        })
        .await
    }

    async fn tokens_version(&self) -> StoreResult<u64> {
        self.transact(Access::Read, |x| Box::pin(x.tokens_version()))
            .await
    }
}
