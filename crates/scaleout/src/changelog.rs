//! An ordered, durable log of committed changes in a JetStream stream, for the one node that
//! decodes the replication slot to publish to and every node to read from (issue 16, item 2).
//!
//! Each entry carries its commit LSN and its publisher's fencing token. Three guards keep the
//! log exactly-once and single-writer: JetStream drops a second publish of the same LSN within
//! its duplicate window (`Nats-Msg-Id`); a publisher writes only on top of the sequence it last
//! saw (`Nats-Expected-Last-Sequence`), so a deposed leader's next publish fails with
//! [`ScaleoutError::Fenced`] once another has written; and readers skip any LSN not above the
//! last one they delivered (a re-publish after the duplicate window, after a failover from the
//! slot's confirmed position).

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::error::{boxed, valid_key, ScaleoutError};

const LSN_HEADER: &str = "Craftbase-Lsn";
const TOKEN_HEADER: &str = "Craftbase-Token";
const PART_HEADER: &str = "Craftbase-Part";

/// One entry as read: its place in the stream, the change's commit LSN (and part, for a
/// transaction too large for one message), the publisher's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub sequence: u64,
    pub lsn: u64,
    pub part: u32,
    pub token: u64,
    pub payload: Bytes,
}

/// A named change log (stream `craftbase_<name>`, subject `craftbase.<name>`).
#[derive(Clone)]
pub struct ChangeLog {
    jetstream: jetstream::Context,
    stream: String,
    subject: String,
}

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    Appended(u64),
    /// The LSN was already in the log (a re-publish within the duplicate window).
    Duplicate,
}

impl ChangeLog {
    /// Opens (creating if needed) the log; entries are kept for `max_age`.
    pub(crate) async fn open(
        jetstream: jetstream::Context,
        name: &str,
        max_age: Duration,
    ) -> Result<ChangeLog, ScaleoutError> {
        if !valid_key(name) || name.contains('.') {
            return Err(ScaleoutError::InvalidKey(name.to_owned()));
        }
        let stream = format!("craftbase_{name}");
        let subject = format!("craftbase.{name}");
        jetstream
            .create_or_update_stream(stream::Config {
                name: stream.clone(),
                subjects: vec![subject.clone()],
                max_age,
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120).min(max_age),
                ..Default::default()
            })
            .await
            .map_err(|e| ScaleoutError::nats("create change log")(boxed(e)))?;
        Ok(ChangeLog {
            jetstream,
            stream,
            subject,
        })
    }

    /// The stream's last sequence (0 when empty).
    pub async fn last_sequence(&self) -> Result<u64, ScaleoutError> {
        let stream = self
            .jetstream
            .get_stream(&self.stream)
            .await
            .map_err(|e| ScaleoutError::nats("open change log")(boxed(e)))?;
        let info = stream
            .get_info()
            .await
            .map_err(|e| ScaleoutError::nats("read change log")(boxed(e)))?;
        Ok(info.state.last_sequence)
    }

    /// A publisher for the holder of fencing `token`, appending after the log's current end.
    pub async fn publisher(&self, token: u64) -> Result<Publisher, ScaleoutError> {
        Ok(Publisher {
            log: self.clone(),
            token,
            last: self.last_sequence().await?,
        })
    }

    /// The entries from sequence `from` on (1: the beginning), then new ones as they come,
    /// each (LSN, part) at most once and in increasing order.
    pub async fn read_from(
        &self,
        from: u64,
    ) -> Result<impl Stream<Item = Result<Change, ScaleoutError>>, ScaleoutError> {
        let stream = self
            .jetstream
            .get_stream(&self.stream)
            .await
            .map_err(|e| ScaleoutError::nats("open change log")(boxed(e)))?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: self.subject.clone(),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: from.max(1),
                },
                ..Default::default()
            })
            .await
            .map_err(|e| ScaleoutError::nats("read change log")(boxed(e)))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| ScaleoutError::nats("read change log")(boxed(e)))?;
        let mut delivered: Option<(u64, u32)> = None;
        Ok(messages.filter_map(move |message| {
            let out = match message {
                Err(e) => Some(Err(ScaleoutError::nats("read change log")(boxed(e)))),
                Ok(message) => match entry(&message) {
                    Some(change) if delivered.is_some_and(|d| (change.lsn, change.part) <= d) => {
                        None
                    }
                    Some(change) => {
                        delivered = Some((change.lsn, change.part));
                        Some(Ok(change))
                    }
                    None => None,
                },
            };
            std::future::ready(out)
        }))
    }
}

/// A change from a stream message; `None` for one without craftbase's headers.
fn entry(message: &jetstream::Message) -> Option<Change> {
    let headers = message.headers.as_ref()?;
    let number = |name: &str| headers.get(name)?.as_str().parse::<u64>().ok();
    Some(Change {
        sequence: message.info().ok()?.stream_sequence,
        lsn: number(LSN_HEADER)?,
        part: number(PART_HEADER).map_or(Some(0), |p| u32::try_from(p).ok())?,
        token: number(TOKEN_HEADER)?,
        payload: message.payload.clone(),
    })
}

/// The decoding leader's handle on the log.
pub struct Publisher {
    log: ChangeLog,
    token: u64,
    last: u64,
}

impl Publisher {
    /// Appends the change committed at `lsn`. [`ScaleoutError::Fenced`] when another publisher
    /// has written since this one last did: it is no longer the leader and must stop.
    pub async fn publish(&mut self, lsn: u64, payload: Bytes) -> Result<Published, ScaleoutError> {
        self.publish_part(lsn, 0, payload).await
    }

    /// Appends part `part` of the change committed at `lsn` (a transaction too large for one
    /// message is sent in parts, each deduplicated on its own).
    pub async fn publish_part(
        &mut self,
        lsn: u64,
        part: u32,
        payload: Bytes,
    ) -> Result<Published, ScaleoutError> {
        let mut headers = HeaderMap::new();
        let id = if part == 0 {
            lsn.to_string()
        } else {
            format!("{lsn}.{part}")
        };
        headers.insert("Nats-Msg-Id", id.as_str());
        headers.insert(PART_HEADER, part.to_string().as_str());
        headers.insert(
            "Nats-Expected-Last-Sequence",
            self.last.to_string().as_str(),
        );
        headers.insert(LSN_HEADER, lsn.to_string().as_str());
        headers.insert(TOKEN_HEADER, self.token.to_string().as_str());
        let ack = self
            .log
            .jetstream
            .publish_with_headers(self.log.subject.clone(), headers, payload)
            .await
            .map_err(|e| ScaleoutError::nats("publish change")(boxed(e)))?
            .await;
        match ack {
            Ok(ack) if ack.duplicate => Ok(Published::Duplicate),
            Ok(ack) => {
                self.last = ack.sequence;
                Ok(Published::Appended(ack.sequence))
            }
            Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => {
                Err(ScaleoutError::Fenced(self.token))
            }
            Err(e) => Err(ScaleoutError::nats("publish change")(boxed(e))),
        }
    }
}
