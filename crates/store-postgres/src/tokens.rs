//! The relay's tokens in the shared database (`switchboard.tokens`), so every replica checks
//! the same credentials and a revoke reaches all of them.

use async_trait::async_trait;
use tokio_postgres::Row;

use switchboard_core::{Grant, StoreError, StoreResult, TokenRecord, TokenStore};
use switchboard_proto::Millis;

use crate::db::Database;
use crate::fault::classify;

pub struct PgTokens {
    db: Database,
}

impl PgTokens {
    pub(crate) fn new(db: Database) -> Self {
        Self { db }
    }

    fn fail(&self, e: &tokio_postgres::Error) -> StoreError {
        classify(e, self.db.shown())
    }
}

fn record(r: &Row) -> Result<TokenRecord, tokio_postgres::Error> {
    let kind: &str = r.try_get("kind")?;
    let room: Option<String> = r.try_get("room")?;
    let peer: Option<String> = r.try_get("peer")?;
    let grant = match (kind, room, peer) {
        ("room", Some(room), _) => Grant::Room { room },
        ("peer", Some(room), Some(peer)) => Grant::Peer { room, peer },
        // An unknown kind grants nothing a room or peer would: the least a row can mean.
        _ => Grant::Admin,
    };
    Ok(TokenRecord {
        id: r.try_get("id")?,
        grant,
        label: r.try_get("label")?,
        secret_hash: r.try_get("secret_hash")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

const BUMP: &str = "UPDATE switchboard.token_changes SET version = version + 1";

#[async_trait]
impl TokenStore for PgTokens {
    async fn insert_token(&self, t: TokenRecord) -> StoreResult<()> {
        let mut c = self.db.conn().await?;
        let tx = c.transaction().await.map_err(|e| self.fail(&e))?;
        let kind = match &t.grant {
            Grant::Room { .. } => "room",
            Grant::Peer { .. } => "peer",
            Grant::Admin => "admin",
        };
        tx.execute(
            "INSERT INTO switchboard.tokens (id, kind, room, peer, label, secret_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &t.id,
                &kind,
                &t.grant.room(),
                &t.grant.peer(),
                &t.label,
                &t.secret_hash,
                &t.created_at,
            ],
        )
        .await
        .map_err(|e| self.fail(&e))?;
        tx.execute(BUMP, &[]).await.map_err(|e| self.fail(&e))?;
        tx.commit().await.map_err(|e| self.fail(&e))
    }

    async fn token(&self, id: &str) -> StoreResult<Option<TokenRecord>> {
        let c = self.db.conn().await?;
        let row = c
            .query_opt("SELECT * FROM switchboard.tokens WHERE id = $1", &[&id])
            .await
            .map_err(|e| self.fail(&e))?;
        row.as_ref()
            .map(record)
            .transpose()
            .map_err(|e| self.fail(&e))
    }

    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let c = self.db.conn().await?;
        let rows = c
            .query(
                "SELECT * FROM switchboard.tokens ORDER BY created_at, id",
                &[],
            )
            .await
            .map_err(|e| self.fail(&e))?;
        rows.iter()
            .map(record)
            .collect::<Result<_, _>>()
            .map_err(|e| self.fail(&e))
    }

    async fn revoke_token(&self, id: &str, now: Millis) -> StoreResult<bool> {
        let mut c = self.db.conn().await?;
        let tx = c.transaction().await.map_err(|e| self.fail(&e))?;
        let changed = tx
            .execute(
                "UPDATE switchboard.tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                &[&id, &now],
            )
            .await
            .map_err(|e| self.fail(&e))?;
        tx.execute(BUMP, &[]).await.map_err(|e| self.fail(&e))?;
        tx.commit().await.map_err(|e| self.fail(&e))?;
        Ok(changed > 0)
    }

    async fn tokens_version(&self) -> StoreResult<u64> {
        let c = self.db.conn().await?;
        let row = c
            .query_one("SELECT version FROM switchboard.token_changes", &[])
            .await
            .map_err(|e| self.fail(&e))?;
        let v: i64 = row.try_get(0).map_err(|e| self.fail(&e))?;
        Ok(u64::try_from(v).unwrap_or(0))
    }
}
