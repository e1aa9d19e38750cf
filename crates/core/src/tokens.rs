//! The relay's credentials as stored: a seam like [`crate::Store`], so the embedded and the
//! Postgres deployments keep tokens beside their data. Only a hash of each secret is stored;
//! minting, hashing and comparing live in the relay, not here.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use switchboard_proto::Millis;

use crate::store::StoreResult;

/// What a token lets its holder do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Grant {
    /// Any peer of the room, by self-asserted name (simple pairing).
    Room { room: String },
    /// Exactly one peer of one room: the sender identity comes from the token.
    Peer { room: String, peer: String },
    /// The relay's operator: health and metrics, no room at all.
    Admin,
}

impl Grant {
    pub fn room(&self) -> Option<&str> {
        match self {
            Self::Room { room } | Self::Peer { room, .. } => Some(room),
            Self::Admin => None,
        }
    }

    pub fn peer(&self) -> Option<&str> {
        match self {
            Self::Peer { peer, .. } => Some(peer),
            _ => None,
        }
    }
}

/// A token as stored. `secret_hash` is SHA-256 of the secret part; the secret itself is shown
/// once, when minted, and never kept.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    pub id: String,
    pub grant: Grant,
    pub label: String,
    #[serde(skip)]
    pub secret_hash: Vec<u8>,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("id", &self.id)
            .field("grant", &self.grant)
            .field("label", &self.label)
            .field("secret_hash", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    async fn insert_token(&self, token: TokenRecord) -> StoreResult<()>;
    /// The token with this id, revoked or not.
    async fn token(&self, id: &str) -> StoreResult<Option<TokenRecord>>;
    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>>;
    /// Marks the token revoked; false when there is no such token or it already was.
    async fn revoke_token(&self, id: &str, now: Millis) -> StoreResult<bool>;
    /// A number that changes whenever any token changes, so a verifier can cache safely.
    async fn tokens_version(&self) -> StoreResult<u64>;
}
