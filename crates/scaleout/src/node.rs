//! This process's place in the cluster: its id and its NATS connection.

use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::kv;

use crate::error::{boxed, ScaleoutError};
use crate::settings::NatsSettings;
use crate::{Counters, Lease, Membership};

/// How long the first connection may take; start-up fails after it (a misconfigured cluster is
/// reported at once rather than retried in the background).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request (a KV read or write) waits for NATS before it fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One craftbase node connected to the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    id: String,
    client: async_nats::Client,
    jetstream: jetstream::Context,
}

impl Node {
    /// The node `settings` configure, or `None` when cluster mode is off (no URL).
    pub async fn from_settings(settings: &NatsSettings) -> Result<Option<Node>, ScaleoutError> {
        if !settings.enabled() {
            return Ok(None);
        }
        let urls: Vec<&str> = settings.urls().collect();
        Node::connect(&urls, settings.node_id()?, &settings.redacted())
            .await
            .map(Some)
    }

    /// Connects to the first reachable server of `urls`; after that the client reconnects on its
    /// own, to any server of the list or that the NATS cluster announces, for as long as it runs.
    /// `shown` names the servers in errors (without credentials).
    pub async fn connect(urls: &[&str], id: String, shown: &str) -> Result<Node, ScaleoutError> {
        let mut addrs = Vec::with_capacity(urls.len());
        for url in urls {
            let addr: async_nats::ServerAddr = url
                .parse()
                .map_err(|_| ScaleoutError::InvalidUrl(crate::settings::redact(url)))?;
            addrs.push(addr);
        }
        let options = async_nats::ConnectOptions::new()
            .name(format!("craftbase {id}"))
            .connection_timeout(CONNECT_TIMEOUT)
            .request_timeout(Some(REQUEST_TIMEOUT))
            .max_reconnects(None)
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Disconnected => {
                        tracing::warn!("NATS connection lost; reconnecting")
                    }
                    async_nats::Event::Connected => tracing::info!("NATS connected"),
                    other => tracing::debug!(event = %other, "NATS"),
                }
            });
        let connecting = async_nats::connect_with_options(addrs, options);
        let client = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                return Err(ScaleoutError::Connect {
                    servers: shown.to_owned(),
                    source: boxed(e),
                })
            }
            Err(elapsed) => {
                return Err(ScaleoutError::Connect {
                    servers: shown.to_owned(),
                    source: boxed(elapsed),
                })
            }
        };
        tracing::info!(node = %id, servers = %shown, "cluster mode: connected to NATS");
        let jetstream = jetstream::new(client.clone());
        Ok(Node {
            id,
            client,
            jetstream,
        })
    }

    /// This node's id, unique in the cluster.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The core NATS client (publish/subscribe), for the services' own subjects.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The largest message the connected server accepts (its `max_payload`, 1 MiB unless
    /// configured).
    pub fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }

    /// JetStream, for streams the services define (e.g. committed changes).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// The membership registry: nodes that sent a heartbeat within `ttl`.
    pub async fn membership(&self, ttl: Duration) -> Result<Membership, ScaleoutError> {
        let store = self.bucket("craftbase_nodes", ttl).await?;
        Ok(Membership::new(store, self.id.clone(), ttl))
    }

    /// The lease `name` (e.g. `realtime_slot`), held for `ttl` past each renewal.
    pub async fn lease(&self, name: &str, ttl: Duration) -> Result<Lease, ScaleoutError> {
        let store = self.bucket("craftbase_leases", ttl).await?;
        Lease::new(store, name, self.id.clone(), ttl)
    }

    /// Shared fixed-window counters whose windows last at most `max_window`.
    pub async fn counters(&self, max_window: Duration) -> Result<Counters, ScaleoutError> {
        // A window's key outlives its window, so that no count restarts early.
        let store = self.bucket("craftbase_counters", max_window * 2).await?;
        Ok(Counters::new(store, max_window))
    }

    /// The broadcast bus between nodes.
    pub fn broadcasts(&self) -> crate::Broadcasts {
        crate::Broadcasts::new(self.client.clone(), self.id.clone())
    }

    /// The change log `name` (e.g. `changes`), entries kept for `max_age`.
    pub async fn change_log(
        &self,
        name: &str,
        max_age: Duration,
    ) -> Result<crate::ChangeLog, ScaleoutError> {
        crate::ChangeLog::open(self.jetstream.clone(), name, max_age).await
    }

    /// A KV bucket whose entries expire `max_age` after their last write. Every node asks for
    /// the same settings, so creating is idempotent; a changed `max_age` updates the bucket.
    async fn bucket(&self, name: &str, max_age: Duration) -> Result<kv::Store, ScaleoutError> {
        let config = kv::Config {
            bucket: name.to_owned(),
            history: 1,
            max_age,
            // Values are small: an id, a count.
            max_value_size: 1024,
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        };
        self.jetstream
            .create_or_update_key_value(config)
            .await
            .map_err(|e| ScaleoutError::Nats {
                op: "create KV bucket",
                source: boxed(e),
            })
    }
}
