//! `craftbase backup`: `pg_dump --format=custom` of the whole database, from the PostgreSQL of a
//! running craftbase, from a stopped one's cluster (started for the dump, stopped after it), or
//! from a server given by URL.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use craftbase_cluster::{Cluster, ClusterSpec};

use super::{free_port, has_cluster, objects, progress, tool};
use crate::datadir::{DataDir, Secrets};

#[derive(Args, Debug, Clone)]
pub struct BackupArgs {
    /// The data directory of the craftbase to back up, running or not.
    #[arg(long, env = "CRAFTBASE_DATA_DIR", default_value = ".craftbase")]
    pub data_dir: PathBuf,
    /// Back up this PostgreSQL server instead of the data directory's (the DATABASE_URL
    /// `craftbase start` was given).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub db_url: Option<String>,
    /// Where to write the dump [default: craftbase-<UTC timestamp>.dump here]. Never overwritten.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Also copy the data directory's secrets.json (JWT secret, keys, database password) to
    /// `<output>.secrets.json`, mode 0600, so a restore keeps the same keys. The dump alone
    /// holds password hashes, not keys.
    #[arg(long)]
    pub include_secrets: bool,
}

/// Where the rows are read from.
enum Source {
    /// The PostgreSQL a craftbase runs on the data directory, through its socket.
    Running { socket_dir: PathBuf, port: u16 },
    /// The data directory's cluster, started for the dump only.
    Temporary(Cluster),
    /// A server craftbase does not run; the password goes to pg_dump through PGPASSWORD, never
    /// on its command line.
    Url {
        url: String,
        password: Option<String>,
        config: Box<tokio_postgres::Config>,
    },
}

pub async fn run(args: BackupArgs) -> anyhow::Result<()> {
    let bindir = craftbase_cluster::find_bindir()?;
    let output = args.output.clone().unwrap_or_else(default_output);
    anyhow::ensure!(
        !output.exists(),
        "{} exists; choose another --output (a backup never overwrites a file)",
        output.display()
    );
    let storage_dir = objects::storage_path(&output);
    anyhow::ensure!(
        !storage_dir.exists(),
        "{} exists; choose another --output (a backup never overwrites a file)",
        storage_dir.display()
    );
    let storage_root = objects::file_root(&args.data_dir)?;
    let secrets = if args.include_secrets {
        Some(data_dir(&args.data_dir)?.stored_secrets()?)
    } else {
        None
    };
    let mut source = match &args.db_url {
        Some(url) => {
            progress::step("dumping from the server at --db-url (DATABASE_URL)");
            Source::url(url)?
        }
        None => Source::data_dir(&args.data_dir, &bindir).await?,
    };
    let result = dump(&bindir, &source, &output, storage_root.as_deref()).await;
    if let Source::Temporary(cluster) = &mut source {
        progress::step("stopping PostgreSQL");
        tokio::task::block_in_place(|| cluster.stop());
    }
    let (tables, saved) = result?;
    let size = fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
    println!(
        "backup written: {} ({}, {tables} tables)",
        output.display(),
        human_size(size)
    );
    if saved.files > 0 {
        println!(
            "storage objects written: {} ({} files, {})",
            storage_dir.display(),
            saved.files,
            human_size(saved.bytes)
        );
    }
    if !saved.missing.is_empty() {
        println!(
            "warning: {} storage objects' bytes were not found (deleted since the dump's snapshot, or missing before): {}",
            saved.missing.len(),
            saved.missing.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
        );
    }
    if storage_root.is_none() {
        println!("storage objects stay in the S3 bucket (STORAGE_BACKEND=s3): only their rows are in the dump");
    }
    if let Some(secrets) = secrets {
        let path = secrets_path(&output);
        write_private(&path, &serde_json::to_vec_pretty(&secrets)?)?;
        println!(
            "secrets written: {} (keep it private: it holds the JWT secret and the keys)",
            path.display()
        );
        println!(
            "restore with: craftbase restore {} --data-dir NEW_DIR --secrets {}",
            output.display(),
            path.display()
        );
    } else {
        println!(
            "restore with: craftbase restore {} --data-dir NEW_DIR",
            output.display()
        );
    }
    Ok(())
}

/// `<dump>.secrets.json`, where `--include-secrets` puts the data directory's secrets.
pub fn secrets_path(dump: &Path) -> PathBuf {
    let mut name = dump.as_os_str().to_owned();
    name.push(".secrets.json");
    PathBuf::from(name)
}

