//! list-v2's sort (`sortBy`) and the opaque cursor that carries it from page to page.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::StorageError;

/// The column list-v2 orders by; name breaks ties between equal timestamps.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortColumn {
    Name,
    CreatedAt,
    UpdatedAt,
}

impl SortColumn {
    /// The `storage.objects` column; a fixed name, never the client's text.
    pub fn sql(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Sort {
    pub column: SortColumn,
    pub desc: bool,
}

/// `sortBy` as the client sends it: storage-api's schema requires `column` and allows
/// `name`/`created_at`/`updated_at` and `asc`/`desc` only.
#[derive(Deserialize)]
pub struct SortBy {
    column: Option<String>,
    order: Option<String>,
}

impl SortBy {
    pub fn parse(by: Option<SortBy>) -> Result<Sort, StorageError> {
        let Some(by) = by else {
            return Ok(Sort {
                column: SortColumn::Name,
                desc: false,
            });
        };
        let invalid = |m: &str| StorageError::InvalidRequest(m.to_owned());
        let column = match by.column.as_deref() {
            None => return Err(invalid("body/sortBy must have required property 'column'")),
            Some("name") => SortColumn::Name,
            Some("created_at") => SortColumn::CreatedAt,
            Some("updated_at") => SortColumn::UpdatedAt,
            Some(_) => {
                return Err(invalid(
                    "body/sortBy/column must be equal to one of the allowed values",
                ))
            }
        };
        let desc = match by.order.as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => {
                return Err(invalid(
                    "body/sortBy/order must be equal to one of the allowed values",
                ))
            }
        };
        Ok(Sort { column, desc })
    }
}

/// Where the next page starts: past `key` (and, under a timestamp sort, past `at`, the
/// last entry's timestamp at millisecond precision), under the sort the first page chose.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct Cursor {
    #[serde(rename = "k")]
    pub key: String,
    #[serde(rename = "s")]
    pub sort: Option<Sort>,
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// Longest cursor accepted (a key is at most 1024 bytes; the rest is small).
const MAX_CURSOR: usize = 4096;

impl Cursor {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// A cursor this or an earlier craftbase made (`k:{key}`: name order, sort from the request).
    pub fn decode(cursor: &str) -> Result<Self, StorageError> {
        let invalid = || StorageError::InvalidRequest("Invalid cursor".into());
        if cursor.len() > MAX_CURSOR {
            return Err(invalid());
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| invalid())?;
        if let Some(key) = bytes.strip_prefix(b"k:") {
            let key = String::from_utf8(key.to_vec()).map_err(|_| invalid())?;
            return Ok(Self {
                key,
                sort: None,
                at: None,
            });
        }
        serde_json::from_slice(&bytes).map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_reads_the_old_form() {
        let c = Cursor {
            key: "a/b.txt".into(),
            sort: Some(Sort {
                column: SortColumn::UpdatedAt,
                desc: true,
            }),
            at: Some("2026-01-01T00:00:01.5+00:00".into()),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        let old = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("k:x/y");
        let old = Cursor::decode(&old).unwrap();
        assert_eq!((old.key.as_str(), old.sort), ("x/y", None));
        assert!(Cursor::decode("!!").is_err());
    }
}
