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
fn keys(s: &str) -> (Vec<(u8, u32)>, Vec<Vec<char>>, Vec<u8>) {
    let (mut primaries, mut accents, mut cases) = (Vec::new(), Vec::new(), Vec::new());
    for c in s.nfd() {
        if is_combining_mark(c) && !accents.is_empty() {
            if let Some(last) = accents.last_mut() {
                let marks: &mut Vec<char> = last;
                marks.push(c);
            }
            continue;
        }
        primaries.push(primary(c));
        accents.push(Vec::new());
        cases.push(tertiary(c));
    }
    (primaries, accents, cases)
}

/// Compares like `new Intl.Collator("en").compare(a, b)` for identifiers.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (pa, sa, ta) = keys(a);
    let (pb, sb, tb) = keys(b);
    pa.cmp(&pb)
        .then_with(|| sa.cmp(&sb))
        .then_with(|| ta.cmp(&tb))
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
