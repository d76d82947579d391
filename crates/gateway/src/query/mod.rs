//! The query string of a request, parsed into select, filters, order and paging for the root
//! and each embed. Nothing here knows the schema: names are checked when the plan is built.

pub mod filter;
pub mod order;
pub mod select;

use std::collections::BTreeMap;

pub use filter::Condition;
pub use order::OrderTerm;
pub use select::{Embed, SelectItem};

/// A query-string parse error: 400 PGRST100.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub details: String,
    /// PGRST100, or PGRST123 for aggregates.
    pub code: &'static str,
}

impl ParseError {
    /// A PGRST100 error.
    pub fn new(message: impl Into<String>, details: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            details: details.into(),
            code: "PGRST100",
        }
    }
}

impl From<ParseError> for crate::error::ApiError {
    fn from(e: ParseError) -> Self {
        if e.code == "PGRST123" {
            return crate::error::ApiError::BadRequest {
                code: "PGRST123",
                message: e.message,
            };
        }
        crate::error::ApiError::parse(format!("\"{}\" ({})", e.message, e.details), e.details)
    }
}

/// Bounds on the size of a query, checked while parsing, before any SQL: PostgreSQL refuses a
/// target list of more than 1,664 entries (54011) only after the statement was built and sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Items of `select=` counted at every level: columns, `*`, aggregates and embeds.
    pub max_select_items: usize,
    /// Embeds (and spreads) nested in one another.
    pub max_embed_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_select_items: 1000,
            max_embed_depth: 16,
        }
    }
}

/// A column with an optional JSON path: `data->a->>b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub path: Vec<JsonStep>,
}

/// One `->key` (json) or `->>key` (text) step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStep {
    pub key: String,
    pub text: bool,
}

/// Filters, order and paging of one level: the root (empty path) or an embed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Modifiers {
    pub conditions: Vec<Condition>,
    pub order: Vec<OrderTerm>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

/// The parsed query string.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiQuery {
    pub select: Option<Vec<SelectItem>>,
    /// Keyed by the embed path (`["tools"]` for `tools.order=`); the root is `[]`.
    pub modifiers: BTreeMap<Vec<String>, Modifiers>,
    /// `columns=` of an insert.
    pub columns: Option<Vec<String>>,
    /// `on_conflict=` of an upsert.
    pub on_conflict: Option<Vec<String>>,
    /// Keys that are not filters: the arguments of `GET /rpc/fn?a=1`.
    pub plain: Vec<(String, String)>,
}

impl ApiQuery {
    /// Whether `select=` holds an aggregate at any level.
    pub fn has_aggregates(&self) -> bool {
        self.select
            .as_ref()
            .is_some_and(|items| items.iter().any(SelectItem::has_aggregate))
    }

    /// The root level's modifiers.
    pub fn root(&self) -> Modifiers {
        self.modifiers.get(&Vec::new()).cloned().unwrap_or_default()
    }

    /// Parses a raw query string. With `rpc_args`, keys whose value is not `op.value` are kept
    /// as plain arguments instead of failing.
    pub fn parse(raw: &str, rpc_args: &[String]) -> Result<Self, ParseError> {
        Self::parse_within(raw, rpc_args, &Limits::default())
    }

