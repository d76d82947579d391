//! The `select=` grammar (§1.3): columns, aliases, casts, JSON paths, embeds and spreads.

use super::{Field, Limits, ParseError};

/// One item of a select list.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*`: every column of the table.
    Star,
    /// `alias:col->a->>b::type`.
    Column {
        field: Field,
        alias: Option<String>,
        cast: Option<String>,
    },
    /// `alias:rel!hint!inner(items)` or `...rel(items)`.
    Embed(Embed),
    /// `alias:count()`, `alias:col::type.sum()::type`: served only when aggregates are enabled.
    Aggregate(Aggregate),
}

/// An aggregate of the select list; the other columns of its level group the rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub function: AggregateFunction,
    /// The aggregated column; none for `count()`.
    pub field: Option<Field>,
    pub alias: Option<String>,
    /// `col::type.sum()`: a cast of the input.
    pub input_cast: Option<String>,
    /// `col.sum()::type`: a cast of the result.
    pub cast: Option<String>,
}

/// The aggregate functions PostgREST allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateFunction {
    Count,
    Sum,
    Avg,
    Max,
    Min,
}

impl AggregateFunction {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "count" => Self::Count,
            "sum" => Self::Sum,
            "avg" => Self::Avg,
            "max" => Self::Max,
            "min" => Self::Min,
            _ => return None,
        })
    }

    /// The SQL function, which is also the key of the result when there is no alias.
    pub fn name(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Sum => "sum",
            Self::Avg => "avg",
            Self::Max => "max",
            Self::Min => "min",
        }
    }
}

impl SelectItem {
    /// Whether this item, or one nested in it, is an aggregate.
    pub fn has_aggregate(&self) -> bool {
        match self {
            SelectItem::Aggregate(_) => true,
            SelectItem::Embed(e) => e.items.iter().any(SelectItem::has_aggregate),
            _ => false,
        }
    }
}

/// An embedded resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Embed {
    /// The relation: a table name, a foreign-key name or a column.
    pub name: String,
    pub alias: Option<String>,
    /// A foreign-key or column hint after `!`.
    pub hint: Option<String>,
    /// `!inner`: parents without a match are dropped.
    pub inner: bool,
    /// `...rel`: the embed's columns are hoisted into the parent.
    pub spread: bool,
    pub items: Vec<SelectItem>,
}

impl Embed {
    /// The key the embed's JSON value gets, and the prefix of its query parameters.
    pub fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

/// Parses a whole `select=` value within the default [`Limits`].
pub fn parse(input: &str) -> Result<Vec<SelectItem>, ParseError> {
    parse_within(input, &Limits::default())
}

/// Parses a whole `select=` value, refusing one past `limits` before anything else sees it.
pub fn parse_within(input: &str, limits: &Limits) -> Result<Vec<SelectItem>, ParseError> {
    let mut p = Parser {
        chars: input.chars().collect(),
        pos: 0,
        limits: *limits,
        items: 0,
    };
    let items = p.items(0)?;
    if p.pos < p.chars.len() {
        return Err(p.error("unexpected character"));
    }
    Ok(items)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    limits: Limits,
    /// Items read so far, at every level.
    items: usize,
}

impl Parser {
    fn error(&self, what: &str) -> ParseError {
        let near: String = self.chars.iter().skip(self.pos).take(20).collect();
        ParseError::new(
            "failed to parse select parameter",
            format!("{what} at position {} near \"{near}\"", self.pos),
        )
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, s: &str) -> bool {
        let n = s.chars().count();
        if self.chars.len() >= self.pos + n
            && self.chars[self.pos..self.pos + n]
                .iter()
                .copied()
                .eq(s.chars())
        {
            self.pos += n;
            true
        } else {
            false
        }
    }

    fn items(&mut self, depth: usize) -> Result<Vec<SelectItem>, ParseError> {
        if depth > self.limits.max_embed_depth {
            return Err(self.error(&format!(
                "embeds are nested more than {} levels deep",
                self.limits.max_embed_depth
            )));
        }
        let mut items = Vec::new();
        loop {
            // An empty select (`select=`) means all columns; an empty embed (`users()`) means
            // none: it only joins, for `!inner` and filters, and is left out of the body.
            if matches!(self.peek(), None | Some(')')) && items.is_empty() {
                if depth == 0 {
                    items.push(SelectItem::Star);
                }
                return Ok(items);
            }
            items.push(self.item(depth)?);
            if !self.eat(",") {
                return Ok(items);
            }
        }
    }

