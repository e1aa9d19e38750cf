//! Test equipment shared by the test suites and the benchmark, kept out of the product's
//! crates: a crate names this only in `[dev-dependencies]`, so no product build contains it.

pub mod rng;
pub mod scratch;