    /// [`ApiQuery::parse`] with the configured bounds.
    pub fn parse_within(
        raw: &str,
        rpc_args: &[String],
        limits: &Limits,
    ) -> Result<Self, ParseError> {
        let mut q = ApiQuery::default();
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            let (key, value) = (key.into_owned(), value.into_owned());
            q.add(key, value, rpc_args, limits)?;
        }
        Ok(q)
    }

    fn add(
        &mut self,
        key: String,
        value: String,
        rpc_args: &[String],
        limits: &Limits,
    ) -> Result<(), ParseError> {
        match key.as_str() {
            "select" => {
                self.select = Some(select::parse_within(&value, limits)?);
                return Ok(());
            }
            "columns" => {
                self.columns = Some(parse_name_list(&value)?);
                return Ok(());
            }
            "on_conflict" => {
                self.on_conflict = Some(parse_name_list(&value)?);
                return Ok(());
            }
            // Cache busters and the websocket-style apikey are not filters.
            "apikey" | "_" => return Ok(()),
            _ => {}
        }
        if rpc_args.contains(&key) {
            self.plain.push((key, value));
            return Ok(());
        }
        let (path, last) = split_key(&key)?;
        let level = self.modifiers.entry(path).or_default();
        match last.as_str() {
            "order" => level.order.extend(order::parse(&value)?),
            "limit" => level.limit = Some(parse_count("limit", &value)?),
            "offset" => level.offset = Some(parse_count("offset", &value)?),
            "or" | "and" | "not.or" | "not.and" => level.conditions.push(filter::parse_tree(
                last.ends_with("and"),
                last.starts_with("not."),
                &value,
            )?),
            _ => {
                let (field, rest) = parse_field(&last)?;
                if !rest.is_empty() {
                    return Err(ParseError::new(
                        "failed to parse filter key",
                        format!("unexpected \"{rest}\" in \"{key}\""),
                    ));
                }
                level.conditions.push(filter::parse_filter(field, &value)?);
            }
        }
        Ok(())
    }
}

/// Splits `a.b.col->x` into the embed path `[a, b]` and the last part `col->x`; `not.or` and
/// `not.and` stay whole.
fn split_key(key: &str) -> Result<(Vec<String>, String), ParseError> {
    let (head, json) = match key.find("->") {
        Some(i) => key.split_at(i),
        None => (key, ""),
    };
    let mut parts: Vec<&str> = head.split('.').collect();
    let mut last = parts.pop().unwrap_or_default().to_owned();
    if (last == "or" || last == "and") && parts.last() == Some(&"not") {
        parts.pop();
        last = format!("not.{last}");
    }
    if parts.iter().any(|p| p.is_empty()) || (last.is_empty() && json.is_empty()) {
        return Err(ParseError::new(
            "failed to parse query parameter",
            format!("invalid key \"{key}\""),
        ));
    }
    Ok((
        parts.into_iter().map(str::to_owned).collect(),
        format!("{last}{json}"),
    ))
}

fn parse_count(what: &str, value: &str) -> Result<u64, ParseError> {
    value.parse().map_err(|_| {
        ParseError::new(
            format!("failed to parse {what}"),
            format!("\"{value}\" is not a non-negative integer"),
        )
    })
}

/// `a,b` or `"a","b"` (as postgrest-js sends `columns=`).
fn parse_name_list(value: &str) -> Result<Vec<String>, ParseError> {
    let mut names = Vec::new();
    for part in split_top_level(value)? {
        let (field, rest) = parse_field(&part)?;
        if !rest.is_empty() || !field.path.is_empty() {
            return Err(ParseError::new(
                "failed to parse columns",
                format!("invalid column \"{part}\""),
            ));
        }
        names.push(field.name);
    }
    Ok(names)
}

/// Parses a column name with an optional JSON path at the start of `s`; returns the rest.
pub fn parse_field(s: &str) -> Result<(Field, &str), ParseError> {
    let (name, mut rest) = parse_name(s)?;
    let mut path = Vec::new();
    loop {
        let text = if let Some(r) = rest.strip_prefix("->>") {
            rest = r;
            true
        } else if let Some(r) = rest.strip_prefix("->") {
            rest = r;
            false
        } else {
            break;
        };
        let (key, r) = parse_name(rest)?;
        path.push(JsonStep { key, text });
        rest = r;
    }
    Ok((Field { name, path }, rest))
}

/// A bare or double-quoted name at the start of `s`.
fn parse_name(s: &str) -> Result<(String, &str), ParseError> {
    let err = || {
        ParseError::new(
            "failed to parse name",
            format!("expected a name in \"{s}\""),
        )
    };
    if let Some(quoted) = s.strip_prefix('"') {
        let end = quoted.find('"').ok_or_else(err)?;
        let name = &quoted[..end];
        if name.is_empty() || name.contains('\0') {
            return Err(err());
        }
        return Ok((name.to_owned(), &quoted[end + 1..]));
    }
    let mut end = 0;
    for (i, c) in s.char_indices() {
        let arrow = c == '-' && s[i..].starts_with("->");
        if !select::is_name_char(c) || arrow {
            break;
        }
        end = i + c.len_utf8();
    }
    if end == 0 {
        return Err(err());
    }
    Ok((s[..end].to_owned(), &s[end..]))
}

