//! Claude Code end to end (see the module above).
