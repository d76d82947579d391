//! craftbase's integration tests: one binary, one PostgreSQL cluster per run.

mod api_keys;
mod dockerfile;
mod edge;
mod lifecycle;
mod migrations;
mod policies;
mod policy_cases;
mod policy_explain;
mod policy_lint;
mod policy_realtime;
mod project;
mod support;
mod typegen;
mod upgrade;
