//! The migrations craftbase applies at start: the platform's, always, then a project's.

use std::path::{Path, PathBuf};

use craftbase_cluster::{Ledger, Migration};

/// The platform's SQL (roles, the `auth` schema, realtime's publication, replay index and
/// broadcast from the database, the gateway's schema-reload trigger, the `storage` schema), in release order: a file's
/// place in [`RELEASED`] is its version.
///
/// Append-only: a released file is never edited, renamed or reordered (a database that applied
/// it refuses to start on a changed one); a change ships as a new file at the end of the list.
pub fn platform() -> Vec<Migration> {
    RELEASED
        .iter()
        .zip(1..)
        .map(|(name, version)| Migration::embedded(version, name, platform_sql(name)))
        .collect()
}

/// Every platform file, in the order released (version 1 first).
const RELEASED: &[&str] = &[
    "craftbase/roles.sql",
    "craftbase/role_limits.sql",
    "craftbase/auth_schema.sql",
    "craftbase/auth_custom_providers.sql",
    "craftbase/auth_oauth_server.sql",
    "craftbase/auth_oauth_client_states.sql",
    "craftbase/auth_email_proofs.sql",
    "craftbase/auth_limits.sql",
    "craftbase/realtime.sql",
    "craftbase/realtime_replay.sql",
    "craftbase/gateway.sql",
    "craftbase/auth_rate_limits.sql",
    "craftbase/realtime_broadcast_from_database.sql",
    "craftbase/auth_saml.sql",
    "craftbase/auth_passkeys.sql",
    "craftbase/storage_schema.sql",
    "craftbase/realtime_broadcast_authorization.sql",
    "craftbase/authenticator_password.sql",
];

/// The SQL of the platform file `name`, from the crate that owns it.
fn platform_sql(name: &str) -> &'static str {
    match name {
        "craftbase/roles.sql" => craftbase_shared::ROLES_SQL,
        "craftbase/role_limits.sql" => craftbase_shared::ROLE_LIMITS_SQL,
        "craftbase/authenticator_password.sql" => craftbase_shared::AUTHENTICATOR_PASSWORD_SQL,
        "craftbase/realtime.sql" => craftbase_realtime::SCHEMA_SQL,
        "craftbase/realtime_replay.sql" => craftbase_realtime::REPLAY_SQL,
        "craftbase/realtime_broadcast_from_database.sql" => craftbase_realtime::BROADCAST_SQL,
        "craftbase/realtime_broadcast_authorization.sql" => {
            craftbase_realtime::BROADCAST_AUTHORIZATION_SQL
        }
        "craftbase/gateway.sql" => craftbase_gateway::SCHEMA_SQL,
        storage if storage.starts_with("craftbase/storage_") => craftbase_storage::MIGRATIONS
            .iter()
            .find(|(n, _)| *n == storage)
            .map(|(_, sql)| *sql)
            .unwrap_or_else(|| panic!("no storage file named {storage}")),
        auth => craftbase_auth::MIGRATIONS
            .iter()
            .find(|(n, _)| *n == auth)
            .map(|(_, sql)| *sql)
            .unwrap_or_else(|| panic!("no platform file named {auth}")),
    }
}

/// Where the Tool Connect Craft example project lives in the repository.
pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tool-connect-craft")
}

/// The platform, then the Tool Connect Craft example project, as `craftbase start
/// --project-dir examples/tool-connect-craft` applies them: what the tests and benchmarks run on.
pub fn platform_and_example() -> Vec<Migration> {
    let mut all = platform();
    all.extend(project(&example_dir()).expect("the example project is readable"));
    all
}

/// Auth's schema files, in the order auth lists them, with their platform versions.
pub fn auth_schema() -> impl Iterator<Item = Migration> {
    platform()
        .into_iter()
        .filter(|m| craftbase_auth::MIGRATIONS.iter().any(|(n, _)| *n == m.name))
}

/// A migration file's version, as the Supabase CLI reads it: the digits before the first `_`
/// of `<version>_<name>.sql`. Other names are skipped, as the CLI skips them.
pub fn migration_version(file_name: &str) -> Option<&str> {
    let stem = file_name.strip_suffix(".sql")?;
    let (version, name) = stem.split_once('_')?;
    (!version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty())
        .then_some(version)
}

