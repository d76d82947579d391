//! Embeds: the JSON value of a related table, spreads, `!inner` and `rel=is.null` tests, and
//! ordering by a to-one embed's column.

use super::expr::find_embed;
use super::{Builder, Source};
use crate::error::ApiError;
use crate::query::filter::Operation;
use crate::query::{OrderTerm, SelectItem};
use crate::schema_cache::{Join, Relationship};

impl<'a> Builder<'a> {
    /// The table a relationship leads to; the cache holds both ends of every relationship it
    /// lists, so this fails only on a cache that changed under the plan.
    fn target_of(&self, rel: &Relationship) -> Result<&'a crate::schema_cache::Table, ApiError> {
        self.cache
            .table(&rel.target_schema, &rel.target)
            .ok_or_else(|| ApiError::TableNotFound {
                schema: rel.target_schema.clone(),
                name: rel.target.clone(),
            })
    }

    /// The JSON value of an embed: an object (or null) for to-one, an array for to-many.
    pub(super) fn embed_value(
        &mut self,
        rel: &Relationship,
        parent_alias: &str,
        items: &[SelectItem],
        path: &[String],
    ) -> Result<(), ApiError> {
        let target = self.target_of(rel)?;
        let src = Source::embedded(target, path.len());
        let child = self.table_alias(&target.name, path.len());
        let modifiers = self.query.modifiers.get(path).cloned().unwrap_or_default();
        if let Some(key) = related_count(target, items) {
            // `rel(count)`: the number of related rows, as `[{"count": n}]`, or as
            // `{"count": n}` for a to-one embed, as PostgREST.
            let (open, close) = if rel.to_one {
                ("(SELECT json_build_object(", "::text, count(*))")
            } else {
                (
                    "(SELECT json_build_array(json_build_object(",
                    "::text, count(*)))",
                )
            };
            self.sql.push(open).param(key).push(close);
            self.embed_from_where(rel, parent_alias, &child, items, path)?;
            self.sql.push(")");
            return Ok(());
        }
        if rel.to_one {
            self.sql.push("(SELECT row_to_json(_e) FROM (SELECT ");
        } else {
            self.sql
                .push("(SELECT coalesce(json_agg(_e), '[]') FROM (SELECT ");
        }
        self.select_list(&src, &child, items, path)?;
        self.embed_from_where(rel, parent_alias, &child, items, path)?;
        self.group_by(&src, &child, items)?;
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
    pub(super) fn spread(
        &mut self,
        rel: &Relationship,
        parent_alias: &str,
        items: &[SelectItem],
        path: &[String],
    ) -> Result<(), ApiError> {
        let target = self.target_of(rel)?;
        let src = Source::embedded(target, path.len());
        let items = super::expand_star(target, items);
        let modifiers = self.query.modifiers.get(path).cloned().unwrap_or_default();
        for (i, item) in items.iter().enumerate() {
            let name = match item {
                SelectItem::Column { field, alias, .. } => alias
                    .clone()
                    .or_else(|| field.path.last().map(|s| s.key.clone()))
                    .unwrap_or_else(|| field.name.clone()),
                SelectItem::Embed(e) if !e.spread => e.key().to_owned(),
                // Over all the related rows: `...orders(amount.sum())`.
                SelectItem::Aggregate(a) => a
                    .alias
                    .clone()
                    .unwrap_or_else(|| a.function.name().to_owned()),
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
            let child = self.table_alias(&target.name, path.len());
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
    pub(super) fn embed_from_where(
        &mut self,
        rel: &Relationship,
        parent_alias: &str,
        child: &str,
        items: &[SelectItem],
        path: &[String],
    ) -> Result<(), ApiError> {
        let target = self.target_of(rel)?;
        self.sql.push(" FROM ");
        if let Join::Function {
            schema,
            name,
            arg_schema,
            arg_table,
        } = &rel.join
        {
            // A computed relationship: the rows the function returns for the parent's row.
            self.row_call(schema, name, parent_alias, arg_schema, arg_table)?;
        } else {
            self.sql.qualified(&target.schema, &target.name);
        }
        self.sql.push(" AS ").ident(child);
        match &rel.join {
            Join::Function { .. } => {
                self.sql.push(" WHERE true");
            }
            Join::Direct(pairs) => {
                self.sql.push(" WHERE ");
                let pairs = pairs.iter().map(|(p, c)| (c.as_str(), p.as_str()));
                self.equal_columns(child, parent_alias, pairs);
            }
            Join::Junction {
                schema,
                table,
                parent,
                target: target_pairs,
            } => {
                let j = self.table_alias(table, path.len());
                self.sql
                    .push(" JOIN ")
                    .qualified(schema, table)
                    .push(" AS ")
                    .ident(&j)
                    .push(" ON ");
                let on = target_pairs.iter().map(|(c, jc)| (jc.as_str(), c.as_str()));
                self.equal_columns(&j, child, on);
                self.sql.push(" WHERE ");
                let parents = parent.iter().map(|(p, jc)| (jc.as_str(), p.as_str()));
                self.equal_columns(&j, parent_alias, parents);
            }
        }
        let src = Source::embedded(target, path.len());
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

    /// `"left"."a" = "right"."b" AND ...` for each `(a, b)`.
    fn equal_columns<'c>(
        &mut self,
        left: &str,
        right: &str,
        pairs: impl Iterator<Item = (&'c str, &'c str)>,
    ) {
        for (i, (a, b)) in pairs.enumerate() {
            if i > 0 {
                self.sql.push(" AND ");
            }
            self.sql
                .ident(left)
                .push(".")
                .ident(a)
                .push(" = ")
                .ident(right)
                .push(".")
                .ident(b);
        }
    }

    pub(super) fn exists(
        &mut self,
        rel: &Relationship,
        parent_alias: &str,
        items: &[SelectItem],
        path: &[String],
    ) -> Result<(), ApiError> {
        let child = self.table_alias(&rel.target, path.len());
        self.sql.push("EXISTS (SELECT 1");
        self.embed_from_where(rel, parent_alias, &child, items, path)?;
        self.sql.push(")");
        Ok(())
    }

    /// `rel=is.null` / `rel=not.is.null`: parents without (or with) a related row.
    pub(super) fn embed_null_filter(
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

    /// `order=rel(col)`: the column of the to-one embed `rel` (PGRST118 for to-many).
    pub(super) fn embedded_order_key(
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
        let child = self.table_alias(&target.name, child_path.len());
        self.sql.push("(SELECT ");
        self.field(
            &Source::embedded(target, child_path.len()),
            &child,
            &term.field,
        )?;
        self.embed_from_where(&rel, alias, &child, &embed.items, &child_path)?;
        self.sql.push(" LIMIT 1)");
        Ok(())
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
