//! The gateway's settings, read once (through clap) from PostgREST's variable names.

use std::time::Duration;

use axum::http::{HeaderMap, Method};
use clap::builder::BoolishValueParser;

use crate::error::ApiError;
use crate::query::Limits;

/// Settings shared by every request.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Exposed schemas, the first being the default (`PGRST_DB_SCHEMAS`, default `public`).
    pub schemas: Vec<String>,
    /// The most rows a read returns (`PGRST_DB_MAX_ROWS`), unlimited when unset.
    pub max_rows: Option<u64>,
    /// Schemas put on each request's `search_path` after the target schema
    /// (`PGRST_DB_EXTRA_SEARCH_PATH`, default `public,extensions` as Supabase sets it).
    pub extra_search_path: Vec<String>,
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
    /// Plans for `Accept: application/vnd.pgrst.plan` (`PGRST_DB_PLAN_ENABLED`, default off).
    pub plans: bool,
    /// Bounds on `select=` (`CRAFTBASE_REST_MAX_SELECT_ITEMS`, `CRAFTBASE_REST_MAX_EMBED_DEPTH`).
    pub limits: Limits,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            schemas: vec!["public".into()],
            max_rows: None,
            extra_search_path: vec!["public".into(), "extensions".into()],
            max_body_bytes: 10 * 1024 * 1024,
            pool_timeout: Duration::from_secs(10),
            schema_cache_timeout: Duration::from_secs(10),
            jwt_aud: None,
            pre_request: None,
            aggregates: false,
            plans: false,
            limits: Limits::default(),
        }
    }
}

/// The gateway's flags and PostgREST's environment variables (`PGRST_*`), read through clap:
/// a value that does not parse stops start-up naming the variable, never a silent default.
#[derive(clap::Args, Debug, Clone)]
pub struct GatewaySettings {
    /// Exposed schemas, comma separated; the first is the default.
    #[arg(
        long,
        env = "PGRST_DB_SCHEMAS",
        value_delimiter = ',',
        default_value = "public"
    )]
    pub db_schemas: Vec<String>,
    /// The most rows a read returns; unlimited when unset.
    #[arg(long, env = "PGRST_DB_MAX_ROWS")]
    pub db_max_rows: Option<u64>,
    /// Schemas added to each request's search_path after its own, comma separated.
    #[arg(
        long,
        env = "PGRST_DB_EXTRA_SEARCH_PATH",
        value_delimiter = ',',
        default_value = "public,extensions"
    )]
    pub db_extra_search_path: Vec<String>,
    /// The largest request body accepted, in bytes.
    #[arg(long, env = "PGRST_SERVER_MAX_BODY_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub server_max_body_bytes: usize,
    /// Seconds a request waits for a pooled connection before PGRST003.
    #[arg(long, env = "PGRST_DB_POOL_ACQUISITION_TIMEOUT", default_value_t = 10)]
    pub db_pool_acquisition_timeout: u64,
    /// The audience a token's `aud` must name when it has one.
    #[arg(long, env = "PGRST_JWT_AUD")]
    pub jwt_aud: Option<String>,
    /// A function (`schema.fn`) run before each statement.
    #[arg(long, env = "PGRST_DB_PRE_REQUEST")]
    pub db_pre_request: Option<String>,
    /// Allow aggregates (`count()`, `col.sum()`, ...) in `select=`.
    #[arg(long, env = "PGRST_DB_AGGREGATES_ENABLED", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub db_aggregates_enabled: bool,
    /// Answer `Accept: application/vnd.pgrst.plan` with the statement's `EXPLAIN`.
    #[arg(long, env = "PGRST_DB_PLAN_ENABLED", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub db_plan_enabled: bool,
    /// Most items `select=` may hold, counted at every level (craftbase's own bound).
    #[arg(long, env = "CRAFTBASE_REST_MAX_SELECT_ITEMS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1600))]
    pub rest_max_select_items: u32,
    /// Most levels of embeds nested in `select=` (craftbase's own bound).
    #[arg(long, env = "CRAFTBASE_REST_MAX_EMBED_DEPTH", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub rest_max_embed_depth: u32,
}

/// Only the environment, for the one-port server, which has flags of its own.
#[derive(clap::Parser)]
#[command(name = "craftbase-gateway", no_binary_name = true)]
struct FromEnv {
    #[command(flatten)]
    settings: GatewaySettings,
}

impl GatewayConfig {
    /// Settings from the environment (`PGRST_*`).
    pub fn from_env() -> Result<Self, String> {
        use clap::Parser;
        let parsed = FromEnv::try_parse_from(std::iter::empty::<String>()).map_err(|e| {
            // Name the variable the user set, not the flag they did not use.
            let text = e.to_string();
            match e.get(clap::error::ContextKind::InvalidArg) {
                Some(clap::error::ContextValue::String(arg)) => {
                    let flag = arg
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .trim_start_matches('-');
                    let command = <FromEnv as clap::CommandFactory>::command();
                    let var = command
                        .get_arguments()
                        .find(|a| a.get_long() == Some(flag))
                        .and_then(|a| a.get_env())
                        .map(|v| v.to_string_lossy().into_owned())
                        .unwrap_or_else(|| flag.to_owned());
                    format!("{var}: {}", text.trim().trim_start_matches("error: "))
                }
                _ => text,
            }
        })?;
        Ok(Self::from_settings(parsed.settings))
    }

    /// The runtime form of parsed settings.
    pub fn from_settings(s: GatewaySettings) -> Self {
        let schemas: Vec<String> = s
            .db_schemas
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        GatewayConfig {
            schemas: if schemas.is_empty() {
                vec!["public".into()]
            } else {
                schemas
            },
            max_rows: s.db_max_rows,
            extra_search_path: s
                .db_extra_search_path
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            max_body_bytes: s.server_max_body_bytes,
            pool_timeout: Duration::from_secs(s.db_pool_acquisition_timeout),
            jwt_aud: s.jwt_aud.filter(|a| !a.trim().is_empty()),
            pre_request: s
                .db_pre_request
                .filter(|f| !f.trim().is_empty())
                .map(|f| pre_request_call(&f)),
            aggregates: s.db_aggregates_enabled,
            plans: s.db_plan_enabled,
            limits: Limits {
                max_select_items: s.rest_max_select_items as usize,
                max_embed_depth: s.rest_max_embed_depth as usize,
            },
            ..GatewayConfig::default()
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<GatewayConfig, clap::Error> {
        use clap::Parser;
        FromEnv::try_parse_from(args.iter().copied())
            .map(|p| GatewayConfig::from_settings(p.settings))
    }

    #[test]
    fn select_bounds_have_defaults_flags_and_a_sane_range() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.limits, Limits::default());
        let config = parse(&[
            "--rest-max-select-items",
            "50",
            "--rest-max-embed-depth",
            "4",
        ])
        .unwrap();
        assert_eq!(
            config.limits,
            Limits {
                max_select_items: 50,
                max_embed_depth: 4
            }
        );
        // PostgreSQL refuses more than 1,664 result columns; the parser recurses per level.
        assert!(parse(&["--rest-max-select-items", "2000"]).is_err());
        assert!(parse(&["--rest-max-embed-depth", "0"]).is_err());
        assert!(parse(&["--rest-max-embed-depth", "65"]).is_err());
    }
}
