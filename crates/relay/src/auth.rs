//! Tokens: minting, parsing and verifying. A token reads `swb_<id>_<secret>`; the id finds the
//! stored record and the secret is checked against its SHA-256 hash in constant time. Secrets
//! are 256 random bits, so a fast hash is enough: there is nothing to guess.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use switchboard_core::{Grant, StoreError, TokenRecord, TokenStore};
use switchboard_proto::{Millis, PeerName};

const PREFIX: &str = "swb_";
/// How stale a cached token may be before the store is asked whether anything changed: the
/// longest a revoked token keeps working.
const RECHECK: Duration = Duration::from_millis(200);

/// Who is calling, as proven by their token.
#[derive(Clone, PartialEq, Eq)]
pub struct Caller {
    pub token_id: String,
    pub grant: Grant,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("token_id", &self.token_id)
            .field("grant", &self.grant)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no token: send `Authorization: Bearer <token>` (mint one with `switchboard tokens create`)"
    )]
    Missing,
    #[error("the token is not valid (wrong, revoked or malformed)")]
    Invalid,
    #[error("the OS random generator failed: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A freshly minted token: the secret text is shown once and never stored.
pub struct Minted {
    pub record: TokenRecord,
    pub token: String,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("record", &self.record)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Checks that a grant names valid room and peer names.
pub fn check_grant(grant: &Grant) -> Result<(), switchboard_proto::NameError> {
    if let Some(room) = grant.room() {
        PeerName::parse(room)?;
    }
    if let Some(peer) = grant.peer() {
        PeerName::parse(peer)?;
    }
    Ok(())
}

pub async fn mint(
    store: &dyn TokenStore,
    grant: Grant,
    label: &str,
    now: Millis,
) -> Result<Minted, AuthError> {
    let id = hex(&random::<8>()?);
    let secret = hex(&random::<32>()?);
    let record = TokenRecord {
        id: id.clone(),
        grant,
        label: label.to_owned(),
        secret_hash: hash(&secret).to_vec(),
        created_at: now,
        revoked_at: None,
    };
    store.insert_token(record.clone()).await?;
    Ok(Minted {
        record,
        token: format!("{PREFIX}{id}_{secret}"),
    })
}

fn random<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(buf)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Splits `swb_<id>_<secret>`; anything else is not a token.
fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hexish = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexish(id) && hexish(secret)).then_some((id, secret))
}

/// Verifies presented tokens against the store, caching records between store changes.
#[derive(Clone)]
pub struct Verifier {
    store: Arc<dyn TokenStore>,
    cache: Arc<Mutex<Cache>>,
}

#[derive(Default)]
struct Cache {
    version: Option<u64>,
    checked: Option<Instant>,
    records: HashMap<String, Option<TokenRecord>>,
}

impl Verifier {
    pub fn new(store: Arc<dyn TokenStore>) -> Self {
        Self {
            store,
            cache: Arc::new(Mutex::new(Cache::default())),
        }
    }

    pub async fn verify(&self, presented: Option<&str>) -> Result<Caller, AuthError> {
        let presented = presented.ok_or(AuthError::Missing)?;
        let (id, secret) = parse(presented).ok_or(AuthError::Invalid)?;
        let record = self.record(id).await?;
        let presented_hash = hash(secret);
        // Compare even when the id is unknown, so timing does not tell ids apart.
        let stored = record
            .as_ref()
            .map_or(&[0u8; 32][..], |r| r.secret_hash.as_slice());
        let equal: bool = presented_hash.as_slice().ct_eq(stored).into();
        match record {
            Some(r) if equal && r.revoked_at.is_none() => Ok(Caller {
                token_id: r.id,
                grant: r.grant,
            }),
            _ => Err(AuthError::Invalid),
        }
    }

    async fn record(&self, id: &str) -> Result<Option<TokenRecord>, AuthError> {
        self.refresh().await?;
        if let Some(hit) = self.lock().records.get(id) {
            return Ok(hit.clone());
        }
        let fresh = self.store.token(id).await?;
        let mut cache = self.lock();
        if cache.records.len() > 10_000 {
            cache.records.clear();
        }
        cache.records.insert(id.to_owned(), fresh.clone());
        Ok(fresh)
    }

    /// Drops the cache when the token table changed since it was filled.
    async fn refresh(&self) -> Result<(), AuthError> {
        let due = self.lock().checked.is_none_or(|t| t.elapsed() >= RECHECK);
        if !due {
            return Ok(());
        }
        self.changed().await.map(drop)
    }

    /// Asks the store now whether the token table changed since the last look (dropping the
    /// cache if so); the revocation watch calls it on its own beat.
    pub async fn changed(&self) -> Result<bool, AuthError> {
        let version = self.store.tokens_version().await?;
        let mut cache = self.lock();
        let changed = cache.version.is_some_and(|v| v != version);
        if cache.version != Some(version) {
            cache.records.clear();
            cache.version = Some(version);
        }
        cache.checked = Some(Instant::now());
        Ok(changed)
    }

    /// Which of the token ids `ids` were revoked, read from the store, not the cache. (Tokens
    /// are never deleted; an id with no record is the conformance mode's token-less caller.)
    pub async fn revoked(&self, ids: &HashSet<String>) -> Result<HashSet<String>, AuthError> {
        let mut out = HashSet::new();
        for id in ids {
            let record = self.store.token(id).await?;
            if record.is_some_and(|r| r.revoked_at.is_some()) {
                out.insert(id.clone());
            }
        }
        Ok(out)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_token_shape_parses() {
        assert_eq!(parse("swb_ab12_ff00"), Some(("ab12", "ff00")));
        for bad in [
            "",
            "swb_",
            "swb_ab12",
            "swb__ff",
            "swb_ab12_",
            "xyz_ab_cd",
            "swb_zz_ff",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
