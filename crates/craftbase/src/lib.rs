//! craftbase: PostgreSQL, the REST gateway, auth and realtime started by one command on one port.

pub mod config;
pub mod datadir;
pub mod db_version;
pub mod edge;
pub mod effective;
pub mod migrations;
pub mod project_config;
pub mod start;
pub mod switches;
