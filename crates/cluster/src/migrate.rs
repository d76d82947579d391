//! Applies migrations in order, each once, each in its own transaction.
//!
//! Each migration belongs to a ledger that records it, so a restart applies only what is new:
//! - the platform's (roles, `auth`, `realtime`...) in `craftbase.migrations`, by name, with a
//!   checksum and a version: a recorded file whose text changed stops start-up, because the
//!   database no longer matches what this binary expects;
//! - a project's `supabase/migrations/<version>_<name>.sql` in
//!   `supabase_migrations.schema_migrations`, by version, as the Supabase CLI records them;
//! - a project's seed files in `supabase_migrations.seed_files`, by path, with a hash.
//!
//! A failing migration is rolled back whole and reported with its file, line and PostgreSQL's
//! message; the ones before it stay applied.

use std::borrow::Cow;

use tokio_postgres::error::ErrorPosition;
use tokio_postgres::{Client, GenericClient};

use crate::statement;

/// Which ledger records a migration, and so what "already applied" means for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ledger {
    /// craftbase's own SQL, at a fixed place in an append-only list.
    Platform { version: u32 },
    /// A project migration, known by the version its file name starts with.
    Project { version: String },
    /// A project seed file, applied once (again only by `craftbase db reset`).
    Seed,
}

/// One migration: a unique name (for the record and for messages) and its SQL.
#[derive(Debug, Clone)]
pub struct Migration {
    pub name: String,
    pub sql: Cow<'static, str>,
    pub ledger: Ledger,
}

impl Migration {
    /// A platform migration whose SQL is compiled into the binary.
    pub fn embedded(version: u32, name: &str, sql: &'static str) -> Self {
        Self {
            name: name.to_owned(),
            sql: Cow::Borrowed(sql),
            ledger: Ledger::Platform { version },
        }
    }
}

/// Why migrating stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("migration {name} failed at line {line}: {message}")]
    Failed {
        name: String,
        line: usize,
        message: String,
    },
    #[error(
        "platform migration {name} was changed after this database applied it (recorded checksum \
         {recorded}, this craftbase has {current}); this craftbase cannot safely upgrade this \
         database: use the craftbase version that created it, or back it up and restore it into \
         a fresh data directory"
    )]
    Changed {
        name: String,
        recorded: String,
        current: String,
    },
    #[error(
        "this database was migrated by a newer craftbase (it records platform migration {name}, \
         unknown to this version); run that version or a newer one"
    )]
    Newer { name: String },
    #[error("could not record migrations: {0}")]
    Bookkeeping(#[from] tokio_postgres::Error),
}

/// Serialises concurrent starts against one database (an arbitrary constant: "craftbas").
const LOCK_KEY: i64 = 0x6372_6166_7462_6173;

/// The ledgers' tables. `supabase_migrations` is the Supabase CLI's, so its tools read it.
const LEDGERS: &str = "
    create schema if not exists craftbase;
    create table if not exists craftbase.migrations (
        name text primary key,
        checksum text not null,
        applied_at timestamptz not null default now()
    );
    alter table craftbase.migrations add column if not exists version integer;
    create schema if not exists supabase_migrations;
    create table if not exists supabase_migrations.schema_migrations (
        version text not null primary key,
        statements text[],
        name text
    );
    create table if not exists supabase_migrations.seed_files (
        path text not null primary key,
        hash text not null
    );";

