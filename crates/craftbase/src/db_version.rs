//! `[db] major_version` of config.toml against the PostgreSQL craftbase runs: a project made
//! for another major version stops start-up with what to do, rather than failing later on a
//! feature or a dump format.

use std::path::{Path, PathBuf};

/// Where the server binaries are: with a major version asked for, Debian's
/// `/usr/lib/postgresql/<major>/bin` when it is installed (rather than the newest one there);
/// otherwise wherever `find_bindir` finds them.
pub fn bindir(major: Option<u32>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = major.and_then(|m| debian_bindir(Path::new("/usr/lib/postgresql"), m)) {
        return Ok(dir);
    }
    Ok(craftbase_cluster::find_bindir()?)
}

fn debian_bindir(root: &Path, major: u32) -> Option<PathBuf> {
    let dir = root.join(major.to_string()).join("bin");
    ["postgres", "initdb", "pg_ctl"]
        .iter()
        .all(|b| dir.join(b).is_file())
        .then_some(dir)
}

/// The major version of the server binaries in `bindir` (`postgres --version`).
pub fn of_binaries(bindir: &Path) -> anyhow::Result<u32> {
    let postgres = bindir.join("postgres");
    let out = std::process::Command::new(&postgres)
        .arg("--version")
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run {} --version: {e}", postgres.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_major(&text).ok_or_else(|| {
        anyhow::anyhow!(
            "cannot read the version of {}: {:?}",
            postgres.display(),
            text.trim()
        )
    })
}

/// `postgres (PostgreSQL) 15.10 (Debian ...)` -> 15; `9.6.24` -> 9.
fn parse_major(text: &str) -> Option<u32> {
    let version = text.split(')').nth(1)?.split_whitespace().next()?;
    version.split('.').next()?.parse().ok()
}

/// The major version of a running server, from `server_version_num` (150010 -> 15).
pub async fn of_server(client: &tokio_postgres::Client) -> anyhow::Result<u32> {
    let num: String = client
        .query_one("select current_setting('server_version_num')", &[])
        .await?
        .get(0);
    Ok(num.parse::<u32>()? / 10_000)
}

/// Fails when `expected` (config.toml's `db.major_version`, or `CRAFTBASE_DB_MAJOR_VERSION`)
/// is set and differs from `found`; `what` says where `found` is from.
pub fn check(expected: Option<u32>, found: u32, what: &str) -> anyhow::Result<()> {
    match expected {
        Some(expected) if expected != found => anyhow::bail!(
            "db.major_version = {expected} in supabase/config.toml (or CRAFTBASE_DB_MAJOR_VERSION), \
             but the PostgreSQL craftbase runs is {found} ({what}).\n\
             Either install PostgreSQL {expected}'s server binaries (e.g. `apt-get install \
             postgresql-{expected}`, or point DATABASE_URL at a {expected} server), or set \
             `major_version = {found}` under [db] if the project does not need {expected} \
             (`SHOW server_version;` on the hosted database says which it runs)."
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_asked_for_debian_version_is_chosen_when_installed() {
        let root = tempfile::tempdir().unwrap();
        for v in ["15", "17"] {
            let bin = root.path().join(v).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            for b in ["postgres", "initdb", "pg_ctl"] {
                std::fs::write(bin.join(b), "").unwrap();
            }
        }
        assert_eq!(
            debian_bindir(root.path(), 15),
            Some(root.path().join("15").join("bin"))
        );
        assert_eq!(debian_bindir(root.path(), 16), None);
    }

    #[test]
    fn reads_the_major_version() {
        assert_eq!(
            parse_major("postgres (PostgreSQL) 15.10 (Debian 15.10-1.pgdg120+1)\n"),
            Some(15)
        );
        assert_eq!(parse_major("postgres (PostgreSQL) 17.2\n"), Some(17));
        assert_eq!(parse_major("garbage"), None);
    }

    #[test]
    fn a_mismatch_names_the_key_what_runs_and_the_fix() {
        assert!(check(None, 15, "x").is_ok());
        assert!(check(Some(15), 15, "x").is_ok());
        let err = check(Some(17), 15, "/usr/lib/postgresql/15/bin")
            .unwrap_err()
            .to_string();
        assert!(err.contains("db.major_version = 17"), "{err}");
        assert!(err.contains("PostgreSQL craftbase runs is 15"), "{err}");
        assert!(err.contains("postgresql-17"), "{err}");
        assert!(err.contains("major_version = 15"), "{err}");
    }
}
