//! Runs a parsed template over JSON data as Go's html/template would for the same values:
//! output is HTML-escaped, a missing map key prints nothing, and Go's truthiness
//! (false, 0, "", empty list or map, nil) decides `if`, `with`, `and`, `or` and `not`.

use serde_json::Value;
use thiserror::Error;

use super::syntax::{Arg, Node, Pipeline};

/// Why a template could not be run; the mail then falls back to the built-in text.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("template: {0}")]
pub struct RenderError(pub String);

fn fail<T>(message: impl Into<String>) -> Result<T, RenderError> {
    Err(RenderError(message.into()))
}

/// The template's data (GoTrue passes a map, so a missing key anywhere is nil) and the
/// variables `range` has declared.
struct Scope<'a> {
    root: &'a Value,
    vars: Vec<(String, Value)>,
}

/// Renders `nodes` with `root` as the template's data, escaping output for HTML or not.
pub fn render(nodes: &[Node], root: &Value, escape: bool) -> Result<String, RenderError> {
    let mut scope = Scope {
        root,
        vars: Vec::new(),
    };
    let mut out = String::new();
    run(nodes, root, &mut scope, escape, &mut out)?;
    Ok(out)
}

fn run(
    nodes: &[Node],
    dot: &Value,
    scope: &mut Scope,
    escape: bool,
    out: &mut String,
) -> Result<(), RenderError> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Output(p) => {
                let v = pipeline(p, dot, scope)?;
                let s = print(&v);
                // A pipeline ending in `html` is escaped already, as html/template treats it.
                let escaped =
                    matches!(p.last().and_then(|c| c.first()), Some(Arg::Func(f)) if f == "html");
                out.push_str(&if escape && !escaped {
                    super::html_escape(&s)
                } else {
                    s
                });
            }
            Node::If {
                cond,
                then,
                otherwise,
            } => {
                let branch = match truthy(&pipeline(cond, dot, scope)?) {
                    true => then,
                    false => otherwise,
                };
                run(branch, dot, scope, escape, out)?;
            }
            Node::With {
                value,
                body,
                otherwise,
            } => {
                let v = pipeline(value, dot, scope)?;
                match truthy(&v) {
                    true => run(body, &v, scope, escape, out)?,
                    false => run(otherwise, dot, scope, escape, out)?,
                }
            }
            Node::Range {
                vars,
                over,
                body,
                otherwise,
            } => {
                let items: Vec<(Value, Value)> = match pipeline(over, dot, scope)? {
                    Value::Array(a) => a
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (Value::from(i), v))
                        .collect(),
                    // Go ranges over a map in key order; serde_json's map is sorted too.
                    Value::Object(m) => m.into_iter().map(|(k, v)| (Value::String(k), v)).collect(),
                    Value::Null => Vec::new(),
                    other => return fail(format!("range can't iterate over {}", print(&other))),
                };
                if items.is_empty() {
                    run(otherwise, dot, scope, escape, out)?;
                }
                for (key, item) in items {
                    let mark = scope.vars.len();
                    match vars.as_slice() {
                        [v] => scope.vars.push((v.clone(), item.clone())),
                        [k, v] => {
                            scope.vars.push((k.clone(), key));
                            scope.vars.push((v.clone(), item.clone()));
                        }
                        _ => {}
                    }
                    let result = run(body, &item, scope, escape, out);
                    scope.vars.truncate(mark);
                    result?;
                }
            }
        }
    }
    Ok(())
}

fn pipeline(p: &Pipeline, dot: &Value, scope: &Scope) -> Result<Value, RenderError> {
    let mut last: Option<Value> = None;
    for command in p {
        let mut args = Vec::with_capacity(command.len());
        for arg in command.iter().skip(1) {
            args.push(value(arg, dot, scope)?);
        }
        args.extend(last.take());
        last = Some(match &command[0] {
            Arg::Func(name) => call(name, args)?,
            single => value(single, dot, scope)?,
        });
    }
    Ok(last.unwrap_or(Value::Null))
}

fn value(arg: &Arg, dot: &Value, scope: &Scope) -> Result<Value, RenderError> {
    Ok(match arg {
        Arg::Field(path) => walk(dot, path)?,
        Arg::Var(name, path) if name.is_empty() => walk(scope.root, path)?,
        Arg::Var(name, path) => match scope.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => walk(v, path)?,
            None => return fail(format!("undefined variable ${name}")),
        },
        Arg::Func(name) => call(name, Vec::new())?,
        Arg::Str(s) => Value::String(s.clone()),
        Arg::Num(n) => number(*n),
        Arg::Bool(b) => Value::Bool(*b),
        Arg::Nil => Value::Null,
        Arg::Sub(p) => pipeline(p, dot, scope)?,
    })
}

