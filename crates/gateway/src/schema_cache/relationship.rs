//! Finding the relationship an embed names: to-one and to-many through a foreign key, and
//! many-to-many through a junction table whose key holds both foreign keys.

use super::{ForeignKey, SchemaCache, Table};
use crate::error::{ApiError, Candidate};
use crate::suggestion::{self, NameSet};

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
    /// A computed relationship: the rows `schema.name(parent)` returns, the parent's row cast
    /// to `arg_schema.arg_table` (the function's parameter type).
    Function {
        schema: String,
        name: String,
        arg_schema: String,
        arg_table: String,
    },
}

/// How many rows of each side meet, as PostgREST names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    ManyToOne,
    OneToMany,
    OneToOne,
    ManyToMany,
}

impl Cardinality {
    fn label(self) -> &'static str {
        match self {
            Cardinality::ManyToOne => "many-to-one",
            Cardinality::OneToMany => "one-to-many",
            Cardinality::OneToOne => "one-to-one",
            Cardinality::ManyToMany => "many-to-many",
        }
    }
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
    pub cardinality: Cardinality,
    /// Both ends are the same table (one foreign key, seen from each side).
    pub is_self: bool,
    /// The target is a view: PostgREST then only takes its name, not a constraint or column.
    pub(super) target_is_view: bool,
    /// For a many-to-many: the junction's two constraints and its columns for each.
    pub(super) junction_keys: Option<[(String, Vec<String>); 2]>,
}

impl Relationship {
    /// The schema of a computed relationship's function.
    fn target_schema_of_function(&self) -> &str {
        match &self.join {
            Join::Function { schema, .. } => schema,
            _ => &self.target_schema,
        }
    }

    /// The origin's column of a single-column key (`client_id` of `projects`).
    fn origin_column(&self) -> Option<&str> {
        match &self.join {
            Join::Direct(p) if p.len() == 1 => Some(&p[0].0),
            _ => None,
        }
    }

    /// The target's column of a single-column key.
    fn target_column(&self) -> Option<&str> {
        match &self.join {
            Join::Direct(p) if p.len() == 1 => Some(&p[0].1),
            _ => None,
        }
    }

    /// The constraint, for a relationship through one foreign key.
    fn constraint(&self) -> Option<&str> {
        (self.cardinality != Cardinality::ManyToMany && !self.is_computed())
            .then_some(self.name.as_str())
    }

    /// Through a function of the parent's row rather than a foreign key.
    pub fn is_computed(&self) -> bool {
        matches!(self.join, Join::Function { .. })
    }

    /// Whether the embed `name!hint` designates this relationship, by PostgREST's rules.
    fn designated_by(&self, name: &str, hint: Option<&str>) -> bool {
        if self.is_computed() {
            // Only by the function's name; a hint does not narrow it (PostgREST's findRel).
            return name == self.name;
        }
        let by_target = name == self.target;
        if self.is_self {
            // One key, two relationships: the table name means the children (one-to-many), the
            // key's column the parent (many-to-one); a hint picks the children by their column.
            return match hint {
                None => {
                    (by_target && self.cardinality == Cardinality::OneToMany)
                        || (self.cardinality == Cardinality::ManyToOne
                            && self.origin_column() == Some(name))
                }
                Some(h) => {
                    by_target
                        && self.cardinality == Cardinality::OneToMany
                        && self.target_column() == Some(h)
                }
            };
        }
        match hint {
            None => {
                by_target
                    || (!self.target_is_view
                        && (self.constraint() == Some(name) || self.origin_column() == Some(name)))
            }
            Some(h) => {
                by_target
                    && (self.constraint() == Some(h)
                        || self.origin_column() == Some(h)
                        || self.target_column() == Some(h)
                        || (self.cardinality == Cardinality::ManyToMany && self.name == h))
            }
        }
    }

