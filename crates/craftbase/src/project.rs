//! A project folder, as the Supabase CLI lays it out: `craftbase init` and `craftbase migration
//! new`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The `supabase/config.toml` that `craftbase init` writes.
const CONFIG_TEMPLATE: &str = include_str!("../templates/config.toml");

/// What `supabase init` writes to `supabase/.gitignore`: local state that is not the project.
const GITIGNORE: &str =
    "# Supabase\n.branches\n.temp\n\n# dotenvx\n.env.keys\n.env.local\n.env.*.local\n";

const SEED: &str = "-- Rows every fresh database of this project starts with: applied once after the\n-- migrations, and again by `craftbase db reset`.\n";

/// Writes `supabase/config.toml`, `supabase/migrations/`, `supabase/seed.sql` and
/// `supabase/.gitignore` under `project_dir`. An existing config.toml is left alone unless
/// `force`; other files that exist are never overwritten. Returns the files written.
pub fn init(project_dir: &Path, force: bool) -> anyhow::Result<Vec<PathBuf>> {
    let supabase = project_dir.join("supabase");
    let config = supabase.join("config.toml");
    if config.exists() && !force {
        anyhow::bail!(
            "{} already exists (run with --force to overwrite it)",
            config.display()
        );
    }
    fs::create_dir_all(supabase.join("migrations"))
        .with_context(|| format!("cannot create {}", supabase.display()))?;
    let mut written = Vec::new();
    fs::write(&config, config_for(project_dir))?;
    written.push(config);
    for (name, text) in [("seed.sql", SEED), (".gitignore", GITIGNORE)] {
        let path = supabase.join(name);
        if !path.exists() {
            fs::write(&path, text)?;
            written.push(path);
        }
    }
    written.push(supabase.join("migrations"));
    Ok(written)
}

/// The template with the folder's name as `project_id` and the installed PostgreSQL's major
/// version.
fn config_for(project_dir: &Path) -> String {
    let id = fs::canonicalize(project_dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "craftbase".into());
    let id: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    CONFIG_TEMPLATE.replace("{{project_id}}", &id).replace(
        "{{major_version}}",
        &installed_major().unwrap_or(15).to_string(),
    )
}

/// The major version of the PostgreSQL craftbase would run, from `postgres --version`.
fn installed_major() -> Option<u32> {
    let bindir = craftbase_cluster::find_bindir().ok()?;
    let out = std::process::Command::new(bindir.join("postgres"))
        .arg("--version")
        .output()
        .ok()?;
    parse_major(&String::from_utf8_lossy(&out.stdout))
}

/// `postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)` → 15.
fn parse_major(version: &str) -> Option<u32> {
    let after = version.split(')').nth(1)?.trim_start();
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Creates `supabase/migrations/<UTC timestamp>_<name>.sql`, empty, as `supabase migration
/// new` does, and returns its path.
pub fn new_migration(
    project_dir: &Path,
    name: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<PathBuf> {
    let name = name.trim();
    anyhow::ensure!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        "a migration name is letters, digits, '_' and '-' (got {name:?})"
    );
    let dir = project_dir.join("supabase").join("migrations");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{}_{name}.sql", now.format("%Y%m%d%H%M%S")));
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_major_version_is_read_from_postgres_version() {
        assert_eq!(
            parse_major("postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n"),
            Some(15)
        );
        assert_eq!(parse_major("postgres (PostgreSQL) 17beta1"), Some(17));
        assert_eq!(parse_major("nonsense"), None);
    }

    #[test]
    fn init_writes_a_project_and_keeps_an_existing_config() {
        let tmp = tempfile::tempdir().unwrap();
        let written = init(tmp.path(), false).unwrap();
        assert_eq!(written.len(), 4, "{written:?}");
        let config = fs::read_to_string(tmp.path().join("supabase/config.toml")).unwrap();
        assert!(config.contains("project_id = \""), "{config}");
        assert!(!config.contains("{{"), "{config}");
        assert!(tmp.path().join("supabase/migrations").is_dir());
        fs::write(tmp.path().join("supabase/seed.sql"), "-- mine\n").unwrap();
        let err = init(tmp.path(), false).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        init(tmp.path(), true).unwrap();
        assert_eq!(
            fs::read_to_string(tmp.path().join("supabase/seed.sql")).unwrap(),
            "-- mine\n",
            "--force rewrites config.toml only"
        );
    }

    #[test]
    fn a_new_migration_is_named_by_its_time() {
        let tmp = tempfile::tempdir().unwrap();
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-03T08:30:05Z")
            .unwrap()
            .to_utc();
        let path = new_migration(tmp.path(), "create_notes", at).unwrap();
        assert!(path.ends_with("supabase/migrations/20261203083005_create_notes.sql"));
        assert_eq!(
            crate::migrations::migration_version("20261203083005_create_notes.sql"),
            Some("20261203083005")
        );
        assert!(
            new_migration(tmp.path(), "create_notes", at).is_err(),
            "exists"
        );
        assert!(new_migration(tmp.path(), "../escape", at).is_err());
        assert!(new_migration(tmp.path(), "", at).is_err());
    }
}
