//! The statements on the `messages` table.

use super::Statements;

pub trait MessageStatements: Statements {}
