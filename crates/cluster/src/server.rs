//! Checks that a PostgreSQL server given by `DATABASE_URL` can carry craftbase.

use tokio_postgres::Client;

/// Something the server lacks, with what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerProblem(pub String);

impl std::fmt::Display for ServerProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lists what the server is missing for realtime and the platform roles; empty when all is well.
pub async fn check_server(client: &Client) -> Result<Vec<ServerProblem>, tokio_postgres::Error> {
    let row = client
        .query_one(
            "select current_setting('wal_level'),
                    current_setting('max_replication_slots')::int,
                    current_setting('max_wal_senders')::int,
                    current_setting('server_version_num')::int,
                    (select rolsuper or rolreplication from pg_roles where rolname = current_user),
                    (select rolsuper or rolcreaterole from pg_roles where rolname = current_user)",
            &[],
        )
        .await?;
    let mut problems = Vec::new();
    let wal_level: String = row.get(0);
    if wal_level != "logical" {
        problems.push(ServerProblem(format!(
            "wal_level is '{wal_level}', realtime needs 'logical': set wal_level = logical in postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL"
        )));
    }
    if row.get::<_, i32>(1) < 1 {
        problems.push(ServerProblem(
            "max_replication_slots is 0: set it to at least 1 and restart PostgreSQL".into(),
        ));
    }
    if row.get::<_, i32>(2) < 1 {
        problems.push(ServerProblem(
            "max_wal_senders is 0: set it to at least 1 and restart PostgreSQL".into(),
        ));
    }
    if row.get::<_, i32>(3) < 130000 {
        problems.push(ServerProblem("PostgreSQL 13 or newer is required".into()));
    }
    if !row.get::<_, Option<bool>>(4).unwrap_or(false) {
        problems.push(ServerProblem(
            "the DATABASE_URL role needs REPLICATION (or superuser) for realtime".into(),
        ));
    }
    if !row.get::<_, Option<bool>>(5).unwrap_or(false) {
        problems.push(ServerProblem(
            "the DATABASE_URL role needs CREATEROLE (or superuser) to create the platform roles"
                .into(),
        ));
    }
    Ok(problems)
}
