//! Reservations: a peer's advisory claim on paths of one repository, exclusive or shared.
//!
//! A path pattern ([`Glob`]) is written as git shows paths — relative to the repository's root,
//! `/` between components — with `*` (any run of characters within one component), `?` (one
//! character but `/`), `**` (any run, across components) and `[a-z]` / `[!a-z]` classes. A
//! pattern without wildcards is a pathspec: the path itself and everything under it (`src/api`
//! holds `src/api/mod.rs`); a trailing `/` says the same of a directory. Matching is exact about
//! case, as git reports paths: on a file system that ignores case (macOS, Windows), write the
//! case git shows.
//!
//! Two reservations conflict when their patterns can name a common path ([`overlap`]), which
//! is decided exactly: each pattern is a small automaton over characters, and two patterns
//! overlap when their product reaches both ends.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Millis, ReservationId};

/// Most patterns in one reservation.
pub const MAX_GLOBS: usize = 32;
/// Longest pattern, in bytes.
pub const MAX_GLOB_BYTES: usize = 512;
/// Longest repository key, in bytes.
pub const MAX_REPO_BYTES: usize = 256;
/// Longest reason, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("a path pattern is empty")]
    Empty,
    #[error("path pattern '{0}' is longer than {MAX_GLOB_BYTES} bytes")]
    TooLong(String),
    #[error(
        "path pattern '{0}' must be relative to the repository's root, as git shows paths (no leading '/', no '..' or '.' components, no '\\\\', no control characters)"
    )]
    NotRelative(String),
    #[error("path pattern '{0}' has a '[' without its ']'")]
    UnclosedClass(String),
    #[error("path pattern '{0}' has more than {MAX_DIR_RUNS} '**/'; use fewer")]
    TooManyRuns(String),
}

/// One piece of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Lit(char),
    /// `?`: one character but `/`.
    One,
    /// `*`: any run of characters but `/`.
    Star,
    /// `**`: any run of characters.
    AnyRun,
    /// `[…]`: one character (never `/`) in (or, negated, out of) the ranges.
    Class {
        ranges: Vec<(char, char)>,
        negated: bool,
    },
}

impl Token {
    /// Whether this token can consume `c`.
    fn takes(&self, c: char) -> bool {
        match self {
            Token::Lit(l) => *l == c,
            Token::One | Token::Star => c != '/',
            Token::AnyRun => true,
            Token::Class { ranges, negated } => {
                c != '/' && ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }

    /// Whether consuming a character keeps this token (a run) rather than moving past it.
    fn repeats(&self) -> bool {
        matches!(self, Token::Star | Token::AnyRun)
    }

    /// The characters where what this token takes can change: with `/` and one character no
    /// pattern names, enough to find a character two tokens both take, if there is one.
    fn edges(&self, out: &mut Vec<char>) {
        match self {
            Token::Lit(l) => out.push(*l),
            Token::Class { ranges, .. } => {
                for &(lo, hi) in ranges {
                    out.extend([lo, hi]);
                    out.extend(char::from_u32(lo as u32 - 1).filter(|_| lo as u32 > 0));
                    out.extend(char::from_u32(hi as u32 + 1));
                }
            }
            _ => {}
        }
    }
}

/// A validated path pattern.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Glob {
    text: String,
    /// The pattern as alternatives (a pathspec is the path, or the path and what is under it).
    forms: Vec<Vec<Token>>,
}

impl Glob {
    pub fn parse(text: &str) -> Result<Self, GlobError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(GlobError::Empty);
        }
        if text.len() > MAX_GLOB_BYTES {
            return Err(GlobError::TooLong(text.chars().take(40).collect()));
        }
        let trimmed = text.trim_end_matches('/');
        let relative = !text.starts_with('/')
            && !text.contains('\\')
            && !text.chars().any(char::is_control)
            && !trimmed.is_empty()
            && trimmed
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != "..");
        if !relative {
            return Err(GlobError::NotRelative(text.to_owned()));
        }
        let mut forms = Vec::new();
        for form in expand(trimmed)? {
            let tokens = compile(&form).ok_or_else(|| GlobError::UnclosedClass(text.to_owned()))?;
            let wild = tokens.iter().any(|t| !matches!(t, Token::Lit(_)));
            let mut under = tokens.clone();
            under.extend([Token::Lit('/'), Token::AnyRun]);
            if text.ends_with('/') {
                forms.push(under);
            } else if wild {
                forms.push(tokens);
            } else {
                // A plain path is a pathspec: itself and what is under it.
                forms.extend([tokens, under]);
            }
        }
        Ok(Self {
            text: text.to_owned(),
            forms,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern names `path` (a path as git shows it).
    pub fn matches(&self, path: &str) -> bool {
        let path: Vec<char> = path.chars().collect();
        self.forms.iter().any(|f| matches_tokens(f, &path))
    }

    /// Whether some path is named by both patterns.
    pub fn overlaps(&self, other: &Glob) -> bool {
        self.forms
            .iter()
            .any(|a| other.forms.iter().any(|b| intersect(a, b)))
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.text)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for Glob {
    type Error = GlobError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Glob::parse(&s)
    }
}

impl From<Glob> for String {
    fn from(g: Glob) -> Self {
        g.text
    }
}

/// Whether any pattern of `a` overlaps any of `b`.
pub fn overlap(a: &[Glob], b: &[Glob]) -> bool {
    a.iter().any(|x| b.iter().any(|y| x.overlaps(y)))
}

/// Most `**/` in one pattern: each doubles the forms a pattern is checked as.
const MAX_DIR_RUNS: usize = 4;

/// The pattern's forms: `a/**/b` names `a/b` too, so each `**/` that starts a component is
/// either there (any run ending with `/`) or gone.
fn expand(text: &str) -> Result<Vec<String>, GlobError> {
    let bytes = text.as_bytes();
    let runs: Vec<usize> = (0..bytes.len())
        // By bytes: a position inside a multi-byte character is no `**/` and must not be sliced.
        .filter(|&p| bytes[p..].starts_with(b"**/") && (p == 0 || bytes[p - 1] == b'/'))
        .collect();
    if runs.len() > MAX_DIR_RUNS {
        return Err(GlobError::TooManyRuns(text.to_owned()));
    }
    let mut forms = Vec::with_capacity(1 << runs.len());
    for mask in 0..(1u32 << runs.len()) {
        let mut form = text.to_owned();
        // Right to left, so earlier positions stay where they were.
        for (k, &p) in runs.iter().enumerate().rev() {
            if mask & (1 << k) != 0 {
                form.replace_range(p..p + 3, "");
            }
        }
        forms.push(form);
    }
    Ok(forms)
}

fn compile(text: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                out.push(Token::AnyRun);
            }
            '*' => {
                i += 1;
                out.push(Token::Star);
            }
            '?' => {
                i += 1;
                out.push(Token::One);
            }
            '[' => {
                let mut j = i + 1;
                let negated = matches!(chars.get(j), Some('!') | Some('^'));
                if negated {
                    j += 1;
                }
                let mut ranges = Vec::new();
                let start = j;
                loop {
                    let c = *chars.get(j)?;
                    if c == ']' && j > start {
                        break;
                    }
                    if chars.get(j + 1) == Some(&'-') && chars.get(j + 2).is_some_and(|&e| e != ']')
                    {
                        ranges.push((c, chars[j + 2]));
                        j += 3;
                    } else {
                        ranges.push((c, c));
                        j += 1;
                    }
                }
                i = j + 1;
                out.push(Token::Class { ranges, negated });
            }
            c => {
                i += 1;
                out.push(Token::Lit(c));
            }
        }
    }
    Some(out)
}

