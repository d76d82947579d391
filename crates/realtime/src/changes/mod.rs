//! `postgres_changes`: the replication stream (`stream`) feeding the delivery pipeline
//! (`pipeline`: decode → route → authorize → payload → fan-out), the subscriptions of joined
//! channels (`subscribe` into `registry`), the catalog cache, and the shared types at the bottom
//! (`row`, `table`, `condition`).

pub mod authorize;
pub mod broadcast;
pub mod catalog;
pub mod condition;
pub mod decode;
pub mod fanout;
pub mod filter;
mod like;
pub mod message;
pub mod ownership;
pub mod pattern;
pub mod payload;
pub mod pipeline;
pub mod registry;
pub mod route;
pub mod row;
pub mod stream;
pub mod subscribe;
pub mod table;
