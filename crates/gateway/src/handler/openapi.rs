//! `GET /`: the OpenAPI document of the request's schema, as `PGRST_OPENAPI_MODE` says:
//! what the request's role may use (PostgREST's default), everything, or 404 PGRST126.

use std::collections::HashSet;

use axum::response::Response;

use super::{run, Incoming};
use crate::config::OpenApiMode;
use crate::error::ApiError;
use crate::response;
use crate::schema_cache::OpenApiView;
use crate::sql::Sql;

/// Answers `GET /`.
pub(super) async fn root(r: &Incoming<'_>) -> Result<Response, ApiError> {
    let mut view = OpenApiView {
        server: r
            .gw
            .config
            .openapi_proxy
            .as_ref()
            .map(|p| (p.scheme.clone(), p.host.clone(), p.base_path.clone())),
        ..OpenApiView::default()
    };
    match r.gw.config.openapi_mode {
        OpenApiMode::Disabled => return Err(ApiError::OpenApiDisabled),
        OpenApiMode::IgnorePrivileges => {}
        OpenApiMode::FollowPrivileges => {
            let (tables, functions) = visible(r).await?;
            view.tables = Some(tables);
            view.functions = Some(functions);
        }
    }
    Ok(response::openapi(r.cache.openapi_with(&r.schema, &view)))
}

/// The tables (any table or column privilege) and functions (EXECUTE) of the schema that the
/// request's role may use, asked as that role in its own read-only transaction.
async fn visible(r: &Incoming<'_>) -> Result<(HashSet<String>, HashSet<String>), ApiError> {
    let mut sql = Sql::default();
    sql.push(
        "SELECT NULL::int8, 0::int8, json_build_array(\
         (SELECT coalesce(json_agg(c.relname), '[]') FROM pg_catalog.pg_class c \
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
          WHERE n.nspname = ",
    )
    .param(r.schema.clone())
    .push(
        " AND c.relkind IN ('r', 'v', 'm', 'f', 'p') \
          AND (pg_catalog.has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE') \
               OR pg_catalog.has_any_column_privilege(c.oid, 'SELECT, INSERT, UPDATE'))), \
         (SELECT coalesce(json_agg(p.proname), '[]') FROM pg_catalog.pg_proc p \
          JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
          WHERE n.nspname = ",
    )
    .param(r.schema.clone())
    .push(
        " AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE')))::text, \
         NULL::text, NULL::text",
    );
    let outcome = run(r, sql, true, |_| Ok(())).await?;
    let lists: (Vec<String>, Vec<String>) =
        serde_json::from_str(outcome.body.as_deref().unwrap_or("[[],[]]")).map_err(|e| {
            tracing::error!(error = %e, "unexpected privileges answer");
            ApiError::Internal
        })?;
    Ok((lists.0.into_iter().collect(), lists.1.into_iter().collect()))
}