fn matches_tokens(tokens: &[Token], path: &[char]) -> bool {
    // States: positions in the pattern that are live after the characters read so far.
    let mut states = closure(tokens, [0].into_iter().collect());
    for &c in path {
        let mut next = HashSet::new();
        for &i in &states {
            if let Some(t) = tokens.get(i)
                && t.takes(c)
            {
                next.insert(if t.repeats() { i } else { i + 1 });
            }
        }
        states = closure(tokens, next);
        if states.is_empty() {
            return false;
        }
    }
    states.contains(&tokens.len())
}

/// Adds the positions reachable by skipping runs (which may be empty).
fn closure(tokens: &[Token], mut states: HashSet<usize>) -> HashSet<usize> {
    let mut stack: Vec<usize> = states.iter().copied().collect();
    while let Some(i) = stack.pop() {
        if tokens.get(i).is_some_and(Token::repeats) && states.insert(i + 1) {
            stack.push(i + 1);
        }
    }
    states
}

/// Whether some string is taken by both token lists: a walk over pairs of positions.
fn intersect(a: &[Token], b: &[Token]) -> bool {
    let mut seen = HashSet::new();
    let mut stack = vec![(0usize, 0usize)];
    while let Some((i, j)) = stack.pop() {
        if !seen.insert((i, j)) {
            continue;
        }
        if i == a.len() && j == b.len() {
            return true;
        }
        if a.get(i).is_some_and(Token::repeats) {
            stack.push((i + 1, j));
        }
        if b.get(j).is_some_and(Token::repeats) {
            stack.push((i, j + 1));
        }
        let (Some(ta), Some(tb)) = (a.get(i), b.get(j)) else {
            continue;
        };
        let mut candidates = vec!['/', '\u{10FFFD}'];
        ta.edges(&mut candidates);
        tb.edges(&mut candidates);
        if candidates.iter().any(|&c| ta.takes(c) && tb.takes(c)) {
            let ni = if ta.repeats() { i } else { i + 1 };
            let nj = if tb.repeats() { j } else { j + 1 };
            stack.push((ni, nj));
        }
    }
    false
}

/// Whether a reservation keeps others out of its paths or lets other shared ones in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationMode {
    #[default]
    Exclusive,
    Shared,
}

crate::string_enum::string_enum!(ReservationMode, "reservation mode" {
    Exclusive => "exclusive",
    Shared => "shared",
});