/// Splits on commas outside parentheses and double quotes; quoted parts stay quoted for a
/// later step to unquote.
pub fn split_top_level(s: &str) -> Result<Vec<String>, ParseError> {
    split(s, false)
}

/// As [`split_top_level`], and a `{...}` array literal is one value too: inside a logic tree
/// `tags.cs.{a,b}` is one filter, as PostgREST reads it (an array literal does not nest and
/// holds no braces, so any text up to the first `}` belongs to it).
pub fn split_logic_list(s: &str) -> Result<Vec<String>, ParseError> {
    split(s, true)
}

fn split(s: &str, arrays: bool) -> Result<Vec<String>, ParseError> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut in_quotes = false;
    let mut in_array = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if in_array {
            in_array = c != '}';
            current.push(c);
            continue;
        }
        match c {
            '{' if arrays && !in_quotes => in_array = true,
            '\\' if in_quotes => {
                current.push(c);
                if let Some(next) = chars.next() {
                    current.push(next);
                }
                continue;
            }
            '"' => in_quotes = !in_quotes,
            '(' if !in_quotes => depth += 1,
            ')' if !in_quotes => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    ParseError::new(
                        "failed to parse list",
                        format!("unbalanced \")\" in \"{s}\""),
                    )
                })?
            }
            ',' if !in_quotes && depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if in_quotes || in_array || depth != 0 {
        return Err(ParseError::new(
            "failed to parse list",
            format!("unbalanced quotes, braces or parentheses in \"{s}\""),
        ));
    }
    parts.push(current);
    if parts.iter().any(String::is_empty) {
        return Err(ParseError::new(
            "failed to parse list",
            format!("empty element in \"{s}\""),
        ));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_route_to_levels() {
        let q = ApiQuery::parse(
            "select=id,tools(*)&id=eq.1&tools.name=eq.x&tools.order=name.desc&tools.limit=2\
             &or=(a.eq.1,b.eq.2)&not.and=(a.eq.1)&limit=10&offset=5&order=id.asc&data->>k=eq.v\
             &columns=%22a%22,%22b%22&on_conflict=a,b",
            &[],
        )
        .unwrap();
        let root = q.root();
        assert_eq!(root.conditions.len(), 4);
        assert_eq!((root.limit, root.offset), (Some(10), Some(5)));
        let tools = &q.modifiers[&vec!["tools".to_owned()]];
        assert_eq!(tools.conditions.len(), 1);
        assert_eq!(tools.limit, Some(2));
        assert_eq!(q.columns.unwrap(), vec!["a", "b"]);
        assert_eq!(q.on_conflict.unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn rpc_arguments_are_kept_plain() {
        let q = ApiQuery::parse("a=1&b=%7B1,2%7D&c=eq.3", &["a".into(), "b".into()]).unwrap();
        assert_eq!(q.plain.len(), 2);
        assert_eq!(q.root().conditions.len(), 1);
    }

    #[test]
    fn bad_keys_and_numbers_are_errors() {
        for bad in [
            "limit=-1",
            "offset=x",
            ".a=eq.1",
            "a..b=eq.1",
            "a=eq",
            "order=a.b",
        ] {
            assert!(ApiQuery::parse(bad, &[]).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// No query string, however hostile, makes the parser panic.
        #[test]
        fn parser_never_panics(raw in "[a-z_.,:()!*\"\\{}\\[\\]<>=&%;'$ -]{0,80}") {
            let _ = ApiQuery::parse(&raw, &["a".to_owned()]);
            let _ = select::parse(&raw);
            let _ = order::parse(&raw);
            let _ = filter::parse_tree(false, false, &raw);
            let _ = filter::parse_filter(Field { name: "a".into(), path: vec![] }, &raw);
        }

        /// Nor do arbitrary Unicode strings, in every parameter position.
        #[test]
        fn parser_never_panics_on_any_text(key in "\\PC{0,12}", value in "\\PC{0,40}") {
            let raw = format!("{key}={value}&select={value}&order={value}&or={value}");
            let _ = ApiQuery::parse(&raw, &[]);
        }
    }
}
