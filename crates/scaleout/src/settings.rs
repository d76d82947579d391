//! The flags and environment that turn cluster mode on.

use clap::Args;

use crate::error::ScaleoutError;

/// `--nats-url` / `CRAFTBASE_NATS_URL`: one URL, or several (comma-separated) for a NATS cluster;
/// none keeps craftbase a single process. `--node-id` / `CRAFTBASE_NODE_ID` names this node in
/// the cluster (a fresh random id per start when unset).
#[derive(Args, Debug, Clone, Default)]
pub struct NatsSettings {
    /// NATS server(s) of the cluster, comma-separated (`nats://host:4222,nats://other:4222`);
    /// credentials may be given in the URL. Unset: cluster mode is off.
    #[arg(
        long = "nats-url",
        env = "CRAFTBASE_NATS_URL",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub nats_url: Vec<String>,
    /// This node's name in the cluster (A-Z a-z 0-9 _ -, at most 64); random when unset.
    #[arg(long = "node-id", env = "CRAFTBASE_NODE_ID")]
    pub node_id: Option<String>,
}

impl NatsSettings {
    /// Whether cluster mode is on.
    pub fn enabled(&self) -> bool {
        self.urls().next().is_some()
    }

    /// The configured URLs, blanks dropped.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.nats_url
            .iter()
            .map(|u| u.trim())
            .filter(|u| !u.is_empty())
    }

    /// The node id: the configured one, checked, or a new random one.
    pub fn node_id(&self) -> Result<String, ScaleoutError> {
        match self.node_id.as_deref().map(str::trim) {
            Some(id) if valid_node_id(id) => Ok(id.to_owned()),
            Some(id) => Err(ScaleoutError::InvalidNodeId(id.to_owned())),
            None => Ok(uuid::Uuid::new_v4().simple().to_string()),
        }
    }

    /// The servers without their credentials, for logs and errors.
    pub fn redacted(&self) -> String {
        self.urls().map(redact).collect::<Vec<_>>().join(",")
    }
}

/// A node id is a KV key token: no dots, spaces or wildcards.
pub(crate) fn valid_node_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `nats://user:secret@host:4222` as `nats://host:4222`: URLs may carry passwords or tokens.
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string().trim_end_matches('/').to_owned()
        }
        Err(_) => match url.rsplit_once('@') {
            Some((_, host)) => host.to_owned(),
            None => url.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_url_is_single_process() {
        let s = NatsSettings::default();
        assert!(!s.enabled());
        let s = NatsSettings {
            nats_url: vec![" ".into()],
            node_id: None,
        };
        assert!(!s.enabled());
    }

    #[test]
    fn node_ids_are_checked_or_random() {
        let mut s = NatsSettings::default();
        let a = s.node_id().unwrap();
        assert_ne!(a, s.node_id().unwrap());
        assert!(valid_node_id(&a));
        s.node_id = Some("node-1".into());
        assert_eq!(s.node_id().unwrap(), "node-1");
        for bad in ["a.b", "a b", "*", ">", ""] {
            s.node_id = Some(bad.into());
            assert!(s.node_id().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn credentials_never_reach_logs() {
        let s = NatsSettings {
            nats_url: vec![
                "nats://user:secret@10.0.0.1:4222".into(),
                "nats://tok3n@10.0.0.2:4222".into(),
                "10.0.0.3:4222".into(),
            ],
            node_id: None,
        };
        let shown = s.redacted();
        assert!(
            !shown.contains("secret") && !shown.contains("tok3n"),
            "{shown}"
        );
        assert!(shown.contains("10.0.0.1:4222") && shown.contains("10.0.0.2:4222"));
    }
}
