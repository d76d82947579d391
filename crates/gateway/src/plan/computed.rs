//! Functions of a row in SQL: computed fields as columns, and the call a computed relationship
//! reads its rows from.

use super::{Builder, Source};
use crate::error::ApiError;
use crate::schema_cache::ComputedFunction;

impl<'a> Builder<'a> {
    /// `"schema"."fn"(ROW("alias"."c1", ...)::"arg_schema"."arg_table")`: the parameter's row
    /// built from its columns, so it also fits rows read from a CTE that carries more columns
    /// (write representations, counted RPC calls) and no column can shadow the alias.
    pub(super) fn row_call(
        &mut self,
        schema: &str,
        name: &str,
        alias: &str,
        arg_schema: &str,
        arg_table: &str,
    ) -> Result<(), ApiError> {
        let table =
            self.cache
                .table(arg_schema, arg_table)
                .ok_or_else(|| ApiError::TableNotFound {
                    schema: arg_schema.to_owned(),
                    name: arg_table.to_owned(),
                })?;
        self.sql.qualified(schema, name).push("(ROW(");
        for (i, column) in table.columns.iter().enumerate() {
            if i > 0 {
                self.sql.push(", ");
            }
            self.sql.ident(alias).push(".").ident(&column.name);
        }
        self.sql
            .push(")::")
            .qualified(arg_schema, arg_table)
            .push(")");
        Ok(())
    }

    /// The computed field `name` of the level's table, when it has no column of that name.
    pub(super) fn computed_field(&self, src: &Source, name: &str) -> Option<&'a ComputedFunction> {
        let cache = self.cache;
        if src.columns.iter().any(|c| c.name == name) {
            return None;
        }
        cache.computed_field(src.table?, name)
    }

    /// True when `name` is a column or a computed field of the level.
    pub(super) fn has_field(&self, src: &Source, name: &str) -> bool {
        src.column(name).is_ok() || self.computed_field(src, name).is_some()
    }

    /// The `typname` of a column or computed field (42703 when it is neither).
    pub(super) fn field_type_name(&self, src: &Source, name: &str) -> Result<String, ApiError> {
        match src.column(name) {
            Ok(column) => Ok(column.type_name.clone()),
            Err(e) => self
                .computed_field(src, name)
                .map(|f| f.type_name.clone())
                .ok_or(e),
        }
    }

    /// A column's or computed field's value, without a JSON path.
    pub(super) fn field_head(
        &mut self,
        src: &Source,
        alias: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        match src.column(name) {
            Ok(column) => {
                self.sql.ident(alias).push(".").ident(&column.name);
                Ok(())
            }
            Err(e) => {
                let f = self.computed_field(src, name).ok_or(e)?;
                self.row_call(&f.schema, &f.name, alias, &f.table_schema, &f.table)
            }
        }
    }
}