    fn item(&mut self, depth: usize) -> Result<SelectItem, ParseError> {
        // Counted before the item is read, so a huge list is refused without building it.
        self.items += 1;
        if self.items > self.limits.max_select_items {
            return Err(self.error(&format!(
                "the select list has more than {} items (columns, embeds and aggregates at every level)",
                self.limits.max_select_items
            )));
        }
        if self.eat("*") {
            return Ok(SelectItem::Star);
        }
        if self.eat("...") {
            let name = self.name()?;
            return self.embed(name, None, true, depth);
        }
        let first = self.name()?;
        let (alias, name) = if self.peek() == Some(':') && !self.starts_cast() {
            self.pos += 1;
            (Some(first), self.name()?)
        } else {
            (None, first)
        };
        if name == "count" && self.eat("()") {
            let cast = self.cast()?;
            return Ok(SelectItem::Aggregate(Aggregate {
                function: AggregateFunction::Count,
                field: None,
                alias,
                input_cast: None,
                cast,
            }));
        }
        if matches!(self.peek(), Some('(' | '!')) {
            return self.embed(name, alias, false, depth);
        }
        let path = self.json_path()?;
        let cast = self.cast()?;
        if self.eat(".") {
            let function = self.name()?;
            let function = AggregateFunction::parse(&function)
                .ok_or_else(|| self.error("unknown aggregate function"))?;
            if !self.eat("()") {
                return Err(self.error("expected \"()\""));
            }
            return Ok(SelectItem::Aggregate(Aggregate {
                function,
                field: Some(Field { name, path }),
                alias,
                input_cast: cast,
                cast: self.cast()?,
            }));
        }
        Ok(SelectItem::Column {
            field: Field { name, path },
            alias,
            cast,
        })
    }

    /// An optional `::type`.
    fn cast(&mut self) -> Result<Option<String>, ParseError> {
        if self.eat("::") {
            Ok(Some(self.type_name()?))
        } else {
            Ok(None)
        }
    }

    fn starts_cast(&self) -> bool {
        self.chars.get(self.pos + 1) == Some(&':')
    }

    fn embed(
        &mut self,
        name: String,
        alias: Option<String>,
        spread: bool,
        depth: usize,
    ) -> Result<SelectItem, ParseError> {
        let mut hint = None;
        let mut inner = false;
        while self.eat("!") {
            let word = self.name()?;
            match word.as_str() {
                "inner" => inner = true,
                "left" => inner = false,
                _ if hint.is_none() => hint = Some(word),
                _ => return Err(self.error("more than one hint")),
            }
        }
        if !self.eat("(") {
            return Err(self.error("expected \"(\""));
        }
        let items = self.items(depth + 1)?;
        if !self.eat(")") {
            return Err(self.error("expected \")\""));
        }
        Ok(SelectItem::Embed(Embed {
            name,
            alias,
            hint,
            inner,
            spread,
            items,
        }))
    }

    /// `->key` / `->>key` steps after a column.
    fn json_path(&mut self) -> Result<Vec<super::JsonStep>, ParseError> {
        let mut path = Vec::new();
        loop {
            let text = if self.eat("->>") {
                true
            } else if self.eat("->") {
                false
            } else {
                return Ok(path);
            };
            let key = self.name()?;
            path.push(super::JsonStep { key, text });
        }
    }

