//! Uploads (`POST` creates, `PUT` replaces), multipart or raw, streamed to the store.
//!
//! Order, so a row never points at missing bytes: check the caller may write the row (a
//! rolled-back insert under RLS), stream the body to a fresh version's key, then write the row
//! in one transaction as the caller; if that fails, the new bytes are deleted. An upsert deletes
//! the replaced version's bytes after its commit. Nothing is held whole in memory: the body goes
//! through `object_store`'s buffered writer (a multipart upload past one part), at most three
//! parts of it in memory at once.
//!
//! A refused upload still reads the body it refused (up to twice the global limit, at least
//! 64 MiB; the server drains a little more), so the client sees the answer instead of a broken
//! pipe. Past that the connection is closed.

use std::pin::Pin;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use base64::Engine;
use futures_util::{Stream, StreamExt};
use md5::{Digest, Md5};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use super::BucketRules;
use crate::bucket::mime_allowed;
use crate::caller::{Actor, Caller};
use crate::error::StorageError;
use crate::{key, Storage};

/// Largest `x-metadata` / `metadata` field accepted (storage-api's user-metadata limit).
const MAX_USER_METADATA: usize = 1024 * 1024;
/// Parts of one upload written at once: with the part being filled, what an upload holds in
/// memory at most is three parts ([`crate::Settings::part_size`]), whatever its size.
const PARTS_IN_FLIGHT: usize = 2;

/// Least a refused body is read for, however low the limit.
const MIN_DISCARD: u64 = 64 * 1024 * 1024;

type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, axum::Error>> + Send>>;

