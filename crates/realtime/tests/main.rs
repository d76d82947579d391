//! Realtime's integration tests against a real PostgreSQL (testkit): decoding from the slot and
//! the RLS decision of who receives a change, broadcast replay; broadcast and presence across
//! cluster nodes (with a real nats-server).

mod authorize;
mod broadcast_from_database;
mod cluster_bus;
mod ownership;
mod probe_race;
mod replay;
mod replication;
mod support;
mod tenant_limit;
