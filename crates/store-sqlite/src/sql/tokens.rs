//! The `tokens` table of the token file, and its change count.

use rusqlite::{OptionalExtension, params};

use switchboard_core::TokenRecord;
use switchboard_core::seam::{TOKEN_COLUMNS, TokenStatements, grant_values, token};
use switchboard_proto::Millis;

use super::columns::read;
use crate::fault::OpResult;
use crate::tokens::TokenTx;

impl TokenStatements for TokenTx {
    async fn insert_token(&mut self, t: &TokenRecord) -> OpResult<()> {
        let (kind, room, peer) = grant_values(&t.grant);
        let sql = "INSERT INTO tokens (id, kind, room, peer, label, secret_hash, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
        let (id, label, hash) = (&t.id, &t.label, &t.secret_hash);
        self.conn.execute(
            sql,
            params![id, kind, room, peer, label, hash, t.created_at],
        )?;
        Ok(())
    }

    async fn token_by_id(&mut self, id: &str) -> OpResult<Option<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?1");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        Ok(stmt.query_row([id], read(token)).optional()?)
    }

    async fn all_tokens(&mut self) -> OpResult<Vec<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], read(token))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    async fn revoke_token(&mut self, id: &str, now: Millis) -> OpResult<u64> {
        let sql = "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL";
        Ok(self.conn.execute(sql, params![id, now])? as u64)
    }

    // No table: SQLite counts other connections' commits (`data_version`), and this handle
    // counts its own, which `data_version` leaves out.
    async fn count_token_change(&mut self) -> OpResult<()> {
        self.own_changes += 1;
        Ok(())
    }

    async fn tokens_version(&mut self) -> OpResult<u64> {
        let theirs: i64 = self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?;
        Ok((theirs as u64).wrapping_add(self.own_changes))
    }
}
