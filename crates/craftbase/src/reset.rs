//! `craftbase db reset`: the data directory's database dropped and created again, then the
//! platform's migrations, the project's and its seed applied, as `supabase db reset` does.

use std::path::Path;

use anyhow::Context;
use craftbase_cluster::{Cluster, ClusterSpec};

use crate::datadir::DataDir;
use crate::migrations;

/// The database craftbase serves from, inside its cluster.
const DATABASE: &str = "postgres";

/// Resets the embedded database of `data_dir`. craftbase must not be running on it: the reset
/// starts the cluster on `db_port` itself, and stops it when done.
pub async fn run(data_dir: &Path, project_dir: &Path, db_port: u16) -> anyhow::Result<()> {
    let dir = DataDir::existing(data_dir)?;
    let secrets = dir.stored_secrets()?;
    let all = {
        let mut all = migrations::platform();
        all.extend(migrations::project(project_dir)?);
        all
    };
    let spec = ClusterSpec {
        bindir: craftbase_cluster::find_bindir()?,
        root: dir.cluster_root(),
        port: db_port,
        superuser_password: secrets.db_password,
        throwaway: false,
        settings: Vec::new(),
    };
    anyhow::ensure!(
        spec.pgdata().join("PG_VERSION").exists(),
        "{} holds no embedded PostgreSQL (craftbase ran with DATABASE_URL?); `db reset` resets a data directory's own database only",
        data_dir.display()
    );
    if let Some(pid) = running_postmaster(&spec.pgdata()) {
        anyhow::bail!(
            "PostgreSQL of {} is running (pid {pid}): stop `craftbase start` first, then reset",
            data_dir.display()
        );
    }
    let mut cluster = Cluster::start(spec, |step| eprintln!("  • {step}…")).await?;
    let result = recreate_and_migrate(&cluster, &all).await;
    tokio::task::block_in_place(|| cluster.stop());
    let applied = result?;
    eprintln!("  • {applied} migrations applied to a fresh database");
    Ok(())
}

async fn recreate_and_migrate(
    cluster: &Cluster,
    all: &[craftbase_cluster::Migration],
) -> anyhow::Result<usize> {
    {
        let admin = connect(cluster.socket_config("postgres", "template1")).await?;
        eprintln!("  • dropping the database");
        // A logical slot pins its database; realtime creates its own again at start.
        admin
            .execute(
                "select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = $1",
                &[&DATABASE],
            )
            .await?;
        // Two calls: a multi-statement string runs as one transaction, which DROP DATABASE refuses.
        for statement in [
            format!("drop database if exists {DATABASE} with (force)"),
            format!("create database {DATABASE}"),
        ] {
            admin
                .batch_execute(&statement)
                .await
                .context("cannot recreate the database")?;
        }
    }
    let mut client = connect(cluster.socket_config("postgres", DATABASE)).await?;
    let applied = craftbase_cluster::apply(&mut client, all, |name| {
        eprintln!("  • applying migration {name}…")
    })
    .await?;
    Ok(applied)
}

async fn connect(config: tokio_postgres::Config) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The pid in `postmaster.pid`, when that process is alive.
fn running_postmaster(pgdata: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}
