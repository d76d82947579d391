//! The gateway's settings, read once from PostgREST's variable names.

use std::time::Duration;

use axum::http::{HeaderMap, Method};

use crate::error::ApiError;

/// Settings shared by every request.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Exposed schemas, the first being the default (`PGRST_DB_SCHEMAS`, default `public`).
    pub schemas: Vec<String>,
    /// The most rows a read returns (`PGRST_DB_MAX_ROWS`), unlimited when unset.
    pub max_rows: Option<u64>,
    /// The largest request body accepted (`PGRST_SERVER_MAX_BODY_BYTES`, default 10 MiB).
    pub max_body_bytes: usize,
    /// How long a request waits for a pooled connection (`PGRST_DB_POOL_ACQUISITION_TIMEOUT`, s).
    pub pool_timeout: Duration,
    /// How long a request waits for the first schema cache load.
    pub schema_cache_timeout: Duration,
    /// The audience a token's `aud` must name when it has one (`PGRST_JWT_AUD`).
    pub jwt_aud: Option<String>,
    /// A function run before each statement, already quoted (`PGRST_DB_PRE_REQUEST`).
    pub pre_request: Option<String>,
    /// `count()`, `col.sum()`, ... in `select=` (`PGRST_DB_AGGREGATES_ENABLED`, default off).
    pub aggregates: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            schemas: vec!["public".into()],
            max_rows: None,
            max_body_bytes: 10 * 1024 * 1024,
            pool_timeout: Duration::from_secs(10),
            schema_cache_timeout: Duration::from_secs(10),
            jwt_aud: None,
            pre_request: None,
            aggregates: false,
        }
    }
}

impl GatewayConfig {
    /// Reads the environment; a value that does not parse is an error naming the variable,
    /// never a silent fall-back to the default.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        fn number<T: std::str::FromStr>(
            name: &str,
            value: Option<String>,
        ) -> Result<Option<T>, String> {
            value
                .map(|v| {
                    v.trim().parse().map_err(|_| {
                        format!("{name} must be a non-negative whole number, not {v:?}")
                    })
                })
                .transpose()
        }
        let mut config = GatewayConfig::default();
        if let Some(s) = var("PGRST_DB_SCHEMAS") {
            let schemas: Vec<String> = s
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            if !schemas.is_empty() {
                config.schemas = schemas;
            }
        }
        config.max_rows = number("PGRST_DB_MAX_ROWS", var("PGRST_DB_MAX_ROWS"))?;
        if let Some(n) = number(
            "PGRST_SERVER_MAX_BODY_BYTES",
            var("PGRST_SERVER_MAX_BODY_BYTES"),
        )? {
            config.max_body_bytes = n;
        }
        let timeout = var("PGRST_DB_POOL_ACQUISITION_TIMEOUT");
        if let Some(n) = number("PGRST_DB_POOL_ACQUISITION_TIMEOUT", timeout)? {
            config.pool_timeout = Duration::from_secs(n);
        }
        config.jwt_aud = var("PGRST_JWT_AUD");
        config.pre_request = var("PGRST_DB_PRE_REQUEST").map(|f| pre_request_call(&f));
        if let Some(v) = var("PGRST_DB_AGGREGATES_ENABLED") {
            config.aggregates = match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => {
                    return Err(format!(
                        "PGRST_DB_AGGREGATES_ENABLED must be true or false, not {v:?}"
                    ))
                }
            };
        }
        Ok(config)
    }

    /// The schema a request targets: `Accept-Profile` on GET/HEAD, `Content-Profile`
    /// otherwise, the first exposed schema by default (406 PGRST106 if not exposed).
    pub fn schema_for(&self, method: &Method, headers: &HeaderMap) -> Result<String, ApiError> {
        let name = if method == Method::GET || method == Method::HEAD {
            "accept-profile"
        } else {
            "content-profile"
        };
        match headers.get(name).map(|v| v.to_str().unwrap_or("")) {
            None => Ok(self.schemas[0].clone()),
            Some(s) if self.schemas.iter().any(|e| e == s) => Ok(s.to_owned()),
            Some(s) => Err(ApiError::Schema {
                schema: s.to_owned(),
                exposed: self.schemas.clone(),
            }),
        }
    }
}

/// `select "schema"."fn"()` for a configured `schema.fn` (or `fn`).
pub fn pre_request_call(name: &str) -> String {
    let quoted: Vec<String> = name
        .split('.')
        .map(|part| crate::sql::quote_ident(part.trim().trim_matches('"')))
        .collect();
    format!("select {}()", quoted.join("."))
}
