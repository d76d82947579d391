//! `order=` (§1.5): `col.desc.nullslast,data->>k.asc`.

use super::{parse_field, split_top_level, Field, ParseError};

/// One ordering term.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderTerm {
    /// `rel(col)`: order by a column of a to-one embed.
    pub embed: Option<String>,
    pub field: Field,
    pub descending: bool,
    /// `Some(true)` for nullsfirst, `Some(false)` for nullslast, else PostgreSQL's default.
    pub nulls_first: Option<bool>,
}

/// Parses a whole `order=` value.
pub fn parse(value: &str) -> Result<Vec<OrderTerm>, ParseError> {
    let mut terms = Vec::new();
    for part in split_top_level(value)? {
        let (mut field, mut rest) = parse_field(&part)?;
        let mut embed = None;
        if let Some(inner) = rest.strip_prefix('(') {
            let (column, after) = parse_field(inner)?;
            let after = after.strip_prefix(')').ok_or_else(|| {
                ParseError::new(
                    "failed to parse order",
                    format!("expected \")\" in \"{part}\""),
                )
            })?;
            if !field.path.is_empty() {
                return Err(ParseError::new(
                    "failed to parse order",
                    format!("unexpected JSON path before \"(\" in \"{part}\""),
                ));
            }
            embed = Some(std::mem::replace(&mut field, column).name);
            rest = after;
        }
        let mut term = OrderTerm {
            embed,
            field,
            descending: false,
            nulls_first: None,
        };
        while let Some(after) = rest.strip_prefix('.') {
            let (word, tail) = after.split_at(after.find('.').unwrap_or(after.len()));
            match word {
                "asc" => term.descending = false,
                "desc" => term.descending = true,
                "nullsfirst" => term.nulls_first = Some(true),
                "nullslast" => term.nulls_first = Some(false),
                _ => {
                    return Err(ParseError::new(
                        "failed to parse order",
                        format!("unexpected \"{word}\" in \"{part}\""),
                    ))
                }
            }
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(ParseError::new(
                "failed to parse order",
                format!("unexpected \"{rest}\" in \"{part}\""),
            ));
        }
        terms.push(term);
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_nulls_and_paths() {
        let terms = parse("created_at.desc.nullsfirst,id,data->>k.asc.nullslast").unwrap();
        assert_eq!(terms.len(), 3);
        assert!(terms[0].descending && terms[0].nulls_first == Some(true));
        assert!(!terms[1].descending && terms[1].nulls_first.is_none());
        assert_eq!(terms[2].field.name, "data");
        assert_eq!(terms[2].nulls_first, Some(false));
        let terms = parse("author(name).desc,id").unwrap();
        assert_eq!(terms[0].embed.as_deref(), Some("author"));
        assert_eq!(terms[0].field.name, "name");
        assert!(terms[0].descending);
        assert!(parse("author(name.desc").is_err());
        for bad in ["", "a.up", "a.desc;drop", ","] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
