//! The store's procedures, each written once over the statements of [`crate::seam`]: every
//! rule of what an operation checks, in which order, and what it writes. Each public function
//! is one operation of [`Store`](crate::Store), run by a backend as one transaction.

pub mod jobs;
pub mod mail;
pub mod peers;
pub mod questions;
pub mod reservations;
pub mod tokens;
pub mod upkeep;
