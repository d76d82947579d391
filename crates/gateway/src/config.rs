//! The gateway's settings, read once (through clap) from PostgREST's variable names.

use std::time::Duration;

use axum::http::{HeaderMap, Method};
use clap::builder::BoolishValueParser;

use crate::error::ApiError;
use crate::query::Limits;
pub use crate::role_claim::RoleClaimKey;

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
    /// The role of requests without a token or without a role claim (`PGRST_DB_ANON_ROLE`,
    /// `anon` as Supabase sets it); none: such requests are refused with 401 PGRST302.
    pub anon_role: Option<String>,
    /// How transactions end and whether `Prefer: tx=` may change it (`PGRST_DB_TX_END`).
    pub tx_end: TxEnd,
    /// What `GET /` describes (`PGRST_OPENAPI_MODE`).
    pub openapi_mode: OpenApiMode,
    /// The URL the OpenAPI document names as the API's (`PGRST_OPENAPI_SERVER_PROXY_URI`).
    pub openapi_proxy: Option<ProxyUri>,
    /// A `Server-Timing` header on answers (`PGRST_SERVER_TIMING_ENABLED`).
    pub server_timing: bool,
    /// Where a token keeps its role (`PGRST_JWT_ROLE_CLAIM_KEY`, default `.role`).
    pub role_claim_key: RoleClaimKey,
    /// Named, cached prepared statements (`PGRST_DB_PREPARED_STATEMENTS`); off for poolers in
    /// transaction mode, which may run each statement on another session.
    pub prepared_statements: bool,
    /// A standby that GET and HEAD requests read from while it keeps up
    /// (`--database-read-url`, set by `craftbase start`); none: every request on the primary.
    pub read_replica: Option<std::sync::Arc<crate::replica::ReadReplica>>,
}

/// `PGRST_DB_TX_END`: commit or roll back, and whether `Prefer: tx=commit|rollback` overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TxEnd {
    /// Always commit (PostgREST's default, and Supabase's, which does not set it).
    #[default]
    Commit,
    CommitAllowOverride,
    Rollback,
    RollbackAllowOverride,
}

impl std::str::FromStr for TxEnd {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "commit" => Ok(TxEnd::Commit),
            "commit-allow-override" => Ok(TxEnd::CommitAllowOverride),
            "rollback" => Ok(TxEnd::Rollback),
            "rollback-allow-override" => Ok(TxEnd::RollbackAllowOverride),
            other => Err(format!(
                "Invalid transaction termination \"{other}\": one of commit, commit-allow-override, rollback, rollback-allow-override"
            )),
        }
    }
}

impl TxEnd {
    /// Whether the transaction rolls back, given `Prefer: tx=` (`Some(true)` for rollback),
    /// and whether that preference was honoured.
    pub fn resolve(self, requested: Option<bool>) -> (bool, bool) {
        let (rollback, overridable) = match self {
            TxEnd::Commit => (false, false),
            TxEnd::CommitAllowOverride => (false, true),
            TxEnd::Rollback => (true, false),
            TxEnd::RollbackAllowOverride => (true, true),
        };
        match requested {
            Some(wanted) if overridable => (wanted, true),
            _ => (rollback, false),
        }
    }
}

/// `PGRST_OPENAPI_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpenApiMode {
    /// Only what the request's role may use (PostgREST's default).
    #[default]
    FollowPrivileges,
    /// Every table and function of the schema.
    IgnorePrivileges,
    /// `GET /` is 404 PGRST126.
    Disabled,
}

impl std::str::FromStr for OpenApiMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "follow-privileges" => Ok(OpenApiMode::FollowPrivileges),
            "ignore-privileges" => Ok(OpenApiMode::IgnorePrivileges),
            "disabled" => Ok(OpenApiMode::Disabled),
            other => Err(format!(
                "Invalid openapi-mode \"{other}\": one of follow-privileges, ignore-privileges, disabled"
            )),
        }
    }
}