/// A Supabase project's own migrations, as the Supabase CLI runs them:
/// `supabase/migrations/<version>_<name>.sql` in version order, then `supabase/seed.sql`.
pub fn project(project_dir: &Path) -> anyhow::Result<Vec<Migration>> {
    let supabase = project_dir.join("supabase");
    let mut files: Vec<(String, PathBuf)> = match std::fs::read_dir(supabase.join("migrations"))
    {
        Ok(entries) => entries
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "sql") && p.is_file())
            .filter_map(|p| {
                let file = p.file_name()?.to_string_lossy().into_owned();
                match migration_version(&file) {
                    Some(version) => Some((version.to_owned(), p)),
                    None => {
                        tracing::warn!(file = %p.display(), "skipping a migration whose name is not <version>_<name>.sql");
                        None
                    }
                }
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    // Versions are compared as the CLI does: as text, so equal-length timestamps sort in time.
    files.sort();
    if let Some(pair) = files.windows(2).find(|w| w[0].0 == w[1].0) {
        anyhow::bail!(
            "two migrations share version {}: {} and {}",
            pair[0].0,
            pair[0].1.display(),
            pair[1].1.display()
        );
    }
    let mut all = files
        .into_iter()
        .map(|(version, path)| read(project_dir, &path, Ledger::Project { version }))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let seed = supabase.join("seed.sql");
    if seed.is_file() {
        all.push(read(project_dir, &seed, Ledger::Seed)?);
    }
    Ok(all)
}

fn read(project_dir: &Path, path: &Path, ledger: Ledger) -> anyhow::Result<Migration> {
    let name = path
        .strip_prefix(project_dir)
        .unwrap_or(path)
        .display()
        .to_string();
    let sql = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(Migration {
        name,
        sql: sql.into(),
        ledger,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_as_the_supabase_cli_reads_them() {
        assert_eq!(
            migration_version("20240101120000_create_notes.sql"),
            Some("20240101120000")
        );
        assert_eq!(migration_version("1_a.sql"), Some("1"));
        assert_eq!(migration_version("create_notes.sql"), None);
        assert_eq!(migration_version("20240101.sql"), None);
        assert_eq!(migration_version("2024_.sql"), None);
        assert_eq!(migration_version("v1_x.sql"), None);
    }

    #[test]
    fn platform_versions_are_unique_and_increasing() {
        let versions: Vec<u32> = platform()
            .iter()
            .map(|m| match m.ledger {
                Ledger::Platform { version } => version,
                _ => panic!("{} is not a platform migration", m.name),
            })
            .collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        assert_eq!(versions[0], 1);
    }

    #[test]
    fn released_platform_versions_keep_their_numbers() {
        let version = |name: &str| {
            platform()
                .iter()
                .find(|m| m.name == name)
                .map(|m| match m.ledger {
                    Ledger::Platform { version } => version,
                    _ => unreachable!(),
                })
        };
        assert_eq!(version("craftbase/auth_limits.sql"), Some(8));
        assert_eq!(version("craftbase/realtime.sql"), Some(9));
        assert_eq!(version("craftbase/gateway.sql"), Some(11));
        assert_eq!(version("craftbase/auth_rate_limits.sql"), Some(12));
        assert_eq!(
            version("craftbase/realtime_broadcast_from_database.sql"),
            Some(13)
        );
        assert_eq!(version("craftbase/auth_saml.sql"), Some(14));
        assert_eq!(version("craftbase/auth_passkeys.sql"), Some(15));
        assert_eq!(version("craftbase/storage_schema.sql"), Some(16));
        assert_eq!(
            version("craftbase/realtime_broadcast_authorization.sql"),
            Some(17)
        );
    }

    #[test]
    fn every_file_of_auth_and_storage_is_released_once() {
        for (name, _) in craftbase_auth::MIGRATIONS
            .iter()
            .chain(craftbase_storage::MIGRATIONS.iter())
        {
            let n = RELEASED.iter().filter(|r| *r == name).count();
            assert_eq!(n, 1, "{name} must be in RELEASED exactly once");
        }
        // The auth files keep auth's own order.
        let positions: Vec<usize> = craftbase_auth::MIGRATIONS
            .iter()
            .map(|(name, _)| RELEASED.iter().position(|r| r == name).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    }

    #[test]
    fn the_example_project_is_two_migrations_and_a_seed() {
        let example = project(&example_dir()).unwrap();
        let names: Vec<_> = example.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "supabase/migrations/20250101000000_schema.sql",
                "supabase/migrations/20250101000001_policies.sql",
                "supabase/seed.sql"
            ]
        );
    }
}
