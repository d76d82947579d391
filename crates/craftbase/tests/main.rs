//! craftbase's integration tests: one binary, one PostgreSQL cluster per run.

mod edge;
mod lifecycle;
mod migrations;
mod policies;
mod support;
mod typegen;
