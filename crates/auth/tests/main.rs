//! Auth integration tests: one binary, one PostgreSQL cluster per run, a database per test.

mod custom_provider;
mod input;
mod limits;
mod mfa;
mod oauth_server;
mod passkey;
mod password;
mod phone;
mod rate_limits;
mod refresh;
mod signing;
mod support;
mod web3;
