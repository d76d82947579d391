//! `craftbase backup` and `craftbase restore`: the whole database (the platform's schemas `auth`,
//! `realtime`, `craftbase` with its migration ledger, and the project's) through `pg_dump
//! --format=custom` and `pg_restore` of the PostgreSQL installation craftbase runs.
//!
//! A dump holds no roles and no keys: `restore` creates the platform roles itself before
//! `pg_restore`, and the data directory's `secrets.json` travels beside the dump only when asked
//! (`backup --include-secrets`, `restore --secrets`). The storage file backend's bytes go beside
//! it too, in `<dump>.storage/` (see `objects`).

pub mod backup;
pub mod objects;
mod progress;
pub mod restore;
mod roles;
mod tool;

use std::path::Path;

/// A TCP port free on 127.0.0.1 a moment ago, for a cluster started only for a dump or a
/// restore, so it never collides with a craftbase serving on the default ports.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// True once a cluster was initialised under `cluster_root`.
fn has_cluster(cluster_root: &Path) -> bool {
    cluster_root.join("pgdata").join("PG_VERSION").exists()
}
