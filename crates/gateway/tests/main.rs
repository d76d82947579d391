//! The gateway's integration tests: one binary, one PostgreSQL cluster per run; each test gets
//! its own migrated database and a router over it, called without a socket.

mod auth;
mod features;
mod reads;
mod rpc;
mod support;
mod writes;
