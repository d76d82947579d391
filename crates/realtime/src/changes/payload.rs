//! Payload, the pipeline's fourth step (`pipeline`): the `postgres_changes` data one role
//! receives (§3.4, realtime-authorization.md §2): WAL text values turned
//! into JSON by column type, `columns` from the catalog, UTC commit time with milliseconds;
//! Supabase's error forms (400, 401, 413); and the payload's text with numerics as PostgreSQL
//! printed them.

use serde_json::{json, Map, Value};

use super::catalog::Access;
use super::decode::Change;
use super::row::{cell, Row};
use super::table::{columns_json, Column, Table, TypeKind};

/// Records larger than this are sent in Supabase's 413 form.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// Values kept in a 413 payload are at most this long in JSON.
const SMALL_VALUE_BYTES: usize = 64;

/// The JSON of one WAL text value of a column.
pub fn value(column: &Column, text: Option<&str>) -> Value {
    match text {
        None => Value::Null,
        Some(t) => scalar(column.kind, column.element, t),
    }
}

fn scalar(kind: TypeKind, element: TypeKind, t: &str) -> Value {
    match kind {
        TypeKind::Integer => t
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| t.parse::<u64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(t.into())),
        TypeKind::Float | TypeKind::Numeric => match t.parse::<f64>() {
            Ok(f) if f.is_finite() => {
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
            }
            _ => Value::Null,
        },
        TypeKind::Bool => Value::Bool(t == "t" || t == "true"),
        TypeKind::Json => serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.into())),
        TypeKind::Timestamp => Value::String(iso_timestamp(t)),
        TypeKind::Array => parse_array(t, element).unwrap_or_else(|| Value::String(t.into())),
        TypeKind::Uuid | TypeKind::Text => Value::String(t.into()),
    }
}

/// `2024-01-02 03:04:05.5+00` → `2024-01-02T03:04:05.5+00:00`, as Supabase prints timestamps.
fn iso_timestamp(t: &str) -> String {
    let mut s = t.replacen(' ', "T", 1);
    let tail = s.len().saturating_sub(3);
    if s.len() > 19
        && matches!(s.as_bytes()[tail], b'+' | b'-')
        && s[tail + 1..].bytes().all(|b| b.is_ascii_digit())
    {
        s.push_str(":00");
    }
    s
}

/// Parses a one- or many-dimensional array literal (`{1,NULL,"a b"}`) into nested JSON arrays.
fn parse_array(t: &str, element: TypeKind) -> Option<Value> {
    let bytes = t.as_bytes();
    // Arrays with explicit bounds (`[0:1]={…}`) start with '['.
    let start = t.find('{')?;
    let (v, end) = parse_level(bytes, start, element)?;
    (end == bytes.len()).then_some(v)
}

fn parse_level(b: &[u8], mut i: usize, element: TypeKind) -> Option<(Value, usize)> {
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut items = Vec::new();
    if b.get(i) == Some(&b'}') {
        return Some((Value::Array(items), i + 1));
    }
    loop {
        match b.get(i)? {
            b'{' => {
                let (v, next) = parse_level(b, i, element)?;
                items.push(v);
                i = next;
            }
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                loop {
                    match b.get(i)? {
                        b'\\' => {
                            s.push(*b.get(i + 1)?);
                            i += 2;
                        }
                        b'"' => {
                            i += 1;
                            break;
                        }
                        c => {
                            s.push(*c);
                            i += 1;
                        }
                    }
                }
                items.push(scalar(element, TypeKind::Text, &String::from_utf8(s).ok()?));
            }
            _ => {
                let from = i;
                while !matches!(b.get(i)?, b',' | b'}') {
                    i += 1;
                }
                let raw = std::str::from_utf8(&b[from..i]).ok()?;
                items.push(if raw == "NULL" {
                    Value::Null
                } else {
                    scalar(element, TypeKind::Text, raw)
                });
            }
        }
        match b.get(i)? {
            b',' => i += 1,
            b'}' => return Some((Value::Array(items), i + 1)),
            _ => return None,
        }
    }
}

/// The error of an INSERT or UPDATE on a table without a primary key: Supabase checks
/// visibility by re-reading the row by its key, so it cannot deliver such a row.
pub const NO_PRIMARY_KEY: &str = "Error 400: Bad Request, no primary key";
/// The error of an INSERT or UPDATE for a role that may not SELECT the primary key.
pub const UNAUTHORIZED: &str = "Error 401: Unauthorized";

