//! Every error the gateway answers with, mapped to PostgREST's status, code and JSON body (§1.7).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// One relationship an ambiguous embed could mean, as PostgREST lists it in PGRST201's details.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// `many-to-one`, `one-to-many`, `one-to-one` or `many-to-many`.
    pub cardinality: &'static str,
    /// `origin with target`.
    pub embedding: String,
    /// `constraint using origin(cols) and target(cols)`, or the junction and its two keys.
    pub relationship: String,
    /// What goes after `!` to pick it: the constraint, or the junction table.
    pub hint: String,
}

/// A failed request; each variant maps to one exact HTTP response.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The JWT could not be decoded or verified (PGRST301).
    #[error("{0}")]
    JwtInvalid(String),
    /// The JWT's claims are invalid, e.g. it expired (PGRST303).
    #[error("{0}")]
    JwtClaims(String),
    /// No token (or no role claim) and no anon role configured (PGRST302).
    #[error("Anonymous access is disabled")]
    AnonymousDisabled,
    /// `GET /` with `PGRST_OPENAPI_MODE=disabled` (404 PGRST126).
    #[error("Root endpoint metadata is disabled")]
    OpenApiDisabled,
    /// The token names a role the gateway may not switch to.
    #[error("permission denied to set role \"{0}\"")]
    RoleNotAllowed(String),
    /// The query string does not parse (PGRST100).
    #[error("{message}")]
    Parse { message: String, details: String },
    /// The body is not valid JSON of the expected shape (PGRST102).
    #[error("{0}")]
    Body(String),
    /// The body is larger than the configured limit.
    #[error("Request body exceeds the limit of {0} bytes")]
    BodyTooLarge(usize),
    /// The offset is past the total (PGRST103).
    #[error("Requested range not satisfiable")]
    Range { total: i64 },
    /// The profile names a schema that is not exposed (PGRST106).
    #[error("Invalid schema: {schema}")]
    Schema {
        schema: String,
        exposed: Vec<String>,
    },
    /// Accept asks for a media type the gateway cannot produce (PGRST107).
    #[error("None of these media types are available: {0}")]
    Accept(String),
    /// The body's Content-Type is not one the gateway reads (415 PGRST107).
    #[error("Content-Type not acceptable: {0}")]
    ContentType(String),
    /// A singular response found another number of rows (PGRST116).
    #[error("Cannot coerce the result to a single JSON object")]
    Singular { rows: i64 },
    /// A 400 with its own code: a filter on a non-selected embed (PGRST108), an embed filter
    /// other than is.null (PGRST120), aggregates (PGRST123).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// No relationship between two tables (PGRST200).
    #[error("Could not find a relationship between '{from}' and '{to}' in the schema cache")]
    NoRelationship {
        from: String,
        to: String,
        /// The `!hint` of the embed, named in the details.
        embed_hint: Option<String>,
        schema: String,
        /// "Perhaps you meant ..." when a name is close to one that has relationships.
        suggestion: Option<String>,
    },
    /// More than one relationship fits the embed (PGRST201).
    #[error(
        "Could not embed because more than one relationship was found for '{from}' and '{to}'"
    )]
    AmbiguousEmbed {
        from: String,
        to: String,
        candidates: Vec<Candidate>,
    },
    /// The function does not exist with these arguments (PGRST202).
    #[error(
        "Could not find the function {schema}.{name}{} in the schema cache",
        if args.is_empty() { " without parameters".to_owned() } else { format!("({})", args.join(", ")) }
    )]
    FunctionNotFound {
        schema: String,
        name: String,
        /// The argument names given, sorted.
        args: Vec<String>,
        /// A POST with a JSON body, which could also have called a single json/jsonb parameter.
        json_body: bool,
        /// "Perhaps you meant to call the function ...".
        suggestion: Option<String>,
    },
    /// More than one overload fits the arguments (PGRST203).
    /// `candidates` is PostgREST's list: `public.f(a => integer), public.f(a => text)`.
    #[error("Could not choose the best candidate function between: {candidates}")]
    AmbiguousFunction { candidates: String },
    /// `Prefer: handling=strict, max-affected=N` and the request touched more rows (PGRST124).
    #[error("Query result exceeds max-affected preference constraint")]
    MaxAffected { rows: i64 },
    /// `max-affected` with `handling=strict` on a function that returns one row (PGRST128).
    #[error("Function must return SETOF or TABLE when max-affected preference is used with handling=strict")]
    MaxAffectedSingle,
    /// A column of the body or `columns` does not exist (PGRST204).
    #[error("Could not find the '{column}' column of '{table}' in the schema cache")]
    ColumnNotFound { table: String, column: String },
    /// A column named in select, filters or order does not exist (42703).
    #[error("column {table}.{column} does not exist")]
    UnknownColumn { table: String, column: String },
    /// The table or view does not exist (PGRST205).
    #[error("Could not find the table '{schema}.{name}' in the schema cache")]
    TableNotFound { schema: String, name: String },
    /// The path is not a table, a function or the root (PGRST125).
    #[error("Invalid path specified in request URL")]
    InvalidPath,
    /// The HTTP verb is not supported here (PGRST101 for RPC, PGRST117 otherwise).
    #[error("{message}")]
    Method { code: &'static str, message: String },
    /// A feature the gateway does not implement (PGRST127).
    #[error("{0}")]
    NotImplemented(String),
    /// The PUT body does not match the filters (PGRST115) or uses limits (PGRST114).
    #[error("{message}")]
    Put { code: &'static str, message: String },
    /// The schema cache has not loaded yet (PGRST002).
    #[error("Could not query the database for the schema cache. Retrying.")]
    SchemaCacheNotLoaded,
    /// No connection in time (PGRST003).
    #[error("Timed out acquiring connection from connection pool.")]
    PoolTimeout,
    /// The database is unreachable (PGRST000).
    #[error("Database client error. Retrying the connection.")]
    Connection,
    /// PostgreSQL refused the statement.
    #[error("{message}")]
    Db {
        sqlstate: String,
        message: String,
        details: Option<String>,
        hint: Option<String>,
        authenticated: bool,
    },
    /// `RAISE SQLSTATE 'PGRST'` with a JSON message and detail: the function chose the answer.
    #[error("{}", body["message"].as_str().unwrap_or(""))]
    Custom {
        status: u16,
        body: serde_json::Value,
        headers: Vec<(String, String)>,
    },
    /// A bug in the gateway; details only go to the log.
    #[error("Internal server error")]
    Internal,
}

impl ApiError {
    /// A PGRST100 error for the query-string parameter `key`.
    pub fn parse(message: impl Into<String>, details: impl Into<String>) -> Self {
        ApiError::Parse {
            message: message.into(),
            details: details.into(),
        }
    }

    /// Maps a database error to PostgREST's answer; `authenticated` tells 42501 apart.
    pub fn from_db(e: &tokio_postgres::Error, authenticated: bool) -> Self {
        let Some(db) = e.as_db_error() else {
            if e.is_closed() {
                return ApiError::Connection;
            }
            tracing::error!(error = %e, "database client error");
            return ApiError::Connection;
        };
        let sqlstate = db.code().code().to_owned();
        if sqlstate == "PGRST" {
            return custom(db.message(), db.detail());
        }
        // A syntax error in the generated SQL is the gateway's bug: never show its text. The
        // parser marks those with a position in the statement; one without a position was raised
        // at run time on a value the client sent (`to_tsquery('&&&')`, a jsonpath), which
        // PostgREST answers 400 with PostgreSQL's code and message.
        let generated = match sqlstate.as_str() {
            "42601" => db.position().is_some(),
            "42P18" | "42P08" => true,
            _ => false,
        };
        if generated {
            tracing::error!(
                sqlstate,
                message = db.message(),
                "generated SQL was rejected"
            );
            return ApiError::Internal;
        }
        ApiError::Db {
            sqlstate,
            message: db.message().to_owned(),
            details: db.detail().map(str::to_owned),
            hint: db.hint().map(str::to_owned),
            authenticated,
        }
    }

    fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            JwtInvalid(_) | JwtClaims(_) | RoleNotAllowed(_) | AnonymousDisabled => {
                StatusCode::UNAUTHORIZED
            }
            OpenApiDisabled => StatusCode::NOT_FOUND,
            Parse { .. } | Body(_) | BadRequest { .. } | NoRelationship { .. } => {
                StatusCode::BAD_REQUEST
            }
            MaxAffected { .. } | MaxAffectedSingle => StatusCode::BAD_REQUEST,
            ColumnNotFound { .. } | UnknownColumn { .. } | NotImplemented(_) | Put { .. } => {
                StatusCode::BAD_REQUEST
            }
            BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Range { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Schema { .. } | Accept(_) | Singular { .. } => StatusCode::NOT_ACCEPTABLE,
            AmbiguousEmbed { .. } | AmbiguousFunction { .. } => StatusCode::MULTIPLE_CHOICES,
            FunctionNotFound { .. } | TableNotFound { .. } | InvalidPath => StatusCode::NOT_FOUND,
            Method { .. } => StatusCode::METHOD_NOT_ALLOWED,
            SchemaCacheNotLoaded | Connection => StatusCode::SERVICE_UNAVAILABLE,
            PoolTimeout => StatusCode::GATEWAY_TIMEOUT,
            Custom { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Db {
                sqlstate,
                message,
                authenticated,
                ..
            } => sqlstate_status(sqlstate, message, *authenticated),
        }
    }

    fn code(&self) -> String {
        use ApiError::*;
        match self {
            JwtInvalid(_) => "PGRST301",
            JwtClaims(_) => "PGRST303",
            RoleNotAllowed(_) => "42501",
            AnonymousDisabled => "PGRST302",
            OpenApiDisabled => "PGRST126",
            Parse { .. } => "PGRST100",
            Body(_) => "PGRST102",
            BodyTooLarge(_) => "PGRST102",
            Range { .. } => "PGRST103",
            Schema { .. } => "PGRST106",
            Accept(_) | ContentType(_) => "PGRST107",
            Singular { .. } => "PGRST116",
            BadRequest { code, .. } | Method { code, .. } | Put { code, .. } => code,
            NoRelationship { .. } => "PGRST200",
            AmbiguousEmbed { .. } => "PGRST201",
            FunctionNotFound { .. } => "PGRST202",
            AmbiguousFunction { .. } => "PGRST203",
            MaxAffected { .. } => "PGRST124",
            MaxAffectedSingle => "PGRST128",
            ColumnNotFound { .. } => "PGRST204",
            UnknownColumn { .. } => "42703",
            TableNotFound { .. } => "PGRST205",
            InvalidPath => "PGRST125",
            NotImplemented(_) => "PGRST127",
            SchemaCacheNotLoaded => "PGRST002",
            PoolTimeout => "PGRST003",
            Connection => "PGRST000",
            Internal => "PGRSTX00",
            Custom { body, .. } => return body["code"].as_str().unwrap_or("").to_owned(),
            Db { sqlstate, .. } => return sqlstate.clone(),
        }
        .to_owned()
    }

    fn details_and_hint(&self) -> (Option<String>, Option<String>) {
        use ApiError::*;
        match self {
            Parse { details, .. } => (Some(details.clone()), None),
            Range { total } => (
                Some(format!(
                    "An offset was requested past the end of the {total} available rows"
                )),
                None,
            ),
            Schema { exposed, .. } => (
                None,
                Some(format!(
                    "Only the following schemas are exposed: {}",
                    exposed.join(", ")
                )),
            ),
            Singular { rows } => (Some(format!("The result contains {rows} rows")), None),
            MaxAffected { rows } => (Some(format!("The query affects {rows} rows")), None),
            AmbiguousFunction { .. } => (
                None,
                Some("Try renaming the parameters or the function itself in the database so function overloading can be resolved".into()),
            ),
            NoRelationship {
                from,
                to,
                embed_hint,
                schema,
                suggestion,
            } => (
                Some(format!(
                    "Searched for a foreign key relationship between '{from}' and '{to}'{} in the schema '{schema}', but no matches were found.",
                    embed_hint.as_ref().map(|h| format!(" using the hint '{h}'")).unwrap_or_default()
                )),
                suggestion.clone(),
            ),
            FunctionNotFound {
                schema,
                name,
                args,
                json_body,
                suggestion,
            } => {
                let params = match args.len() {
                    0 => " without parameters".to_owned(),
                    1 => format!(" with parameter {}", args[0]),
                    _ => format!(" with parameters {}", args.join(", ")),
                };
                let json = if *json_body {
                    " or with a single unnamed json/jsonb parameter"
                } else {
                    ""
                };
                (
                    Some(format!(
                        "Searched for the function {schema}.{name}{params}{json}, but no matches were found in the schema cache."
                    )),
                    suggestion.clone(),
                )
            }
            AmbiguousEmbed { to, candidates, .. } => (
                None,
                Some(format!(
                    "Try changing '{to}' to one of the following: {}. Find the desired relationship in the 'details' key.",
                    candidates
                        .iter()
                        .map(|c| format!("'{to}!{}'", c.hint))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ),
            Db { details, hint, .. } => (details.clone(), hint.clone()),
            _ => (None, None),
        }
    }
}

/// A `RAISE SQLSTATE 'PGRST'`: message `{"code","message","details","hint"}`, detail
/// `{"status","headers"}`; PGRST121 when either is not that JSON.
fn custom(message: &str, detail: Option<&str>) -> ApiError {
    let body: Option<serde_json::Value> = serde_json::from_str(message)
        .ok()
        .filter(|v: &serde_json::Value| v.is_object());
    let detail: Option<serde_json::Value> = detail
        .and_then(|d| serde_json::from_str(d).ok())
        .filter(|v: &serde_json::Value| v.is_object());
    let (Some(body), Some(detail)) = (body, detail) else {
        return ApiError::Custom {
            status: 500,
            body: json!({
                "code": "PGRST121",
                "message": "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
                "details": null,
                "hint": null,
            }),
            headers: Vec::new(),
        };
    };
    let status = detail["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(500);
    let headers = detail["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let field = |k: &str| body.get(k).cloned().unwrap_or(serde_json::Value::Null);
    ApiError::Custom {
        status,
        body: json!({
            "code": field("code"),
            "message": field("message"),
            "details": field("details"),
            "hint": field("hint"),
        }),
        headers,
    }
}

/// PostgREST's SQLSTATE → HTTP status table (§1.7).
fn sqlstate_status(code: &str, message: &str, authenticated: bool) -> StatusCode {
    let s = |n: u16| StatusCode::from_u16(n).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(n) = code.strip_prefix("PT").and_then(|n| n.parse::<u16>().ok()) {
        return s(n);
    }
    let class = code.get(..2).unwrap_or("");
    match code {
        "23503" | "23505" => return s(409),
        "25006" => return s(405),
        "21000" if message.ends_with("requires a WHERE clause") => return s(400),
        "21000" => return s(500),
        "22023" if message.starts_with("role") && message.ends_with("does not exist") => {
            return s(401)
        }
        "42883" | "42P01" => return s(404),
        "42P17" => return s(500),
        "42501" => return if authenticated { s(403) } else { s(401) },
        "53400" => return s(500),
        "57P01" => return s(503),
        "P0001" => return s(400),
        _ => {}
    }
    match class {
        "08" | "53" => s(503),
        "09" | "25" | "2D" | "38" | "39" | "3B" | "40" | "54" | "55" | "57" | "58" | "F0"
        | "HV" | "XX" | "P0" => s(500),
        "0L" | "0P" | "28" => s(403),
        _ => s(400),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Custom { body, headers, .. } = &self {
            let mut response = (status, body.to_string()).into_response();
            let h = response.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            for (k, v) in headers {
                if let (Ok(k), Ok(v)) = (
                    axum::http::HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(v),
                ) {
                    h.insert(k, v);
                }
            }
            return response;
        }
        let code = self.code();
        let (details, hint) = self.details_and_hint();
        let details = match &self {
            ApiError::AmbiguousEmbed { candidates, .. } => json!(candidates
                .iter()
                .map(|c| json!({
                    "cardinality": c.cardinality,
                    "embedding": c.embedding,
                    "relationship": c.relationship,
                }))
                .collect::<Vec<_>>()),
            _ => json!(details),
        };
        let body = json!({
            "code": code,
            "message": self.to_string(),
            "details": details,
            "hint": hint,
        });
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("PostgREST; error={code}")) {
            headers.insert("proxy-status", v);
        }
        if status == StatusCode::UNAUTHORIZED {
            let value = match &self {
                ApiError::JwtInvalid(m) | ApiError::JwtClaims(m) => format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    m.replace('"', "'")
                ),
                _ => "Bearer".to_owned(),
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_like_postgrest() {
        assert_eq!(sqlstate_status("23505", "", true), StatusCode::CONFLICT);
        assert_eq!(sqlstate_status("42501", "", true), StatusCode::FORBIDDEN);
        assert_eq!(
            sqlstate_status("42501", "", false),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(sqlstate_status("PT402", "", false).as_u16(), 402);
        assert_eq!(sqlstate_status("08006", "", false).as_u16(), 503);
        assert_eq!(sqlstate_status("22P02", "", false).as_u16(), 400);
        assert_eq!(sqlstate_status("P0001", "", false).as_u16(), 400);
        assert_eq!(sqlstate_status("P0002", "", false).as_u16(), 500);
        assert_eq!(sqlstate_status("25006", "", false).as_u16(), 405);
    }
}
