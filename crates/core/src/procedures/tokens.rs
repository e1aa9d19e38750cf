//! The relay's tokens: every change is counted, so a verifier's cache knows to read again.

use switchboard_proto::Millis;

use crate::seam::{Step, TokenStatements};
use crate::tokens::TokenRecord;

pub async fn insert<X: TokenStatements>(x: &mut X, token: TokenRecord) -> Step<(), X> {
    x.insert_token(&token).await?;
    x.count_token_change().await
}

pub async fn get<X: TokenStatements>(x: &mut X, id: String) -> Step<Option<TokenRecord>, X> {
    x.token_by_id(&id).await
}

/// False when there is no such token or it already was revoked.
pub async fn revoke<X: TokenStatements>(x: &mut X, id: String, now: Millis) -> Step<bool, X> {
    let changed = x.revoke_token(&id, now).await?;
    x.count_token_change().await?;
    Ok(changed > 0)
}
