//! The `jobs` table.

use switchboard_core::seam::JobStatements;

use crate::tx::PgTx;

impl JobStatements for PgTx {}
