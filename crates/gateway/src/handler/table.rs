//! Requests on a table or view: reads, and writes with every `Prefer` of §1.6.

use axum::http::Method;
use axum::response::Response;
use serde_json::{Map, Value};

use super::{parse_body, run, run_explained, Incoming};
use crate::error::ApiError;
use crate::plan::read::ReadOptions;
use crate::plan::write::{self, WriteKind};
use crate::plan::{read, Builder};
use crate::preferences::{FormatKind, Resolution, Return};
use crate::query::ApiQuery;
use crate::response;
use crate::schema_cache::Table;

/// A table or view: GET/HEAD read it; POST, PATCH, DELETE and PUT write it.
pub(super) async fn table(r: Incoming<'_>, name: &str) -> Result<Response, ApiError> {
    let table = r
        .cache
        .table(&r.schema, name)
        .ok_or_else(|| ApiError::TableNotFound {
            schema: r.schema.clone(),
            name: name.to_owned(),
        })?;
    let mut query = ApiQuery::parse_within(r.query, &[], &r.gw.config.limits)?;
    r.parsed();
    r.check_aggregates(&query)?;
    if let Some((first, last)) = r
        .range
        .filter(|_| r.method == Method::GET || r.method == Method::HEAD)
    {
        let root = query.modifiers.entry(Vec::new()).or_default();
        if root.limit.is_none() && root.offset.is_none() {
            root.offset = Some(first);
            root.limit = last.map(|l| (l + 1).saturating_sub(first));
        }
    }
    let mut builder = Builder::new(r.cache, &query);
    let head = r.method == Method::HEAD;
    match r.method {
        Method::GET | Method::HEAD => {
            let opts = ReadOptions {
                format: r.format,
                count: r.prefs.count,
                max_rows: r.switches.max_rows,
            };
            let plan = read::build(&mut builder, table, &opts)?;
            let estimated = r.prefs.count == Some("estimated");
            let mut outcome = run_explained(&r, plan.sql, plan.explain, true, |_| Ok(())).await?;
            if let Some(plan) = outcome.plan.take() {
                return Ok(response::plan(plan, r.format));
            }
            if let Some(planned) = outcome.planned {
                let exact_is_small = estimated
                    && outcome
                        .total
                        .is_some_and(|t| t as u64 <= read::ESTIMATE_THRESHOLD);
                if !exact_is_small {
                    outcome.total = Some(planned);
                }
            }
            response::read(&outcome, r.format, &r.prefs, query.root().offset, head)
        }
        Method::POST | Method::PATCH | Method::DELETE | Method::PUT => {
            let kind = write_kind(&r, table, &query)?;
            let representation = r.prefs.return_ == Return::Representation;
            let format = representation.then_some(r.format);
            let sql = write::build(&mut builder, table, &kind, format)?;
            let singular = r.format.kind == FormatKind::Object;
            // PostgREST bounds updates and deletes only; an insert says how many rows it brings.
            let max_affected = r
                .prefs
                .max_affected
                .filter(|_| r.prefs.strict)
                .filter(|_| r.method == Method::PATCH || r.method == Method::DELETE);
            let outcome = run(&r, sql, false, move |o| {
                if singular && o.rows != 1 {
                    return Err(ApiError::Singular { rows: o.rows });
                }
                if let Some(max) = max_affected {
                    if o.rows > max {
                        return Err(ApiError::MaxAffected { rows: o.rows });
                    }
                }
                Ok(())
            })
            .await?;
            if let Some(plan) = outcome.plan {
                return Ok(response::plan(plan, r.format));
            }
            response::write(&r.method, &outcome, r.format, &r.prefs, &table.name)
        }
        _ => Err(ApiError::Method {
            code: "PGRST117",
            message: format!("Unsupported HTTP method: {}", r.method),
        }),
    }
}

fn write_kind(r: &Incoming, table: &Table, query: &ApiQuery) -> Result<WriteKind, ApiError> {
    match r.method {
        Method::DELETE => Ok(WriteKind::Delete),
        Method::PATCH => match parse_body(&r.body)? {
            Value::Object(row) => Ok(WriteKind::Update { row }),
            _ => Err(ApiError::Body("Expected a JSON object".into())),
        },
        Method::PUT => {
            let Value::Object(row) = parse_body(&r.body)? else {
                return Err(ApiError::Body("Expected a JSON object".into()));
            };
            check_put(table, query, &row)?;
            Ok(WriteKind::Insert {
                rows: vec![row],
                resolution: Some(Resolution::MergeDuplicates),
                missing_default: false,
            })
        }
        _ => {
            let rows = match parse_body(&r.body)? {
                Value::Object(row) => vec![row],
                Value::Array(items) => items
                    .into_iter()
                    .map(|v| match v {
                        Value::Object(row) => Ok(row),
                        _ => Err(ApiError::Body(
                            "All elements of the array must be JSON objects".into(),
                        )),
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(ApiError::Body("Expected a JSON object or array".into())),
            };
            Ok(WriteKind::Insert {
                rows,
                resolution: r.prefs.resolution,
                missing_default: r.prefs.missing_default,
            })
        }
    }
}

/// PUT replaces one row named by `pk=eq.value` filters that the body must match.
fn check_put(table: &Table, query: &ApiQuery, row: &Map<String, Value>) -> Result<(), ApiError> {
    use crate::query::filter::{Condition, Operation, Operator};
    let root = query.root();
    if root.limit.is_some() || root.offset.is_some() {
        return Err(ApiError::Put {
            code: "PGRST114",
            message: "limit/offset querystring parameters are not allowed for PUT".into(),
        });
    }
    let mismatch = || ApiError::Put {
        code: "PGRST115",
        message: "Payload values do not match URL in primary key column(s)".into(),
    };
    if table.primary_key.is_empty() || root.conditions.len() != table.primary_key.len() {
        return Err(ApiError::Method {
            code: "PGRST105",
            message: "Filters must include all and only primary key columns with 'eq' operators"
                .into(),
        });
    }
    for c in &root.conditions {
        let Condition::Filter {
            field,
            negate: false,
            op:
                Operation::Binary {
                    op: Operator::Eq,
                    value,
                },
        } = c
        else {
            return Err(mismatch());
        };
        if !table.primary_key.contains(&field.name) {
            return Err(mismatch());
        }
        let given = match row.get(&field.name) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => return Err(mismatch()),
            Some(other) => other.to_string(),
        };
        if &given != value {
            return Err(mismatch());
        }
    }
    Ok(())
}
