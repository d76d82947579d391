//! Expressions of one level: select lists with embeds, conditions and order.

use super::{Builder, Source};
use crate::error::ApiError;
use crate::query::filter::{Condition, Operation};
use crate::query::{Field, OrderTerm, SelectItem};
use crate::schema_cache::{Join, Relationship};
use crate::sql::array_literal;

impl<'a> Builder<'a> {
    /// `"t1"."col"->'a'->>'b'` for a checked column.
    pub fn field(&mut self, src: &Source, alias: &str, field: &Field) -> Result<(), ApiError> {
        let column = src.column(&field.name)?;
        self.sql.ident(alias).push(".").ident(&column.name);
        for step in &field.path {
            self.sql.push(if step.text { "->>" } else { "->" });
            if !step.key.is_empty() && step.key.bytes().all(|b| b.is_ascii_digit()) {
                self.sql.param(step.key.clone()).push("::int");
            } else {
                self.sql.param(step.key.clone()).push("::text");
            }
        }
        Ok(())
    }

    /// The select list of one level, comma separated.
    pub fn select_list(
        &mut self,
        src: &Source,
        alias: &str,
        items: &[SelectItem],
        path: &[String],
    ) -> Result<(), ApiError> {
        self.used_paths.insert(path.to_vec());
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.sql.push(", ");
            }
            match item {
                SelectItem::Star => {
                    self.sql.ident(alias).push(".*");
                }
                SelectItem::Column {
                    field,
                    alias: name,
                    cast,
                } => {
                    if let Some(cast) = cast {
                        let cast = self.checked_type(cast)?;
                        self.sql.push("(");
                        self.field(src, alias, field)?;
                        self.sql.push(")::").push(&cast);
                    } else {
                        self.field(src, alias, field)?;
                    }
                    let output = name
                        .clone()
                        .or_else(|| field.path.last().map(|s| s.key.clone()))
                        .unwrap_or_else(|| field.name.clone());
                    self.sql.push(" AS ").ident(&output);
                }
                SelectItem::Embed(embed) => {
                    let table = src.table.ok_or_else(|| ApiError::NoRelationship {
                        from: src.name.to_owned(),
                        to: embed.name.clone(),
                    })?;
                    let rel = self
                        .cache
                        .relationship(table, &embed.name, embed.hint.as_deref())?;
                    let mut child_path = path.to_vec();
                    child_path.push(embed.key().to_owned());
                    if embed.spread {
                        self.spread(&rel, alias, &embed.items, &child_path)?;
                    } else {
                        self.embed_value(&rel, alias, &embed.items, &child_path)?;
                        self.sql.push(" AS ").ident(embed.key());
                    }
                }
            }
        }
        Ok(())
    }

    /// A cast's type, after checking it names a known type.
    fn checked_type(&self, name: &str) -> Result<String, ApiError> {
        let plain = name
            .trim_end_matches("[]")
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b' ');
        if plain && self.cache.is_type(name) {
            Ok(name.to_owned())
        } else {
            Err(ApiError::parse(
                format!("unknown type \"{name}\" in cast"),
                "casts must name an existing type",
            ))
        }
    }

    /// The JSON value of an embed: an object (or null) for to-one, an array for to-many.
    fn embed_value(
        &mut self,
        rel: &Relationship,
        parent_alias: &str,
        items: &[SelectItem],
        path: &[String],
    ) -> Result<(), ApiError> {
        let cache = self.cache;
        let target = cache
            .table(&rel.target_schema, &rel.target)
            .ok_or_else(|| ApiError::TableNotFound {
                schema: rel.target_schema.clone(),
                name: rel.target.clone(),
            })?;
        let src = Source::table(target);
        let child = self.alias();
        let modifiers = self.query.modifiers.get(path).cloned().unwrap_or_default();
        if !rel.to_one {
            if let Some(key) = related_count(target, items) {
                // `rel(count)`: the number of related rows, as `[{"count": n}]`.
                self.sql
                    .push("(SELECT json_build_array(json_build_object(")
                    .param(key)
                    .push("::text, count(*)))");
                self.embed_from_where(rel, parent_alias, &child, items, path)?;
                self.sql.push(")");
                return Ok(());
            }
        }
        if rel.to_one {
            self.sql.push("(SELECT row_to_json(_e) FROM (SELECT ");
        } else {
            self.sql
                .push("(SELECT coalesce(json_agg(_e), '[]') FROM (SELECT ");
        }
        self.select_list(&src, &child, items, path)?;
        self.embed_from_where(rel, parent_alias, &child, items, path)?;
        if !rel.to_one {
            self.order_by(&src, &child, items, path, &modifiers.order)?;
            self.limit_offset(modifiers.limit, modifiers.offset, None);
        } else {
            self.sql.push(" LIMIT 1");
        }
        self.sql.push(") _e)");
        Ok(())
    }

    /// `...rel(a, b)`: each column of the embed hoisted into the parent, as a value for to-one
    /// and as an array of values for to-many.
    fn spread(
        &mut self,
        rel: &Relationship,
        parent_alias: &str,
        items: &[SelectItem],
        path: &[String],
    ) -> Result<(), ApiError> {
        let cache = self.cache;
        let target = cache
            .table(&rel.target_schema, &rel.target)
            .ok_or_else(|| ApiError::TableNotFound {
                schema: rel.target_schema.clone(),
                name: rel.target.clone(),
            })?;
        let src = Source::table(target);
        let items = super::expand_star(target, items);
        let modifiers = self.query.modifiers.get(path).cloned().unwrap_or_default();
        for (i, item) in items.iter().enumerate() {
            let name = match item {
                SelectItem::Column { field, alias, .. } => alias
                    .clone()
                    .or_else(|| field.path.last().map(|s| s.key.clone()))
                    .unwrap_or_else(|| field.name.clone()),
                SelectItem::Embed(e) if !e.spread => e.key().to_owned(),
                _ => {
                    return Err(ApiError::NotImplemented(
                        "A spread inside a spread is not supported".into(),
                    ))
                }
            };
            if i > 0 {
                self.sql.push(", ");
            }
            if rel.to_one {
                self.sql
                    .push("(SELECT _e.")
                    .ident(&name)
                    .push(" FROM (SELECT ");
            } else {
                self.sql
                    .push("(SELECT coalesce(json_agg(_e.")
                    .ident(&name)
                    .push("), '[]') FROM (SELECT ");
            }
            let child = self.alias();
            self.select_list(&src, &child, std::slice::from_ref(item), path)?;
            self.embed_from_where(rel, parent_alias, &child, &items, path)?;
            if rel.to_one {
                self.sql.push(" LIMIT 1");
            } else {
                self.order_by(&src, &child, &items, path, &modifiers.order)?;
                self.limit_offset(modifiers.limit, modifiers.offset, None);
            }
            self.sql.push(") _e) AS ").ident(&name);
        }
        Ok(())
    }

    /// ` FROM target AS child [JOIN junction] WHERE <join> AND <conditions of path>`.
    fn embed_from_where(
        &mut self,
        rel: &Relationship,
        parent_alias: &str,
        child: &str,
        items: &[SelectItem],
        path: &[String],
    ) -> Result<(), ApiError> {
        let cache = self.cache;
        let target = cache
            .table(&rel.target_schema, &rel.target)
            .ok_or_else(|| ApiError::TableNotFound {
                schema: rel.target_schema.clone(),
                name: rel.target.clone(),
            })?;
        self.sql
            .push(" FROM ")
            .qualified(&target.schema, &target.name)
            .push(" AS ")
            .ident(child);
        match &rel.join {
            Join::Direct(pairs) => {
                self.sql.push(" WHERE ");
                for (i, (p, c)) in pairs.iter().enumerate() {
                    if i > 0 {
                        self.sql.push(" AND ");
                    }
                    self.sql
                        .ident(child)
                        .push(".")
                        .ident(c)
                        .push(" = ")
                        .ident(parent_alias)
                        .push(".")
                        .ident(p);
                }
            }
            Join::Junction {
                schema,
                table,
                parent,
                target: target_pairs,
            } => {
                let j = self.alias();
                self.sql
                    .push(" JOIN ")
                    .qualified(schema, table)
                    .push(" AS ")
                    .ident(&j)
                    .push(" ON ");
                for (i, (c, jc)) in target_pairs.iter().enumerate() {
                    if i > 0 {
                        self.sql.push(" AND ");
                    }
                    self.sql
                        .ident(&j)
                        .push(".")
                        .ident(jc)
                        .push(" = ")
                        .ident(child)
                        .push(".")
                        .ident(c);
                }
                self.sql.push(" WHERE ");
                for (i, (p, jc)) in parent.iter().enumerate() {
                    if i > 0 {
                        self.sql.push(" AND ");
                    }
                    self.sql
                        .ident(&j)
                        .push(".")
                        .ident(jc)
                        .push(" = ")
                        .ident(parent_alias)
                        .push(".")
                        .ident(p);
                }
            }
        }
        let src = Source::table(target);
        let conditions = self
            .query
            .modifiers
            .get(path)
            .map(|m| m.conditions.clone())
            .unwrap_or_default();
        for c in &conditions {
            self.sql.push(" AND ");
            self.condition(&src, child, items, path, c)?;
        }
        Ok(())
    }

    /// `WHERE` conditions of a level (filters, trees, `!inner` embeds), or nothing.
    pub fn where_clause(
        &mut self,
        src: &Source,
        alias: &str,
        items: &[SelectItem],
        path: &[String],
    ) -> Result<(), ApiError> {
        let conditions = self
            .query
            .modifiers
            .get(path)
            .map(|m| m.conditions.clone())
            .unwrap_or_default();
        let mut first = true;
        for c in &conditions {
            self.sql.push(if first { " WHERE " } else { " AND " });
            first = false;
            self.condition(src, alias, items, path, c)?;
        }
        for item in items {
            let SelectItem::Embed(embed) = item else {
                continue;
            };
            if !embed.inner {
                continue;
            }
            let table = src.table.ok_or(ApiError::InvalidPath)?;
            let rel = self
                .cache
                .relationship(table, &embed.name, embed.hint.as_deref())?;
            let mut child_path = path.to_vec();
            child_path.push(embed.key().to_owned());
            self.sql.push(if first { " WHERE " } else { " AND " });
            first = false;
            self.exists(&rel, alias, &embed.items, &child_path)?;
        }
        Ok(())
    }

    fn exists(
        &mut self,
        rel: &Relationship,
        parent_alias: &str,
        items: &[SelectItem],
        path: &[String],
    ) -> Result<(), ApiError> {
        let child = self.alias();
        self.sql.push("EXISTS (SELECT 1");
        self.embed_from_where(rel, parent_alias, &child, items, path)?;
        self.sql.push(")");
        Ok(())
    }

    /// One condition as a boolean expression.
    fn condition(
        &mut self,
        src: &Source,
        alias: &str,
        items: &[SelectItem],
        path: &[String],
        c: &Condition,
    ) -> Result<(), ApiError> {
        match c {
            Condition::Tree {
                and,
                negate,
                children,
            } => {
                self.sql.push(if *negate { "NOT (" } else { "(" });
                for (i, child) in children.iter().enumerate() {
                    if i > 0 {
                        self.sql.push(if *and { " AND " } else { " OR " });
                    }
                    self.condition(src, alias, items, path, child)?;
                }
                self.sql.push(")");
            }
            Condition::Filter { field, negate, op } => {
                if src.column(&field.name).is_err() && field.path.is_empty() {
                    if let Some(embed) = find_embed(items, &field.name) {
                        return self.embed_null_filter(src, alias, embed, path, *negate, op);
                    }
                }
                self.sql.push(if *negate { "NOT (" } else { "(" });
                self.operation(src, alias, field, op)?;
                self.sql.push(")");
            }
        }
        Ok(())
    }

    /// `rel=is.null` / `rel=not.is.null`: parents without (or with) a related row.
    fn embed_null_filter(
        &mut self,
        src: &Source,
        alias: &str,
        embed: &crate::query::Embed,
        path: &[String],
        negate: bool,
        op: &Operation,
    ) -> Result<(), ApiError> {
        use crate::query::filter::IsValue;
        let wants_null = match op {
            Operation::Is(IsValue::Null) => !negate,
            Operation::Is(IsValue::NotNull) => negate,
            _ => {
                return Err(ApiError::BadRequest {
                    code: "PGRST120",
                    message:
                        "Only is null or not is null filters are allowed on embedded resources"
                            .into(),
                })
            }
        };
        let table = src.table.ok_or(ApiError::InvalidPath)?;
        let rel = self
            .cache
            .relationship(table, &embed.name, embed.hint.as_deref())?;
        let mut child_path = path.to_vec();
        child_path.push(embed.key().to_owned());
        if wants_null {
            self.sql.push("NOT ");
        }
        self.exists(&rel, alias, &embed.items, &child_path)
    }

    fn operation(
        &mut self,
        src: &Source,
        alias: &str,
        field: &Field,
        op: &Operation,
    ) -> Result<(), ApiError> {
        match op {
            Operation::Binary { op, value } => {
                self.field(src, alias, field)?;
                self.sql.push(" ").push(op.sql()).push(" ");
                let value = if op.is_like() {
                    value.replace('*', "%")
                } else {
                    value.clone()
                };
                self.sql.param(value);
            }
            Operation::Quantified { op, all, array } => {
                self.field(src, alias, field)?;
                let array = if op.is_like() {
                    array.replace('*', "%")
                } else {
                    array.clone()
                };
                self.sql
                    .push(" ")
                    .push(op.sql())
                    .push(if *all { " ALL(" } else { " ANY(" })
                    .param(array)
                    .push(")");
            }
            Operation::In(list) => {
                if list.is_empty() {
                    self.sql.push("false");
                } else {
                    self.field(src, alias, field)?;
                    self.sql
                        .push(" = ANY(")
                        .param(array_literal(list))
                        .push(")");
                }
            }
            Operation::Is(v) => {
                self.field(src, alias, field)?;
                self.sql.push(" IS ").push(v.sql());
            }
            Operation::Fts {
                kind,
                config,
                query,
            } => {
                let column = src.column(&field.name)?;
                let is_tsvector = column.type_name == "tsvector" && field.path.is_empty();
                if !is_tsvector {
                    self.sql.push("to_tsvector(");
                    if let Some(cfg) = config {
                        self.sql.param(cfg.clone()).push("::regconfig, ");
                    }
                }
                self.field(src, alias, field)?;
                if !is_tsvector {
                    self.sql.push(")");
                }
                self.sql.push(" @@ ").push(kind.function()).push("(");
                if let Some(cfg) = config {
                    self.sql.param(cfg.clone()).push("::regconfig, ");
                }
                self.sql.param(query.clone()).push(")");
            }
        }
        Ok(())
    }

    /// ` ORDER BY ...` of a level, or nothing.
    pub fn order_by(
        &mut self,
        src: &Source,
        alias: &str,
        items: &[SelectItem],
        path: &[String],
        terms: &[OrderTerm],
    ) -> Result<(), ApiError> {
        for (i, term) in terms.iter().enumerate() {
            self.sql.push(if i == 0 { " ORDER BY " } else { ", " });
            match &term.embed {
                None => self.field(src, alias, &term.field)?,
                Some(name) => self.embedded_order_key(src, alias, items, path, name, term)?,
            }
            self.sql
                .push(if term.descending { " DESC" } else { " ASC" });
            match term.nulls_first {
                Some(true) => self.sql.push(" NULLS FIRST"),
                Some(false) => self.sql.push(" NULLS LAST"),
                None => &mut self.sql,
            };
        }
        Ok(())
    }

    /// `order=rel(col)`: the column of the to-one embed `rel` (PGRST118 for to-many).
    fn embedded_order_key(
        &mut self,
        src: &Source,
        alias: &str,
        items: &[SelectItem],
        path: &[String],
        name: &str,
        term: &OrderTerm,
    ) -> Result<(), ApiError> {
        let embed = find_embed(items, name).ok_or_else(|| ApiError::BadRequest {
            code: "PGRST108",
            message: format!("'{name}' is not an embedded resource in this request"),
        })?;
        let table = src.table.ok_or(ApiError::InvalidPath)?;
        let rel = self
            .cache
            .relationship(table, &embed.name, embed.hint.as_deref())?;
        if !rel.to_one {
            return Err(ApiError::BadRequest {
                code: "PGRST118",
                message: format!("A related order on '{name}' is not possible"),
            });
        }
        let cache = self.cache;
        let target = cache
            .table(&rel.target_schema, &rel.target)
            .ok_or(ApiError::InvalidPath)?;
        let mut child_path = path.to_vec();
        child_path.push(embed.key().to_owned());
        let child = self.alias();
        self.sql.push("(SELECT ");
        self.field(&Source::table(target), &child, &term.field)?;
        self.embed_from_where(&rel, alias, &child, &embed.items, &child_path)?;
        self.sql.push(" LIMIT 1)");
        Ok(())
    }

    /// ` LIMIT n OFFSET m` from parsed integers, capped at `max_rows`.
    pub fn limit_offset(&mut self, limit: Option<u64>, offset: Option<u64>, max_rows: Option<u64>) {
        let limit = match (limit, max_rows) {
            (Some(l), Some(m)) => Some(l.min(m)),
            (l, m) => l.or(m),
        };
        if let Some(l) = limit {
            self.sql.push(&format!(" LIMIT {l}"));
        }
        if let Some(o) = offset.filter(|o| *o > 0) {
            self.sql.push(&format!(" OFFSET {o}"));
        }
    }
}

/// `rel(count)` or `rel(n:count)` on a table without a `count` column: the key to count under.
fn related_count(target: &crate::schema_cache::Table, items: &[SelectItem]) -> Option<String> {
    match items {
        [SelectItem::Column {
            field,
            alias,
            cast: None,
        }] if field.name == "count"
            && field.path.is_empty()
            && target.column("count").is_none() =>
        {
            Some(alias.clone().unwrap_or_else(|| "count".to_owned()))
        }
        _ => None,
    }
}

fn find_embed<'q>(items: &'q [SelectItem], key: &str) -> Option<&'q crate::query::Embed> {
    items.iter().find_map(|i| match i {
        SelectItem::Embed(e) if e.key() == key => Some(e),
        _ => None,
    })
}
