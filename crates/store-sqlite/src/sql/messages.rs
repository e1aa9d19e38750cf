//! The `messages` table.

use switchboard_core::seam::MessageStatements;

use crate::tx::LiteTx;

impl MessageStatements for LiteTx {}
