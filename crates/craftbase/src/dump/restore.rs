//! `craftbase restore`: a dump into a fresh data directory. The cluster is initialised, the
//! platform roles created (a dump holds no roles), then `pg_restore` runs in one transaction.
//! The migration ledger comes with the dump, so the next `craftbase start` applies nothing
//! again; realtime creates its replication slot (never in a dump) when it starts.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;
use clap::Args;
use craftbase_cluster::{Cluster, ClusterSpec};

use super::backup::{read_secrets, secrets_path};
use super::{free_port, has_cluster, objects, progress, roles, tool};
use crate::datadir::{DataDir, Secrets};

/// Where the platform's role SQL runs: roles are cluster-wide, but the schemas and grants that
/// SQL also makes must not land in the database the dump is restored into.
const SCRATCH_DB: &str = "craftbase_restore_roles";

#[derive(Args, Debug, Clone)]
pub struct RestoreArgs {
    /// The dump `craftbase backup` wrote (a `pg_dump --format=custom` archive).
    pub file: PathBuf,
    /// A new or empty directory to restore into; then `craftbase start --data-dir` it.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The `<dump>.secrets.json` `craftbase backup --include-secrets` wrote: the restored
    /// craftbase keeps the same JWT secret and keys. Without it, new ones are generated.
    #[arg(long)]
    pub secrets: Option<PathBuf>,
}

pub async fn run(args: RestoreArgs) -> anyhow::Result<()> {
    let bindir = craftbase_cluster::find_bindir()?;
    let file = fs::canonicalize(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let tables = table_data_entries(&bindir, &file)?;
    let referenced = roles::referenced(&roles::schema_script(&bindir, &file)?);
    let secrets = args.secrets.as_deref().map(read_secrets).transpose()?;
    ensure_fresh(&args.data_dir)?;
    // An empty directory given gets its mode back if the restore fails.
    let before = fs::metadata(&args.data_dir).ok().map(|m| m.permissions());
    let dir = DataDir::open(&args.data_dir)
        .with_context(|| format!("cannot use data directory {}", args.data_dir.display()))?;
    let root = dir.cluster_root();
    if has_cluster(&root) {
        undo(&args.data_dir, before, &root, true);
        anyhow::bail!(
            "a PostgreSQL cluster for {} already exists in {}; restore never overwrites one. Restore into another --data-dir, or remove that cluster if it is not needed",
            args.data_dir.display(),
            root.display()
        );
    }
    let root_existed = root.exists();
    let kept_secrets = secrets.is_some();
    let restored = restore_into(
        &dir,
        &bindir,
        root.clone(),
        &file,
        secrets,
        tables,
        &referenced,
    );
    let storage_from = objects::storage_path(&file);
    let restored = async {
        let (created, objects_in_dump) = restored.await?;
        let files = match objects::file_root(&args.data_dir)? {
            Some(root) if storage_from.is_dir() => {
                progress::step("copying the storage objects' bytes");
                Some(tokio::task::block_in_place(|| {
                    objects::restore(&storage_from, &root)
                })?)
            }
            _ => None,
        };
        anyhow::Ok((created, objects_in_dump, files))
    };
    let (created_roles, objects_in_dump, files) = match restored.await {
        Ok(done) => done,
        Err(e) => {
            undo(&args.data_dir, before, &root, root_existed);
            let left = if args.data_dir.exists() {
                "emptied again"
            } else {
                "removed"
            };
            return Err(e.context(format!(
                "restore failed; {} was {left}",
                args.data_dir.display()
            )));
        }
    };
    println!(
        "restored {} into {} ({tables} tables)",
        args.file.display(),
        args.data_dir.display()
    );
    match files {
        Some(files) => println!(
            "restored {files} storage object files from {}",
            storage_from.display()
        ),
        None if objects_in_dump > 0 => println!(
            "warning: the dump has {objects_in_dump} storage objects but no {} beside it (a backup made before craftbase saved storage bytes, or an S3 backend): copy the old storage folder into the new one, or their downloads fail",
            storage_from.display()
        ),
        None => {}
    }
    if !created_roles.is_empty() {
        println!(
            "roles the dump uses were created without login (a dump holds no roles): {}. Give them their attributes, passwords and memberships with ALTER ROLE and GRANT",
            created_roles.join(", ")
        );
    }
    if !kept_secrets {
        let beside = secrets_path(&args.file);
        let hint = if beside.exists() {
            format!(
                " (to keep the old ones, restore again with --secrets {})",
                beside.display()
            )
        } else {
            String::new()
        };
        println!(
            "new JWT secret and keys were generated{hint}: clients need the new anon key (`craftbase status --data-dir {}`); users sign in again with their passwords",
            args.data_dir.display()
        );
    }
    println!(
        "start it with: craftbase start --data-dir {}",
        args.data_dir.display()
    );
    Ok(())
}

/// Refuses a data directory in use. Only a missing or empty directory will do: a restore never
/// mixes a dump into an existing database.
fn ensure_fresh(path: &Path) -> anyhow::Result<()> {
    let mut entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot use {} as a data directory", path.display()))
        }
    };
    if entries.next().is_none() {
        return Ok(());
    }
    let p = path.display();
    if path.join("secrets.json").exists() || has_cluster(&path.join("postgres")) {
        anyhow::bail!(
            "{p} already holds a craftbase data directory; restore never overwrites one. Restore into a new directory (e.g. --data-dir {p}-restored) and start craftbase on it, or stop craftbase, move {p} aside, and restore into {p} again"
        );
    }
    anyhow::bail!("{p} is not empty; restore into a new or empty directory")
}

