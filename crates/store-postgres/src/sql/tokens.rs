//! The deployment's `switchboard.tokens` table and its change counter, shared by every
//! replica.

use switchboard_core::TokenRecord;
use switchboard_core::seam::columns::int;
use switchboard_core::seam::{TOKEN_COLUMNS, TokenStatements, grant_values, token};
use switchboard_proto::Millis;

use crate::fault::OpResult;
use crate::tx::PgTx;

impl TokenStatements for PgTx {
    async fn insert_token(&mut self, t: &TokenRecord) -> OpResult<()> {
        let (kind, room, peer) = grant_values(&t.grant);
        let sql = "INSERT INTO switchboard.tokens
                 (id, kind, room, peer, label, secret_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let (id, label, hash) = (&t.id, &t.label, &t.secret_hash);
        self.exec(sql, &[id, &kind, &room, &peer, label, hash, &t.created_at])
            .await?;
        Ok(())
    }

    async fn token_by_id(&mut self, id: &str) -> OpResult<Option<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM switchboard.tokens WHERE id = $1");
        self.opt(&sql, &[&id], token).await
    }

    async fn all_tokens(&mut self) -> OpResult<Vec<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM switchboard.tokens ORDER BY created_at, id");
        self.all(&sql, &[], token).await
    }

    async fn revoke_token(&mut self, id: &str, now: Millis) -> OpResult<u64> {
        let sql = "UPDATE switchboard.tokens SET revoked_at = $2
             WHERE id = $1 AND revoked_at IS NULL";
        self.exec(sql, &[&id, &now]).await
    }

    // A counter in the database, so every replica's verifier sees every replica's changes.
    async fn count_token_change(&mut self) -> OpResult<()> {
        let sql = "UPDATE switchboard.token_changes SET version = version + 1";
        self.exec(sql, &[]).await?;
        Ok(())
    }

    async fn tokens_version(&mut self) -> OpResult<u64> {
        let sql = "SELECT version FROM switchboard.token_changes";
        Ok(u64::try_from(self.one(sql, &[], int::<i64>).await?).unwrap_or(0))
    }
}
