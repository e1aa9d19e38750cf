//! Store operations as async functions over one connection that is inside a transaction (see
//! [`crate::txn`]). They mirror the SQLite store's operations rule for rule; where SQLite's
//! single writer made a check safe, these take a row lock or `SKIP LOCKED` instead.

pub mod jobs;
pub mod mail;
pub mod peers;
pub mod questions;
pub mod upkeep;

pub use crate::sql::{Conn, big, col, exec, one, opt, parse, rows, small};
