//! Rooms: each one is a store of its own, opened on first use. Nothing is shared between two
//! rooms' stores, so no query, count or wake of one can ever reach another.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use switchboard_core::{Limits, Mailbox, Store, StoreError};

/// What opening a room's store gives: the store, or why it cannot be had.
pub type OpenedRoom = Pin<Box<dyn Future<Output = Result<Arc<dyn Store>, StoreError>> + Send>>;

/// Opens (creating if needed) the store of one room: a directory of its own for the embedded
/// store, a schema of its own in the shared database for Postgres.
pub type RoomOpener = Arc<dyn Fn(String) -> OpenedRoom + Send + Sync>;

#[derive(Clone)]
pub struct Rooms {
    opener: RoomOpener,
    limits: Limits,
    open: Arc<Mutex<HashMap<String, Arc<Mailbox>>>>,
    /// Serialises first opens so two requests never open one room twice.
    opening: Arc<tokio::sync::Mutex<()>>,
}

impl Rooms {
    pub fn new(opener: RoomOpener, limits: Limits) -> Self {
        Self {
            opener,
            limits,
            open: Arc::default(),
            opening: Arc::default(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The mailbox of `room`, opening its store on first use.
    pub async fn get(&self, room: &str) -> Result<Arc<Mailbox>, StoreError> {
        if let Some(m) = self.cached(room) {
            return Ok(m);
        }
        let _one = self.opening.lock().await;
        if let Some(m) = self.cached(room) {
            return Ok(m);
        }
        let store = (self.opener)(room.to_owned()).await?;
        let mailbox = Arc::new(Mailbox::new(store, self.limits.clone()));
        self.lock().insert(room.to_owned(), Arc::clone(&mailbox));
        Ok(mailbox)
    }

    fn cached(&self, room: &str) -> Option<Arc<Mailbox>> {
        self.lock().get(room).cloned()
    }

    pub fn open_count(&self) -> usize {
        self.lock().len()
    }

    /// Every open room, for upkeep.
    pub fn all(&self) -> Vec<Arc<Mailbox>> {
        self.lock().values().cloned().collect()
    }

    /// Every open room with its name, for the charts' sampler.
    pub fn named(&self) -> Vec<(String, Arc<Mailbox>)> {
        self.lock()
            .iter()
            .map(|(name, m)| (name.clone(), Arc::clone(m)))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Mailbox>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
