//! Statuses, headers and bodies of successful responses (§1.6).

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;

use crate::error::ApiError;
use crate::execute::Outcome;
use crate::preferences::{Format, FormatKind, Preferences, Resolution, Return};

/// GET/HEAD on a table: 200, 206 when a count shows more rows, 416 past the end.
pub fn read(
    outcome: &Outcome,
    format: Format,
    prefs: &Preferences,
    offset: Option<u64>,
    head: bool,
) -> Result<Response, ApiError> {
    if format.kind == FormatKind::Object && outcome.rows != 1 {
        return Err(ApiError::Singular { rows: outcome.rows });
    }
    let offset = offset.unwrap_or(0) as i64;
    let total = prefs.count.and(outcome.total);
    let mut status = StatusCode::OK;
    if let Some(total) = total {
        if offset > total {
            return Err(ApiError::Range { total });
        }
        if outcome.rows < total {
            status = StatusCode::PARTIAL_CONTENT;
        }
    }
    let range = read_range(offset, outcome.rows, total);
    let body = if head { None } else { outcome.body.clone() };
    Ok(finish(
        status,
        format,
        body,
        &range,
        prefs.applied(false),
        outcome,
    ))
}

/// `/rpc/fn`: 200 with the result, 204 for void.
pub fn rpc(
    outcome: &Outcome,
    format: Format,
    prefs: &Preferences,
    offset: Option<u64>,
    head: bool,
    void: bool,
    returns_set: bool,
) -> Result<Response, ApiError> {
    if void {
        return Ok(finish(
            StatusCode::NO_CONTENT,
            format,
            None,
            "*/*",
            prefs.applied(false),
            outcome,
        ));
    }
    if returns_set {
        return read(outcome, format, prefs, offset, head);
    }
    // One value: its own Content-Range (`0-0/*`, or `0-0/1` with a count), as PostgREST.
    let format = Format {
        kind: match format.kind {
            FormatKind::Csv | FormatKind::GeoJson => format.kind,
            _ => FormatKind::Json,
        },
        ..format
    };
    read(outcome, format, prefs, None, head)
}

/// POST 201 (200 for an upsert that inserted nothing), PATCH/DELETE/PUT 204 or 200.
pub fn write(
    method: &Method,
    outcome: &Outcome,
    format: Format,
    prefs: &Preferences,
    table: &str,
) -> Result<Response, ApiError> {
    let representation = prefs.return_ == Return::Representation;
    let total = prefs.count.map(|_| outcome.rows);
    let total_text = total.map_or("*".to_owned(), |t| t.to_string());
    let (status, range) = match *method {
        Method::POST => {
            let merged_only = prefs.resolution == Some(Resolution::MergeDuplicates)
                && outcome.inserted == Some(0)
                && outcome.rows > 0;
            let status = if merged_only {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            (status, format!("*/{total_text}"))
        }
        Method::PATCH => {
            let range = if outcome.rows > 0 {
                format!("0-{}/{total_text}", outcome.rows - 1)
            } else {
                format!("*/{total_text}")
            };
            let status = if representation {
                StatusCode::OK
            } else {
                StatusCode::NO_CONTENT
            };
            (status, range)
        }
        _ => {
            let status = if representation {
                StatusCode::OK
            } else {
                StatusCode::NO_CONTENT
            };
            (status, format!("*/{total_text}"))
        }
    };
    let body = if representation {
        outcome.body.clone()
    } else {
        None
    };
    let mut response = finish(status, format, body, &range, prefs.applied(true), outcome);
    if *method == Method::POST && prefs.return_ != Return::Minimal {
        if let Some(loc) = &outcome.location {
            let value = format!("/{table}?{loc}");
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(header::LOCATION, v);
            }
        }
    }
    Ok(response)
}

/// OPTIONS: the verbs allowed on the path.
pub fn options(rpc: bool) -> Response {
    let allow = if rpc {
        "OPTIONS,GET,HEAD,POST"
    } else {
        "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE"
    };
    let mut response = Response::new(Body::empty());
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// `GET /`: a minimal OpenAPI 2.0 document of the exposed schema's tables and functions.
pub fn openapi(doc: serde_json::Value) -> Response {
    let mut response = Response::new(Body::from(doc.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openapi+json; charset=utf-8"),
    );
    response
}

fn read_range(offset: i64, rows: i64, total: Option<i64>) -> String {
    let total = total.map_or("*".to_owned(), |t| t.to_string());
    if rows == 0 {
        format!("*/{total}")
    } else {
        format!("{offset}-{}/{total}", offset + rows - 1)
    }
}

fn finish(
    status: StatusCode,
    format: Format,
    body: Option<String>,
    range: &str,
    applied: Option<String>,
    outcome: &Outcome,
) -> Response {
    let mut status = status;
    if let Some(s) = outcome
        .status
        .as_deref()
        .and_then(|s| s.parse::<u16>().ok())
    {
        if let Ok(s) = StatusCode::from_u16(s) {
            status = s;
        }
    }
    let mut response = match body {
        Some(b) => Response::new(Body::from(b)),
        None => Response::new(Body::empty()),
    };
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if status != StatusCode::NO_CONTENT {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
    }
    if let Ok(v) = HeaderValue::from_str(range) {
        headers.insert(header::CONTENT_RANGE, v);
    }
    if let Some(applied) = applied.and_then(|a| HeaderValue::from_str(&a).ok()) {
        headers.insert("preference-applied", applied);
    }
    // `response.headers` set by SQL: a JSON array of one-key objects.
    if let Some(extra) = outcome.headers.as_deref() {
        if let Ok(serde_json::Value::Array(items)) = serde_json::from_str(extra) {
            for item in items {
                let Some(obj) = item.as_object() else {
                    continue;
                };
                for (k, v) in obj {
                    if let (Ok(name), Some(Ok(value))) = (
                        HeaderName::from_bytes(k.as_bytes()),
                        v.as_str().map(HeaderValue::from_str),
                    ) {
                        headers.insert(name, value);
                    }
                }
            }
        }
    }
    response
}

/// The plan of the statement a request would have run (`Accept: application/vnd.pgrst.plan`).
pub fn plan(plan: String, format: Format) -> Response {
    let content_type = format
        .plan
        .map(|p| p.content_type(format.kind))
        .unwrap_or_default();
    let mut response = Response::new(axum::body::Body::from(plan));
    if let Ok(v) = content_type.parse() {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    response
}
