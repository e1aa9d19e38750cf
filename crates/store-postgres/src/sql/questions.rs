//! The `questions` and `answer_sources` tables.

use switchboard_core::seam::QuestionStatements;

use crate::tx::PgTx;

impl QuestionStatements for PgTx {}
