//! Conditions (§1.4): filters, logic trees and the WHERE clause of a level.

use super::expr::find_embed;
use super::{Builder, Source};
use crate::error::ApiError;
use crate::query::filter::{Condition, Operation};
use crate::query::{Field, SelectItem};
use crate::sql::array_literal;

impl<'a> Builder<'a> {
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

    /// One condition as a boolean expression.
    pub(super) fn condition(
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
                if !self.has_field(src, &field.name) && field.path.is_empty() {
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

    pub(super) fn operation(
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
                let type_name = self.field_type_name(src, &field.name)?;
                let is_tsvector = type_name == "tsvector" && field.path.is_empty();
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
}
