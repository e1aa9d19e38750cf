//! The statements of questions.

use super::Statements;

pub trait QuestionStatements: Statements {}
