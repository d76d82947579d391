//! `/object`: uploads, downloads, listing, and the rest of an object's life.

pub mod download;
pub mod list;
mod list_sort;
pub mod list_v2;
pub mod manage;
pub mod upload;

use crate::error::StorageError;
use crate::Storage;

/// What an upload must obey, read as the owner (as the Storage API reads it as superuser).
pub struct BucketRules {
    pub id: String,
    pub public: bool,
    pub file_size_limit: Option<i64>,
    pub allowed_mime_types: Option<Vec<String>>,
}

impl BucketRules {
    pub async fn load(s: &Storage, id: &str) -> Result<Self, StorageError> {
        let client = s.ctx.admin.get().await?;
        let row = client
            .query_opt(
                "select id, coalesce(public, false), file_size_limit, allowed_mime_types \
                 from storage.buckets where id = $1",
                &[&id],
            )
            .await?
            .ok_or(StorageError::NoSuchBucket)?;
        Ok(Self {
            id: row.get(0),
            public: row.get(1),
            file_size_limit: row.get(2),
            allowed_mime_types: row.get(3),
        })
    }

    /// The largest object this bucket takes: its own limit under the global one.
    pub fn max_size(&self, global: u64) -> u64 {
        match self.file_size_limit {
            Some(limit) if limit >= 0 => (limit as u64).min(global),
            _ => global,
        }
    }
}

/// An object's row fields a download or info needs.
pub struct ObjectRow {
    pub id: String,
    pub version: Option<String>,
    pub metadata: serde_json::Value,
    pub info: serde_json::Value,
}

/// The columns [`ObjectRow::from_row`] reads.
pub const OBJECT_COLUMNS: &str = "o.id::text, o.version, coalesce(o.metadata, '{}'), \
    jsonb_build_object('id', o.id, 'name', o.name, 'version', o.version, 'bucket_id', o.bucket_id, \
    'size', (o.metadata->>'size')::bigint, 'content_type', o.metadata->>'mimetype', \
    'cache_control', o.metadata->>'cacheControl', 'etag', o.metadata->>'eTag', \
    'metadata', o.user_metadata, 'last_modified', o.updated_at, 'created_at', o.created_at)";

impl ObjectRow {
    pub fn from_row(row: &tokio_postgres::Row) -> Self {
        Self {
            id: row.get(0),
            version: row.get(1),
            metadata: row.get(2),
            info: row.get(3),
        }
    }

    /// Reads one object with `client` (as whoever the transaction runs as).
    pub async fn find(
        client: &impl deadpool_postgres::GenericClient,
        bucket: &str,
        name: &str,
    ) -> Result<Self, StorageError> {
        let sql = format!(
            "select {OBJECT_COLUMNS} from storage.objects o where o.bucket_id = $1 and o.name = $2"
        );
        client
            .query_opt(&sql, &[&bucket, &name])
            .await?
            .map(|r| Self::from_row(&r))
            .ok_or(StorageError::NoSuchKey)
    }
}
