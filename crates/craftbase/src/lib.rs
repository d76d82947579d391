//! craftbase: PostgreSQL, the REST gateway, auth and realtime started by one command on one port.

pub mod api_keys;
pub mod config;
pub mod connection;
pub mod datadir;
pub mod db_version;
pub mod dump;
pub mod edge;
pub mod effective;
pub mod migrations;
pub mod observe;
pub mod policy;
pub mod project;
pub mod project_config;
pub mod reset;
pub mod scaleout;
pub mod secrets_watch;
pub mod services;
pub mod signing_keys;
pub mod start;
pub mod switches;
pub mod typegen;
