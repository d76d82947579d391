//! Functions on a table's row type, as PostgREST uses them: computed fields (`fn(t) returns
//! scalar`, selected, filtered and ordered like a column) and computed relationships
//! (`fn(t) returns [SETOF] t2`, embedded like a related table).
//!
//! Only functions of one parameter whose type is the row type of a table or view of the same
//! exposed schema are loaded (`sql/introspect.sql`, `computed`), so only names this cache holds
//! reach SQL, always schema-qualified and quoted.

use serde::Deserialize;

use super::relationship::{Cardinality, Join, Relationship};
use super::{SchemaCache, Table};

/// `schema.name(table_schema.table)`, from the catalog.
#[derive(Debug, Clone, Deserialize)]
pub struct ComputedFunction {
    pub schema: String,
    pub name: String,
    /// The table or view whose row type the single parameter is.
    pub table_schema: String,
    pub table: String,
    /// `pg_type` OIDs of the parameter and of the result, as the catalog has them.
    pub arg_type_oid: u32,
    pub return_type_oid: u32,
    /// The table or view whose row type it returns: a computed relationship.
    #[serde(default)]
    pub target_schema: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    /// `format_type` of the result, and its `typname`.
    #[serde(rename = "type")]
    pub data_type: String,
    pub type_name: String,
    pub returns_set: bool,
    /// Not SETOF, or `ROWS 1`: the embed is an object (or null), not an array.
    pub single_row: bool,
}

impl SchemaCache {
    /// The functions taking a row of `table`.
    fn computed_of(&self, table: &Table) -> &[ComputedFunction] {
        self.computed
            .get(&(table.schema.clone(), table.name.clone()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The computed field `name` of `table`: a function of its row that returns one value
    /// (a column of the same name wins, as in PostgreSQL's `t.name`).
    pub fn computed_field(&self, table: &Table, name: &str) -> Option<&ComputedFunction> {
        self.computed_of(table)
            .iter()
            .find(|f| f.name == name && !f.returns_set)
    }

    /// The computed relationships of `parent`: its functions returning rows of an exposed table.
    pub(super) fn computed_relationships(&self, parent: &Table) -> Vec<Relationship> {
        self.computed_of(parent)
            .iter()
            .filter_map(|f| {
                let (schema, target) = (f.target_schema.as_ref()?, f.target.as_ref()?);
                let table = self.table(schema, target)?;
                Some(Relationship::computed(
                    f,
                    table,
                    if f.single_row {
                        Cardinality::ManyToOne
                    } else {
                        Cardinality::OneToMany
                    },
                ))
            })
            .collect()
    }
}

impl Relationship {
    /// A relationship through the function `f`, whose rows are those of `target`.
    fn computed(f: &ComputedFunction, target: &Table, cardinality: Cardinality) -> Relationship {
        Relationship {
            target_schema: target.schema.clone(),
            target: target.name.clone(),
            to_one: f.single_row,
            join: Join::Function {
                schema: f.schema.clone(),
                name: f.name.clone(),
                arg_schema: f.table_schema.clone(),
                arg_table: f.table.clone(),
            },
            name: f.name.clone(),
            cardinality,
            is_self: f.table_schema == target.schema && f.table == target.name,
            target_is_view: target.is_view,
            junction_keys: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(name: &str, columns: &[&str]) -> serde_json::Value {
        let columns: Vec<_> = columns
            .iter()
            .map(|c| json!({"name": c, "type": "integer"}))
            .collect();
        json!({"schema": "public", "name": name, "is_view": false, "columns": columns,
               "primary_key": ["id"], "unique_keys": [["id"]]})
    }

    fn function(
        name: &str,
        on: &str,
        target: Option<&str>,
        set: bool,
        rows1: bool,
    ) -> serde_json::Value {
        json!({"schema": "public", "name": name, "table_schema": "public", "table": on,
               "arg_type_oid": 1, "return_type_oid": 2,
               "target_schema": target.map(|_| "public"), "target": target,
               "type": target.unwrap_or("text"), "type_name": target.unwrap_or("text"),
               "returns_set": set, "single_row": !set || rows1})
    }

    /// `writers` and `novels` (novels.writer_id -> writers.id) and functions of a writer's row.
    fn cache() -> SchemaCache {
        let doc = json!({
            "tables": [table("writers", &["id", "name"]), table("novels", &["id", "writer_id"])],
            "foreign_keys": [{"name": "novels_writer_id_fkey", "schema": "public", "table": "novels",
                              "columns": ["writer_id"], "foreign_schema": "public",
                              "foreign_table": "writers", "foreign_columns": ["id"]}],
            "functions": [],
            "computed": [
                function("all_novels", "writers", Some("novels"), true, false),
                function("longest", "writers", Some("novels"), true, true),
                function("debut", "writers", Some("novels"), false, false),
                function("novels", "writers", Some("novels"), true, false),
                function("tag", "writers", None, false, false),
                function("tags", "writers", None, true, false),
            ],
            "types": []
        });
        SchemaCache::from_json(&doc.to_string()).unwrap()
    }

    #[test]
    fn computed_relationships_by_function_name_with_their_cardinality() {
        let cache = cache();
        let writers = cache.table("public", "writers").unwrap();
        let many = cache.relationship(writers, "all_novels", None).unwrap();
        assert!(many.is_computed() && !many.to_one && many.target == "novels");
        assert!(cache.relationship(writers, "longest", None).unwrap().to_one);
        assert!(cache.relationship(writers, "debut", None).unwrap().to_one);
        // a hint does not narrow a computed relationship
        assert!(cache.relationship(writers, "debut", Some("x")).is_ok());
        // computed fields are not relationships
        assert!(cache.relationship(writers, "tag", None).is_err());
    }

    #[test]
    fn a_function_named_like_the_related_table_overrides_the_foreign_key() {
        let cache = cache();
        let writers = cache.table("public", "writers").unwrap();
        let rel = cache.relationship(writers, "novels", None).unwrap();
        assert!(matches!(&rel.join, Join::Function { name, .. } if name == "novels"));
        // from the other side the foreign key still holds
        let novels = cache.table("public", "novels").unwrap();
        let back = cache.relationship(novels, "writers", None).unwrap();
        assert!(!back.is_computed() && back.to_one);
    }

    #[test]
    fn computed_fields_return_one_value_and_belong_to_their_table() {
        let cache = cache();
        let writers = cache.table("public", "writers").unwrap();
        let novels = cache.table("public", "novels").unwrap();
        assert_eq!(cache.computed_field(writers, "tag").unwrap().name, "tag");
        assert!(cache.computed_field(writers, "tags").is_none());
        assert!(cache.computed_field(novels, "tag").is_none());
        assert!(cache.computed_field(writers, "debut").is_some());
    }
}
