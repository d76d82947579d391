//! The migrations craftbase applies at start, in order.

use std::path::Path;

use craftbase_cluster::Migration;

/// The platform's SQL (roles, the auth schema, the realtime publication), then Tool Connect
/// Craft's schema, policies and catalogue.
pub fn platform_and_app() -> Vec<Migration> {
    vec![
        Migration::embedded("craftbase/roles.sql", craftbase_shared::ROLES_SQL),
        Migration::embedded("craftbase/auth_schema.sql", craftbase_auth::SCHEMA_SQL),
        Migration::embedded(
            "craftbase/auth_custom_providers.sql",
            craftbase_auth::CUSTOM_PROVIDERS_SQL,
        ),
        Migration::embedded(
            "craftbase/auth_oauth_server.sql",
            craftbase_auth::OAUTH_SERVER_SQL,
        ),
        Migration::embedded(
            "craftbase/auth_oauth_client_states.sql",
            craftbase_auth::OAUTH_CLIENT_STATES_SQL,
        ),
        Migration::embedded("craftbase/realtime.sql", craftbase_realtime::SCHEMA_SQL),
        Migration::embedded("craftbase/gateway.sql", craftbase_gateway::SCHEMA_SQL),
        Migration::embedded("schema.sql", include_str!("../../../schema.sql")),
        Migration::embedded("policies.sql", include_str!("../../../policies.sql")),
        Migration::embedded("seed.sql", include_str!("../../../seed.sql")),
    ]
}

/// A Supabase project's own migrations, like the Supabase CLI runs them:
/// `supabase/migrations/*.sql` in file-name order, then `supabase/seed.sql`.
pub fn project(project_dir: &Path) -> anyhow::Result<Vec<Migration>> {
    let supabase = project_dir.join("supabase");
    let mut files: Vec<_> = match std::fs::read_dir(supabase.join("migrations")) {
        Ok(entries) => entries
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "sql") && p.is_file())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    files.sort();
    let seed = supabase.join("seed.sql");
    if seed.is_file() {
        files.push(seed);
    }
    files
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(project_dir)
                .unwrap_or(&path)
                .display()
                .to_string();
            let sql = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            Ok(Migration {
                name,
                sql: sql.into(),
            })
        })
        .collect()
}