    /// PostgREST's derived order of relationships: target, self, then one-to-many, many-to-one,
    /// one-to-one, many-to-many, then the constraint (or junction and constraints) and columns.
    fn order_key(&self) -> (bool, String, String, bool, u8, Vec<String>) {
        let rank = match self.cardinality {
            Cardinality::OneToMany => 0,
            Cardinality::ManyToOne => 1,
            Cardinality::OneToOne => 2,
            Cardinality::ManyToMany => 3,
        };
        let mut rest = Vec::new();
        match (&self.join, &self.junction_keys) {
            (Join::Junction { schema, table, .. }, Some([(c1, _), (c2, _)])) => {
                rest.extend([schema.clone(), table.clone(), c1.clone(), c2.clone()]);
            }
            _ => rest.push(self.name.clone()),
        }
        if let Join::Direct(pairs) | Join::Junction { parent: pairs, .. } = &self.join {
            rest.extend(pairs.iter().flat_map(|(a, b)| [a.clone(), b.clone()]));
        }
        (
            // Computed relationships after the foreign keys, as PostgREST sorts them.
            self.is_computed(),
            self.target_schema.clone(),
            self.target.clone(),
            self.is_self,
            rank,
            rest,
        )
    }

    /// How PGRST201 lists it.
    fn candidate(&self, origin: &str) -> Candidate {
        let cols = |c: &[String]| format!("({})", c.join(", "));
        let relationship = match (&self.join, &self.junction_keys) {
            (Join::Junction { table, .. }, Some([(c1, k1), (c2, k2)])) => {
                format!("{table} using {c1}{} and {c2}{}", cols(k1), cols(k2))
            }
            (Join::Function { schema, name, .. }, _) => {
                format!("{schema}.{name}({origin}) returning {}", self.target)
            }
            (Join::Direct(p), _) | (Join::Junction { parent: p, .. }, None) => {
                let left: Vec<String> = p.iter().map(|(a, _)| a.clone()).collect();
                let right: Vec<String> = p.iter().map(|(_, b)| b.clone()).collect();
                format!(
                    "{} using {origin}{} and {}{}",
                    self.name,
                    cols(&left),
                    self.target,
                    cols(&right)
                )
            }
        };
        Candidate {
            cardinality: self.cardinality.label(),
            embedding: format!("{origin} with {}", self.target),
            relationship,
            hint: self.name.clone(),
        }
    }
}

impl SchemaCache {
    /// The one relationship from `parent` that `name` (with optional `hint`) designates, chosen
    /// as PostgREST chooses it (`Plan.findRel`): PGRST200 when none, PGRST201 when several.
    pub fn relationship(
        &self,
        parent: &Table,
        name: &str,
        hint: Option<&str>,
    ) -> Result<Relationship, ApiError> {
        let all = self.relationships_of(parent);
        let mut found: Vec<Relationship> = all
            .iter()
            .filter(|r| r.designated_by(name, hint))
            .cloned()
            .collect();
        match found.len() {
            0 => Err(ApiError::NoRelationship {
                from: parent.name.clone(),
                to: name.to_owned(),
                embed_hint: hint.map(str::to_owned),
                schema: parent.schema.clone(),
                suggestion: self.relationship_suggestion(parent, name, &all),
            }),
            1 => Ok(found.remove(0)),
            _ => Err(ApiError::AmbiguousEmbed {
                from: parent.name.clone(),
                to: name.to_owned(),
                candidates: found.iter().map(|r| r.candidate(&parent.name)).collect(),
            }),
        }
    }

    /// "Perhaps you meant ...": a close table name with relationships when `parent` has none,
    /// otherwise a close name among the tables `parent` relates to.
    fn relationship_suggestion(
        &self,
        parent: &Table,
        name: &str,
        rels: &[Relationship],
    ) -> Option<String> {
        if rels.is_empty() {
            let origins = self.foreign_keys().iter().flat_map(|fk| {
                [
                    (&fk.schema, &fk.table),
                    (&fk.foreign_schema, &fk.foreign_table),
                ]
            });
            let names = origins
                .filter(|(s, _)| **s == parent.schema)
                .map(|(_, t)| t.clone());
            let set = NameSet::new(names);
            let found = set.get_one(&parent.name, suggestion::DEFAULT_MIN)?;
            return Some(format!(
                "Perhaps you meant '{found}' instead of '{}'.",
                parent.name
            ));
        }
        let set = NameSet::new(rels.iter().map(|r| r.target.clone()));
        let found = set
            .get(name, suggestion::DEFAULT_MIN)
            .into_iter()
            .find(|(score, _)| *score < 1.0)?
            .1;
        Some(format!("Perhaps you meant '{found}' instead of '{name}'."))
    }

