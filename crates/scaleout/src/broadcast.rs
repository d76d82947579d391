//! Broadcast across nodes (issue 16, item 3): a message sent on any node reaches the topic's
//! subscribers on every other node, over core NATS publish/subscribe (at most once, as
//! Supabase's broadcast is). Each node delivers to its own local subscribers itself, so a node
//! never receives its own messages back: `self` and `ack` keep their meaning.

use async_nats::HeaderMap;
use base64::Engine;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::error::{boxed, ScaleoutError};

const ORIGIN_HEADER: &str = "Craftbase-Origin";
/// Realtime topics are bounded; so is the subject made of one.
const MAX_TOPIC_BYTES: usize = 512;

/// A message from another node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The node it was sent on.
    pub origin: String,
    pub topic: String,
    pub payload: Bytes,
}

/// This node's side of the broadcast bus.
#[derive(Clone)]
pub struct Broadcasts {
    client: async_nats::Client,
    node: String,
}

impl Broadcasts {
    pub(crate) fn new(client: async_nats::Client, node: String) -> Broadcasts {
        Broadcasts { client, node }
    }

    /// Sends `payload` to `topic`'s subscribers on the other nodes.
    pub async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), ScaleoutError> {
        let subject = subject(topic)?;
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN_HEADER, self.node.as_str());
        self.client
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|e| ScaleoutError::nats("broadcast")(boxed(e)))
    }

    /// Messages other nodes send to `topic`, from now on.
    pub async fn subscribe(
        &self,
        topic: &str,
    ) -> Result<impl Stream<Item = Envelope> + Send + 'static, ScaleoutError> {
        let subject = subject(topic)?;
        self.listen(subject).await
    }

    /// Messages other nodes send to any topic (for a node that routes every topic itself).
    pub async fn subscribe_all(
        &self,
    ) -> Result<impl Stream<Item = Envelope> + Send + 'static, ScaleoutError> {
        self.listen("craftbase.broadcast.*".to_owned()).await
    }

    async fn listen(
        &self,
        subject: String,
    ) -> Result<impl Stream<Item = Envelope> + Send + 'static, ScaleoutError> {
        let subscriber = self
            .client
            .subscribe(subject)
            .await
            .map_err(|e| ScaleoutError::nats("subscribe")(boxed(e)))?;
        let me = self.node.clone();
        Ok(subscriber.filter_map(move |message| {
            let envelope = envelope(&message).filter(|e| e.origin != me);
            std::future::ready(envelope)
        }))
    }
}

/// `craftbase.broadcast.<topic as base64url>`: a topic may hold dots, spaces or wildcards,
/// which mean something in a subject; its encoding is one plain token.
fn subject(topic: &str) -> Result<String, ScaleoutError> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_BYTES {
        return Err(ScaleoutError::InvalidKey(topic.chars().take(64).collect()));
    }
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(topic);
    Ok(format!("craftbase.broadcast.{token}"))
}

fn envelope(message: &async_nats::Message) -> Option<Envelope> {
    let origin = message
        .headers
        .as_ref()?
        .get(ORIGIN_HEADER)?
        .as_str()
        .to_owned();
    let token = message
        .subject
        .as_str()
        .strip_prefix("craftbase.broadcast.")?;
    let topic = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|t| String::from_utf8(t).ok())?;
    Some(Envelope {
        origin,
        topic,
        payload: message.payload.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_topic_is_one_subject_token() {
        for topic in ["realtime:room-1", "a.b", "room 1", "*", ">", "ünï"] {
            let s = subject(topic).unwrap();
            let token = s.strip_prefix("craftbase.broadcast.").unwrap();
            assert!(token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        }
        assert!(subject("").is_err());
        assert!(subject(&"x".repeat(MAX_TOPIC_BYTES + 1)).is_err());
    }
}
