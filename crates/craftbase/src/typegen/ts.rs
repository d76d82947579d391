//! TypeScript type expressions and how Prettier lays them out: unions with leading `|` when
//! they break, object types that stay expanded when written expanded, tuples and arrays with a
//! trailing comma when broken, keys quoted only where needed.

use super::doc::{align, concat, group, if_break, indent, text, Doc};

#[derive(Clone, Debug)]
pub enum Ty {
    /// Printed as is: a keyword, a type reference, a literal.
    Atom(String),
    Union(Vec<Ty>),
    Array(Box<Ty>),
    /// `expanded`: the generator wrote it over several lines, which Prettier keeps.
    Object {
        members: Vec<Member>,
        expanded: bool,
    },
    Intersection(Vec<Ty>),
    Tuple(Vec<Ty>),
}

#[derive(Clone, Debug)]
pub struct Member {
    /// A property name; `[_ in never]` is printed as is.
    pub key: String,
    pub optional: bool,
    pub ty: Ty,
}

impl Member {
    pub fn new(key: impl Into<String>, optional: bool, ty: Ty) -> Member {
        Member {
            key: key.into(),
            optional,
            ty,
        }
    }
}

pub fn atom(s: impl Into<String>) -> Ty {
    Ty::Atom(s.into())
}

/// A string literal type.
pub fn lit(s: &str) -> Ty {
    Ty::Atom(string_literal(s))
}

pub fn object(members: Vec<Member>, expanded: bool) -> Ty {
    Ty::Object { members, expanded }
}

/// `ty | null`, flattened into an existing union like re-parsing the text would; `unknown`
/// already holds null, and a NOT NULL `Json` is narrowed since `Json` includes null.
pub fn nullable(ty: Ty, is_nullable: bool) -> Ty {
    match ty {
        Ty::Atom(ref a) if a == "Json" && !is_nullable => atom("NonNullable<Json>"),
        Ty::Atom(ref a) if a == "unknown" || a == "any" => ty,
        ty if !is_nullable => ty,
        Ty::Union(mut members) => {
            members.push(atom("null"));
            Ty::Union(members)
        }
        ty => Ty::Union(vec![ty, atom("null")]),
    }
}

/// `ty[]` appended to the text of a type: on a union or intersection it binds to the last member.
pub fn array_of_text(ty: Ty) -> Ty {
    fn last_to_array(mut members: Vec<Ty>) -> Vec<Ty> {
        if let Some(last) = members.pop() {
            members.push(array_of_text(last));
        }
        members
    }
    match ty {
        Ty::Union(members) => Ty::Union(last_to_array(members)),
        Ty::Intersection(members) => Ty::Intersection(last_to_array(members)),
        ty => Ty::Array(Box::new(ty)),
    }
}