/// Supabase's error form of an INSERT or UPDATE (`NO_PRIMARY_KEY`, `UNAUTHORIZED`): no
/// values, no columns, no commit time, only the error.
pub fn error_form(schema: &str, table: &str, kind: &str, error: &str) -> Value {
    let mut data = json!({
        "schema": schema,
        "table": table,
        "commit_timestamp": null,
        "type": kind,
        "columns": [],
        "record": {},
        "errors": [error],
    });
    if kind == "UPDATE" {
        data["old_record"] = json!({});
    }
    data
}

/// The JSON text of `data` with the numeric values of `record` and `old_record` written as
/// PostgreSQL printed them (`1.50`, every digit of a long value), as Supabase sends them.
/// `wal_text(old, column)` gives a numeric column's WAL text; everything else is serialized
/// as usual.
pub fn data_text<'r>(data: &Value, wal_text: &dyn Fn(bool, &str) -> Option<&'r str>) -> String {
    let Value::Object(map) = data else {
        return data.to_string();
    };
    let key = |k: &str| Value::from(k).to_string();
    let too_large = map
        .get("errors")
        .is_some_and(|e| e.to_string().contains("413"));
    let mut out = String::from("{");
    for (i, (name, value)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&key(name));
        out.push(':');
        match (name.as_str(), value) {
            (k @ ("record" | "old_record"), Value::Object(record)) => {
                out.push('{');
                let mut first = true;
                for (column, v) in record {
                    // A null here with WAL text is a value beyond f64's range.
                    let exact = wal_text(k == "old_record", column)
                        .filter(|t| (v.is_number() || v.is_null()) && is_json_number(t));
                    // The 413 form keeps small values only, by their exact length too.
                    if too_large && exact.is_some_and(|t| t.len() > SMALL_VALUE_BYTES) {
                        continue;
                    }
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    out.push_str(&key(column));
                    out.push(':');
                    match exact {
                        Some(t) => out.push_str(t),
                        None => out.push_str(&v.to_string()),
                    }
                }
                out.push('}');
            }
            _ => out.push_str(&value.to_string()),
        }
    }
    out.push('}');
    out
}

/// Whether PostgreSQL's text of a numeric is also a JSON number (`NaN` and `Infinity` are not).
fn is_json_number(t: &str) -> bool {
    let t = t.strip_prefix('-').unwrap_or(t);
    let (int, frac) = t.split_once('.').map_or((t, None), |(i, f)| (i, Some(f)));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(int) && (int == "0" || !int.starts_with('0')) && frac.is_none_or(digits)
}

/// The `data` of a `postgres_changes` message for one group of subscribers.
pub struct Data<'a> {
    pub schema: &'a str,
    pub table: &'a str,
    pub commit_timestamp: &'a str,
    pub kind: &'a str,
    /// `columns` as `columns_json` built it.
    pub columns: &'a Value,
    pub record: Option<Map<String, Value>>,
    pub old_record: Option<Map<String, Value>>,
    pub errors: Option<Vec<&'static str>>,
}

impl Data<'_> {
    /// Serializes the data; a record over the size limit keeps only its small values and
    /// carries `Error 413: Payload Too Large`.
    pub fn to_value(mut self) -> Value {
        let size = |m: &Option<Map<String, Value>>, exact: bool| {
            m.as_ref().map_or(0, |m| {
                m.values()
                    .map(|v| match v {
                        // A bound without serializing: a byte escapes to at most 6.
                        Value::String(t) if !exact => 6 * t.len() + 2,
                        Value::Null | Value::Bool(_) | Value::Number(_) if !exact => 32,
                        v => v.to_string().len(),
                    })
                    .sum::<usize>()
            })
        };
        let within =
            |exact| size(&self.record, exact) + size(&self.old_record, exact) <= MAX_RECORD_BYTES;
        if !within(false) && !within(true) {
            for m in [&mut self.record, &mut self.old_record]
                .into_iter()
                .flatten()
            {
                m.retain(|_, v| !v.is_null() && v.to_string().len() <= SMALL_VALUE_BYTES);
            }
            self.errors = Some(vec!["Error 413: Payload Too Large"]);
        }
        let columns = self.columns.clone();
        let mut data = json!({
            "schema": self.schema,
            "table": self.table,
            "commit_timestamp": self.commit_timestamp,
            "type": self.kind,
            "columns": columns,
            "errors": self.errors,
        });
        if let Some(r) = self.record {
            data["record"] = Value::Object(r);
        }
        if let Some(r) = self.old_record {
            data["old_record"] = Value::Object(r);
        }
        data
    }
}

/// The JSON record of a row, keeping only columns the role may see (and `keep` allows).
fn record(
    table: &Table,
    row: &Row,
    access: &Access,
    keep: &dyn Fn(&str) -> bool,
) -> Map<String, Value> {
    let mut m = Map::new();
    for col in &table.columns {
        if !access.columns.contains(&col.name) || !keep(&col.name) {
            continue;
        }
        if let Some(v) = cell(row, &col.name) {
            m.insert(col.name.clone(), value(col, v));
        }
    }
    m
}

