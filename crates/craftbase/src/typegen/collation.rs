//! The string order of the upstream generator, which sorts every name with
//! `Intl.Collator("en")` (ICU's root collation): punctuation before digits before letters,
//! letters compared without case first, then lower case before upper case at the first
//! difference; accented letters sort with their base letter, after it when all else is equal.
//! Implemented for Latin text; other scripts sort after the letters by code point.

use std::cmp::Ordering;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// ASCII punctuation and symbols in the order of the CLDR root collation.
const PUNCTUATION: &str = "_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$";

/// Primary weight: the collation class and position, with letters case-folded.
fn primary(c: char) -> (u8, u32) {
    if c.is_whitespace() {
        (0, c as u32)
    } else if let Some(i) = PUNCTUATION.find(c) {
        (1, i as u32)
    } else if c.is_ascii_digit() {
        (2, c as u32)
    } else if c.is_ascii_alphabetic() {
        (3, c.to_ascii_lowercase() as u32)
    } else if c.is_ascii() {
        (1, 100 + c as u32)
    } else {
        let folded = c.to_lowercase().next().unwrap_or(c);
        (4, folded as u32)
    }
}

/// Tertiary weight: lower case sorts before upper case.
fn tertiary(c: char) -> u8 {
    u8::from(c.is_uppercase())
}

/// The collation keys of a string: base characters' primary weights, the accents on each base
/// character, and the case of each base character.
struct Keys {
    primaries: Vec<(u8, u32)>,
    accents: Vec<Vec<char>>,
    cases: Vec<u8>,
}

fn keys(s: &str) -> Keys {
    let (mut primaries, mut cases) = (Vec::new(), Vec::new());
    let mut accents: Vec<Vec<char>> = Vec::new();
    for c in s.nfd() {
        if is_combining_mark(c) {
            if let Some(marks) = accents.last_mut() {
                marks.push(c);
                continue;
            }
        }
        primaries.push(primary(c));
        accents.push(Vec::new());
        cases.push(tertiary(c));
    }
    Keys {
        primaries,
        accents,
        cases,
    }
}

/// Compares like `new Intl.Collator("en").compare(a, b)` for identifiers.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ka, kb) = (keys(a), keys(b));
    ka.primaries
        .cmp(&kb.primaries)
        .then_with(|| ka.accents.cmp(&kb.accents))
        .then_with(|| ka.cases.cmp(&kb.cases))
        .then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::compare;

    #[test]
    fn orders_like_the_english_collator() {
        let mut names = vec![
            "created",
            "CamelCase",
            "c",
            "_private",
            "1num",
            "Weird Name",
            "xtra",
            "vc",
            "addr",
        ];
        names.sort_by(|a, b| compare(a, b));
        assert_eq!(
            names,
            [
                "_private",
                "1num",
                "addr",
                "c",
                "CamelCase",
                "created",
                "vc",
                "Weird Name",
                "xtra"
            ]
        );
    }

    #[test]
    fn accented_letters_sort_with_their_base_letter() {
        assert!(compare("ñandú", "parent_code").is_lt());
        assert!(compare("nandu", "ñandú").is_lt());
        assert!(compare("ñandú", "nb").is_lt());
    }

    #[test]
    fn lower_case_before_upper_case() {
        assert!(compare("a", "A").is_lt());
        assert!(compare("user_id", "users").is_lt());
    }
}
