//! `craftbase gen types typescript`: the `Database` type `supabase gen types typescript` prints,
//! read from any PostgreSQL (or a running craftbase's data directory).

mod collation;
mod doc;
mod introspect;
mod node_tree;
mod render;
mod ts;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;

use crate::datadir::DataDir;

/// The schema the helper types (`Tables<"name">`...) default to, as upstream.
const DEFAULT_SCHEMA: &str = "public";

/// Generates the TypeScript types of `schemas` from the database `client` is connected to.
pub async fn typescript(
    client: &tokio_postgres::Client,
    schemas: &[String],
) -> anyhow::Result<String> {
    let catalog = introspect::introspect(client, schemas)
        .await
        .context("cannot read the database catalog")?;
    Ok(render::render(catalog, DEFAULT_SCHEMA))
}

/// Where to read the schema from.
pub enum Source {
    Url(String),
    DataDir(PathBuf),
}

/// How long connecting may take before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects, generates and prints to stdout.
pub async fn run(source: Source, schemas: Vec<String>) -> anyhow::Result<()> {
    let (url, hint) = match source {
        Source::Url(url) => (url, String::new()),
        Source::DataDir(dir) => {
            let data = DataDir::existing(&dir)?;
            let url = data
                .endpoints()?
                .ok_or_else(|| {
                    anyhow::anyhow!("craftbase has not served from {} yet", dir.display())
                })?
                .db_url;
            let hint = format!(
                " (is `craftbase start --data-dir {}` running?)",
                dir.display()
            );
            (url, hint)
        }
    };
    let mut config = tokio_postgres::Config::from_str(&url).context("invalid database URL")?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot connect to the database{hint}"))?;
    let connection = tokio::spawn(connection);
    let schemas = if schemas.is_empty() {
        vec![DEFAULT_SCHEMA.to_owned()]
    } else {
        schemas
    };
    let out = typescript(&client, &schemas).await?;
    drop(client);
    let _ = connection.await;
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(())
}
