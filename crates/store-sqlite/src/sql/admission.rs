//! A send's admission reads: the seam's default, each statement in turn. In process, a
//! statement costs no round trip, so there is nothing to gain by sending them together.

use switchboard_core::seam::AdmissionStatements;

use crate::tx::LiteTx;

impl AdmissionStatements for LiteTx {}
