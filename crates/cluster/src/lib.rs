//! An embedded PostgreSQL run from the system's server binaries, and the migration runner.
//!
//! craftbase starts like `supabase start` but without Docker: it finds PostgreSQL's binaries,
//! initialises a cluster in its data directory on first start, runs it as a child process with
//! logical replication enabled, and stops it cleanly.

pub mod binaries;
pub mod cluster;
pub mod migrate;
mod process;
pub mod server;
mod statement;

pub use binaries::find_bindir;
pub use cluster::{reachable_by_postgres, Cluster, ClusterError, ClusterSpec};
pub use migrate::{apply, checksum, Ledger, Migration, MigrationError};
pub use process::is_root;
pub use server::{check_server, ServerProblem};
