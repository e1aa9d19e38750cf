//! The `jobs` table.

use switchboard_core::seam::JobStatements;

use crate::tx::LiteTx;

impl JobStatements for LiteTx {}
