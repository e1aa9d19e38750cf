//! The relay's tokens in the shared database (`switchboard.tokens`), so every replica checks
//! the same credentials and a revoke reaches all of them. The statements are in [`crate::sql`];
//! the procedures and the `TokenStore` are the seam's.

use switchboard_core::StoreResult;
use switchboard_core::seam::{Access, Procedure, TokenBackend};

use crate::db::Database;
use crate::fault::classify;
use crate::tx::{PgTx, Tx};

pub struct PgTokens {
    db: Database,
}

impl PgTokens {
    pub(crate) fn new(db: Database) -> Self {
        Self { db }
    }
}

impl TokenBackend for PgTokens {
    type Tx = PgTx;

    // A write runs in a transaction; a read is one statement, atomic on its own, so it spends
    // no round trips on BEGIN and COMMIT (a verifier reads the version on every request).
    async fn transact<T: Send + 'static>(
        &self,
        access: Access,
        procedure: impl Procedure<PgTx, T>,
    ) -> StoreResult<T> {
        let shown = self.db.shown();
        let writes = access != Access::Read;
        let tx = Tx::new(self.db.conn().await?);
        if writes {
            let begun = tx.conn().batch_execute("BEGIN").await;
            begun.map_err(|e| classify(&e, shown))?;
        }
        let mut pg = PgTx::new(tx, self.db.router().key(), writes);
        let out = procedure(&mut pg).await;
        let (tx, _) = pg.into_parts()?;
        match out {
            Ok(v) if writes => match tx.conn().batch_execute("COMMIT").await {
                Ok(()) => {
                    tx.release();
                    Ok(v)
                }
                Err(e) => Err(classify(&e, shown)),
            },
            Ok(v) => {
                tx.release();
                Ok(v)
            }
            Err(e) if writes => {
                tx.rollback().await;
                Err(e.into_store(shown))
            }
            Err(e) => {
                tx.release();
                Err(e.into_store(shown))
            }
        }
    }
}
