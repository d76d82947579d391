//! Reads the origin of each output column of a view from its rewrite rule (`pg_rewrite.ev_action`,
//! PostgreSQL's `nodeToString` text): the `resorigtbl`/`resorigcol` of the top-level query's
//! target entries, which is how PostgREST finds the keys a view shows.

/// Output column `resno` of a view shows column `column` of relation `table` (0 when computed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    pub resno: i16,
    pub table: i64,
    pub column: i16,
}

/// Splits node text into tokens the way PostgreSQL's `pg_strtok` does: the brackets are tokens
/// of their own, anything else runs to whitespace or a bracket, a backslash escapes one character.
fn tokens(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if matches!(c, b'(' | b')' | b'{' | b'}') {
            out.push(&text[i..i + 1]);
            i += 1;
        } else {
            let start = i;
            while i < bytes.len()
                && !bytes[i].is_ascii_whitespace()
                && !matches!(bytes[i], b'(' | b')' | b'{' | b'}')
            {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = i.min(bytes.len());
            out.push(&text[start..i]);
        }
    }
    out
}

/// Index just past the bracketed value that opens at `start`.
fn skip_balanced(toks: &[&str], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < toks.len() {
        match toks[i] {
            "(" | "{" => depth += 1,
            ")" | "}" => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    toks.len()
}

/// The fields of the node opening at `start` (a `{`): each field name with the index of its
/// first value token; nested nodes and lists are stepped over.
fn fields<'a>(toks: &[&'a str], start: usize) -> Vec<(&'a str, usize)> {
    let mut out = Vec::new();
    let mut i = start + 1;
    while i < toks.len() {
        match toks[i] {
            "}" => break,
            "(" | "{" => i = skip_balanced(toks, i),
            t if t.starts_with(':') => {
                out.push((t, i + 1));
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// The origins of the first query of a rule's action list; empty when the text is not understood.
pub fn column_origins(ev_action: &str) -> Vec<Origin> {
    let toks = tokens(ev_action);
    let Some(query) = toks.iter().position(|t| *t == "{") else {
        return Vec::new();
    };
    let Some(&(_, list)) = fields(&toks, query)
        .iter()
        .find(|(f, _)| *f == ":targetList")
    else {
        return Vec::new();
    };
    if toks.get(list) != Some(&"(") {
        return Vec::new();
    }
    let end = skip_balanced(&toks, list);
    let mut origins = Vec::new();
    let mut i = list + 1;
    while i < end {
        if toks[i] == "{" {
            let entry = fields(&toks, i);
            let value = |name: &str| {
                entry
                    .iter()
                    .find(|(f, _)| *f == name)
                    .and_then(|&(_, at)| toks.get(at))
                    .and_then(|t| t.parse::<i64>().ok())
            };
            if let (Some(resno), Some(table), Some(column)) =
                (value(":resno"), value(":resorigtbl"), value(":resorigcol"))
            {
                origins.push(Origin {
                    resno: resno as i16,
                    table,
                    column: column as i16,
                });
            }
            i = skip_balanced(&toks, i);
        } else {
            i += 1;
        }
    }
    origins
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_top_level_target_list_only() {
        let tree = r#"({QUERY :commandType 1 :rtable ({RANGETBLENTRY :subquery {QUERY :targetList ({TARGETENTRY :resno 9 :resorigtbl 1 :resorigcol 1})}}) :targetList ({TARGETENTRY :expr {VAR :varno 1 :location 7} :resno 1 :resname id :resorigtbl 16412 :resorigcol 1 :resjunk false} {TARGETENTRY :expr {CONST :constvalue 4 [ 1 0 0 0 ]} :resno 2 :resname one\ two :resorigtbl 0 :resorigcol 0 :resjunk false}) :override 0})"#;
        assert_eq!(
            column_origins(tree),
            [
                Origin {
                    resno: 1,
                    table: 16412,
                    column: 1
                },
                Origin {
                    resno: 2,
                    table: 0,
                    column: 0
                }
            ]
        );
    }
}
