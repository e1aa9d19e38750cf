//! Codex CLI end to end (see the module above).