fn number(n: f64) -> Value {
    match n.fract() == 0.0 && n.abs() < 9.0e15 {
        true => Value::from(n as i64),
        false => serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
    }
}

fn walk(start: &Value, path: &[String]) -> Result<Value, RenderError> {
    let mut v = start;
    for name in path {
        v = match v {
            Value::Object(m) => m.get(name).unwrap_or(&Value::Null),
            Value::Null => return fail(format!("nil pointer evaluating .{name}")),
            _ => return fail(format!("can't evaluate field {name} in a {}", kind(v))),
        };
    }
    Ok(v.clone())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

/// Go's truth: the zero value and empty collections are false.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// How a value prints (html/template prints nil as nothing).
fn print(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(print).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(m) => {
            let items: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{}", print(v))).collect();
            format!("map[{}]", items.join(" "))
        }
        other => other.to_string(),
    }
}

fn call(name: &str, mut args: Vec<Value>) -> Result<Value, RenderError> {
    let arity = |n: usize| match args.len() == n {
        true => Ok(()),
        false => fail(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        )),
    };
    Ok(match name {
        "not" => {
            arity(1)?;
            Value::Bool(!truthy(&args[0]))
        }
        // Go's `and`/`or` answer the deciding argument itself, not a bool.
        "and" | "or" => {
            if args.is_empty() {
                return fail(format!("wrong number of args for {name}"));
            }
            let want = name == "or";
            let at = args
                .iter()
                .position(|a| truthy(a) == want)
                .unwrap_or(args.len() - 1);
            args.swap_remove(at)
        }
        "eq" => {
            if args.len() < 2 {
                return fail("missing argument for comparison");
            }
            let first = args.remove(0);
            Value::Bool(args.iter().any(|a| same(&first, a)))
        }
        "ne" => {
            arity(2)?;
            Value::Bool(!same(&args[0], &args[1]))
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(2)?;
            let ord = order(&args[0], &args[1])?;
            Value::Bool(match name {
                "lt" => ord.is_lt(),
                "le" => ord.is_le(),
                "gt" => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        "len" => {
            arity(1)?;
            Value::from(match &args[0] {
                Value::String(s) => s.len(),
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                other => return fail(format!("len of {}", kind(other))),
            })
        }
        "index" => {
            let mut v = args.first().cloned().unwrap_or(Value::Null);
            for key in args.iter().skip(1) {
                v = match (&v, key) {
                    (Value::Object(m), Value::String(k)) => {
                        m.get(k).cloned().unwrap_or(Value::Null)
                    }
                    (Value::Array(a), Value::Number(n)) => match n.as_u64() {
                        Some(i) if (i as usize) < a.len() => a[i as usize].clone(),
                        _ => return fail("index out of range"),
                    },
                    (Value::Null, _) => return fail("index of untyped nil"),
                    (other, _) => return fail(format!("can't index a {}", kind(other))),
                };
            }
            v
        }
        "print" | "println" => {
            // Go's print puts spaces between operands when neither is a string.
            let mut s = String::new();
            for (i, a) in args.iter().enumerate() {
                let spaced =
                    name == "println" || (i > 0 && !a.is_string() && !args[i - 1].is_string());
                if i > 0 && spaced {
                    s.push(' ');
                }
                s.push_str(&print(a));
            }
            if name == "println" {
                s.push('\n');
            }
            Value::String(s)
        }
        "printf" => match args.split_first() {
            Some((Value::String(format), rest)) => Value::String(printf(format, rest)?),
            _ => return fail("printf wants a format string"),
        },
        "html" => Value::String(super::html_escape(&joined(&args))),
        "urlquery" => {
            Value::String(url::form_urlencoded::byte_serialize(joined(&args).as_bytes()).collect())
        }
        "js" => Value::String(js_escape(&joined(&args))),
        other => return fail(format!("function {other:?} not defined")),
    })
}

/// Go's `printf` for the verbs a mail needs: `%s`, `%v`, `%d`, `%q` and `%%`.
fn printf(format: &str, args: &[Value]) -> Result<String, RenderError> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars.next();
        if verb == Some('%') {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            return fail("printf: missing argument");
        };
        match verb {
            Some('s' | 'v' | 'd') => out.push_str(&print(arg)),
            Some('q') => out.push_str(&Value::String(print(arg)).to_string()),
            other => return fail(format!("printf: unsupported verb {other:?}")),
        }
    }
    Ok(out)
}

fn joined(args: &[Value]) -> String {
    args.iter().map(print).collect()
}

/// Equality as Go's `eq` sees it, lenient where Go would refuse: a missing value (nil)
/// equals only nil, numbers compare by value.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Result<std::cmp::Ordering, RenderError> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .map_or_else(|| fail("incomparable numbers"), Ok),
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => fail(format!(
            "incompatible types for comparison: {} and {}",
            kind(a),
            kind(b)
        )),
    }
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}