impl ReservationMode {
    /// Two reservations of overlapping paths conflict unless both are shared.
    pub fn conflicts_with(self, other: ReservationMode) -> bool {
        self == ReservationMode::Exclusive || other == ReservationMode::Exclusive
    }
}

/// A reservation as every front end shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub id: ReservationId,
    /// The repository: its root commit, so clones on different machines match.
    pub repo: String,
    pub holder: String,
    pub mode: ReservationMode,
    pub globs: Vec<Glob>,
    pub reason: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    /// Whether it ends with its holder's session (an agent's), or only by release or TTL.
    pub session_bound: bool,
}

/// A peer as the `peers` listings show it (the CLI's `--json`, the MCP tool): its view, and
/// what it holds when it holds anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerHolding {
    #[serde(flatten)]
    pub peer: crate::PeerView,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reserved: Vec<Held>,
}

/// One reservation as a peer listing shows it beside its holder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    pub id: ReservationId,
    pub paths: Vec<Glob>,
    pub mode: ReservationMode,
    pub reason: String,
}

impl PeerHolding {
    /// `peer` with those of `live` it holds.
    pub fn new(peer: crate::PeerView, live: &[Reservation]) -> Self {
        let reserved = live
            .iter()
            .filter(|r| r.holder == peer.name)
            .map(|r| Held {
                id: r.id,
                paths: r.globs.clone(),
                mode: r.mode,
                reason: r.reason.clone(),
            })
            .collect();
        Self { peer, reserved }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> Glob {
        Glob::parse(s).unwrap()
    }

    #[test]
    fn patterns_name_the_paths_git_reports() {
        for (pattern, path, yes) in [
            ("src/api", "src/api", true),
            ("src/api", "src/api/mod.rs", true),
            ("src/api", "src/apiary.rs", false),
            ("src/", "src/lib.rs", true),
            ("src/*.rs", "src/lib.rs", true),
            ("src/*.rs", "src/a/lib.rs", false),
            ("src/**", "src/a/b/c.rs", true),
            ("src/**/*.rs", "src/a/b/c.rs", true),
            ("src/**/*.rs", "src/c.rs", true),
            ("docs/my notes.md", "docs/my notes.md", true),
            ("file?.txt", "file1.txt", true),
            ("file?.txt", "file/.txt", false),
            ("[a-c]*.md", "b.md", true),
            ("[!a-c]*.md", "b.md", false),
            ("README.md", "readme.md", false),
        ] {
            assert_eq!(g(pattern).matches(path), yes, "{pattern} ~ {path}");
        }
    }

    #[test]
    fn overlap_is_exact() {
        for (a, b, yes) in [
            ("src/api", "src/api/mod.rs", true),
            ("src/**", "src/api/*.rs", true),
            ("src/*.rs", "src/*.md", false),
            ("src/*.rs", "src/lib.*", true),
            ("src/a/*", "src/b/*", false),
            ("*.rs", "src/lib.rs", false),
            ("**/*.rs", "src/lib.rs", true),
            ("docs/", "docs/x/y.md", true),
            ("[a-c].md", "[d-f].md", false),
            ("[a-c].md", "[c-f].md", true),
            ("[!a].md", "a.md", false),
            ("src/**/test.rs", "src/test.rs", true),
            ("tests/", "test", false),
        ] {
            assert_eq!(g(a).overlaps(&g(b)), yes, "{a} ∩ {b}");
            assert_eq!(g(b).overlaps(&g(a)), yes, "{b} ∩ {a}");
        }
    }

    proptest::proptest! {
        /// No false "free": a path both patterns name means they overlap.
        #[test]
        fn a_path_both_patterns_name_is_an_overlap(
            a in "(\\*\\*/|[ab*?]{1,2}/){0,3}[ab*?]{1,3}",
            b in "(\\*\\*/|[ab*?]{1,2}/){0,3}[ab*?]{1,3}",
            path in "([ab]{1,2}/){0,3}[ab]{1,3}",
        ) {
            let (a, b) = (g(&a), g(&b));
            if a.matches(&path) && b.matches(&path) {
                proptest::prop_assert!(a.overlaps(&b), "{a} and {b} both name {path}");
            }
        }
    }

    #[test]
    fn patterns_of_any_characters_parse_without_panicking_regression() {
        // Found by the `/v1` fuzz: the `**/` scan sliced strings inside a multi-byte character.
        for text in ["💥🔥\u{202e}txet", "é/**/ü", "日本/**/*.rs", "**/💥"] {
            let _ = Glob::parse(text);
        }
        assert!(g("日本/**/*.rs").matches("日本/a/b.rs"));
        assert!(g("日本/**/*.rs").matches("日本/b.rs"));
    }

    #[test]
    fn patterns_must_be_relative_to_the_root() {
        for bad in ["/etc/passwd", "../x", "a/../b", "./a", "a\\b", "", "[abc"] {
            assert!(Glob::parse(bad).is_err(), "{bad}");
        }
    }
}
