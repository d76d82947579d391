//! The migrations craftbase applies at start, in order.

use std::path::Path;

use craftbase_cluster::Migration;

/// The platform's SQL (roles, the auth schema, the realtime publication), then Tool Connect
/// Craft's schema, policies and catalogue.
pub fn platform_and_app() -> Vec<Migration> {
    let mut all = vec![
        Migration::embedded("craftbase/roles.sql", craftbase_shared::ROLES_SQL),
        Migration::embedded(
            "craftbase/role_limits.sql",
            craftbase_shared::ROLE_LIMITS_SQL,
        ),
    ];
    all.extend(auth_schema());
    all.extend([
        Migration::embedded("craftbase/realtime.sql", craftbase_realtime::SCHEMA_SQL),
        Migration::embedded(
            "craftbase/realtime_replay.sql",
            craftbase_realtime::REPLAY_SQL,
        ),
        Migration::embedded("craftbase/gateway.sql", craftbase_gateway::SCHEMA_SQL),
        Migration::embedded("schema.sql", include_str!("../../../schema.sql")),
        Migration::embedded("policies.sql", include_str!("../../../policies.sql")),
        Migration::embedded("seed.sql", include_str!("../../../seed.sql")),
    ]);
    all
}

/// Auth's schema files, in the order auth lists them.
pub fn auth_schema() -> impl Iterator<Item = Migration> {
    craftbase_auth::MIGRATIONS
        .iter()
        .map(|(name, sql)| Migration::embedded(name, sql))
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
