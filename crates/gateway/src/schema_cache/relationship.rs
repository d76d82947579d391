//! Finding the relationship an embed names: to-one and to-many through a foreign key, and
//! many-to-many through a junction table whose key holds both foreign keys.

use super::{ForeignKey, SchemaCache, Table};
use crate::error::ApiError;

/// How the embedded table joins its parent.
#[derive(Debug, Clone)]
pub enum Join {
    /// `(parent column, embedded column)` pairs.
    Direct(Vec<(String, String)>),
    /// Through `junction`: `(parent column, junction column)` and `(embedded column, junction column)`.
    Junction {
        schema: String,
        table: String,
        parent: Vec<(String, String)>,
        target: Vec<(String, String)>,
    },
}

/// A resolved embed.
#[derive(Debug, Clone)]
pub struct Relationship {
    pub target_schema: String,
    pub target: String,
    /// An object (or null) rather than an array.
    pub to_one: bool,
    pub join: Join,
    /// The constraint (or junction) name, for hints and error messages.
    pub name: String,
}

impl SchemaCache {
    /// The one relationship from `parent` that `name` (with optional `hint`) designates.
    pub fn relationship(
        &self,
        parent: &Table,
        name: &str,
        hint: Option<&str>,
    ) -> Result<Relationship, ApiError> {
        let mut found: Vec<(Relationship, Vec<String>)> = Vec::new();
        let is_parent = |schema: &str, table: &str| schema == parent.schema && table == parent.name;
        for fk in self.foreign_keys() {
            let single_column = fk.columns.len() == 1 && fk.columns[0] == name;
            // Many-to-one: the parent holds the key.
            if is_parent(&fk.schema, &fk.table)
                && (fk.foreign_table == name || fk.name == name || single_column)
            {
                found.push((
                    Relationship {
                        target_schema: fk.foreign_schema.clone(),
                        target: fk.foreign_table.clone(),
                        to_one: true,
                        join: Join::Direct(pairs(&fk.columns, &fk.foreign_columns)),
                        name: fk.name.clone(),
                    },
                    hint_names(fk),
                ));
            }
            // One-to-many (one-to-one when the key is unique): the embedded table holds it.
            if is_parent(&fk.foreign_schema, &fk.foreign_table)
                && (fk.table == name || fk.name == name)
            {
                let unique = self
                    .table(&fk.schema, &fk.table)
                    .is_some_and(|t| t.unique_keys.iter().any(|k| same_set(k, &fk.columns)));
                found.push((
                    Relationship {
                        target_schema: fk.schema.clone(),
                        target: fk.table.clone(),
                        to_one: unique,
                        join: Join::Direct(pairs(&fk.foreign_columns, &fk.columns)),
                        name: fk.name.clone(),
                    },
                    hint_names(fk),
                ));
            }
        }
        if let Some(target) = self.table(&parent.schema, name) {
            found.extend(self.many_to_many(parent, target));
        }
        if let Some(hint) = hint {
            found.retain(|(_, names)| names.iter().any(|n| n == hint));
        }
        match found.len() {
            0 => Err(ApiError::NoRelationship {
                from: parent.name.clone(),
                to: name.to_owned(),
            }),
            1 => Ok(found.remove(0).0),
            _ => Err(ApiError::AmbiguousEmbed {
                from: parent.name.clone(),
                to: name.to_owned(),
                candidates: found.into_iter().map(|(r, _)| r.name).collect(),
            }),
        }
    }

    fn many_to_many(&self, parent: &Table, target: &Table) -> Vec<(Relationship, Vec<String>)> {
        let mut out = Vec::new();
        let fks = self.foreign_keys();
        for a in fks {
            if a.foreign_schema != parent.schema || a.foreign_table != parent.name {
                continue;
            }
            let Some(junction) = self.table(&a.schema, &a.table) else {
                continue;
            };
            let in_key =
                |fk: &ForeignKey| fk.columns.iter().all(|c| junction.primary_key.contains(c));
            if !in_key(a) {
                continue;
            }
            for b in fks {
                if std::ptr::eq(a, b)
                    || b.schema != a.schema
                    || b.table != a.table
                    || b.foreign_schema != target.schema
                    || b.foreign_table != target.name
                    || !in_key(b)
                {
                    continue;
                }
                out.push((
                    Relationship {
                        target_schema: target.schema.clone(),
                        target: target.name.clone(),
                        to_one: false,
                        join: Join::Junction {
                            schema: junction.schema.clone(),
                            table: junction.name.clone(),
                            parent: pairs(&a.foreign_columns, &a.columns),
                            target: pairs(&b.foreign_columns, &b.columns),
                        },
                        name: junction.name.clone(),
                    },
                    vec![junction.name.clone(), a.name.clone(), b.name.clone()],
                ));
            }
        }
        out
    }
}

fn pairs(left: &[String], right: &[String]) -> Vec<(String, String)> {
    left.iter().cloned().zip(right.iter().cloned()).collect()
}

/// Names a `!hint` may use for this key: the constraint, or its single column.
fn hint_names(fk: &ForeignKey) -> Vec<String> {
    let mut names = vec![fk.name.clone()];
    names.extend(fk.columns.iter().cloned());
    names.extend(fk.foreign_columns.iter().cloned());
    names
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}