fn default_output() -> PathBuf {
    PathBuf::from(format!(
        "craftbase-{}.dump",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ))
}

/// The data directory, by its canonical path: the cluster's place outside it (when root runs
/// craftbase) is named after that path.
fn data_dir(path: &Path) -> anyhow::Result<DataDir> {
    DataDir::existing(&fs::canonicalize(path).unwrap_or_else(|_| path.to_owned()))
}

impl Source {
    fn url(url: &str) -> anyhow::Result<Self> {
        let config: tokio_postgres::Config = url
            .parse()
            .context("--db-url is not a valid PostgreSQL URL")?;
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let mut parsed = url::Url::parse(url).context("--db-url is not a valid PostgreSQL URL")?;
        if parsed.password().is_some() {
            let _ = parsed.set_password(None);
        }
        Ok(Source::Url {
            url: parsed.to_string(),
            password,
            config: Box::new(config),
        })
    }

    /// The PostgreSQL serving the data directory if there is one, else its cluster started on a
    /// free port.
    async fn data_dir(path: &Path, bindir: &Path) -> anyhow::Result<Self> {
        let dir = data_dir(path)?;
        let root = dir.cluster_root();
        anyhow::ensure!(
            has_cluster(&root),
            "{} has no PostgreSQL cluster (did craftbase run with DATABASE_URL? then back that server up with --db-url)",
            path.display()
        );
        if let Some((socket_dir, port)) = postmaster(&root.join("pgdata")) {
            let running = Source::Running { socket_dir, port };
            if running
                .config()
                .connect(tokio_postgres::NoTls)
                .await
                .is_ok()
            {
                progress::step("dumping from the running PostgreSQL");
                return Ok(running);
            }
        }
        let spec = ClusterSpec {
            bindir: bindir.to_owned(),
            root,
            port: free_port()?,
            superuser_password: dir.stored_secrets()?.db_password,
            throwaway: false,
            settings: Vec::new(),
        };
        let cluster = Cluster::start(spec, |step| progress::step(&format!("{step} for the dump")))
            .await
            .context("craftbase is not running on this data directory and its PostgreSQL could not be started for the dump")?;
        Ok(Source::Temporary(cluster))
    }

    fn config(&self) -> tokio_postgres::Config {
        match self {
            Source::Running { socket_dir, port } => socket(socket_dir, *port),
            Source::Temporary(cluster) => cluster.socket_config("postgres", "postgres"),
            Source::Url { config, .. } => (**config).clone(),
        }
    }

    /// pg_dump's connection options.
    fn connect(&self, cmd: &mut Command) {
        let (socket_dir, port) = match self {
            Source::Running { socket_dir, port } => (socket_dir.clone(), *port),
            Source::Temporary(cluster) => (cluster.spec().socket_dir(), cluster.spec().port),
            Source::Url { url, password, .. } => {
                cmd.arg("--dbname").arg(url);
                if let Some(password) = password {
                    cmd.env("PGPASSWORD", password);
                }
                return;
            }
        };
        cmd.arg("--host")
            .arg(socket_dir)
            .args(["--port", &port.to_string()])
            .args(["--username", "postgres", "--dbname", "postgres"]);
    }
}

fn socket(socket_dir: &Path, port: u16) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host_path(socket_dir)
        .port(port)
        .user("postgres")
        .dbname("postgres")
        .application_name("craftbase backup")
        .connect_timeout(Duration::from_secs(5));
    config
}

/// The socket directory and port a live postmaster wrote in `postmaster.pid` (lines 5 and 4).
fn postmaster(pgdata: &Path) -> Option<(PathBuf, u16)> {
    let text = fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let port = lines.get(3)?.trim().parse().ok()?;
    let socket_dir = lines.get(4)?.trim();
    (!socket_dir.is_empty()).then(|| (PathBuf::from(socket_dir), port))
}

