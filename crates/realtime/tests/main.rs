//! Realtime's integration tests against a real PostgreSQL (testkit): decoding from the slot and
//! the RLS decision of who receives a change.

mod authorize;
mod ownership;
mod replication;
mod support;