/// The payload's text with numeric values as PostgreSQL printed them, when the change has any
/// (`data_text`); `None` leaves the frame to the `Value`.
pub fn exact_text(table: &Table, change: &Change, data: &Value) -> Option<String> {
    let numeric = |c: &str| table.column(c).is_some_and(|c| c.kind == TypeKind::Numeric);
    let has = |r: &Option<Row>| r.iter().flatten().any(|(n, v)| v.is_some() && numeric(n));
    if !has(&change.new) && !has(&change.old) {
        return None;
    }
    let wal_text = |old: bool, column: &str| -> Option<&str> {
        if !numeric(column) {
            return None;
        }
        // `record` takes unchanged TOAST values from the old row, as `data` does.
        let rows = if old {
            [change.old.as_ref(), None]
        } else {
            [change.new.as_ref(), change.old.as_ref()]
        };
        rows.into_iter()
            .flatten()
            .find_map(|r| cell(r, column))
            .flatten()
    };
    Some(data_text(data, &wal_text))
}

/// The `data` of a change for one role (`access`), with the old record in full only when
/// the subscriber could see the old row too; with a binding's `select`, only those columns
/// and the primary key, as Supabase selects them.
pub fn data(
    table: &Table,
    commit_ts: &str,
    change: &Change,
    access: &Access,
    old_visible: bool,
    select: Option<&[String]>,
) -> Value {
    // As Supabase, INSERTs and UPDATEs of a table without a primary key arrive as its 400
    // form (its DELETEs as usual), and a role that may not SELECT the key gets the 401 form.
    // Unlike Supabase, both go only to subscribers whose filters and policies let them see
    // the row: the error itself must not tell others that a hidden row changed.
    if table.primary_key.is_empty() && change.kind != "DELETE" {
        return error_form(&table.schema, &table.name, change.kind, NO_PRIMARY_KEY);
    }
    if !access.sees_primary_key && !table.primary_key.is_empty() {
        return error_form(&table.schema, &table.name, change.kind, UNAUTHORIZED);
    }
    let is_key = |c: &str| table.primary_key.iter().any(|k| k == c);
    let all = |c: &str| select.is_none_or(|s| s.iter().any(|x| x == c) || is_key(c));
    let selected_columns;
    let columns = match select {
        None => &access.columns_json,
        Some(_) => {
            selected_columns = columns_json(
                table
                    .columns
                    .iter()
                    .filter(|c| access.columns.contains(&c.name) && all(&c.name)),
            );
            &selected_columns
        }
    };
    let new = change.new.as_ref().map(|n| {
        // Unchanged TOAST values come from the old row when it has them.
        let mut row = n.clone();
        if let Some(old) = &change.old {
            for (name, value) in old {
                if !row.iter().any(|(k, _)| k == name) {
                    row.push((name.clone(), value.clone()));
                }
            }
        }
        record(table, &row, access, &all)
    });
    let old = change.old.as_ref().map(|o| {
        if (change.kind == "DELETE" && table.rls) || !old_visible {
            // As Supabase: on RLS tables a DELETE carries only the primary key.
            record(table, o, access, &is_key)
        } else {
            record(table, o, access, &all)
        }
    });
    let (record, old_record) = match change.kind {
        "INSERT" => (new, None),
        "UPDATE" => (new, Some(old.unwrap_or_default())),
        _ => (None, Some(old.unwrap_or_default())),
    };
    Data {
        schema: &table.schema,
        table: &table.name,
        commit_timestamp: commit_ts,
        kind: change.kind,
        columns,
        record,
        old_record,
        errors: None,
    }
    .to_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_values_keep_their_digits_in_the_text() {
        let data = json!({"type": "UPDATE", "record": {"n": 1.5, "f": 2.5, "x": null},
                          "old_record": {"n": 0.1}, "errors": null});
        let wal = |old: bool, c: &str| match (old, c) {
            (false, "n") => Some("1.50"),
            (true, "n") => Some("0.10000000000000000001"),
            (false, "x") => Some("NaN"),
            _ => None,
        };
        let text = data_text(&data, &wal);
        assert_eq!(
            text,
            r#"{"errors":null,"old_record":{"n":0.10000000000000000001},"record":{"f":2.5,"n":1.50,"x":null},"type":"UPDATE"}"#
        );
        let big = "9".repeat(400);
        let wal = |_: bool, _: &str| Some(big.as_str());
        let huge = json!({"record": {"n": null}});
        assert_eq!(
            data_text(&huge, &wal),
            format!(r#"{{"record":{{"n":{big}}}}}"#)
        );
        let cut = json!({"errors": ["Error 413: Payload Too Large"], "record": {"n": 1.0}});
        assert_eq!(
            data_text(&cut, &wal),
            r#"{"errors":["Error 413: Payload Too Large"],"record":{}}"#
        );
        assert!(is_json_number("-0.5") && is_json_number("120"));
        assert!(!is_json_number("Infinity") && !is_json_number("1.") && !is_json_number("01"));
    }

    fn col(typname: &str, kind: TypeKind, element: TypeKind) -> Column {
        Column {
            name: "c".into(),
            typname: typname.into(),
            kind,
            element,
        }
    }

    #[test]
    fn values_take_their_json_types() {
        let int = col("int8", TypeKind::Integer, TypeKind::Text);
        assert_eq!(
            value(&int, Some("9007199254740993")),
            json!(9007199254740993i64)
        );
        assert_eq!(value(&int, None), Value::Null);
        let num = col("numeric", TypeKind::Float, TypeKind::Text);
        assert_eq!(value(&num, Some("1.5")), json!(1.5));
        assert_eq!(value(&num, Some("NaN")), Value::Null);
        let b = col("bool", TypeKind::Bool, TypeKind::Text);
        assert_eq!(value(&b, Some("t")), json!(true));
        let j = col("jsonb", TypeKind::Json, TypeKind::Text);
        assert_eq!(value(&j, Some(r#"{"a": [1]}"#)), json!({"a":[1]}));
        let ts = col("timestamptz", TypeKind::Timestamp, TypeKind::Text);
        assert_eq!(
            value(&ts, Some("2024-01-02 03:04:05.5+00")),
            json!("2024-01-02T03:04:05.5+00:00")
        );
        let arr = col("_int4", TypeKind::Array, TypeKind::Integer);
        assert_eq!(value(&arr, Some("{1,NULL,3}")), json!([1, null, 3]));
        let texts = col("_text", TypeKind::Array, TypeKind::Text);
        assert_eq!(
            value(&texts, Some(r#"{{a,"b c"},{"d\"",e}}"#)),
            json!([["a", "b c"], ["d\"", "e"]])
        );
        assert_eq!(value(&texts, Some("{}")), json!([]));
    }

    #[test]
    fn oversized_records_keep_small_values_and_say_413() {
        let c = col("text", TypeKind::Text, TypeKind::Text);
        let mut record = Map::new();
        record.insert("id".into(), json!(1));
        record.insert("big".into(), json!("x".repeat(MAX_RECORD_BYTES + 1)));
        record.insert("none".into(), Value::Null);
        let data = Data {
            schema: "public",
            table: "t",
            commit_timestamp: "x",
            kind: "INSERT",
            columns: &columns_json([&c].into_iter()),
            record: Some(record),
            old_record: None,
            errors: None,
        }
        .to_value();
        assert_eq!(data["record"], json!({"id": 1}));
        assert_eq!(data["errors"], json!(["Error 413: Payload Too Large"]));
    }

    #[test]
    fn a_select_list_keeps_those_columns_and_the_primary_key() {
        let named = |name: &str, kind| Column {
            name: name.into(),
            ..col("int4", kind, TypeKind::Text)
        };
        let table = Table {
            oid: 1,
            schema: "public".into(),
            name: "t".into(),
            columns: vec![
                named("id", TypeKind::Integer),
                named("a", TypeKind::Integer),
                named("b", TypeKind::Integer),
            ],
            primary_key: vec!["id".into()],
            rls: false,
        };
        let names = vec!["id".to_owned(), "a".into(), "b".into()];
        let access = Access {
            columns_json: columns_json(table.columns.iter()),
            columns: names,
            sees_primary_key: true,
            probe: None,
            ownership: None,
        };
        let row: Row = ["id", "a", "b"]
            .iter()
            .map(|c| (std::sync::Arc::from(*c), Some("1".to_owned())))
            .collect();
        let change = Change {
            table_oid: 1,
            kind: "UPDATE",
            new: Some(row.clone()),
            old: Some(row),
        };
        let select = ["b".to_owned()];
        let data = data(&table, "t", &change, &access, true, Some(&select));
        assert_eq!(data["record"], json!({"id": 1, "b": 1}));
        assert_eq!(data["old_record"], json!({"id": 1, "b": 1}));
        assert_eq!(
            data["columns"],
            json!([{"name": "id", "type": "int4"}, {"name": "b", "type": "int4"}])
        );
        let all = super::data(&table, "t", &change, &access, true, None);
        assert_eq!(all["record"], json!({"id": 1, "a": 1, "b": 1}));
    }
}
