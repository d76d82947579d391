//! The `Database` type `supabase gen types typescript` prints, from a [`Catalog`]: the same
//! members, order, optionality and layout as the current upstream generator (postgres-meta with
//! `@supabase/postgrest-typegen`, one-to-one detection on, no PostgREST version).

use std::collections::HashMap;

use super::collation::compare;
use super::doc::{self, concat, text, Doc};
use super::introspect::{
    Arg, ArgMode, Catalog, Column, Function, PgType, RelKind, Relation, Relationship,
};
use super::ts::{self, array_of_text, atom, lit, nullable, object, Member, Ty};

const HEADER: &str = include_str!("header.ts.txt");
const HELPERS: &str = include_str!("helpers.ts.txt");

/// json, jsonb and text: the types PostgREST accepts for a function's single unnamed argument.
const UNNAMED_ARG_TYPES: [i64; 3] = [114, 3802, 25];

/// Renders the whole file; `default_schema` is the one the helper types default to.
pub fn render(mut catalog: Catalog, default_schema: &str) -> String {
    sort(&mut catalog);
    let gen = Generator::new(&catalog);
    let database = Ty::Object {
        members: catalog
            .schemas
            .iter()
            .map(|s| Member::new(s.clone(), false, gen.schema(s)))
            .collect(),
        expanded: true,
    };
    let mut out = String::from(HEADER);
    out.push_str(&doc::print(&concat(vec![
        text("export type Database = "),
        ts::doc(&database),
    ])));
    out.push_str("\n\n");
    out.push_str(&HELPERS.replace("{DEFAULT_SCHEMA}", &ts::string_literal(default_schema)));
    out.push_str(&doc::print(&concat(vec![
        text("export const Constants = "),
        gen.constants(),
        text(" as const"),
    ])));
    // Prettier's final newline, and the one `console.log` adds.
    out.push_str("\n\n");
    out
}

/// The upstream order: everything by name with the English collation, functions also by their
/// arguments, arguments by name, relationships by key name, target and target columns.
fn sort(c: &mut Catalog) {
    c.schemas.sort_by(|a, b| compare(a, b));
    c.relations.sort_by(|a, b| {
        compare(&a.schema, &b.schema)
            .then_with(|| compare(&a.name, &b.name))
            .then(a.id.cmp(&b.id))
    });
    let names: HashMap<i64, (String, String)> = c
        .relations
        .iter()
        .map(|r| (r.id, (r.schema.clone(), r.name.clone())))
        .collect();
    c.columns.retain(|col| names.contains_key(&col.relation_id));
    c.columns.sort_by(|a, b| {
        let (sa, ta) = &names[&a.relation_id];
        let (sb, tb) = &names[&b.relation_id];
        compare(sa, sb)
            .then_with(|| compare(ta, tb))
            .then_with(|| compare(&a.name, &b.name))
    });
    c.types.sort_by(|a, b| {
        compare(&a.schema, &b.schema)
            .then_with(|| compare(&a.name, &b.name))
            .then(a.id.cmp(&b.id))
    });
    c.functions.sort_by(|a, b| {
        compare(&a.schema, &b.schema)
            .then_with(|| compare(&a.name, &b.name))
            .then_with(|| compare(&a.identity_argument_types, &b.identity_argument_types))
            .then(a.id.cmp(&b.id))
    });
    for f in &mut c.functions {
        f.args.sort_by(|a, b| compare(&a.name, &b.name));
    }
    c.relationships.sort_by(|a, b| {
        compare(&a.foreign_key_name, &b.foreign_key_name)
            .then_with(|| compare(&a.referenced_relation, &b.referenced_relation))
            .then_with(|| {
                compare(
                    &json_list(&a.referenced_columns),
                    &json_list(&b.referenced_columns),
                )
            })
    });
}

fn json_list(names: &[String]) -> String {
    serde_json::to_string(names).unwrap_or_default()
}

/// A function PostgREST can call, with its input arguments.
struct Callable<'a> {
    f: &'a Function,
    in_args: Vec<&'a Arg>,
}

struct Generator<'a> {
    c: &'a Catalog,
    types_by_id: HashMap<i64, &'a PgType>,
    /// Row types (of tables, views, composite types), by type oid.
    row_types: HashMap<i64, &'a PgType>,
    relation_names: HashMap<i64, &'a str>,
    columns: HashMap<i64, Vec<&'a Column>>,
}