/// `POST /object/{bucket}/{*name}`: creates, or replaces with `x-upsert: true`.
pub async fn create(
    State(s): State<Storage>,
    Path((bucket, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, StorageError> {
    let upsert = headers
        .get("x-upsert")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "true");
    let actor = Caller::from_headers(&s.ctx, &headers).map(Actor::Caller);
    receive(&s, actor, &bucket, &name, upsert, &headers, body).await
}

/// `PUT /object/{bucket}/{*name}`: replaces (or creates) the object.
pub async fn update(
    State(s): State<Storage>,
    Path((bucket, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, StorageError> {
    let actor = Caller::from_headers(&s.ctx, &headers).map(Actor::Caller);
    receive(&s, actor, &bucket, &name, true, &headers, body).await
}

/// Stores one upload for `actor`; whatever happens, the body is read to its end (bounded).
pub async fn receive(
    s: &Storage,
    actor: Result<Actor, StorageError>,
    bucket: &str,
    name: &str,
    upsert: bool,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<Value>, StorageError> {
    let mut stream: Option<BodyStream> = Some(Box::pin(body.into_data_stream()));
    let result = match actor {
        Ok(actor) => write(s, &actor, bucket, name, upsert, headers, &mut stream).await,
        Err(e) => Err(e),
    };
    if result.is_err() {
        if let Some(rest) = stream.take() {
            let cap = s
                .settings
                .file_size_limit
                .saturating_mul(2)
                .max(MIN_DISCARD);
            discard(rest, cap).await;
        }
    }
    result
}

/// Reads and drops what is left of a refused body, up to `cap` bytes.
async fn discard(mut stream: BodyStream, cap: u64) {
    let mut seen = 0u64;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len() as u64;
        if seen > cap {
            break;
        }
    }
}

/// What the client says about the file.
struct Described {
    mimetype: String,
    cache_control: String,
    user_metadata: Option<Value>,
}

async fn write(
    s: &Storage,
    actor: &Actor,
    bucket: &str,
    name: &str,
    upsert: bool,
    headers: &HeaderMap,
    stream: &mut Option<BodyStream>,
) -> Result<Json<Value>, StorageError> {
    key::object_name(name)?;
    let rules = BucketRules::load(s, bucket).await?;
    let limit = rules.max_size(s.settings.file_size_limit);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let content_type = header_str(headers, header::CONTENT_TYPE.as_str());
    let multipart = content_type
        .as_deref()
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !multipart && declared.is_some_and(|n| n > limit) {
        return Err(StorageError::EntityTooLarge);
    }
    // The row check first: a caller RLS refuses never gets to send bytes to the store.
    let version = uuid::Uuid::new_v4().to_string();
    check_row(s, actor, &rules.id, name, upsert).await?;
    let location = key::location(&rules.id, name, &version);
    let (described, stored) = if multipart {
        let boundary = multer::parse_boundary(content_type.as_deref().unwrap_or(""))
            .map_err(|_| StorageError::NoContent)?;
        let body = stream.take().ok_or(StorageError::NoContent)?;
        let mut form = multer::Multipart::new(body, boundary);
        let mut fields = serde_json::Map::new();
        loop {
            let Some(mut field) = form
                .next_field()
                .await
                .map_err(|_| StorageError::NoContent)?
            else {
                return Err(StorageError::NoContent);
            };
            let is_file = field.file_name().is_some() || field.name().unwrap_or("").is_empty();
            if !is_file {
                let field_name = field.name().unwrap_or("").to_owned();
                let mut text = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|_| StorageError::NoContent)? {
                    text.extend_from_slice(&chunk);
                    if text.len() > MAX_USER_METADATA {
                        return Err(StorageError::EntityTooLarge);
                    }
                }
                fields.insert(
                    field_name,
                    Value::String(String::from_utf8_lossy(&text).into()),
                );
                continue;
            }
            let field_type = field.content_type().map(|m| m.to_string());
            let text = |k: &str| fields.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            let described = Described {
                mimetype: text("contentType")
                    .or(field_type)
                    .unwrap_or_else(|| "application/octet-stream".into()),
                cache_control: text("cacheControl")
                    .map(|t| format!("max-age={t}"))
                    .unwrap_or_else(|| "no-cache".into()),
                user_metadata: text("metadata")
                    .or_else(|| text("userMetadata"))
                    .and_then(|m| serde_json::from_str(&m).ok()),
            };
            check_mime(&rules, &described.mimetype)?;
            let chunks = futures_util::stream::unfold(field, |mut f| async move {
                match f.chunk().await {
                    Ok(Some(c)) => Some((Ok(c), f)),
                    Ok(None) => None,
                    Err(e) => Some((Err(axum::Error::new(e)), f)),
                }
            });
            let stored = copy_to_store(s, &location, Box::pin(chunks), limit).await?;
            break (described, stored);
        }
    } else {
        let described = Described {
            mimetype: content_type.unwrap_or_else(|| "application/octet-stream".into()),
            cache_control: header_str(headers, "cache-control")
                .unwrap_or_else(|| "no-cache".into()),
            user_metadata: match header_str(headers, "x-metadata") {
                None => None,
                Some(m) => Some(decode_metadata(&m)?),
            },
        };
        check_mime(&rules, &described.mimetype)?;
        let body = stream.as_mut().ok_or(StorageError::NoContent)?;
        let stored = copy_to_store(s, &location, body.as_mut(), limit).await?;
        (described, stored)
    };
    match write_row(
        s, actor, &rules.id, name, &version, upsert, &described, &stored,
    )
    .await
    {
        Ok((id, replaced)) => {
            if let Some(old) = replaced.filter(|old| *old != version) {
                let old = key::location(&rules.id, name, &old);
                if let Err(e) = s.store.delete(&old).await {
                    tracing::warn!(error = %e, "cannot delete a replaced object's bytes");
                }
            }
            Ok(Json(
                json!({ "Id": id, "Key": format!("{}/{name}", rules.id) }),
            ))
        }
        Err(e) => {
            if let Err(del) = s.store.delete(&location).await {
                tracing::warn!(error = %del, "cannot delete the bytes of a refused upload");
            }
            Err(e)
        }
    }
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `x-metadata`: base64 of a JSON object.
fn decode_metadata(value: &str) -> Result<Value, StorageError> {
    if value.len() > MAX_USER_METADATA {
        return Err(StorageError::EntityTooLarge);
    }
    let invalid = || StorageError::InvalidRequest("Invalid metadata".into());
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| invalid())?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
}

fn check_mime(rules: &BucketRules, mime: &str) -> Result<(), StorageError> {
    match &rules.allowed_mime_types {
        Some(allowed) if !allowed.is_empty() && !mime_allowed(mime, allowed) => {
            Err(StorageError::InvalidMimeType(mime.to_owned()))
        }
        _ => Ok(()),
    }
}

/// What was stored: its size and its ETag (`"<md5 hex>"`, as S3 and storage-api give it).
struct Stored {
    size: u64,
    etag: String,
}

/// Streams `body` to `location`, refusing (and abandoning the write) past `limit` bytes; the
/// MD5 is computed on the way.
async fn copy_to_store<S>(
    s: &Storage,
    location: &object_store::path::Path,
    mut body: S,
    limit: u64,
) -> Result<Stored, StorageError>
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    let mut writer = object_store::buffered::BufWriter::with_capacity(
        s.store.clone(),
        location.clone(),
        s.settings.part_size(),
    )
    .with_max_concurrency(PARTS_IN_FLIGHT);
    let mut size = 0u64;
    let mut md5 = Md5::new();
    let failed = loop {
        match body.next().await {
            None => break None,
            Some(Err(_)) => break Some(StorageError::NoContent),
            Some(Ok(chunk)) => {
                size += chunk.len() as u64;
                if size > limit {
                    break Some(StorageError::EntityTooLarge);
                }
                md5.update(&chunk);
                // The chunk itself, not a copy: no small buffers to allocate and free per part.
                if let Err(e) = writer.put(chunk).await {
                    break Some(StorageError::Internal(format!("object store write: {e}")));
                }
            }
        }
    };
    if let Some(e) = failed {
        if let Err(abort) = writer.abort().await {
            tracing::warn!(error = %abort, "cannot abandon an upload");
        }
        return Err(e);
    }
    writer
        .shutdown()
        .await
        .map_err(|e| StorageError::Internal(format!("object store write: {e}")))?;
    let hex: String = md5.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Stored {
        size,
        etag: format!("\"{hex}\""),
    })
}

/// The insert (or upsert) of an object's row; `check_row` runs it and rolls back.
const INSERT: &str = "insert into storage.objects \
     (bucket_id, name, owner, owner_id, version, metadata, user_metadata) \
     values ($1, $2, $3::text::uuid, $4, $5, $6, $7)";
const UPSERT_TAIL: &str = " on conflict (bucket_id, name) do update set \
     owner = excluded.owner, owner_id = excluded.owner_id, version = excluded.version, \
     metadata = excluded.metadata, user_metadata = excluded.user_metadata, \
     last_accessed_at = now()";

fn owner_uuid(actor: &Actor) -> Option<&str> {
    actor.owner().filter(|o| uuid::Uuid::parse_str(o).is_ok())
}

/// Whether `actor` may write this row: the insert runs under RLS, then is rolled back.
pub async fn check_row(
    s: &Storage,
    actor: &Actor,
    bucket: &str,
    name: &str,
    upsert: bool,
) -> Result<(), StorageError> {
    let mut client = actor.pool(&s.ctx).get().await?;
    let tx = actor.begin(&mut client).await?;
    let sql = if upsert {
        format!("{INSERT}{UPSERT_TAIL}")
    } else {
        INSERT.to_owned()
    };
    let empty = json!({});
    let none: Option<Value> = None;
    tx.execute(
        &sql,
        &[
            &bucket,
            &name,
            &owner_uuid(actor),
            &actor.owner(),
            &"",
            &empty,
            &none,
        ],
    )
    .await?;
    tx.rollback().await?;
    Ok(())
}

/// Writes the row once the bytes are in place; returns its id and the version it replaced.
#[allow(clippy::too_many_arguments)]
async fn write_row(
    s: &Storage,
    actor: &Actor,
    bucket: &str,
    name: &str,
    version: &str,
    upsert: bool,
    described: &Described,
    stored: &Stored,
) -> Result<(String, Option<String>), StorageError> {
    let now = chrono::Utc::now();
    let size = stored.size;
    let metadata = json!({
        "eTag": stored.etag,
        "size": size,
        "mimetype": described.mimetype,
        "cacheControl": described.cache_control,
        "lastModified": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "contentLength": size,
        "httpStatusCode": 200,
    });
    let mut client = actor.pool(&s.ctx).get().await?;
    let tx = actor.begin(&mut client).await?;
    let replaced: Option<String> = if upsert {
        tx.query_opt(
            "select version from storage.objects where bucket_id = $1 and name = $2 for update",
            &[&bucket, &name],
        )
        .await?
        .and_then(|r| r.get(0))
    } else {
        None
    };
    let sql = if upsert {
        format!("{INSERT}{UPSERT_TAIL} returning id::text")
    } else {
        format!("{INSERT} returning id::text")
    };
    let row = tx
        .query_one(
            &sql,
            &[
                &bucket,
                &name,
                &owner_uuid(actor),
                &actor.owner(),
                &version,
                &metadata,
                &described.user_metadata,
            ],
        )
        .await?;
    tx.commit().await?;
    Ok((row.get(0), replaced))
}
