//! Applies migrations in order, each once, each in its own transaction.
//!
//! Applied migrations are recorded in `craftbase.migrations`, so a restart applies only what is
//! new. A failing migration is rolled back whole and reported with its file, line and
//! PostgreSQL's message; the ones before it stay applied.

use std::borrow::Cow;

use tokio_postgres::error::ErrorPosition;
use tokio_postgres::Client;

use crate::statement;

/// One migration: a unique name (for the record and for messages) and its SQL.
#[derive(Debug, Clone)]
pub struct Migration {
    pub name: String,
    pub sql: Cow<'static, str>,
}

impl Migration {
    /// A migration whose SQL is compiled into the binary.
    pub fn embedded(name: &str, sql: &'static str) -> Self {
        Self {
            name: name.to_owned(),
            sql: Cow::Borrowed(sql),
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
    #[error("could not record migrations: {0}")]
    Bookkeeping(#[from] tokio_postgres::Error),
}

/// Serialises concurrent starts against one database (an arbitrary constant: "craftbas").
const LOCK_KEY: i64 = 0x6372_6166_7462_6173;

/// Applies each migration not yet recorded; `progress` is told the name of each one it applies.
/// Returns how many were applied.
pub async fn apply(
    client: &mut Client,
    migrations: &[Migration],
    mut progress: impl FnMut(&str),
) -> Result<usize, MigrationError> {
    client
        .batch_execute(
            "create schema if not exists craftbase;
             create table if not exists craftbase.migrations (
                 name text primary key,
                 checksum text not null,
                 applied_at timestamptz not null default now()
             );",
        )
        .await?;
    client
        .execute("select pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let result = apply_locked(client, migrations, &mut progress).await;
    client
        .execute("select pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await?;
    result
}

async fn apply_locked(
    client: &mut Client,
    migrations: &[Migration],
    progress: &mut impl FnMut(&str),
) -> Result<usize, MigrationError> {
    let mut applied = 0;
    for migration in migrations {
        let checksum = checksum(&migration.sql);
        let recorded: Option<String> = client
            .query_opt(
                "select checksum from craftbase.migrations where name = $1",
                &[&migration.name],
            )
            .await?
            .map(|row| row.get(0));
        match recorded {
            Some(old) if old != checksum => {
                tracing::warn!(migration = %migration.name, "migration changed after it was applied; not applying it again");
                continue;
            }
            Some(_) => continue,
            None => {}
        }
        progress(&migration.name);
        apply_one(client, migration, &checksum).await?;
        applied += 1;
    }
    Ok(applied)
}

async fn apply_one(
    client: &mut Client,
    migration: &Migration,
    checksum: &str,
) -> Result<(), MigrationError> {
    let tx = client.transaction().await?;
    for stmt in statement::split(&migration.sql) {
        if let Err(e) = tx.batch_execute(stmt.sql).await {
            return Err(MigrationError::Failed {
                name: migration.name.clone(),
                line: stmt.line + line_offset(stmt.sql, &e),
                message: describe(&e),
            });
        }
    }
    tx.execute(
        "insert into craftbase.migrations (name, checksum) values ($1, $2)",
        &[&migration.name, &checksum],
    )
    .await?;
    tx.commit().await?;
    Ok(())
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
fn checksum(sql: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in sql.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}