/// Counts the dump's table-data entries, which also checks that pg_restore can read it.
fn table_data_entries(bindir: &Path, file: &Path) -> anyhow::Result<usize> {
    let out = Command::new(bindir.join("pg_restore"))
        .arg("--list")
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .context("cannot run pg_restore")?;
    anyhow::ensure!(
        out.status.success(),
        "{} is not a dump pg_restore can read:\n{}",
        file.display(),
        said(&out)
    );
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with(';') && l.contains(" TABLE DATA "))
        .count())
}

async fn restore_into(
    dir: &DataDir,
    bindir: &Path,
    root: PathBuf,
    file: &Path,
    secrets: Option<Secrets>,
    tables: usize,
    referenced: &BTreeSet<String>,
) -> anyhow::Result<(Vec<String>, i64)> {
    let secrets = match secrets {
        Some(secrets) => {
            dir.store_secrets(&secrets)?;
            secrets
        }
        None => dir.secrets(None, crate::datadir::unix_now())?,
    };
    let spec = ClusterSpec {
        bindir: bindir.to_owned(),
        root,
        port: free_port()?,
        superuser_password: secrets.db_password,
        throwaway: false,
        settings: Vec::new(),
    };
    let mut cluster = Cluster::start(spec, progress::step).await?;
    let result = async {
        progress::step("creating the platform roles");
        create_roles(&cluster).await?;
        let client = connect(&cluster, "postgres").await?;
        let created = roles::create_missing(&client, referenced).await?;
        pg_restore(bindir, &cluster, file, tables)?;
        progress::step("analyzing the restored tables");
        client.batch_execute("analyze").await?;
        let has_objects: bool = client
            .query_one("select to_regclass('storage.objects') is not null", &[])
            .await?
            .get(0);
        let objects: i64 = if has_objects {
            client
                .query_one("select count(*) from storage.objects", &[])
                .await?
                .get(0)
        } else {
            0
        };
        anyhow::Ok((created, objects))
    }
    .await;
    progress::step("stopping PostgreSQL");
    tokio::task::block_in_place(|| cluster.stop());
    result
}

/// The platform's roles and their limits, made by the same SQL `craftbase start` applies, run
/// in a scratch database dropped afterwards.
async fn create_roles(cluster: &Cluster) -> anyhow::Result<()> {
    let admin = connect(cluster, "postgres").await?;
    admin
        .batch_execute(&format!("drop database if exists {SCRATCH_DB}"))
        .await?;
    admin
        .batch_execute(&format!("create database {SCRATCH_DB}"))
        .await?;
    let scratch = connect(cluster, SCRATCH_DB).await?;
    let made = async {
        scratch.batch_execute(craftbase_shared::ROLES_SQL).await?;
        scratch
            .batch_execute(craftbase_shared::ROLE_LIMITS_SQL)
            .await
    }
    .await;
    drop(scratch);
    made.context("cannot create the platform roles")?;
    // The scratch session may still be closing; FORCE does not wait for it.
    admin
        .batch_execute(&format!("drop database {SCRATCH_DB} with (force)"))
        .await?;
    Ok(())
}

/// All or nothing: one transaction, stopped at the first error. A fresh data directory has no
/// tablespaces but the default one: everything is restored into it.
fn pg_restore(bindir: &Path, cluster: &Cluster, file: &Path, tables: usize) -> anyhow::Result<()> {
    let spec = cluster.spec();
    let mut cmd = tool::command(bindir, "pg_restore");
    cmd.args([
        "--exit-on-error",
        "--single-transaction",
        "--no-tablespaces",
    ])
    .arg("--host")
    .arg(spec.socket_dir())
    .args(["--port", &spec.port.to_string()])
    .args(["--username", "postgres", "--dbname", "postgres"])
    .arg(file)
    .stdout(Stdio::null());
    let mut bar = progress::Bar::new(Some(tables), "restored");
    let ran = tokio::task::block_in_place(|| {
        tool::run(cmd, &mut |line| {
            if let Some(table) = progress::restored_table(line) {
                bar.advance(table);
            }
        })
    });
    bar.finish();
    for warning in ran? {
        tracing::warn!("{warning}");
    }
    Ok(())
}

async fn connect(cluster: &Cluster, dbname: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = cluster
        .socket_config("postgres", dbname)
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(connection);
    Ok(client)
}

/// After a failed restore: nothing was there before, so leave nothing half-restored that a
/// start would take for a data directory.
fn undo(data_dir: &Path, before: Option<fs::Permissions>, root: &Path, root_existed: bool) {
    match before {
        None => {
            let _ = fs::remove_dir_all(data_dir);
        }
        Some(permissions) => {
            clear(data_dir);
            let _ = fs::set_permissions(data_dir, permissions);
        }
    }
    if !root_existed && !root.starts_with(data_dir) {
        let _ = fs::remove_dir_all(root);
    }
}

/// Empties a directory that was empty before the restore began.
fn clear(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let _ = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
    }
}

/// What a failed pg_restore said, or how it ended when it said nothing (it crashes on some
/// damaged archives).
pub(super) fn said(out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    match stderr.trim() {
        "" => format!("pg_restore ended with {}", out.status),
        text => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::ensure_fresh;

    #[test]
    fn only_a_missing_or_empty_directory_is_fresh() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(ensure_fresh(&tmp.path().join("new")).is_ok());
        assert!(ensure_fresh(tmp.path()).is_ok());
        std::fs::write(tmp.path().join("notes.txt"), "x").unwrap();
        let err = ensure_fresh(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("is not empty"), "{err}");
        std::fs::write(tmp.path().join("secrets.json"), "{}").unwrap();
        let err = ensure_fresh(tmp.path()).unwrap_err().to_string();
        assert!(
            err.contains("already holds a craftbase data directory"),
            "{err}"
        );
    }
}
