//! A published table as realtime sees it: its columns with their types and how their text form
//! is compared and turned into JSON, its primary key, and whether RLS is on. Loaded by
//! `catalog`; read by every step of the pipeline.

use serde_json::{json, Value};

/// How a column's text form is compared and turned into JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeKind {
    Integer,
    Float,
    /// `numeric`: compared and probed as a float, but written on the wire as PostgreSQL
    /// printed it (`payload::data_text`).
    Numeric,
    Bool,
    Json,
    Uuid,
    Timestamp,
    Array,
    Text,
}

impl TypeKind {
    /// The kind of a type, by its `pg_type.typname` and category.
    pub fn of(typname: &str, category: &str) -> TypeKind {
        match typname {
            "int2" | "int4" | "int8" | "oid" => TypeKind::Integer,
            "float4" | "float8" => TypeKind::Float,
            "numeric" => TypeKind::Numeric,
            "bool" => TypeKind::Bool,
            "json" | "jsonb" => TypeKind::Json,
            "uuid" => TypeKind::Uuid,
            "timestamptz" | "timestamp" => TypeKind::Timestamp,
            _ if category == "A" => TypeKind::Array,
            _ => TypeKind::Text,
        }
    }
}

/// A column of a published table.
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    /// `pg_type.typname`, as Supabase sends it in `columns` (`int4`, `_text`, an enum's name).
    pub typname: String,
    pub kind: TypeKind,
    /// For arrays, the kind of the elements.
    pub element: TypeKind,
}

/// A published table.
#[derive(Debug)]
pub struct Table {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// In attnum order, dropped columns left out.
    pub columns: Vec<Column>,
    /// Primary-key column names (from `pg_index`, not the Relation message's identity flags).
    pub primary_key: Vec<String>,
    pub rls: bool,
}

impl Table {
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// `"schema"."name"`, quoted.
    pub fn qualified(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

/// Quotes an identifier for SQL.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The `columns` of a payload: `{name, type}` of each column a role may see, in table order.
pub fn columns_json<'c>(columns: impl Iterator<Item = &'c Column>) -> Value {
    Value::Array(
        columns
            .map(|c| json!({"name": c.name, "type": c.typname}))
            .collect(),
    )
}
