//! Info, remove, move and copy, each as the caller.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::ObjectRow;
use crate::caller::Caller;
use crate::error::StorageError;
use crate::{key, Storage};

/// Most names one remove request may name (storage-api's limit).
const MAX_REMOVE: usize = 1000;

/// `GET /object/info/{bucket}/{*name}`.
pub async fn info(
    State(s): State<Storage>,
    Path((bucket, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, StorageError> {
    let caller = Caller::from_headers(&s.ctx, &headers)?;
    let mut client = s.ctx.db.get().await?;
    let tx = caller.begin(&mut client).await?;
    let row = ObjectRow::find(&tx, &bucket, &name).await?;
    tx.commit().await?;
    Ok(Json(row.info))
}

/// `GET /object/info/public/{bucket}/{*name}`.
pub async fn info_public(
    State(s): State<Storage>,
    Path((bucket, name)): Path<(String, String)>,
) -> Result<Json<Value>, StorageError> {
    let row = super::download::find_public(&s, &bucket, &name).await?;
    Ok(Json(row.info))
}

/// Deletes the bytes of rows already gone; a failure leaves an orphan for a later sweep.
pub async fn delete_bytes(s: &Storage, bucket: &str, gone: &[(String, Option<String>)]) {
    for (name, version) in gone {
        let Some(version) = version else { continue };
        if let Err(e) = s.store.delete(&key::location(bucket, name, version)).await {
            tracing::warn!(error = %e, "cannot delete a removed object's bytes");
        }
    }
}

#[derive(Deserialize)]
pub struct RemoveBody {
    prefixes: Vec<String>,
}

/// `DELETE /object/{bucket}` with `{prefixes}`: the removed objects.
pub async fn remove_many(
    State(s): State<Storage>,
    Path(bucket): Path<String>,
    headers: HeaderMap,
    Json(body): Json<RemoveBody>,
) -> Result<Json<Value>, StorageError> {
    let caller = Caller::from_headers(&s.ctx, &headers)?;
    if body.prefixes.is_empty() || body.prefixes.len() > MAX_REMOVE {
        return Err(StorageError::InvalidRequest(format!(
            "prefixes must have between 1 and {MAX_REMOVE} items"
        )));
    }
    let mut client = s.ctx.db.get().await?;
    let tx = caller.begin(&mut client).await?;
    let rows = tx
        .query(
            "delete from storage.objects o where o.bucket_id = $1 and o.name = any($2) \
             returning o.name, o.version, jsonb_build_object('name', o.name, 'id', o.id, \
             'bucket_id', o.bucket_id, 'owner', o.owner, 'owner_id', o.owner_id, \
             'version', o.version, 'created_at', o.created_at, 'updated_at', o.updated_at, \
             'last_accessed_at', o.last_accessed_at, 'metadata', o.metadata, \
             'user_metadata', o.user_metadata)",
            &[&bucket, &body.prefixes],
        )
        .await?;
    tx.commit().await?;
    let gone: Vec<(String, Option<String>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    delete_bytes(&s, &bucket, &gone).await;
    Ok(Json(Value::Array(rows.iter().map(|r| r.get(2)).collect())))
}

/// `DELETE /object/{bucket}/{*name}`.
pub async fn remove_one(
    State(s): State<Storage>,
    Path((bucket, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, StorageError> {
    let caller = Caller::from_headers(&s.ctx, &headers)?;
    let mut client = s.ctx.db.get().await?;
    let tx = caller.begin(&mut client).await?;
    let row = tx
        .query_opt(
            "delete from storage.objects where bucket_id = $1 and name = $2 returning version",
            &[&bucket, &name],
        )
        .await?
        .ok_or(StorageError::NoSuchKey)?;
    tx.commit().await?;
    delete_bytes(&s, &bucket, &[(name, row.get(0))]).await;
    Ok(Json(json!({ "message": "Successfully deleted" })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MoveBody {
    bucket_id: String,
    source_key: String,
    destination_key: String,
    destination_bucket: Option<String>,
}

/// `POST /object/move`: the row moves (RLS checks the old and the new place); its bytes are
/// copied to the new key first and the old ones deleted after the commit.
pub async fn move_object(
    State(s): State<Storage>,
    headers: HeaderMap,
    Json(body): Json<MoveBody>,
) -> Result<Json<Value>, StorageError> {
    let caller = Caller::from_headers(&s.ctx, &headers)?;
    let to_bucket = body
        .destination_bucket
        .as_deref()
        .unwrap_or(&body.bucket_id);
    key::object_name(&body.destination_key)?;
    let mut client = s.ctx.db.get().await?;
    let tx = caller.begin(&mut client).await?;
    let row = tx
        .query_opt(
            "select version from storage.objects where bucket_id = $1 and name = $2 for update",
            &[&body.bucket_id, &body.source_key],
        )
        .await?
        .ok_or(StorageError::NoSuchKey)?;
    let old: Option<String> = row.get(0);
    let old = old.ok_or(StorageError::NoSuchKey)?;
    let version = uuid::Uuid::new_v4().to_string();
    let from = key::location(&body.bucket_id, &body.source_key, &old);
    let to = key::location(to_bucket, &body.destination_key, &version);
    s.store.copy(&from, &to).await?;
    let moved = async {
        let n = tx
            .execute(
                "update storage.objects set bucket_id = $3, name = $4, version = $5 \
                 where bucket_id = $1 and name = $2",
                &[
                    &body.bucket_id,
                    &body.source_key,
                    &to_bucket,
                    &body.destination_key,
                    &version,
                ],
            )
            .await?;
        if n == 0 {
            return Err(StorageError::NoSuchKey);
        }
        tx.commit().await?;
        Ok(())
    }
    .await;
    if let Err(e) = moved {
        if let Err(del) = s.store.delete(&to).await {
            tracing::warn!(error = %del, "cannot delete the copy of a refused move");
        }
        return Err(e);
    }
    if let Err(e) = s.store.delete(&from).await {
        tracing::warn!(error = %e, "cannot delete a moved object's old bytes");
    }
    Ok(Json(json!({ "message": "Successfully moved" })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyBody {
    bucket_id: String,
    source_key: String,
    destination_key: String,
    destination_bucket: Option<String>,
    copy_metadata: Option<bool>,
    metadata: Option<Value>,
}

/// `POST /object/copy`: reads the source as the caller, writes the copy as the caller (who
/// owns it); bytes copied before the row, deleted again if the row is refused.
pub async fn copy_object(
    State(s): State<Storage>,
    headers: HeaderMap,
    Json(body): Json<CopyBody>,
) -> Result<Json<Value>, StorageError> {
    let caller = Caller::from_headers(&s.ctx, &headers)?;
    let upsert = headers
        .get("x-upsert")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "true");
    let to_bucket = body
        .destination_bucket
        .clone()
        .unwrap_or_else(|| body.bucket_id.clone());
    key::object_name(&body.destination_key)?;
    let mut client = s.ctx.db.get().await?;
    let tx = caller.begin(&mut client).await?;
    let row = tx
        .query_opt(
            "select version, metadata, user_metadata from storage.objects \
             where bucket_id = $1 and name = $2",
            &[&body.bucket_id, &body.source_key],
        )
        .await?
        .ok_or(StorageError::NoSuchKey)?;
    let old: Option<String> = row.get(0);
    let old = old.ok_or(StorageError::NoSuchKey)?;
    let metadata: Option<Value> = row.get(1);
    let user_metadata: Option<Value> = if body.copy_metadata.unwrap_or(true) {
        row.get(2)
    } else {
        body.metadata.clone()
    };
    let version = uuid::Uuid::new_v4().to_string();
    // The same bytes: the same ETag (their MD5) as the source.
    let metadata = metadata.unwrap_or_else(|| json!({}));
    let from = key::location(&body.bucket_id, &body.source_key, &old);
    let to = key::location(&to_bucket, &body.destination_key, &version);
    s.store.copy(&from, &to).await?;
    let owner = caller.owner().map(str::to_owned);
    let owner_uuid = owner.clone().filter(|o| uuid::Uuid::parse_str(o).is_ok());
    let conflict = if upsert {
        " on conflict (bucket_id, name) do update set owner = excluded.owner, \
          owner_id = excluded.owner_id, version = excluded.version, metadata = excluded.metadata, \
          user_metadata = excluded.user_metadata"
    } else {
        ""
    };
    let written = async {
        let replaced: Option<String> = tx
            .query_opt(
                "select version from storage.objects where bucket_id = $1 and name = $2",
                &[&to_bucket, &body.destination_key],
            )
            .await?
            .and_then(|r| r.get(0));
        let row = tx
            .query_one(
                &format!(
                    "insert into storage.objects (bucket_id, name, owner, owner_id, version, \
                     metadata, user_metadata) values ($1, $2, $3::text::uuid, $4, $5, $6, $7){conflict} \
                     returning id::text"
                ),
                &[&to_bucket, &body.destination_key, &owner_uuid, &owner, &version, &metadata, &user_metadata],
            )
            .await?;
        tx.commit().await?;
        Ok::<_, StorageError>((row.get::<_, String>(0), replaced))
    }
    .await;
    match written {
        Ok((id, replaced)) => {
            if let Some(old) = replaced {
                delete_bytes(&s, &to_bucket, &[(body.destination_key.clone(), Some(old))]).await;
            }
            Ok(Json(
                json!({ "Id": id, "Key": format!("{to_bucket}/{}", body.destination_key) }),
            ))
        }
        Err(e) => {
            if let Err(del) = s.store.delete(&to).await {
                tracing::warn!(error = %del, "cannot delete the copy of a refused copy");
            }
            Err(e)
        }
    }
}
