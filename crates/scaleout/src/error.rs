//! What can go wrong talking to the cluster.

/// A cluster operation that failed; NATS's own error is kept as the source.
#[derive(Debug, thiserror::Error)]
pub enum ScaleoutError {
    #[error("cannot connect to NATS at {servers}: {source}")]
    Connect {
        servers: String,
        #[source]
        source: async_nats::Error,
    },
    #[error("NATS {op} failed: {source}")]
    Nats {
        op: &'static str,
        #[source]
        source: async_nats::Error,
    },
    #[error(
        "invalid NATS URL {0:?} (expected nats://host:port, tls://host:port, comma-separated)"
    )]
    InvalidUrl(String),
    #[error("invalid node id {0:?}: 1 to 64 of A-Z a-z 0-9 _ -")]
    InvalidNodeId(String),
    #[error("invalid key {0:?}: 1 to 200 of A-Z a-z 0-9 _ - = and dots between tokens")]
    InvalidKey(String),
    #[error("window of {window:?} is longer than the counters' bucket keeps keys ({max:?})")]
    WindowTooLong {
        window: std::time::Duration,
        max: std::time::Duration,
    },
    #[error("the change log was written by another publisher: token {0} no longer leads")]
    Fenced(u64),
    #[error("counter {0:?} stayed contended: too many nodes updating it at once")]
    Contended(String),
}

impl ScaleoutError {
    pub(crate) fn nats(op: &'static str) -> impl FnOnce(async_nats::Error) -> ScaleoutError {
        move |source| ScaleoutError::Nats { op, source }
    }
}

/// Boxes any NATS error kind into the crate's source type.
pub(crate) fn boxed<E: std::error::Error + Send + Sync + 'static>(e: E) -> async_nats::Error {
    Box::new(e)
}

/// A KV key craftbase builds from a caller's parts: NATS subject tokens, so no spaces, `*`, `>`
/// or empty tokens; bounded so that a client-chosen part cannot grow the bucket's subjects.
pub(crate) fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 200
        && !key.starts_with('.')
        && !key.ends_with('.')
        && !key.contains("..")
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'=' | b'.'))
}
