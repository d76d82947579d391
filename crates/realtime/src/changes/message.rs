//! A broadcast stored in `realtime.messages` (by `realtime.send`, `send_binary`,
//! `broadcast_changes` or a plain insert), as the replication stream carried its row: the unit
//! broadcast-from-database delivers. Only committed inserts of `extension = 'broadcast'` rows
//! count, as in Supabase (which reads inserts only); a row missing its id, topic, event, private
//! flag, insert time or payload is dropped, as Supabase drops it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::row::{cell, Row};

/// The body of a stored broadcast: `payload` (jsonb, as JSON text) or `binary_payload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    Json(String),
    Binary(Arc<[u8]>),
}

/// One committed broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBroadcast {
    pub id: String,
    /// The topic as stored (without `realtime:`).
    pub topic: String,
    pub event: String,
    /// Private messages reach private channels only, public ones public channels only.
    pub private: bool,
    /// `inserted_at` as stored (a timestamp's text): the check reads the row back from its
    /// day's partition only.
    pub inserted_at: String,
    pub body: Body,
}

impl StoredBroadcast {
    /// The broadcast a `realtime.messages` row holds, if it is one.
    pub fn from_row(row: &Row) -> Option<StoredBroadcast> {
        let text = |c: &str| cell(row, c).flatten();
        if text("extension") != Some("broadcast") {
            return None;
        }
        let body = match (text("binary_payload"), text("payload")) {
            (Some(hex), _) => Body::Binary(bytea(hex)?.into()),
            (None, Some(json)) => Body::Json(json.to_owned()),
            (None, None) => return None,
        };
        Some(StoredBroadcast {
            id: text("id")?.to_owned(),
            topic: text("topic")?.to_owned(),
            event: text("event")?.to_owned(),
            private: text("private")? == "t",
            inserted_at: text("inserted_at")?.to_owned(),
            body,
        })
    }

    /// Bytes of the user payload, what the size limit counts.
    pub fn size(&self) -> usize {
        match &self.body {
            Body::Json(t) => t.len(),
            Body::Binary(b) => b.len(),
        }
    }
}

/// A bytea in PostgreSQL's hex text form (`\x00ff`), as pgoutput sends it in text mode.
fn bytea(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?.as_bytes();
    if hex.len() % 2 != 0 {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    hex.chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[(&str, Option<&str>)]) -> Row {
        cells
            .iter()
            .map(|(n, v)| (Arc::from(*n), v.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn json_and_binary_rows_are_broadcasts() {
        let base = [
            ("id", Some("7d9c")),
            ("topic", Some("room:1")),
            ("event", Some("new")),
            ("private", Some("t")),
            ("extension", Some("broadcast")),
            ("inserted_at", Some("2026-12-03 18:00:00.123456")),
        ];
        let mut json = base.to_vec();
        json.push(("payload", Some(r#"{"a": 1}"#)));
        json.push(("binary_payload", None));
        let b = StoredBroadcast::from_row(&row(&json)).unwrap();
        assert_eq!(b.body, Body::Json(r#"{"a": 1}"#.into()));
        assert!(b.private);
        let mut bin = base.to_vec();
        bin.push(("payload", None));
        bin.push(("binary_payload", Some("\\x00ff10")));
        let b = StoredBroadcast::from_row(&row(&bin)).unwrap();
        assert_eq!(b.body, Body::Binary(Arc::from(&[0u8, 255, 16][..])));
        assert_eq!(b.size(), 3);
    }

    #[test]
    fn other_rows_are_not() {
        let presence = row(&[
            ("inserted_at", Some("2026-12-03 18:00:00")),
            ("id", Some("1")),
            ("topic", Some("t")),
            ("event", Some("e")),
            ("private", Some("f")),
            ("extension", Some("presence")),
            ("payload", Some("{}")),
        ]);
        assert_eq!(StoredBroadcast::from_row(&presence), None);
        let no_event = row(&[
            ("inserted_at", Some("2026-12-03 18:00:00")),
            ("id", Some("1")),
            ("topic", Some("t")),
            ("private", Some("f")),
            ("extension", Some("broadcast")),
            ("payload", Some("{}")),
        ]);
        assert_eq!(StoredBroadcast::from_row(&no_event), None);
        let bad_hex = row(&[
            ("inserted_at", Some("2026-12-03 18:00:00")),
            ("id", Some("1")),
            ("topic", Some("t")),
            ("event", Some("e")),
            ("private", Some("f")),
            ("extension", Some("broadcast")),
            ("binary_payload", Some("\\x0")),
        ]);
        assert_eq!(StoredBroadcast::from_row(&bad_hex), None);
    }
}