/// A JavaScript string literal as Prettier prints it: JSON escapes, double quotes unless the
/// text holds more double than single quotes.
pub fn string_literal(s: &str) -> String {
    let doubles = s.matches('"').count();
    let singles = s.matches('\'').count();
    let quote = if doubles > singles { '\'' } else { '"' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// A property key: bare when it is an identifier name, else a string literal.
pub fn key(name: &str) -> String {
    if name.starts_with("[_ in ") {
        return name.to_owned();
    }
    let mut chars = name.chars();
    let is_identifier = chars
        .next()
        .is_some_and(|c| c == '$' || c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '$' || c == '_' || c.is_alphanumeric());
    if is_identifier {
        name.to_owned()
    } else {
        string_literal(name)
    }
}

fn is_object(ty: &Ty) -> bool {
    matches!(ty, Ty::Object { .. })
}

/// The layout of a type.
pub fn doc(ty: &Ty) -> Doc {
    match ty {
        Ty::Atom(s) => text(s.clone()),
        Ty::Array(inner) => match inner.as_ref() {
            Ty::Union(members) => concat(vec![
                text("("),
                group(
                    concat(vec![indent(union_code(members)), Doc::SoftLine]),
                    false,
                ),
                text(")[]"),
            ]),
            inner => concat(vec![doc(inner), text("[]")]),
        },
        Ty::Union(members) => {
            let nulls = members
                .iter()
                .filter(|m| matches!(m, Ty::Atom(a) if a == "null" || a == "void"))
                .count();
            if members.len() - 1 == nulls && members.iter().any(is_object) {
                let mut parts = Vec::new();
                for (i, m) in members.iter().enumerate() {
                    if i > 0 {
                        parts.push(text(" | "));
                    }
                    parts.push(doc(m));
                }
                concat(parts)
            } else {
                group(indent(union_code(members)), false)
            }
        }
        Ty::Intersection(parts) => {
            let mut out = Vec::new();
            for (i, part) in parts.iter().enumerate() {
                if i == 0 {
                    out.push(doc(part));
                } else if !is_object(&parts[i - 1]) && !is_object(part) {
                    out.push(indent(concat(vec![text(" &"), Doc::Line, doc(part)])));
                } else if i > 1 {
                    out.extend([text(" & "), indent(doc(part))]);
                } else {
                    out.extend([text(" & "), doc(part)]);
                }
            }
            group(concat(out), false)
        }
        Ty::Object { members, expanded } => object_doc(
            members
                .iter()
                .map(|m| {
                    let mut parts = vec![text(key(&m.key))];
                    if m.optional {
                        parts.push(text("?"));
                    }
                    parts.extend([text(": "), doc(&m.ty)]);
                    concat(parts)
                })
                .collect(),
            if_break(text(""), text(";")),
            text(""),
            *expanded,
        ),
        Ty::Tuple(items) => list_doc(items.iter().map(doc).collect()),
    }
}

/// `| a | b`, with a line before the first bar when broken.
fn union_code(members: &[Ty]) -> Doc {
    let mut parts = vec![if_break(concat(vec![Doc::Line, text("| ")]), text(""))];
    for (i, m) in members.iter().enumerate() {
        if i > 0 {
            parts.extend([Doc::Line, text("| ")]);
        }
        parts.push(align(2, doc(m)));
    }
    concat(parts)
}

/// Braces around members: `separator` between them, `trailing` after the last one when broken.
pub fn object_doc(members: Vec<Doc>, separator: Doc, trailing: Doc, expanded: bool) -> Doc {
    if members.is_empty() {
        return text("{}");
    }
    let mut inner = vec![Doc::Line];
    for (i, m) in members.into_iter().enumerate() {
        if i > 0 {
            inner.extend([separator.clone(), Doc::Line]);
        }
        inner.push(group(m, false));
    }
    group(
        concat(vec![
            text("{"),
            indent(concat(inner)),
            if_break(trailing, text("")),
            Doc::Line,
            text("}"),
        ]),
        expanded,
    )
}

/// Brackets around items, one per line with a trailing comma when broken.
pub fn list_doc(items: Vec<Doc>) -> Doc {
    if items.is_empty() {
        return text("[]");
    }
    let mut inner = vec![Doc::SoftLine];
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            inner.extend([text(","), Doc::Line]);
        }
        inner.push(group(item, false));
    }
    inner.push(if_break(text(","), text("")));
    group(
        concat(vec![
            text("["),
            indent(concat(inner)),
            Doc::SoftLine,
            text("]"),
        ]),
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::typegen::doc::print;

    #[test]
    fn keys_are_quoted_only_when_needed() {
        assert_eq!(key("_private"), "_private");
        assert_eq!(key("CamelCase"), "CamelCase");
        assert_eq!(key("1num"), "\"1num\"");
        assert_eq!(key("Weird Name"), "\"Weird Name\"");
        assert_eq!(key(""), "\"\"");
    }

    #[test]
    fn strings_prefer_double_quotes() {
        assert_eq!(string_literal("it's"), "\"it's\"");
        assert_eq!(string_literal("say \"hi\""), "'say \"hi\"'");
        assert_eq!(string_literal("a\\b"), "\"a\\\\b\"");
    }

    #[test]
    fn an_object_or_null_union_hugs_the_object() {
        let ty = nullable(
            object(vec![Member::new("a", false, atom("number"))], true),
            true,
        );
        assert_eq!(print(&doc(&ty)), "{\n  a: number\n} | null");
    }

    #[test]
    fn array_suffix_binds_to_the_last_union_member() {
        let ty = array_of_text(Ty::Union(vec![lit("a"), lit("b")]));
        assert_eq!(print(&doc(&ty)), "\"a\" | \"b\"[]");
    }
}
