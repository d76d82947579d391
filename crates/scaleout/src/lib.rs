//! Cluster mode: several craftbase nodes behind one load balancer, on one PostgreSQL, find and
//! coordinate with each other through NATS only (no node is special by configuration).
//!
//! With no NATS URL nothing here runs and craftbase is the single process it always was. With
//! one, a [`Node`] is this process's connection to the cluster and gives the primitives the
//! services build on: [`Membership`] (which nodes are alive), [`Lease`] and [`Leadership`] (one
//! holder at a time, with a fencing token), [`Counters`] (fixed-window counts shared by all
//! nodes) and [`ChangeLog`] (an ordered, fenced, deduplicated log of committed changes). See README.md for what each does when NATS or a node fails.

mod broadcast;
mod changelog;
mod counter;
mod error;
mod lease;
mod membership;
mod node;
mod settings;

pub use broadcast::{Broadcasts, Envelope};
pub use changelog::{Change, ChangeLog, Published, Publisher};
pub use counter::{Counters, Hits};
pub use error::ScaleoutError;
pub use lease::{Holder, Leadership, Lease, Term};
pub use membership::{Heartbeat, MemberChange, Membership};
pub use node::Node;
pub use settings::NatsSettings;
