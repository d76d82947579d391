//! `craftbase gen types typescript`: the `Database` type `supabase gen types typescript` prints,
//! read from any PostgreSQL (or a running craftbase's data directory).

mod collation;
mod doc;
mod introspect;
mod node_tree;
mod render;
mod ts;

use anyhow::Context;

pub use crate::connection::Source;

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

/// Connects, generates and prints to stdout.
pub async fn run(source: Source, schemas: Vec<String>) -> anyhow::Result<()> {
    let (client, connection) = crate::connection::connect(source).await?;
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
