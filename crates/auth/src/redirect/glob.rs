//! The glob syntax of `GOTRUE_URI_ALLOW_LIST` entries, as GoTrue compiles them (gobwas/glob):
//! `*` any run of characters without a separator, `**` any run at all, `?` one character that
//! is not a separator, `[abc]`, `[a-z]`, `[!abc]` one character of (not of) a class, `{a,b}`
//! either alternative, `\` a literal next character. Which characters separate depends on the
//! URL part matched: see [`super::allow`].

/// True when `pattern` matches the whole of `text`; `*` and `?` never match a character of
/// `separators`.
pub fn matches(pattern: &str, text: &str, separators: &[char]) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Bounded input (an allow-list entry and one URL part), so plain backtracking is enough;
    // the step budget keeps a pathological entry from spinning.
    let mut budget = 100_000u32;
    go(&pattern, &text, separators, &mut budget)
}

fn go(p: &[char], t: &[char], seps: &[char], budget: &mut u32) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    let Some(&first) = p.first() else {
        return t.is_empty();
    };
    match first {
        '*' if p.get(1) == Some(&'*') => {
            let rest = &p[2..];
            (0..=t.len()).any(|i| go(rest, &t[i..], seps, budget))
        }
        '*' => {
            let rest = &p[1..];
            let run = t.iter().take_while(|c| !seps.contains(c)).count();
            (0..=run).any(|i| go(rest, &t[i..], seps, budget))
        }
        '?' => t
            .first()
            .is_some_and(|c| !seps.contains(c) && go(&p[1..], &t[1..], seps, budget)),
        '[' => match class(&p[1..]) {
            Some((matcher, len)) => t.first().is_some_and(|c| {
                !seps.contains(c) && matcher(*c) && go(&p[1 + len..], &t[1..], seps, budget)
            }),
            None => literal(p, t, seps, budget),
        },
        '{' => match alternatives(p) {
            Some((options, len)) => options.iter().any(|option| {
                let mut joined = option.clone();
                joined.extend_from_slice(&p[len..]);
                go(&joined, t, seps, budget)
            }),
            None => literal(p, t, seps, budget),
        },
        '\\' if p.len() > 1 => t.first() == Some(&p[1]) && go(&p[2..], &t[1..], seps, budget),
        _ => literal(p, t, seps, budget),
    }
}

fn literal(p: &[char], t: &[char], seps: &[char], budget: &mut u32) -> bool {
    t.first() == Some(&p[0]) && go(&p[1..], &t[1..], seps, budget)
}

/// A `[...]` class after its `[`: the test and how many pattern characters it used (with `]`).
fn class(p: &[char]) -> Option<(impl Fn(char) -> bool, usize)> {
    let end = p.iter().position(|c| *c == ']')?;
    let (negated, body) = match p.first() {
        Some('!') => (true, &p[1..end]),
        _ => (false, &p[..end]),
    };
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < body.len() {
        if i + 2 < body.len() && body[i + 1] == '-' {
            ranges.push((body[i], body[i + 2]));
            i += 3;
        } else {
            ranges.push((body[i], body[i]));
            i += 1;
        }
    }
    let test = move |c: char| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != negated;
    Some((test, end + 1))
}

/// A `{a,b}` group (no nesting): its alternatives and its length with both braces.
fn alternatives(p: &[char]) -> Option<(Vec<Vec<char>>, usize)> {
    let end = p.iter().position(|c| *c == '}')?;
    let body = &p[1..end];
    if body.contains(&'{') {
        return None;
    }
    let options = body.split(|c| *c == ',').map(<[char]>::to_vec).collect();
    Some((options, end + 1))
}

#[cfg(test)]
mod tests {
    use super::matches;

    const HOST: &[char] = &['.'];
    const PATH: &[char] = &['.', '/', '?', '#'];

    #[test]
    fn star_stays_between_separators() {
        assert!(matches("*.example.com", "app.example.com", HOST));
        assert!(!matches("*.example.com", "a.b.example.com", HOST));
        assert!(!matches("*.example.com", "example.com", HOST));
        assert!(matches("/cb/*", "/cb/x", PATH));
        assert!(!matches("/cb/*", "/cb/x/y", PATH));
        assert!(!matches("/cb/*", "/cb/x?next=1", PATH));
        assert!(!matches("/cb/*", "/cb/x.html", PATH));
    }

    #[test]
    fn double_star_crosses_separators() {
        assert!(matches("**.example.com", "a.b.example.com", HOST));
        assert!(matches("/**", "/a/b.c?d=e", PATH));
        assert!(matches("/**", "/", PATH));
    }

    #[test]
    fn question_mark_classes_alternatives_and_escapes() {
        assert!(matches("ap?.example.com", "app.example.com", HOST));
        assert!(!matches("ap?.example.com", "ap.example.com", HOST));
        assert!(matches("[a-c]pp", "bpp", HOST));
        assert!(!matches("[!a-c]pp", "bpp", HOST));
        assert!(matches("{app,www}.example.com", "www.example.com", HOST));
        assert!(!matches("{app,www}.example.com", "api.example.com", HOST));
        assert!(matches("\\*", "*", HOST));
        assert!(!matches("\\*", "x", HOST));
        // An unclosed bracket or brace is a literal character.
        assert!(matches("[x", "[x", HOST));
        assert!(matches("{x", "{x", HOST));
    }

    #[test]
    fn pathological_patterns_end() {
        let pattern = "*a".repeat(30);
        let text = "a".repeat(60) + "b";
        assert!(!matches(&pattern, &text, &[]));
    }
}