impl<'a> Generator<'a> {
    fn new(c: &'a Catalog) -> Self {
        let mut columns: HashMap<i64, Vec<&Column>> = HashMap::new();
        for col in &c.columns {
            columns.entry(col.relation_id).or_default().push(col);
        }
        Generator {
            c,
            types_by_id: c.types.iter().map(|t| (t.id, t)).collect(),
            row_types: c
                .types
                .iter()
                .filter(|t| t.relation_id.is_some())
                .map(|t| (t.id, t))
                .collect(),
            relation_names: c
                .relations
                .iter()
                .map(|r| (r.id, r.name.as_str()))
                .collect(),
            columns,
        }
    }

    fn columns(&self, relation: i64) -> &[&'a Column] {
        self.columns
            .get(&relation)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    fn in_schema(&self, schema: &str, kinds: &[RelKind]) -> Vec<&'a Relation> {
        let mut out: Vec<&Relation> = kinds
            .iter()
            .flat_map(|k| {
                self.c
                    .relations
                    .iter()
                    .filter(move |r| r.schema == schema && r.kind == *k)
            })
            .collect();
        out.sort_by(|a, b| compare(&a.name, &b.name));
        out
    }

    /// The functions of a schema PostgREST can call: no arguments, all named, unnamed ones only
    /// with defaults and of type json/jsonb/text, or a single unnamed json/jsonb/text or row one.
    fn callables(&self, schema: &str) -> Vec<Callable<'a>> {
        let mut out: Vec<Callable> = self
            .c
            .functions
            .iter()
            .filter(|f| f.schema == schema)
            .map(|f| Callable {
                f,
                in_args: f
                    .args
                    .iter()
                    .filter(|a| matches!(a.mode, ArgMode::In | ArgMode::InOut | ArgMode::Variadic))
                    .collect(),
            })
            .filter(|c| {
                let unnamed_ok = |a: &&Arg| {
                    !a.name.is_empty() || (a.has_default && UNNAMED_ARG_TYPES.contains(&a.type_id))
                };
                c.in_args.iter().all(unnamed_ok)
                    || (c.in_args.len() == 1
                        && c.in_args[0].name.is_empty()
                        && (UNNAMED_ARG_TYPES.contains(&c.in_args[0].type_id)
                            || self.row_types.contains_key(&c.in_args[0].type_id)))
            })
            .collect();
        out.sort_by(|a, b| compare(&a.f.name, &b.f.name));
        out
    }

    fn schema(&self, schema: &str) -> Ty {
        let tables = self.in_schema(schema, &[RelKind::Table, RelKind::Foreign]);
        let views = self.in_schema(schema, &[RelKind::View, RelKind::MaterializedView]);
        let functions = self.callables(schema);
        let enums = self.enums(schema);
        let composites: Vec<&PgType> = {
            let mut v: Vec<&PgType> = self
                .c
                .types
                .iter()
                .filter(|t| t.schema == schema && !t.attributes.is_empty())
                .collect();
            v.sort_by(|a, b| compare(&a.name, &b.name));
            v
        };
        let section = |members: Vec<Member>| {
            if members.is_empty() {
                object(
                    vec![Member::new("[_ in never]", false, atom("never"))],
                    true,
                )
            } else {
                object(members, true)
            }
        };
        object(
            vec![
                Member::new(
                    "Tables",
                    false,
                    section(
                        tables
                            .iter()
                            .map(|t| self.table(schema, t, &functions))
                            .collect(),
                    ),
                ),
                Member::new(
                    "Views",
                    false,
                    section(
                        views
                            .iter()
                            .map(|v| self.view(schema, v, &functions))
                            .collect(),
                    ),
                ),
                Member::new(
                    "Functions",
                    false,
                    section(self.functions(schema, &functions)),
                ),
                Member::new(
                    "Enums",
                    false,
                    section(
                        enums
                            .iter()
                            .map(|e| Member::new(e.name.clone(), false, union_of_labels(&e.enums)))
                            .collect(),
                    ),
                ),
                Member::new(
                    "CompositeTypes",
                    false,
                    section(
                        composites
                            .iter()
                            .map(|t| {
                                let attributes = t
                                    .attributes
                                    .iter()
                                    .map(|(name, type_id)| {
                                        let ty = match self.types_by_id.get(type_id) {
                                            Some(at) => nullable(
                                                self.ts_type(schema, &at.name, Some(&at.schema)),
                                                true,
                                            ),
                                            None => atom("unknown"),
                                        };
                                        Member::new(name.clone(), false, ty)
                                    })
                                    .collect();
                                Member::new(t.name.clone(), false, object(attributes, true))
                            })
                            .collect(),
                    ),
                ),
            ],
            true,
        )
    }

    fn enums(&self, schema: &str) -> Vec<&'a PgType> {
        let mut v: Vec<&PgType> = self
            .c
            .types
            .iter()
            .filter(|t| t.schema == schema && !t.enums.is_empty())
            .collect();
        v.sort_by(|a, b| compare(&a.name, &b.name));
        v
    }

    fn relationships(&self, relation: &Relation) -> Ty {
        let items = self
            .c
            .relationships
            .iter()
            .filter(|r| {
                r.schema == relation.schema
                    && r.relation == relation.name
                    && r.referenced_schema == relation.schema
            })
            .map(relationship)
            .collect();
        Ty::Tuple(items)
    }

    /// A column's type in `Row`.
    fn column_type(&self, schema: &str, col: &Column, is_nullable: bool) -> Ty {
        nullable(
            self.ts_type(schema, &col.format, Some(&col.type_schema)),
            is_nullable,
        )
    }

    fn row(&self, schema: &str, relation: &Relation, functions: &[Callable]) -> Ty {
        let mut members: Vec<Member> = self
            .columns(relation.id)
            .iter()
            .map(|c| {
                Member::new(
                    c.name.clone(),
                    false,
                    self.column_type(schema, c, c.is_nullable),
                )
            })
            .collect();
        for c in functions
            .iter()
            .filter(|c| self.is_computed_field(c, relation))
        {
            members.push(Member::new(
                c.f.name.clone(),
                false,
                nullable(self.return_type(schema, c.f), true),
            ));
        }
        object(members, true)
    }

    /// A function taking one argument of the relation's row type is selectable like a column.
    fn is_computed_field(&self, c: &Callable, relation: &Relation) -> bool {
        if c.in_args.len() == 1 {
            if let Some(t) = self.row_types.get(&c.in_args[0].type_id) {
                return t.relation_id == Some(relation.id);
            }
        }
        c.f.argument_types == relation.name
    }

    fn table(&self, schema: &str, table: &Relation, functions: &[Callable]) -> Member {
        let cols = self.columns(table.id);
        let never = |c: &Column| c.identity_always || c.is_generated;
        let insert = cols
            .iter()
            .map(|c| {
                if never(c) {
                    Member::new(c.name.clone(), true, atom("never"))
                } else {
                    let optional = c.is_nullable || c.is_identity || c.has_default;
                    Member::new(
                        c.name.clone(),
                        optional,
                        self.column_type(schema, c, c.is_nullable),
                    )
                }
            })
            .collect();
        let update = cols
            .iter()
            .map(|c| {
                if never(c) {
                    Member::new(c.name.clone(), true, atom("never"))
                } else {
                    Member::new(
                        c.name.clone(),
                        true,
                        self.column_type(schema, c, c.is_nullable),
                    )
                }
            })
            .collect();
        Member::new(
            table.name.clone(),
            false,
            object(
                vec![
                    Member::new("Row", false, self.row(schema, table, functions)),
                    Member::new("Insert", false, object(insert, true)),
                    Member::new("Update", false, object(update, true)),
                    Member::new("Relationships", false, self.relationships(table)),
                ],
                true,
            ),
        )
    }

    fn view(&self, schema: &str, view: &Relation, functions: &[Callable]) -> Member {
        let writable = || {
            object(
                self.columns(view.id)
                    .iter()
                    .map(|c| {
                        if c.is_updatable {
                            Member::new(c.name.clone(), true, self.column_type(schema, c, true))
                        } else {
                            Member::new(c.name.clone(), true, atom("never"))
                        }
                    })
                    .collect(),
                true,
            )
        };
        let mut members = vec![Member::new("Row", false, self.row(schema, view, functions))];
        if view.insertable {
            members.push(Member::new("Insert", false, writable()));
        }
        if view.updatable {
            members.push(Member::new("Update", false, writable()));
        }
        members.push(Member::new(
            "Relationships",
            false,
            self.relationships(view),
        ));
        Member::new(view.name.clone(), false, object(members, true))
    }

    fn functions(&self, schema: &str, functions: &[Callable]) -> Vec<Member> {
        let mut groups: Vec<(&str, Vec<&Callable>)> = Vec::new();
        for c in functions {
            match groups.iter_mut().find(|(name, _)| *name == c.f.name) {
                Some((_, group)) => group.push(c),
                None => groups.push((&c.f.name, vec![c])),
            }
        }
        groups
            .into_iter()
            .map(|(name, mut group)| {
                group.sort_by(|a, b| {
                    compare(&a.f.argument_types, &b.f.argument_types)
                        .then_with(|| compare(&a.f.return_type, &b.f.return_type))
                });
                let mut signatures: Vec<Ty> = group
                    .iter()
                    .map(|c| self.signature(schema, &group, c))
                    .collect();
                let ty = if signatures.len() == 1 {
                    signatures.remove(0)
                } else {
                    Ty::Union(signatures)
                };
                Member::new(name, false, ty)
            })
            .collect()
    }

    fn arg_object(&self, schema: &str, args: &[&Arg]) -> Ty {
        object(
            args.iter()
                .map(|a| {
                    let ty = match self.types_by_id.get(&a.type_id) {
                        Some(t) => self.ts_type(schema, &t.name, Some(&t.schema)),
                        None => atom("unknown"),
                    };
                    Member::new(a.name.clone(), a.has_default, ty)
                })
                .collect(),
            false,
        )
    }

    fn signature(&self, schema: &str, group: &[&Callable], c: &Callable) -> Ty {
        let error = self
            .conflict(schema, group, c)
            .or_else(|| self.row_argument_error(schema, c));
        let args = if c.in_args.is_empty() {
            atom("Record<PropertyKey, never>")
        } else {
            self.arg_object(schema, &c.in_args)
        };
        let returns = match error {
            Some(message) => Ty::Intersection(vec![
                object(vec![Member::new("error", false, atom("true"))], false),
                lit(&message),
            ]),
            None => self.return_type(schema, c.f),
        };
        let mut members = vec![Member::new("Args", false, args)];
        members.extend(self.returns(c.f, returns));
        object(members, false)
    }

    /// Overloads PostgREST cannot tell apart.
    fn conflict(&self, schema: &str, group: &[&Callable], c: &Callable) -> Option<String> {
        if group.len() <= 1 {
            return None;
        }
        let name = &c.f.name;
        let tail = "Try renaming the parameters or the function itself in the database so function overloading can be resolved";
        if c.in_args.is_empty() {
            let other = group.iter().find(|o| {
                o.f.id != c.f.id
                    && o.in_args.len() == 1
                    && o.in_args[0].name.is_empty()
                    && o.in_args[0].has_default
            })?;
            let ret = self
                .types_by_id
                .get(&other.f.return_type_id)
                .map_or("unknown", |t| t.name.as_str());
            return Some(format!(
                "Could not choose the best candidate function between: {schema}.{name}(), {schema}.{name}( => {ret}). {tail}"
            ));
        }
        if c.in_args.len() == 1 && !c.in_args[0].name.is_empty() {
            let arg = c.in_args[0];
            let mut all: Vec<&Callable> = vec![c];
            all.extend(group.iter().copied().filter(|o| {
                o.f.id != c.f.id
                    && o.in_args.len() == 1
                    && o.in_args[0].name == arg.name
                    && o.in_args[0].type_id != arg.type_id
            }));
            if all.len() == 1 {
                return None;
            }
            all.sort_by_key(|o| o.in_args.first().map_or(0, |a| a.type_id));
            let list: Vec<String> = all
                .iter()
                .map(|o| {
                    let args: Vec<String> = o
                        .in_args
                        .iter()
                        .map(|a| {
                            let t = self
                                .types_by_id
                                .get(&a.type_id)
                                .map_or("unknown", |t| t.name.as_str());
                            format!("{} => {t}", a.name)
                        })
                        .collect();
                    format!("{schema}.{name}({})", args.join(", "))
                })
                .collect();
            return Some(format!(
                "Could not choose the best candidate function between: {}. {tail}",
                list.join(", ")
            ));
        }
        None
    }

    /// A single unnamed row argument without a relation to return: not embeddable.
    fn row_argument_error(&self, schema: &str, c: &Callable) -> Option<String> {
        (c.in_args.len() == 1
            && c.in_args[0].name.is_empty()
            && self.row_types.contains_key(&c.in_args[0].type_id)
            && self.return_relation_name(c.f).is_none())
        .then(|| {
            format!(
                "the function {schema}.{} with parameter or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache",
                c.f.name
            )
        })
    }

    /// The relation (or composite type) a function returns rows of.
    fn return_relation_name(&self, f: &Function) -> Option<&'a str> {
        let relation = f.return_type_relation_id?;
        if let Some(name) = self.relation_names.get(&relation) {
            return Some(name);
        }
        self.row_types
            .get(&f.return_type_id)
            .map(|t| t.name.as_str())
    }

    /// `Returns`, as an array for set-returning functions, and `SetofOptions` when the result
    /// is a relation's rows.
    fn returns(&self, f: &Function, returns: Ty) -> Vec<Member> {
        let target = self.return_relation_name(f);
        let many_rows = f.rows.is_some_and(|r| r > 1.0);
        let setof_of_relation = f.is_set_returning && f.return_type_relation_id.is_some();
        let options = |from: &str, to: &str, one: bool, set: bool| {
            object(
                vec![
                    Member::new("from", false, lit(from)),
                    Member::new("to", false, lit(to)),
                    Member::new("isOneToOne", false, atom(one.to_string())),
                    Member::new("isSetofReturn", false, atom(set.to_string())),
                ],
                true,
            )
        };
        let mut setof = target.map(|to| options("*", to, !many_rows, f.is_set_returning));
        if f.args.len() == 1 {
            if let (Some(source), Some(to)) = (self.row_types.get(&f.args[0].type_id), target) {
                setof = Some(if setof_of_relation {
                    options(&source.format, to, !many_rows, true)
                } else {
                    options(&source.format, to, true, false)
                });
            }
        }
        let collapsed = !many_rows && target.is_some();
        let returns = if f.is_set_returning && !collapsed {
            array_of_text(returns)
        } else {
            returns
        };
        let mut members = vec![Member::new("Returns", false, returns)];
        members.extend(setof.map(|s| Member::new("SetofOptions", false, s)));
        members
    }

    /// The type a function returns: its `TABLE` columns, a relation's row, or its type.
    fn return_type(&self, schema: &str, f: &Function) -> Ty {
        let table_columns: Vec<&Arg> = f.args.iter().filter(|a| a.mode == ArgMode::Table).collect();
        if !table_columns.is_empty() {
            return object(
                table_columns
                    .iter()
                    .map(|a| {
                        let ty = match self.types_by_id.get(&a.type_id) {
                            Some(t) => self.ts_type(schema, &t.name, Some(&t.schema)),
                            None => atom("unknown"),
                        };
                        Member::new(a.name.clone(), false, ty)
                    })
                    .collect(),
                true,
            );
        }
        let relation = f.return_type_relation_id.and_then(|id| {
            self.in_schema(schema, &[RelKind::Table, RelKind::Foreign])
                .into_iter()
                .chain(self.in_schema(schema, &[RelKind::View, RelKind::MaterializedView]))
                .find(|r| r.id == id)
        });
        if let Some(relation) = relation {
            return object(
                self.columns(relation.id)
                    .iter()
                    .map(|c| {
                        Member::new(
                            c.name.clone(),
                            false,
                            self.column_type(schema, c, c.is_nullable),
                        )
                    })
                    .collect(),
                true,
            );
        }
        match self.types_by_id.get(&f.return_type_id) {
            Some(t) => self.ts_type(schema, &t.name, Some(&t.schema)),
            None => atom("unknown"),
        }
    }

    /// The TypeScript type of a PostgreSQL type name; `type_schema` (the schema owning it)
    /// picks between same-named types.
    fn ts_type(&self, schema: &str, pg_type: &str, type_schema: Option<&str>) -> Ty {
        match pg_type {
            "bool" => return atom("boolean"),
            "int2" | "int4" | "int8" | "float4" | "float8" | "numeric" => return atom("number"),
            "bytea" | "bpchar" | "varchar" | "date" | "text" | "citext" | "time" | "timetz"
            | "timestamp" | "timestamptz" | "uuid" | "vector" | "interval" => {
                return atom("string")
            }
            "json" | "jsonb" => return atom("Json"),
            "void" => return atom("undefined"),
            "record" => return atom("Record<string, unknown>"),
            _ => {}
        }
        if let Some(element) = pg_type.strip_prefix('_') {
            return Ty::Array(Box::new(self.ts_type(schema, element, type_schema)));
        }
        let preferred = type_schema.unwrap_or(schema);
        let in_output = |s: &str| self.c.schemas.iter().any(|n| n == s);
        let pick = |candidates: Vec<&'a PgType>| {
            candidates
                .iter()
                .find(|t| t.schema == preferred)
                .or(candidates.first())
                .copied()
        };
        let enums = pick(
            self.c
                .types
                .iter()
                .filter(|t| t.name == pg_type && !t.enums.is_empty())
                .collect(),
        );
        if let Some(e) = enums {
            if in_output(&e.schema) {
                return atom(reference(&e.schema, "Enums", &e.name));
            }
            return union_of_labels(&e.enums);
        }
        let composite = pick(
            self.c
                .types
                .iter()
                .filter(|t| t.name == pg_type && !t.attributes.is_empty())
                .collect(),
        );
        if let Some(t) = composite {
            if in_output(&t.schema) {
                return atom(reference(&t.schema, "CompositeTypes", &t.name));
            }
            return atom("unknown");
        }
        let kinds = [
            (RelKind::Table, "Tables"),
            (RelKind::Foreign, "Tables"),
            (RelKind::View, "Views"),
            (RelKind::MaterializedView, "Views"),
        ];
        let find = |same_schema: bool| {
            kinds.iter().find_map(|(kind, section)| {
                self.c
                    .relations
                    .iter()
                    .find(|r| {
                        r.kind == *kind
                            && r.name == pg_type
                            && (!same_schema || r.schema == preferred)
                    })
                    .map(|r| (r, *section))
            })
        };
        if let Some((r, section)) = find(true).or_else(|| find(false)) {
            if in_output(&r.schema) {
                return atom(format!(
                    "{}[\"Row\"]",
                    reference(&r.schema, section, &r.name)
                ));
            }
        }
        atom("unknown")
    }

    /// `Constants`: every schema's enum labels as arrays.
    fn constants(&self) -> Doc {
        let schemas = self
            .c
            .schemas
            .iter()
            .map(|s| {
                let enums = self
                    .enums(s)
                    .iter()
                    .map(|e| {
                        property(
                            &e.name,
                            ts::list_doc(
                                e.enums
                                    .iter()
                                    .map(|l| text(ts::string_literal(l)))
                                    .collect(),
                            ),
                        )
                    })
                    .collect();
                property(
                    s,
                    value_object(vec![property("Enums", value_object(enums))]),
                )
            })
            .collect();
        value_object(schemas)
    }
}

