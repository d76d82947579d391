//! The regular expression of a `match` / `imatch` filter, read with PostgreSQL's conventions
//! (`~` / `~*`: `.` matches a newline, `^` and `$` only at the ends of the value, `\y` `\m` `\M`
//! word boundaries, `\Z` the end) and evaluated by a linear-time engine whose compiled size and
//! caches are bounded: a hostile pattern cannot cost a subscriber's peers more than a pass over
//! each value. What that engine cannot express (back-references, lookaround) is refused at join.

use std::sync::Arc;

use regex_automata::meta::{Config, Regex};
use regex_automata::util::syntax;

/// Longest pattern accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 1024;

/// A compiled pattern; equal when their sources and case sensitivity are.
#[derive(Clone, Debug)]
pub struct Pattern {
    source: String,
    insensitive: bool,
    regex: Arc<Regex>,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.source == other.source && self.insensitive == other.insensitive
    }
}

impl Eq for Pattern {}

impl Pattern {
    /// Compiles `source` (case-insensitively for `imatch`); the error is the reason shown.
    pub fn new(source: &str, insensitive: bool) -> Result<Pattern, String> {
        if source.len() > MAX_PATTERN_BYTES {
            return Err(format!(
                "the pattern is longer than {MAX_PATTERN_BYTES} bytes"
            ));
        }
        let regex = Regex::builder()
            .syntax(
                syntax::Config::new()
                    .case_insensitive(insensitive)
                    .dot_matches_new_line(true)
                    .nest_limit(64),
            )
            .configure(
                Config::new()
                    .nfa_size_limit(Some(256 * 1024))
                    .onepass_size_limit(Some(256 * 1024))
                    .dfa_size_limit(Some(64 * 1024))
                    .hybrid_cache_capacity(256 * 1024),
            )
            .build(&translate(source))
            .map_err(|e| e.to_string().lines().next().unwrap_or("").to_owned())?;
        Ok(Pattern {
            source: source.to_owned(),
            insensitive,
            regex: Arc::new(regex),
        })
    }

    /// Whether the pattern matches somewhere in `value`, as `~` does.
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

/// PostgreSQL's escapes that mean something else (or nothing) to the engine, outside bracket
/// expressions: `\y` `\Y` word boundaries, `\m` `\M` a word's start and end, `\Z` the end, `\b`
/// a backspace.
fn translate(source: &str) -> String {
    let mut out = String::with_capacity(source.len() + 8);
    let (mut chars, mut bracket) = (source.chars().peekable(), false);
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    out.push('\\');
                    break;
                };
                match (bracket, n) {
                    (false, 'y') => out.push_str(r"\b"),
                    (false, 'Y') => out.push_str(r"\B"),
                    (false, 'm') => out.push_str(r"\b{start}"),
                    (false, 'M') => out.push_str(r"\b{end}"),
                    (false, 'Z') => out.push_str(r"\z"),
                    (_, 'b') => out.push_str(r"\x08"),
                    _ => {
                        out.push('\\');
                        out.push(n);
                    }
                }
            }
            '[' if !bracket => {
                bracket = true;
                out.push(c);
                // A `]` first in a bracket expression is a literal.
                for lead in ['^', ']'] {
                    if chars.peek() == Some(&lead) {
                        out.push(chars.next().unwrap_or(lead));
                    }
                }
            }
            ']' if bracket => {
                bracket = false;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, v: &str) -> bool {
        Pattern::new(p, false).unwrap().is_match(v)
    }

    #[test]
    fn reads_patterns_as_postgresql_does() {
        assert!(m("^post-", "post-1"));
        assert!(!m("^post-", "a post-1"));
        assert!(m("a.c", "a\nc"), "dot matches a newline");
        assert!(!m("^b", "a\nb"), "^ anchors at the start only");
        assert!(m(r"\ycat\y", "a cat!"));
        assert!(!m(r"\ycat\y", "concat"));
        assert!(m(r"\mcat", "cat"));
        assert!(m(r"end\Z", "the end"));
        assert!(m("[]a]", "]"));
        assert!(m(r"\d{3}", "ab123"));
        assert!(Pattern::new("^A", true).unwrap().is_match("abc"));
        assert!(!Pattern::new("^A", false).unwrap().is_match("abc"));
    }

    #[test]
    fn refuses_what_it_cannot_bound() {
        assert!(Pattern::new("(a", false).is_err());
        assert!(Pattern::new(r"(a)\1", false).is_err(), "back-references");
        assert!(Pattern::new("(?=a)", false).is_err(), "lookahead");
        assert!(Pattern::new(&"a".repeat(MAX_PATTERN_BYTES + 1), false).is_err());
        assert!(
            Pattern::new("(((a{100}){100}){100})", false).is_err(),
            "compiled size"
        );
        // Linear time: a pattern that backtracks exponentially elsewhere.
        let evil = Pattern::new("(a+)+$", false).unwrap();
        let started = std::time::Instant::now();
        assert!(!evil.is_match(&format!("{}!", "a".repeat(100_000))));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
