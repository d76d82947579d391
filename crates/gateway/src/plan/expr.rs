//! Expressions of one level: select lists, order and paging.

use super::{Builder, Source};
use crate::error::ApiError;
use crate::query::{Field, OrderTerm, SelectItem};

impl<'a> Builder<'a> {
    /// `"cities_1"."col"->'a'->>'b'` for a checked column or computed field.
    pub fn field(&mut self, src: &Source, alias: &str, field: &Field) -> Result<(), ApiError> {
        self.field_head(src, alias, &field.name)?;
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
        // PostgREST resolves every relationship before PostgreSQL sees a duplicate alias.
        for item in items {
            if let SelectItem::Embed(embed) = item {
                self.embed_relationship(src, embed)?;
            }
        }
        check_embed_names(src, items, path)?;
        let mut first = true;
        for item in items {
            if let SelectItem::Embed(embed) = item {
                if embed.items.is_empty() {
                    // `users()`: joined by `!inner` and filters, but nothing of it reaches the body.
                    let mut child_path = path.to_vec();
                    child_path.push(embed.key().to_owned());
                    self.used_paths.insert(child_path);
                    continue;
                }
            }
            if !first {
                self.sql.push(", ");
            }
            first = false;
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
                SelectItem::Aggregate(agg) => {
                    if agg.cast.is_some() {
                        self.sql.push("(");
                    }
                    self.sql.push(agg.function.name()).push("(");
                    match (&agg.field, &agg.input_cast) {
                        (None, _) => {
                            self.sql.push("*");
                        }
                        (Some(field), None) => self.field(src, alias, field)?,
                        (Some(field), Some(cast)) => {
                            let cast = self.checked_type(cast)?;
                            self.sql.push("(");
                            self.field(src, alias, field)?;
                            self.sql.push(")::").push(&cast);
                        }
                    }
                    self.sql.push(")");
                    if let Some(cast) = &agg.cast {
                        let cast = self.checked_type(cast)?;
                        self.sql.push(")::").push(&cast);
                    }
                    let output = agg.alias.as_deref().unwrap_or(agg.function.name());
                    self.sql.push(" AS ").ident(output);
                }
                SelectItem::Embed(embed) => {
                    let rel = self.embed_relationship(src, embed)?;
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

    /// ` GROUP BY ...` when the level selects an aggregate: its other columns group the rows,
    /// and an embed groups by the parent's columns that join it.
    pub fn group_by(
        &mut self,
        src: &Source,
        alias: &str,
        items: &[SelectItem],
    ) -> Result<(), ApiError> {
        if !items.iter().any(|i| matches!(i, SelectItem::Aggregate(_))) {
            return Ok(());
        }
        let mut keys: Vec<String> = Vec::new();
        let mut fields = Vec::new();
        for item in items {
            match item {
                SelectItem::Star => keys.extend(src.columns.iter().map(|c| c.name.clone())),
                SelectItem::Column { field, .. } => fields.push(field),
                SelectItem::Embed(embed) if !embed.items.is_empty() => {
                    let rel = self.embed_relationship(src, embed)?;
                    let pairs = match &rel.join {
                        crate::schema_cache::Join::Direct(pairs) => pairs,
                        crate::schema_cache::Join::Junction { parent, .. } => parent,
                        // The function reads the parent's whole row: group by all its columns.
                        crate::schema_cache::Join::Function { .. } => {
                            keys.extend(src.columns.iter().map(|c| c.name.clone()));
                            continue;
                        }
                    };
                    keys.extend(pairs.iter().map(|(p, _)| p.clone()));
                }
                SelectItem::Embed(_) | SelectItem::Aggregate(_) => {}
            }
        }
        if keys.is_empty() && fields.is_empty() {
            return Ok(());
        }
        self.sql.push(" GROUP BY ");
        for (i, key) in keys.iter().enumerate() {
            if i > 0 {
                self.sql.push(", ");
            }
            let column = src.column(key)?;
            self.sql.ident(alias).push(".").ident(&column.name);
        }
        for (i, field) in fields.into_iter().enumerate() {
            if i > 0 || !keys.is_empty() {
                self.sql.push(", ");
            }
            self.field(src, alias, field)?;
        }
        Ok(())
    }

    /// The relationship an embed of `src` names.
    fn embed_relationship(
        &self,
        src: &Source,
        embed: &crate::query::Embed,
    ) -> Result<crate::schema_cache::Relationship, ApiError> {
        let table = src.table.ok_or_else(|| ApiError::NoRelationship {
            from: src.name.to_owned(),
            to: embed.name.clone(),
            embed_hint: embed.hint.clone(),
            schema: src.schema.to_owned(),
            suggestion: None,
        })?;
        self.cache
            .relationship(table, &embed.name, embed.hint.as_deref())
    }

    /// A cast's type, after checking it names a known type.
    pub(super) fn checked_type(&self, name: &str) -> Result<String, ApiError> {
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

/// Two embeds under one key at one level: PostgreSQL's 42712 as PostgREST's SQL meets it, where
/// each embed is joined as `<parent>_<key>_<depth>`.
fn check_embed_names(src: &Source, items: &[SelectItem], path: &[String]) -> Result<(), ApiError> {
    let mut seen = std::collections::BTreeSet::new();
    for item in items {
        if let SelectItem::Embed(embed) = item {
            if !seen.insert(embed.key()) {
                return Err(ApiError::Db {
                    sqlstate: "42712".into(),
                    message: format!(
                        "table name \"{}_{}_{}\" specified more than once",
                        src.name,
                        embed.key(),
                        path.len() + 1
                    ),
                    details: None,
                    hint: None,
                    authenticated: false,
                });
            }
        }
    }
    Ok(())
}

pub(super) fn find_embed<'q>(
    items: &'q [SelectItem],
    key: &str,
) -> Option<&'q crate::query::Embed> {
    items.iter().find_map(|i| match i {
        SelectItem::Embed(e) if e.key() == key => Some(e),
        _ => None,
    })
}