/// Applies each migration not yet recorded; `progress` is told the name of each one it applies.
/// Returns how many were applied.
pub async fn apply(
    client: &mut Client,
    migrations: &[Migration],
    mut progress: impl FnMut(&str),
) -> Result<usize, MigrationError> {
    client
        .execute("select pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let result = async {
        client.batch_execute(LEDGERS).await?;
        refuse_newer(client, migrations).await?;
        apply_locked(client, migrations, &mut progress).await
    }
    .await;
    client
        .execute("select pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await?;
    result
}

/// A platform migration recorded in the database but absent from this binary's list means a
/// newer craftbase migrated it: running older code on it could undo or misread its changes.
async fn refuse_newer(client: &Client, migrations: &[Migration]) -> Result<(), MigrationError> {
    let Some(last) = migrations
        .iter()
        .filter_map(|m| match m.ledger {
            Ledger::Platform { version } => Some(version),
            _ => None,
        })
        .max()
    else {
        return Ok(());
    };
    let newer = client
        .query_opt(
            "select name from craftbase.migrations where version > $1 order by version limit 1",
            &[&(last as i32)],
        )
        .await?;
    match newer {
        Some(row) => Err(MigrationError::Newer { name: row.get(0) }),
        None => Ok(()),
    }
}

async fn apply_locked(
    client: &mut Client,
    migrations: &[Migration],
    progress: &mut impl FnMut(&str),
) -> Result<usize, MigrationError> {
    let mut applied = 0;
    for migration in migrations {
        let checksum = checksum(&migration.sql);
        if recorded(client, migration, &checksum).await? {
            continue;
        }
        progress(&migration.name);
        apply_one(client, migration, &checksum).await?;
        applied += 1;
    }
    Ok(applied)
}

/// Whether `migration` is already applied, by its ledger's rule.
async fn recorded(
    client: &Client,
    migration: &Migration,
    checksum: &str,
) -> Result<bool, MigrationError> {
    match &migration.ledger {
        Ledger::Platform { .. } => {
            let row = client
                .query_opt(
                    "select checksum from craftbase.migrations where name = $1",
                    &[&migration.name],
                )
                .await?;
            match row.map(|r| r.get::<_, String>(0)) {
                Some(old) if old != checksum => Err(MigrationError::Changed {
                    name: migration.name.clone(),
                    recorded: old,
                    current: checksum.to_owned(),
                }),
                Some(_) => {
                    // Rows written before platform migrations had versions get theirs.
                    let version = migration_version(&migration.ledger);
                    client
                        .execute(
                            "update craftbase.migrations set version = $2
                              where name = $1 and version is distinct from $2",
                            &[&migration.name, &version],
                        )
                        .await?;
                    Ok(true)
                }
                None => Ok(false),
            }
        }
        Ledger::Project { version } => {
            let found = client
                .query_opt(
                    "select 1 from supabase_migrations.schema_migrations where version = $1",
                    &[version],
                )
                .await?
                .is_some();
            Ok(found || adopt_legacy(client, migration, checksum).await?)
        }
        Ledger::Seed => {
            let row = client
                .query_opt(
                    "select hash from supabase_migrations.seed_files where path = $1",
                    &[&migration.name],
                )
                .await?;
            match row.map(|r| r.get::<_, String>(0)) {
                Some(old) if old != checksum => {
                    tracing::warn!(seed = %migration.name, "seed file changed since it was applied; `craftbase db reset` applies it again");
                    Ok(true)
                }
                Some(_) => Ok(true),
                None => Ok(adopt_legacy(client, migration, checksum).await?),
            }
        }
    }
}

/// Before projects had their own ledger, craftbase recorded their files (and Tool Connect
/// Craft's, then part of the platform, as `schema.sql`...) in `craftbase.migrations`. A project
/// file recorded there under its name, or with the same text under another name, is taken as
/// applied and moved to the project's ledger.
async fn adopt_legacy(
    client: &Client,
    migration: &Migration,
    checksum: &str,
) -> Result<bool, MigrationError> {
    let legacy = client
        .query_opt(
            "select name from craftbase.migrations
              where version is null and name not like 'craftbase/%'
                and (name = $1 or checksum = $2)
              limit 1",
            &[&migration.name, &checksum],
        )
        .await?;
    let Some(row) = legacy else {
        return Ok(false);
    };
    let old: String = row.get(0);
    tracing::info!(migration = %migration.name, recorded_as = %old, "taking a migration recorded by an earlier craftbase as applied");
    record(client, migration, checksum).await?;
    Ok(true)
}

async fn apply_one(
    client: &mut Client,
    migration: &Migration,
    checksum: &str,
) -> Result<(), MigrationError> {
    let tx = client.transaction().await?;
    let statements = statement::split(&migration.sql);
    for stmt in &statements {
        if let Err(e) = tx.batch_execute(stmt.sql).await {
            return Err(MigrationError::Failed {
                name: migration.name.clone(),
                line: stmt.line + line_offset(stmt.sql, &e),
                message: describe(&e),
            });
        }
    }
    record(&tx, migration, checksum).await?;
    tx.commit().await?;
    Ok(())
}

/// Records `migration` as applied in its ledger, on a connection or inside a transaction.
async fn record(
    client: &impl GenericClient,
    migration: &Migration,
    checksum: &str,
) -> Result<(), tokio_postgres::Error> {
    let (sql, params) = record_statement(migration, checksum);
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        params.iter().map(|p| p.as_ref()).collect();
    client.execute(sql, &params).await.map(drop)
}

fn migration_version(ledger: &Ledger) -> Option<i32> {
    match ledger {
        Ledger::Platform { version } => Some(*version as i32),
        _ => None,
    }
}

type Param = Box<dyn tokio_postgres::types::ToSql + Sync>;

fn record_statement(migration: &Migration, checksum: &str) -> (&'static str, Vec<Param>) {
    match &migration.ledger {
        Ledger::Platform { version } => (
            "insert into craftbase.migrations (name, checksum, version) values ($1, $2, $3)",
            vec![
                Box::new(migration.name.clone()),
                Box::new(checksum.to_owned()),
                Box::new(*version as i32),
            ],
        ),
        Ledger::Project { version } => (
            "insert into supabase_migrations.schema_migrations (version, name, statements)
             values ($1, $2, $3) on conflict (version) do nothing",
            vec![
                Box::new(version.clone()),
                Box::new(project_name(&migration.name, version)),
                Box::new(
                    statement::split(&migration.sql)
                        .iter()
                        .map(|s| s.sql.to_owned())
                        .collect::<Vec<String>>(),
                ),
            ],
        ),
        Ledger::Seed => (
            "insert into supabase_migrations.seed_files (path, hash) values ($1, $2)
             on conflict (path) do update set hash = excluded.hash",
            vec![
                Box::new(migration.name.clone()),
                Box::new(checksum.to_owned()),
            ],
        ),
    }
}

/// `supabase/migrations/20240101000000_create_notes.sql` → `create_notes`, as the CLI names it.
fn project_name(path: &str, version: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.strip_prefix(version)
        .unwrap_or(file)
        .trim_start_matches('_')
        .trim_end_matches(".sql")
        .to_owned()
}

/// Lines between a statement's start and the character PostgreSQL's error points at.
fn line_offset(sql: &str, e: &tokio_postgres::Error) -> usize {
    match e.as_db_error().and_then(|db| db.position()) {
        Some(ErrorPosition::Original(pos)) => sql
            .chars()
            .take((*pos as usize).saturating_sub(1))
            .filter(|c| *c == '\n')
            .count(),
        _ => 0,
    }
}

/// PostgreSQL's message with its detail and hint, as psql shows them.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.severity(), db.message());
            if let Some(detail) = db.detail() {
                s.push_str(&format!("\nDETAIL: {detail}"));
            }
            if let Some(hint) = db.hint() {
                s.push_str(&format!("\nHINT: {hint}"));
            }
            s
        }
        None => e.to_string(),
    }
}

/// FNV-1a, 64 bits: stable across builds, enough to notice an edited migration.
pub fn checksum(sql: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in sql.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}
