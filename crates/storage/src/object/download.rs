//! Downloads: as the caller (RLS decides), from a public bucket, or (see `signed`) with a
//! signed URL; with `Range`, `If-None-Match` and a `download` disposition.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use object_store::{GetOptions, GetRange};
use serde::Deserialize;

use super::{BucketRules, ObjectRow};
use crate::caller::{begin_owner, Caller};
use crate::error::StorageError;
use crate::{key, Storage};

#[derive(Deserialize, Default)]
pub struct DownloadParams {
    /// Present: `Content-Disposition: attachment`, with this file name when not empty.
    pub download: Option<String>,
}

/// `GET /object/{bucket}/{*name}` and `/object/authenticated/...`: as the caller.
pub async fn authenticated(
    State(s): State<Storage>,
    Path((bucket, name)): Path<(String, String)>,
    Query(params): Query<DownloadParams>,
    headers: HeaderMap,
) -> Result<Response, StorageError> {
    let caller = Caller::from_headers(&s.ctx, &headers)?;
    let mut client = s.ctx.db.get().await?;
    let tx = caller.begin(&mut client).await?;
    let row = ObjectRow::find(&tx, &bucket, &name).await?;
    tx.commit().await?;
    serve(&s, &bucket, &name, &row, &headers, &params).await
}

/// `GET /object/public/{bucket}/{*name}`: anyone, when the bucket is public.
pub async fn public(
    State(s): State<Storage>,
    Path((bucket, name)): Path<(String, String)>,
    Query(params): Query<DownloadParams>,
    headers: HeaderMap,
) -> Result<Response, StorageError> {
    let row = find_public(&s, &bucket, &name).await?;
    serve(&s, &bucket, &name, &row, &headers, &params).await
}

/// An object of a public bucket, read as the owner; a private bucket is "not found".
pub async fn find_public(s: &Storage, bucket: &str, name: &str) -> Result<ObjectRow, StorageError> {
    let rules = BucketRules::load(s, bucket).await?;
    if !rules.public {
        return Err(StorageError::NoSuchBucket);
    }
    find_as_owner(s, bucket, name).await
}

pub async fn find_as_owner(
    s: &Storage,
    bucket: &str,
    name: &str,
) -> Result<ObjectRow, StorageError> {
    let mut client = s.ctx.admin.get().await?;
    let tx = begin_owner(&mut client).await?;
    let row = ObjectRow::find(&tx, bucket, name).await?;
    tx.commit().await?;
    Ok(row)
}

/// The bytes of `row`, with the headers the Storage API sends.
pub async fn serve(
    s: &Storage,
    bucket: &str,
    name: &str,
    row: &ObjectRow,
    headers: &HeaderMap,
    params: &DownloadParams,
) -> Result<Response, StorageError> {
    let meta = &row.metadata;
    let text = |k: &str| meta.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let etag = text("eTag").to_owned();
    let size = meta.get("size").and_then(|v| v.as_u64()).unwrap_or(0);
    let mut out = HeaderMap::new();
    let mut put = |name: header::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.insert(name, v);
        }
    };
    put(header::ETAG, &etag);
    put(header::CACHE_CONTROL, text("cacheControl"));
    put(header::ACCEPT_RANGES, "bytes");
    if let Ok(modified) = chrono::DateTime::parse_from_rfc3339(text("lastModified")) {
        put(
            header::LAST_MODIFIED,
            &modified
                .with_timezone(&chrono::Utc)
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string(),
        );
    }
    if let Some(download) = &params.download {
        let value = if download.is_empty() {
            "attachment;".to_owned()
        } else {
            format!("attachment; filename={}", encode_filename(download))
        };
        put(header::CONTENT_DISPOSITION, &value);
    }
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(r) => match parse_range(r, size) {
            Some(range) => Some(range),
            None => {
                put(header::CONTENT_RANGE, &format!("bytes */{size}"));
                return Ok((StatusCode::RANGE_NOT_SATISFIABLE, out).into_response());
            }
        },
    };
    let version = row.version.as_deref().ok_or(StorageError::NoSuchKey)?;
    let location = key::location(bucket, name, version);
    let options = GetOptions {
        range: range.map(|(a, b)| GetRange::Bounded(a..b + 1)),
        ..Default::default()
    };
    let got = s.store.get_opts(&location, options).await?;
    put(header::CONTENT_TYPE, text("mimetype"));
    let status = match range {
        Some((a, b)) => {
            put(header::CONTENT_RANGE, &format!("bytes {a}-{b}/{size}"));
            put(header::CONTENT_LENGTH, &(b + 1 - a).to_string());
            StatusCode::PARTIAL_CONTENT
        }
        None => {
            put(header::CONTENT_LENGTH, &size.to_string());
            StatusCode::OK
        }
    };
    let body = Body::from_stream(got.into_stream());
    Ok((status, out, body).into_response())
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` as an inclusive range within `size`; one range only.
fn parse_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 {
            return None;
        }
        return Some((size.saturating_sub(n), size - 1));
    }
    let start: u64 = a.parse().ok()?;
    let end = if b.is_empty() {
        size - 1
    } else {
        b.parse::<u64>().ok()?.min(size - 1)
    };
    (start <= end).then_some((start, end))
}

/// A file name for `Content-Disposition`, percent-encoded as `encodeURIComponent` does.
fn encode_filename(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-1", 10), Some((0, 1)));
        assert_eq!(parse_range("bytes=5-", 10), Some((5, 9)));
        assert_eq!(parse_range("bytes=-3", 10), Some((7, 9)));
        assert_eq!(parse_range("bytes=3-100", 10), Some((3, 9)));
        assert_eq!(parse_range("bytes=20-30", 10), None);
        assert_eq!(parse_range("bytes=0-1,3-4", 10), None);
        assert_eq!(parse_range("items=0-1", 10), None);
    }
}