/// Dumps into `<output>.partial` (mode 0600: the dump holds password hashes), renamed to
/// `output` once pg_dump succeeded, so a failed dump leaves no file that looks whole. The dump
/// reads an exported snapshot, whose object rows' bytes (file backend at `storage_root`) are
/// first put in `<output>.storage`. Returns how many tables' rows were dumped, and the bytes saved.
async fn dump(
    bindir: &Path,
    source: &Source,
    output: &Path,
    storage_root: Option<&Path>,
) -> anyhow::Result<(usize, objects::Saved)> {
    let snapshot = objects::Snapshot::take(&source.config()).await?;
    let storage_dir = objects::storage_path(output);
    let saved = match storage_root {
        Some(root) if !snapshot.versions.is_empty() => {
            progress::step(&format!(
                "saving {} storage objects' bytes",
                snapshot.versions.len()
            ));
            let saved = tokio::task::block_in_place(|| {
                objects::save(root, &snapshot.versions, &storage_dir)
            });
            match saved {
                Ok(saved) => saved,
                Err(e) => {
                    let _ = fs::remove_dir_all(&storage_dir);
                    snapshot.release().await;
                    return Err(e);
                }
            }
        }
        _ => objects::Saved::default(),
    };
    let dumped = dump_rows(bindir, source, output, &snapshot.id).await;
    snapshot.release().await;
    match dumped {
        Ok(tables) => Ok((tables, saved)),
        Err(e) => {
            let _ = fs::remove_dir_all(&storage_dir);
            Err(e)
        }
    }
}

async fn dump_rows(
    bindir: &Path,
    source: &Source,
    output: &Path,
    snapshot: &str,
) -> anyhow::Result<usize> {
    let total = count_tables(&source.config()).await;
    let mut partial = output.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = fs::remove_file(&partial);
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut cmd = tool::command(bindir, "pg_dump");
    // A session holding an exclusive lock (a migration, a VACUUM FULL) would make pg_dump wait
    // forever for its share; past this it fails and says which table.
    cmd.args(["--format=custom", "--lock-wait-timeout=60s"])
        .arg(format!("--snapshot={snapshot}"))
        .stdout(file.try_clone()?);
    source.connect(&mut cmd);
    let mut bar = progress::Bar::new(total, "dumped");
    let ran = tokio::task::block_in_place(|| {
        tool::run(cmd, &mut |line| {
            if let Some(table) = progress::dumped_table(line) {
                bar.advance(table);
            }
        })
    });
    bar.finish();
    let finished = ran.and_then(|warnings| {
        file.sync_all()?;
        fs::rename(&partial, output).with_context(|| {
            format!(
                "cannot rename {} to {}",
                partial.display(),
                output.display()
            )
        })?;
        Ok(warnings)
    });
    match finished {
        Ok(warnings) => {
            for warning in warnings {
                tracing::warn!("{warning}");
            }
            Ok(bar.done())
        }
        Err(e) => {
            let _ = fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// The tables whose rows pg_dump will dump (extensions' own excepted), for the bar's total;
/// `None` when the count cannot be had (the bar then counts without a total).
async fn count_tables(config: &tokio_postgres::Config) -> Option<usize> {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.ok()?;
    let connection = tokio::spawn(connection);
    let count: Option<i64> = client
        .query_one(
            "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where c.relkind = 'r'
               and n.nspname not in ('pg_catalog', 'information_schema')
               and n.nspname not like 'pg\\_toast%'
               and not exists (select 1 from pg_depend d
                               where d.classid = 'pg_class'::regclass and d.objid = c.oid
                                 and d.deptype = 'e')",
            &[],
        )
        .await
        .ok()
        .map(|row| row.get(0));
    drop(client);
    let _ = connection.await;
    count.and_then(|c| usize::try_from(c).ok())
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Reads the secrets `--include-secrets` wrote.
pub fn read_secrets(path: &Path) -> anyhow::Result<Secrets> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a secrets file `craftbase backup --include-secrets` wrote",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_pg_dump_is_given() {
        let Source::Url { url, password, .. } =
            Source::url("postgresql://app:s%40cret@db.example:5433/main?sslmode=require").unwrap()
        else {
            unreachable!()
        };
        assert_eq!(url, "postgresql://app@db.example:5433/main?sslmode=require");
        assert_eq!(password.as_deref(), Some("s@cret"));
    }

    #[test]
    fn the_postmaster_file_gives_socket_and_port() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("postmaster.pid"),
            "4242\n/x/pgdata\n1700000000\n54322\n/x/run\n127.0.0.1\n",
        )
        .unwrap();
        assert_eq!(
            postmaster(dir.path()),
            Some((PathBuf::from("/x/run"), 54322))
        );
    }

    #[test]
    fn the_secrets_go_beside_the_dump_and_sizes_read_well() {
        assert_eq!(
            secrets_path(Path::new("/b/x.dump")),
            Path::new("/b/x.dump.secrets.json")
        );
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
    }
}