/// `PGRST_OPENAPI_SERVER_PROXY_URI`, checked as PostgREST does: an absolute http(s) URL
/// without user info or query, its port in 1-65535.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUri {
    pub scheme: String,
    /// `host:port`, the port filled in from the scheme when absent.
    pub host: String,
    pub base_path: String,
}

impl std::str::FromStr for ProxyUri {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "Malformed proxy uri \"{s}\", a correct example: https://example.com:8443/basePath"
            )
        };
        let (scheme, rest) = s.split_once("://").ok_or_else(bad)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad());
        }
        if rest.contains('?') || rest.contains('#') {
            return Err(bad());
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        // `[::1]:8443` or `[::1]`: a colon inside the brackets is not the port's.
        let port_colon = authority
            .rfind(':')
            .filter(|&i| !authority[i..].contains(']'));
        let (host, port) = match port_colon.map(|i| (&authority[..i], &authority[i + 1..])) {
            Some((h, p)) => (
                h,
                p.parse::<u32>()
                    .ok()
                    .filter(|p| (1..65536).contains(p))
                    .ok_or_else(bad)?,
            ),
            None => (authority, if scheme == "https" { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(ProxyUri {
            host: format!("{host}:{port}"),
            base_path: if path.is_empty() {
                "/".into()
            } else {
                path.to_owned()
            },
            scheme,
        })
    }
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
            anon_role: Some(craftbase_shared::role::ANON_ROLE.to_owned()),
            tx_end: TxEnd::Commit,
            openapi_mode: OpenApiMode::FollowPrivileges,
            openapi_proxy: None,
            server_timing: false,
            role_claim_key: RoleClaimKey::default(),
            prepared_statements: true,
            read_replica: None,
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
    /// The role of requests without a token or a role claim; empty: refuse them (PGRST302).
    #[arg(long, env = "PGRST_DB_ANON_ROLE", default_value = "anon")]
    pub db_anon_role: String,
    /// commit, commit-allow-override, rollback or rollback-allow-override.
    #[arg(long, env = "PGRST_DB_TX_END", default_value = "commit")]
    pub db_tx_end: TxEnd,
    /// follow-privileges, ignore-privileges or disabled.
    #[arg(long, env = "PGRST_OPENAPI_MODE", default_value = "follow-privileges")]
    pub openapi_mode: OpenApiMode,
    /// The API's public URL in the OpenAPI document, e.g. https://example.com:8443/rest/v1.
    #[arg(long, env = "PGRST_OPENAPI_SERVER_PROXY_URI")]
    pub openapi_server_proxy_uri: Option<String>,
    /// Answer with a Server-Timing header (jwt, parse, plan, transaction, response).
    #[arg(long, env = "PGRST_SERVER_TIMING_ENABLED", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub server_timing_enabled: bool,
    /// The JSPath of the role in a token's claims, e.g. `.role` or `."https://x".roles[0]`.
    #[arg(long, env = "PGRST_JWT_ROLE_CLAIM_KEY", default_value = ".role")]
    pub jwt_role_claim_key: RoleClaimKey,
    /// Prepare and cache statements per connection; false behind a transaction-mode pooler.
    #[arg(long, env = "PGRST_DB_PREPARED_STATEMENTS", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub db_prepared_statements: bool,
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
        Self::from_settings(parsed.settings)
    }

    /// The runtime form of parsed settings; a proxy URI PostgREST would refuse is an error.
    pub fn from_settings(s: GatewaySettings) -> Result<Self, String> {
        let schemas: Vec<String> = s
            .db_schemas
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        Ok(GatewayConfig {
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
            anon_role: Some(s.db_anon_role.trim().to_owned()).filter(|r| !r.is_empty()),
            tx_end: s.db_tx_end,
            openapi_mode: s.openapi_mode,
            openapi_proxy: match s.openapi_server_proxy_uri.filter(|u| !u.trim().is_empty()) {
                Some(uri) => Some(
                    uri.trim()
                        .parse()
                        .map_err(|e| format!("PGRST_OPENAPI_SERVER_PROXY_URI: {e}"))?,
                ),
                None => None,
            },
            server_timing: s.server_timing_enabled,
            role_claim_key: s.jwt_role_claim_key,
            prepared_statements: s.db_prepared_statements,
            ..GatewayConfig::default()
        })
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

/// The settings PostgREST also reads from the database (`alter role authenticator set
/// pgrst.db_tx_end = '...'`), which win over the environment, as there.
#[derive(Debug, Clone, Copy)]
pub struct Switches {
    pub tx_end: TxEnd,
    pub plans: bool,
    pub aggregates: bool,
    pub max_rows: Option<u64>,
}

impl GatewayConfig {
    /// This request's switches: the schema cache's in-database settings over the environment's.
    /// A value that does not parse is logged and the environment's kept.
    pub fn switches(&self, cache: &crate::schema_cache::SchemaCache) -> Switches {
        fn read<T>(
            cache: &crate::schema_cache::SchemaCache,
            name: &str,
            parse: impl Fn(&str) -> Option<T>,
            fallback: T,
        ) -> T {
            match cache.in_database_setting(name) {
                None => fallback,
                Some(text) => parse(text.trim()).unwrap_or_else(|| {
                    tracing::warn!(setting = %format!("pgrst.{name}"), value = %text, "ignoring an in-database setting that does not parse");
                    fallback
                }),
            }
        }
        let boolean = |t: &str| match t.to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => Some(true),
            "false" | "off" | "no" | "0" => Some(false),
            _ => None,
        };
        Switches {
            tx_end: read(cache, "db_tx_end", |t| t.parse().ok(), self.tx_end),
            plans: read(cache, "db_plan_enabled", boolean, self.plans),
            aggregates: read(cache, "db_aggregates_enabled", boolean, self.aggregates),
            max_rows: read(
                cache,
                "db_max_rows",
                |t| {
                    if t.is_empty() {
                        Some(None)
                    } else {
                        t.parse().ok().map(Some)
                    }
                },
                self.max_rows,
            ),
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
            .map(|p| GatewayConfig::from_settings(p.settings).expect("valid settings"))
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

    #[test]
    fn proxy_uris_are_checked_as_postgrest_checks_them() {
        let p: ProxyUri = "https://example.com:8443/basePath".parse().unwrap();
        assert_eq!(
            (p.scheme.as_str(), p.host.as_str(), p.base_path.as_str()),
            ("https", "example.com:8443", "/basePath")
        );
        let p: ProxyUri = "HTTP://example.com".parse().unwrap();
        assert_eq!(
            (p.scheme.as_str(), p.host.as_str(), p.base_path.as_str()),
            ("http", "example.com:80", "/")
        );
        let p: ProxyUri = "https://[::1]/api".parse().unwrap();
        assert_eq!(p.host, "[::1]:443");
        for bad in [
            "example.com",
            "ftp://example.com",
            "https://user@example.com",
            "https://example.com/?a=1",
            "https://example.com:0",
            "https://example.com:70000",
            "https://:80",
        ] {
            assert!(bad.parse::<ProxyUri>().is_err(), "{bad}");
        }
    }

    #[test]
    fn tx_end_and_openapi_mode_take_postgrest_values() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.tx_end, TxEnd::Commit);
        assert_eq!(config.openapi_mode, OpenApiMode::FollowPrivileges);
        assert_eq!(config.anon_role.as_deref(), Some("anon"));
        assert!(config.prepared_statements && !config.server_timing);
        let config = parse(&[
            "--db-tx-end",
            "rollback-allow-override",
            "--openapi-mode",
            "disabled",
            "--db-anon-role",
            "",
            "--db-prepared-statements",
            "false",
        ])
        .unwrap();
        assert_eq!(config.tx_end, TxEnd::RollbackAllowOverride);
        assert_eq!(config.openapi_mode, OpenApiMode::Disabled);
        assert_eq!(config.anon_role, None);
        assert!(!config.prepared_statements);
        assert!(parse(&["--db-tx-end", "sometimes"]).is_err());
        assert!(parse(&["--openapi-mode", "private"]).is_err());
        assert!(parse(&["--jwt-role-claim-key", "role"]).is_err());
    }
}
