//! Decode, the pipeline's first step (`pipeline`: decode → route → authorize → payload →
//! fan-out): the replication stream's tuples become changes of rows in text form, grouped by
//! committed transaction with its commit time as Supabase prints it; inserts into
//! `realtime.messages` become stored broadcasts instead.

use pg_walstream::{ColumnValue, RowData};
use serde::{Deserialize, Serialize};

use super::message::StoredBroadcast;
use super::row::Row;

/// One decoded change. Serialized as it is for the other nodes in cluster mode
/// (`cluster::changes`).
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub table_oid: u32,
    /// INSERT, UPDATE or DELETE.
    pub kind: &'static str,
    pub new: Option<Row>,
    pub old: Option<Row>,
}

/// A change as another node sent it, before its kind is checked.
#[derive(Deserialize)]
struct PeerChange {
    table_oid: u32,
    kind: String,
    new: Option<Row>,
    old: Option<Row>,
}

impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Change, D::Error> {
        let c = PeerChange::deserialize(d)?;
        let kind = match c.kind.as_str() {
            "INSERT" => "INSERT",
            "UPDATE" => "UPDATE",
            "DELETE" => "DELETE",
            other => {
                return Err(serde::de::Error::custom(format!(
                    "unknown change kind {other}"
                )))
            }
        };
        Ok(Change {
            table_oid: c.table_oid,
            kind,
            new: c.new,
            old: c.old,
        })
    }
}

/// A committed transaction's changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transaction {
    /// The commit's end LSN (0 until it is committed): what a replay after a reconnect or a
    /// failover is recognised by.
    pub lsn: u64,
    pub commit_timestamp: String,
    pub changes: Vec<Change>,
    /// Broadcasts inserted into `realtime.messages`, in insert order.
    pub broadcasts: Vec<StoredBroadcast>,
}

impl Transaction {
    /// An open transaction committed at `commit_timestamp`.
    pub fn new(commit_timestamp: String) -> Transaction {
        Transaction {
            lsn: 0,
            commit_timestamp,
            changes: Vec::new(),
            broadcasts: Vec::new(),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` from microseconds since the Unix epoch, milliseconds truncated.
pub fn commit_timestamp(unix_micros: i64) -> String {
    let millis = unix_micros.div_euclid(1000);
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Adds a change to the open transaction (none open: a change outside BEGIN..COMMIT is dropped).
pub fn push(
    open: &mut Option<Transaction>,
    table_oid: u32,
    kind: &'static str,
    new: Option<&RowData>,
    old: Option<&RowData>,
) {
    if let Some(t) = open {
        t.changes.push(Change {
            table_oid,
            kind,
            new: new.map(row),
            old: old.map(row),
        });
    }
}

/// Adds an insert into `realtime.messages` to the open transaction, when it is a broadcast.
pub fn push_broadcast(open: &mut Option<Transaction>, data: &RowData) {
    if let Some(t) = open {
        if let Some(b) = StoredBroadcast::from_row(&row(data)) {
            t.broadcasts.push(b);
        }
    }
}

/// A decoded tuple; binary values (never requested) are passed as hex.
fn row(data: &RowData) -> Row {
    data.iter()
        .map(|(name, value)| {
            let text = match value {
                ColumnValue::Null => None,
                ColumnValue::Text(b) => Some(String::from_utf8_lossy(b).into_owned()),
                ColumnValue::Binary(b) => {
                    Some(b.iter().map(|x| format!("{x:02x}")).collect::<String>())
                }
            };
            (name.clone(), text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_time_is_utc_with_truncated_millis() {
        assert_eq!(commit_timestamp(0), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T12:34:56.999900Z
        assert_eq!(
            commit_timestamp(1_709_210_096_999_900),
            "2024-02-29T12:34:56.999Z"
        );
    }
}