/// `Database["schema"]["Section"]["name"]`.
fn reference(schema: &str, section: &str, name: &str) -> String {
    format!(
        "Database[{}][{}][{}]",
        ts::string_literal(schema),
        ts::string_literal(section),
        ts::string_literal(name)
    )
}

fn union_of_labels(labels: &[String]) -> Ty {
    let mut members: Vec<Ty> = labels.iter().map(|l| lit(l)).collect();
    if members.len() == 1 {
        members.remove(0)
    } else {
        Ty::Union(members)
    }
}

fn relationship(r: &Relationship) -> Ty {
    let names = |cols: &[String]| Ty::Tuple(cols.iter().map(|c| lit(c)).collect());
    object(
        vec![
            Member::new("foreignKeyName", false, lit(&r.foreign_key_name)),
            Member::new("columns", false, names(&r.columns)),
            Member::new("isOneToOne", false, atom(r.is_one_to_one.to_string())),
            Member::new("referencedRelation", false, lit(&r.referenced_relation)),
            Member::new("referencedColumns", false, names(&r.referenced_columns)),
        ],
        true,
    )
}

/// An object literal's property.
fn property(name: &str, value: Doc) -> Doc {
    concat(vec![text(ts::key(name)), text(": "), value])
}

/// An object literal written expanded, with trailing commas.
fn value_object(members: Vec<Doc>) -> Doc {
    ts::object_doc(members, text(","), text(","), true)
}
