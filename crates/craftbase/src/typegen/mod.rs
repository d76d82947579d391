//! `craftbase gen types typescript`: the `Database` type `supabase gen types typescript` prints,
//! read from any PostgreSQL (or a running craftbase's data directory).

mod collation;
mod doc;
pub mod introspect;
mod node_tree;
mod render;
mod ts;

use std::path::PathBuf;

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

/// Connects, generates and prints to stdout.
pub async fn run(source: Source, schemas: Vec<String>) -> anyhow::Result<()> {
    let url = match source {
        Source::Url(url) => url,
        Source::DataDir(dir) => {
            let data = DataDir::existing(&dir)?;
            data.endpoints()?
                .ok_or_else(|| {
                    anyhow::anyhow!("craftbase has not served from {} yet", dir.display())
                })?
                .db_url
        }
    };
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .context("cannot connect to the database")?;
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
