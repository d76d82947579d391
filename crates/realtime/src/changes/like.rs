//! PostgreSQL's `LIKE` / `ILIKE` on a decoded value, so `like` and `ilike` filters need no
//! round trip: `%` any run of characters, `_` one character, `\` makes the next one literal
//! (PostgreSQL's default escape). Characters, not bytes, as PostgreSQL counts them in UTF-8.

/// One pattern element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    Char(char),
    One,
    Many,
}

/// Whether `text` matches `pattern`; `None` when the pattern ends with a lone escape, which
/// PostgreSQL rejects at evaluation (the condition then fails, as an errored filter would).
pub fn like(text: &str, pattern: &str, case_insensitive: bool) -> Option<bool> {
    let fold = |c: char| {
        if !case_insensitive {
            return c;
        }
        // One character for one, as PostgreSQL's per-character lower() does.
        let mut lower = c.to_lowercase();
        match (lower.next(), lower.next()) {
            (Some(l), None) => l,
            _ => c,
        }
    };
    let text: Vec<char> = text.chars().map(fold).collect();
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '\\' => Token::Char(fold(chars.next()?)),
            '%' => Token::Many,
            '_' => Token::One,
            c => Token::Char(fold(c)),
        });
    }
    Some(matches(&text, &tokens))
}

/// Wildcard matching that backtracks only to the last `%`: linear in practice, never exponential.
fn matches(text: &[char], tokens: &[Token]) -> bool {
    let (mut t, mut p) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(Token::Many) => {
                p += 1;
                resume = Some((p, t));
            }
            Some(Token::One) => {
                p += 1;
                t += 1;
            }
            Some(Token::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match resume {
                Some((rp, rt)) => {
                    p = rp;
                    t = rt + 1;
                    resume = Some((rp, rt + 1));
                }
                None => return false,
            },
        }
    }
    tokens[p..].iter().all(|tok| *tok == Token::Many)
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn wildcards() {
        assert_eq!(like("hello", "h%o", false), Some(true));
        assert_eq!(like("hello", "h_llo", false), Some(true));
        assert_eq!(like("hello", "h_lo", false), Some(false));
        assert_eq!(like("hello", "%", false), Some(true));
        assert_eq!(like("", "%", false), Some(true));
        assert_eq!(like("", "_", false), Some(false));
        assert_eq!(like("abcabd", "%ab_", false), Some(true));
        assert_eq!(like("aXbXc", "%X%X%", false), Some(true));
        assert_eq!(like("hello", "hello%%", false), Some(true));
        assert_eq!(like("hello", "Hello", false), Some(false));
    }

    #[test]
    fn escapes() {
        assert_eq!(like("50%", r"50\%", false), Some(true));
        assert_eq!(like("500", r"50\%", false), Some(false));
        assert_eq!(like("a_b", r"a\_b", false), Some(true));
        assert_eq!(like("axb", r"a\_b", false), Some(false));
        assert_eq!(like(r"a\b", r"a\\b", false), Some(true));
        assert_eq!(
            like("ab", r"\a\b", false),
            Some(true),
            "escaping a plain char"
        );
        assert_eq!(
            like("a", "a\\", false),
            None,
            "a trailing escape is an error"
        );
    }

    #[test]
    fn unicode_and_case() {
        assert_eq!(
            like("zürich", "z_rich", false),
            Some(true),
            "one character, two bytes"
        );
        assert_eq!(like("日本語", "_本%", false), Some(true));
        assert_eq!(like("ZÜRICH", "zü%", true), Some(true));
        assert_eq!(like("ZÜRICH", "zü%", false), Some(false));
        assert_eq!(
            like("Straße", "STRASSE", true),
            Some(false),
            "no multi-char folding"
        );
        assert_eq!(like("HELLO", "h_LLo", true), Some(true));
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let text = "a".repeat(5000);
        let pattern = format!("{}b", "%a".repeat(50));
        assert_eq!(like(&text, &pattern, false), Some(false));
    }
}
