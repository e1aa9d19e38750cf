//! Peer names: 1–32 characters of lowercase `[a-z0-9_-]`, unique in a room (SPEC 3).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest peer name, in characters.
pub const MAX_NAME_LEN: usize = 32;

/// Why a string is not a valid peer name; the message says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a peer name cannot be empty")]
    Empty,
    #[error("peer name '{0}' is longer than {MAX_NAME_LEN} characters")]
    TooLong(String),
    #[error(
        "peer name '{name}' has the character {bad:?}; use only lowercase letters, digits, '-' and '_'"
    )]
    BadChar { name: String, bad: char },
}

/// A validated peer name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PeerName(String);

impl PeerName {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        if raw.is_empty() {
            return Err(NameError::Empty);
        }
        if let Some(bad) = raw.chars().find(|c| !is_name_char(*c)) {
            return Err(NameError::BadChar {
                name: raw.to_owned(),
                bad,
            });
        }
        if raw.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong(raw.to_owned()));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Builds the nearest valid name from free text such as `$USER` or a directory name:
    /// lowercases, maps other characters to `-`, squeezes and trims dashes, and cuts to length.
    /// Returns `None` when nothing usable is left.
    pub fn sanitize(raw: &str) -> Option<Self> {
        let mut out = String::with_capacity(raw.len());
        for c in raw.chars().flat_map(char::to_lowercase) {
            let c = if is_name_char(c) { c } else { '-' };
            if c == '-' && (out.is_empty() || out.ends_with('-')) {
                continue;
            }
            out.push(c);
        }
        out.truncate(MAX_NAME_LEN);
        let trimmed = out.trim_end_matches('-');
        Self::parse(trimmed).ok()
    }

    /// This name with a numeric suffix (`name-2`), shortened so the result stays valid.
    pub fn with_suffix(&self, n: u32) -> Self {
        let suffix = format!("-{n}");
        let keep = MAX_NAME_LEN.saturating_sub(suffix.len()).min(self.0.len());
        let base = self.0[..keep].trim_end_matches('-');
        Self(format!("{base}{suffix}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
}

impl fmt::Display for PeerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PeerName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_what_the_spec_forbids() {
        assert_eq!(PeerName::parse(""), Err(NameError::Empty));
        assert!(matches!(
            PeerName::parse("Bob"),
            Err(NameError::BadChar { bad: 'B', .. })
        ));
        assert!(matches!(
            PeerName::parse("a b"),
            Err(NameError::BadChar { bad: ' ', .. })
        ));
        assert!(matches!(
            PeerName::parse(&"a".repeat(33)),
            Err(NameError::TooLong(_))
        ));
        assert!(PeerName::parse(&"a".repeat(32)).is_ok());
        assert!(PeerName::parse("codex-api_2").is_ok());
    }

    #[test]
    fn sanitize_makes_user_names_usable() {
        assert_eq!(PeerName::sanitize("John.Doe").unwrap().as_str(), "john-doe");
        assert_eq!(PeerName::sanitize("--x--").unwrap().as_str(), "x");
        assert_eq!(PeerName::sanitize("..."), None);
    }

    #[test]
    fn suffix_keeps_names_within_length() {
        let long = PeerName::parse(&"a".repeat(32)).unwrap();
        let s = long.with_suffix(12);
        assert_eq!(s.as_str().len(), 32);
        assert!(s.as_str().ends_with("-12"));
    }

    proptest! {
        #[test]
        fn sanitize_output_always_parses(raw in ".{0,80}") {
            if let Some(name) = PeerName::sanitize(&raw) {
                prop_assert!(PeerName::parse(name.as_str()).is_ok());
            }
        }

        #[test]
        fn suffixed_names_always_parse(raw in "[a-z0-9_-]{1,32}", n in 2u32..100_000) {
            let name = PeerName::parse(&raw).unwrap();
            prop_assert!(PeerName::parse(name.with_suffix(n).as_str()).is_ok());
        }
    }
}