    /// Every relationship from `parent`: the keys it holds (many-to-one, one-to-one when the key
    /// is unique), many-to-many through junctions, the keys pointing at it (one-to-many or
    /// one-to-one); sorted as PostgREST sorts them, which is the order PGRST201 lists.
    fn relationships_of(&self, parent: &Table) -> Vec<Relationship> {
        let is_parent = |schema: &str, table: &str| schema == parent.schema && table == parent.name;
        let fks: Vec<&ForeignKey> = self.foreign_keys().iter().collect();
        let mut out = Vec::new();
        for fk in &fks {
            if is_parent(&fk.schema, &fk.table) {
                let one = self.key_is_unique(fk);
                out.push(Relationship {
                    target_schema: fk.foreign_schema.clone(),
                    target: fk.foreign_table.clone(),
                    to_one: true,
                    join: Join::Direct(pairs(&fk.columns, &fk.foreign_columns)),
                    name: fk.name.clone(),
                    cardinality: if one {
                        Cardinality::OneToOne
                    } else {
                        Cardinality::ManyToOne
                    },
                    is_self: is_self(fk),
                    target_is_view: self.is_view(&fk.foreign_schema, &fk.foreign_table),
                    junction_keys: None,
                });
            }
        }
        out.extend(self.many_to_many(parent, &fks));
        for fk in &fks {
            if is_parent(&fk.foreign_schema, &fk.foreign_table) {
                let one = self.key_is_unique(fk);
                out.push(Relationship {
                    target_schema: fk.schema.clone(),
                    target: fk.table.clone(),
                    to_one: one,
                    join: Join::Direct(pairs(&fk.foreign_columns, &fk.columns)),
                    name: fk.name.clone(),
                    cardinality: if one {
                        Cardinality::OneToOne
                    } else {
                        Cardinality::OneToMany
                    },
                    is_self: is_self(fk),
                    target_is_view: self.is_view(&fk.schema, &fk.table),
                    junction_keys: None,
                });
            }
        }
        // A computed relationship overrides the foreign keys to a table of its name.
        let computed = self.computed_relationships(parent);
        out.retain(|r| {
            !computed
                .iter()
                .any(|c| c.name == r.target && c.target_schema_of_function() == r.target_schema)
        });
        out.extend(computed);
        out.sort_by_cached_key(Relationship::order_key);
        out
    }

    fn is_view(&self, schema: &str, name: &str) -> bool {
        self.table(schema, name).is_some_and(|t| t.is_view)
    }

    /// The key's columns are exactly the holder's primary key or one of its unique keys.
    fn key_is_unique(&self, fk: &ForeignKey) -> bool {
        self.table(&fk.schema, &fk.table).is_some_and(|t| {
            same_set(&t.primary_key, &fk.columns)
                || t.unique_keys.iter().any(|k| same_set(k, &fk.columns))
        })
    }

    /// Through a junction holding a key to `parent` and another to the target, both within its
    /// primary key.
    fn many_to_many(&self, parent: &Table, fks: &[&ForeignKey]) -> Vec<Relationship> {
        let mut out = Vec::new();
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
                if a.name == b.name || b.schema != a.schema || b.table != a.table || !in_key(b) {
                    continue;
                }
                out.push(Relationship {
                    target_schema: b.foreign_schema.clone(),
                    target: b.foreign_table.clone(),
                    to_one: false,
                    join: Join::Junction {
                        schema: junction.schema.clone(),
                        table: junction.name.clone(),
                        parent: pairs(&a.foreign_columns, &a.columns),
                        target: pairs(&b.foreign_columns, &b.columns),
                    },
                    name: junction.name.clone(),
                    cardinality: Cardinality::ManyToMany,
                    is_self: b.foreign_schema == parent.schema && b.foreign_table == parent.name,
                    target_is_view: self.is_view(&b.foreign_schema, &b.foreign_table),
                    junction_keys: Some([
                        (a.name.clone(), a.columns.clone()),
                        (b.name.clone(), b.columns.clone()),
                    ]),
                });
            }
        }
        out
    }
}

fn is_self(fk: &ForeignKey) -> bool {
    fk.schema == fk.foreign_schema && fk.table == fk.foreign_table
}

fn pairs(left: &[String], right: &[String]) -> Vec<(String, String)> {
    left.iter().cloned().zip(right.iter().cloned()).collect()
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}
