//! Reservations: taking one (refused while another peer's live one overlaps it), giving them
//! back, listing the live ones. A reservation bound to a session ends with it: see
//! `peers::settle_ended`.

use switchboard_proto::reservation::overlap;
use switchboard_proto::{Millis, Reservation};

use super::peers;
use crate::error::Rejection;
use crate::seam::{Executor, Step};
use crate::store::{NewReservation, PeerId, Releasing};
use crate::wake::Wake;

pub async fn reserve<X: Executor>(
    x: &mut X,
    r: NewReservation,
    now: Millis,
) -> Step<Reservation, X> {
    // A dead holder's reservations end with its sessions: find those first.
    peers::reap(x, now).await?;
    peers::require(x, r.peer).await?;
    x.lock_repo(&r.repo).await?;
    let live = x.live_reservations(Some(&r.repo), now).await?;
    let holder = peers::by_id(x, r.peer).await?.name;
    let dispatcher = match r.job {
        Some(id) => x.job_by_id(id).await?.map(|row| row.job.dispatcher),
        None => None,
    };
    let mine = |name: &str| name == holder || dispatcher.as_deref() == Some(name);
    if let Some(held) = live
        .iter()
        .find(|h| !mine(&h.holder) && h.mode.conflicts_with(r.mode) && overlap(&h.globs, &r.globs))
    {
        return Err(Rejection::Reserved {
            id: held.id,
            holder: held.holder.clone(),
            globs: crate::seam::globs_text(&held.globs).replace('\n', ", "),
            exclusive: held.mode == switchboard_proto::ReservationMode::Exclusive,
            reason: held.reason.clone(),
            left_ms: held.expires_at - now,
        }
        .into());
    }
    let id = x.insert_reservation(&r, now).await?;
    x.wake(Wake::Room);
    Ok(Reservation {
        id,
        repo: r.repo,
        holder,
        mode: r.mode,
        globs: r.globs,
        reason: r.reason,
        created_at: now,
        expires_at: r.expires_at,
        session_bound: r.session.is_some(),
    })
}

pub async fn release<X: Executor>(
    x: &mut X,
    peer: PeerId,
    which: Releasing,
    now: Millis,
) -> Step<u64, X> {
    let ended = match &which {
        Releasing::Ids(ids) => x.release_reservations(peer, ids, now).await?,
        Releasing::Repo(repo) => x.release_peer_reservations(peer, Some(repo), now).await?,
        Releasing::All => x.release_peer_reservations(peer, None, now).await?,
    };
    if ended > 0 {
        // Whoever waits to reserve those paths may now.
        x.wake(Wake::Room);
    }
    Ok(ended)
}

pub async fn list<X: Executor>(
    x: &mut X,
    repo: Option<String>,
    now: Millis,
) -> Step<Vec<Reservation>, X> {
    peers::reap(x, now).await?;
    x.live_reservations(repo.as_deref(), now).await
}
