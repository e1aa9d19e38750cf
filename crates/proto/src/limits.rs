//! Hard size limits of SPEC section 3. Configurable policy (caps, rates, TTLs) lives in the core;
//! these are the wire's own bounds and never change at run time.

/// Largest message text, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Largest client-supplied idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;
/// Largest self-written peer summary, in bytes.
pub const MAX_SUMMARY_BYTES: usize = 1024;
/// Largest recorded path, client name or branch, in bytes.
pub const MAX_FIELD_BYTES: usize = 4096;