    /// A bare word or a double-quoted name.
    fn name(&mut self) -> Result<String, ParseError> {
        if self.eat("\"") {
            let mut out = String::new();
            loop {
                match self.peek() {
                    None => return Err(self.error("unterminated quoted name")),
                    Some('"') => {
                        self.pos += 1;
                        if self.peek() == Some('"') {
                            self.pos += 1;
                            out.push('"');
                        } else {
                            break;
                        }
                    }
                    Some('\\') if matches!(self.chars.get(self.pos + 1), Some('"' | '\\')) => {
                        out.push(self.chars[self.pos + 1]);
                        self.pos += 2;
                    }
                    Some(c) => {
                        out.push(c);
                        self.pos += 1;
                    }
                }
            }
            if out.contains('\0') {
                return Err(self.error("a name may not contain NUL"));
            }
            return nonempty(out).ok_or_else(|| self.error("empty name"));
        }
        let start = self.pos;
        while let Some(c) = self.peek() {
            let arrow = c == '-' && self.chars.get(self.pos + 1) == Some(&'>');
            if is_name_char(c) && !arrow {
                self.pos += 1;
            } else {
                break;
            }
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        nonempty(word).ok_or_else(|| self.error("expected a name"))
    }

    /// A type name after `::`, e.g. `text`, `int4[]`, `character varying`.
    fn type_name(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' || c == '[' || c == ']' || c == ' ' {
                self.pos += 1;
            } else {
                break;
            }
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        nonempty(word.trim().to_owned()).ok_or_else(|| self.error("expected a type name"))
    }
}

/// `count()` and `col.sum()` while aggregates are disabled, PostgREST's default (PGRST123).
pub fn aggregates_disabled() -> ParseError {
    ParseError {
        message: "Use of aggregate functions is not allowed".into(),
        details: String::new(),
        code: "PGRST123",
    }
}

/// Characters a bare name may hold.
pub fn is_name_char(c: char) -> bool {
    !matches!(
        c,
        ',' | ':' | '(' | ')' | '!' | '.' | '"' | '*' | '>' | '\'' | '\\' | '\0'
    ) && !c.is_whitespace()
}

fn nonempty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str) -> SelectItem {
        SelectItem::Column {
            field: Field {
                name: name.into(),
                path: vec![],
            },
            alias: None,
            cast: None,
        }
    }

    #[test]
    fn columns_aliases_casts_and_paths() {
        assert_eq!(parse("*").unwrap(), vec![SelectItem::Star]);
        assert_eq!(parse("").unwrap(), vec![SelectItem::Star]);
        assert_eq!(parse("id,name").unwrap(), vec![col("id"), col("name")]);
        let items = parse("n:name::text,data->a->>b,\"odd name\"").unwrap();
        assert_eq!(
            items[0],
            SelectItem::Column {
                field: Field {
                    name: "name".into(),
                    path: vec![]
                },
                alias: Some("n".into()),
                cast: Some("text".into())
            }
        );
        let SelectItem::Column { field, .. } = &items[1] else {
            panic!()
        };
        assert_eq!(field.name, "data");
        assert_eq!(field.path.len(), 2);
        assert!(field.path[1].text && !field.path[0].text);
        assert_eq!(items[2], col("odd name"));
    }

    #[test]
    fn embeds_with_hints_inner_and_spread() {
        let items =
            parse("id,c:connectors!fk!inner(name,tools:connector_tools(*)),...x(a)").unwrap();
        let SelectItem::Embed(e) = &items[1] else {
            panic!()
        };
        assert_eq!(e.name, "connectors");
        assert_eq!(e.alias.as_deref(), Some("c"));
        assert_eq!(e.hint.as_deref(), Some("fk"));
        assert!(e.inner);
        assert_eq!(e.items.len(), 2);
        let SelectItem::Embed(s) = &items[2] else {
            panic!()
        };
        assert!(s.spread);
    }

    #[test]
    fn malformed_selects_are_errors() {
        for bad in [
            "id,",
            "a(",
            "a(b",
            "\"x",
            "a::",
            "a)",
            "a.median()",
            "a.sum(",
            "\"a\0b\"",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bounds_count_items_at_every_level_and_embed_depth() {
        let limits = Limits {
            max_select_items: 4,
            max_embed_depth: 1,
        };
        assert!(parse_within("a,b,c,d", &limits).is_ok());
        assert!(parse_within("a,b(c,d)", &limits).is_ok());
        let e = parse_within("a,b(c,d),e", &limits).unwrap_err();
        assert!(e.details.contains("more than 4 items"), "{}", e.details);
        let e = parse_within("a(b(c))", &limits).unwrap_err();
        assert!(
            e.details.contains("nested more than 1 levels"),
            "{}",
            e.details
        );
        // The defaults: 1,000 items, 16 levels.
        let many = ["a"; 1001].join(",");
        assert!(parse(&many[2..]).is_ok());
        assert!(parse(&many).is_err());
        let deep = |n: usize| format!("{}x{}", "a(".repeat(n), ")".repeat(n));
        assert!(parse(&deep(16)).is_ok());
        assert!(parse(&deep(17)).is_err());
    }

    #[test]
    fn aggregates() {
        let items =
            parse("status,n:count()::int,amount::numeric.sum()::text,data->x.max()").unwrap();
        assert_eq!(items[0], col("status"));
        let SelectItem::Aggregate(count) = &items[1] else {
            panic!()
        };
        assert_eq!(count.function, AggregateFunction::Count);
        assert_eq!(
            (count.alias.as_deref(), count.cast.as_deref()),
            (Some("n"), Some("int"))
        );
        assert!(count.field.is_none());
        let SelectItem::Aggregate(sum) = &items[2] else {
            panic!()
        };
        assert_eq!(sum.function, AggregateFunction::Sum);
        assert_eq!(sum.input_cast.as_deref(), Some("numeric"));
        assert_eq!(sum.cast.as_deref(), Some("text"));
        let SelectItem::Aggregate(max) = &items[3] else {
            panic!()
        };
        assert_eq!(max.field.as_ref().map(|f| f.path.len()), Some(1));
        assert!(items[3].has_aggregate() && !items[0].has_aggregate());
        // An empty embed selects nothing of it; an empty select still means every column.
        let SelectItem::Embed(e) = &parse("id,users!inner()").unwrap()[1] else {
            panic!()
        };
        assert!(e.items.is_empty() && e.inner);
        // `count` is still an embed name when it is not followed by `()`.
        assert!(matches!(
            parse("count(id)").unwrap()[0],
            SelectItem::Embed(_)
        ));
    }
}
