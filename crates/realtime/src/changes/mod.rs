//! `postgres_changes`: the replication stream, decoding, subscriptions and authorization.

pub mod authorize;
pub mod catalog;
pub mod condition;
pub mod filter;
mod like;
pub mod ownership;
pub mod payload;
pub mod registry;
pub mod row;
pub mod stream;
pub mod subscribe;
pub mod table;
