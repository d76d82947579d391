//! Splitting a migration file into statements, so an error can name the line it happened on.
//!
//! This is a lexer, not a parser: it only needs to know where a `;` ends a statement, so it
//! tracks string literals, quoted identifiers, dollar quotes and comments, where `;` means nothing.

/// One statement of a file and the 1-based line it starts on.
#[derive(Debug, PartialEq, Eq)]
pub struct Statement<'a> {
    pub sql: &'a str,
    pub line: usize,
}

/// Splits `sql` at top-level semicolons. Statements holding only comments and blanks are dropped.
pub fn split(sql: &str) -> Vec<Statement<'_>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut paren_depth: usize = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = find(bytes, i, b"\n").map_or(bytes.len(), |e| e + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i),
            b'\'' => i = skip_quoted(bytes, i, b'\'', escapes_backslash(bytes, i)),
            b'"' => i = skip_quoted(bytes, i, b'"', false),
            b'$' => i = skip_dollar_quote(bytes, i),
            b'(' => {
                paren_depth += 1;
                i += 1;
            }
            b')' => {
                paren_depth = paren_depth.saturating_sub(1);
                i += 1;
            }
            b';' if paren_depth == 0 => {
                push(&mut out, sql, start, i + 1);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    push(&mut out, sql, start, bytes.len());
    out
}

/// Keeps `sql[start..end]` from its first character of code, so `line` is where the code starts.
fn push<'a>(out: &mut Vec<Statement<'a>>, sql: &'a str, start: usize, end: usize) {
    if let Some(code) = first_code(&sql[start..end]) {
        let start = start + code;
        let line = sql[..start].matches('\n').count() + 1;
        out.push(Statement {
            sql: &sql[start..end],
            line,
        });
    }
}

/// Where the first code is: past whitespace, comments and stray semicolons.
fn first_code(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = find(bytes, i, b"\n").map_or(bytes.len(), |e| e + 1)
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i),
            b';' => i += 1,
            c if c.is_ascii_whitespace() => i += 1,
            _ => return Some(i),
        }
    }
    None
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Block comments nest in PostgreSQL.
fn skip_block_comment(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 0;
    while i < bytes.len() {
        if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// `E'...'` strings treat backslash as an escape; standard strings do not.
fn escapes_backslash(bytes: &[u8], quote: usize) -> bool {
    quote > 0
        && matches!(bytes[quote - 1], b'E' | b'e')
        && (quote == 1 || !bytes[quote - 2].is_ascii_alphanumeric() && bytes[quote - 2] != b'_')
}

/// Skips a quoted literal starting at `i`; a doubled quote is an escaped quote.
fn skip_quoted(bytes: &[u8], mut i: usize, quote: u8, backslash: bool) -> usize {
    i += 1;
    while i < bytes.len() {
        if backslash && bytes[i] == b'\\' {
            i += 2;
        } else if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// Skips `$tag$ ... $tag$`; a `$` that does not open a dollar quote (like `$1`) is skipped alone.
fn skip_dollar_quote(bytes: &[u8], i: usize) -> usize {
    let preceded_by_ident = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
    if preceded_by_ident {
        return i + 1;
    }
    let mut j = i + 1;
    while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
        j += 1;
    }
    let tag_is_valid =
        bytes.get(j) == Some(&b'$') && !bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
    if !tag_is_valid {
        return i + 1;
    }
    let tag = &bytes[i..=j];
    find(bytes, j + 1, tag).map_or(bytes.len(), |end| end + tag.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<(String, usize)> {
        split(sql)
            .into_iter()
            .map(|s| (s.sql.trim().to_owned(), s.line))
            .collect()
    }

    #[test]
    fn splits_with_lines() {
        let sql = "create table a(x int);\n\n-- c; not here\ninsert into a values (1);\n";
        assert_eq!(
            texts(sql),
            [
                ("create table a(x int);".to_owned(), 1),
                ("insert into a values (1);".to_owned(), 4)
            ]
        );
    }

    #[test]
    fn semicolons_inside_literals_and_bodies_do_not_split() {
        let sql = "select 'a;b', \"c;d\", E'e\\';f';\n\
                   create function f() returns int language plpgsql as $fn$ begin return 1; end $fn$;\n\
                   do $$ begin perform 1; end $$;\n/* x; /* nested; */ y; */ select $1;";
        let got = texts(sql);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[1].1, 2);
        assert_eq!(got[2].1, 3);
        assert_eq!(got[3].1, 4);
        assert!(got[3].0.ends_with("select $1;"));
    }

    #[test]
    fn comment_only_tail_is_dropped_and_unterminated_input_does_not_panic() {
        assert_eq!(texts("select 1; -- end\n").len(), 1);
        for bad in [
            "select 'abc",
            "select $x$ abc",
            "/* open",
            "select \"x",
            "$",
            "E'\\",
        ] {
            let _ = split(bad);
        }
    }
}
