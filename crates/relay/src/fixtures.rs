//! The hidden conformance mode of the relay (`serve --conformance-fixtures`): `/mcp` also
//! serves the fixtures the official MCP conformance suite calls by name
//! ([`switchboard_mcp::fixtures`]), and lets that suite in without a token.
//!
//! Why without a token: the suite's server runner (`conformance server --url …`) has no way
//! to add an `Authorization` header, and every relay route wants one. Rather than a proxy
//! that injects a header (one more moving part between the suite and what it checks), a
//! request to `/mcp` that carries no `Authorization` header at all is taken as a caller
//! holding a room token for [`ROOM`]. This is safe only because the mode is refused on any
//! listen address but loopback (the CLI checks that before binding), so only processes of
//! this machine can reach it. A request that does carry a token is verified as always, and
//! every other route still answers 401 without one.

use switchboard_core::Grant;

use crate::auth::Caller;

/// The room token-less conformance callers act in.
pub const ROOM: &str = "conformance";

/// Whether a request to `path` without any `Authorization` header is let in as
/// [`anonymous`] (the conformance mode is on and it is an MCP request).
pub fn admits_without_token(enabled: bool, path: &str) -> bool {
    enabled && (path == "/mcp" || path.starts_with("/mcp/"))
}

/// The caller a token-less conformance request acts as.
pub fn anonymous() -> Caller {
    Caller {
        token_id: "conformance-fixtures".into(),
        grant: Grant::Room {
            room: ROOM.to_owned(),
        },
    }
}

/// A fresh key for the sealed `requestState` of the input-required fixtures.
pub fn state_key() -> Result<[u8; 32], getrandom::Error> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::admits_without_token;

    #[test]
    fn only_mcp_is_open_and_only_in_the_mode() {
        assert!(admits_without_token(true, "/mcp"));
        assert!(admits_without_token(true, "/mcp/"));
        assert!(!admits_without_token(true, "/mcpx"));
        assert!(!admits_without_token(true, "/v1/send"));
        assert!(!admits_without_token(true, "/metrics"));
        assert!(!admits_without_token(false, "/mcp"));
    }
}
