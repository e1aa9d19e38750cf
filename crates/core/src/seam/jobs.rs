//! The statements of jobs.

use super::Statements;

pub trait JobStatements: Statements {}
