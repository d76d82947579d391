//! `POST /object/list/{bucket}`: one folder level, as the caller (RLS filters the rows).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use crate::caller::Caller;
use crate::error::StorageError;
use crate::Storage;

#[derive(Deserialize, Default)]
pub struct SortBy {
    column: Option<String>,
    order: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListBody {
    #[serde(default)]
    prefix: String,
    limit: Option<i32>,
    offset: Option<i32>,
    sort_by: Option<SortBy>,
    search: Option<String>,
}

/// The folders (id null) and files directly under `prefix`, names relative to it.
pub async fn list(
    State(s): State<Storage>,
    Path(bucket): Path<String>,
    headers: HeaderMap,
    Json(body): Json<ListBody>,
) -> Result<Json<Value>, StorageError> {
    let caller = Caller::from_headers(&s.ctx, &headers)?;
    let mut prefix = body.prefix.trim_start_matches('/').to_owned();
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    let sort = body.sort_by.unwrap_or_default();
    let mut client = s.ctx.db.get().await?;
    let tx = caller.begin(&mut client).await?;
    let row = tx
        .query_one(
            "select coalesce(jsonb_agg(jsonb_build_object('name', r.name, 'id', r.id, \
             'updated_at', r.updated_at, 'created_at', r.created_at, \
             'last_accessed_at', r.last_accessed_at, 'metadata', r.metadata) order by r.n), '[]') \
             from (select s.*, row_number() over () as n \
                   from storage.search($1, $2, $3, 1, $4, $5, $6, $7) s) r",
            &[
                &prefix,
                &bucket,
                &body.limit.unwrap_or(100).clamp(0, 1000),
                &body.offset.unwrap_or(0).max(0),
                &body.search.unwrap_or_default(),
                &sort.column.unwrap_or_else(|| "name".into()),
                &sort.order.unwrap_or_else(|| "asc".into()),
            ],
        )
        .await?;
    tx.commit().await?;
    Ok(Json(row.get(0)))
}

#[derive(Deserialize, Default)]
pub struct ListV2Body {
    #[serde(default)]
    prefix: String,
    limit: Option<i64>,
    cursor: Option<String>,
    #[serde(default)]
    with_delimiter: bool,
    #[serde(rename = "sortBy")]
    sort_by: Option<SortBy>,
}

/// Most entries one list-v2 page holds (storage-api's cap).
const MAX_KEYS: usize = 1000;

/// `POST /object/list-v2/{bucket}`: full keys under `prefix` in name order, a page at a time
/// (`cursor`), each folder once when `with_delimiter` (a skip past its contents).
pub async fn list_v2(
    State(s): State<Storage>,
    Path(bucket): Path<String>,
    headers: HeaderMap,
    Json(body): Json<ListV2Body>,
) -> Result<Json<Value>, StorageError> {
    let caller = Caller::from_headers(&s.ctx, &headers)?;
    let sort = body.sort_by.unwrap_or_default();
    if sort.column.as_deref().is_some_and(|c| c != "name") {
        return Err(StorageError::InvalidRequest(
            "list-v2 sorts by name only in craftbase".into(),
        ));
    }
    let desc = sort.order.as_deref() == Some("desc");
    let limit = body
        .limit
        .unwrap_or(MAX_KEYS as i64)
        .clamp(1, MAX_KEYS as i64) as usize;
    let mut after = match &body.cursor {
        Some(c) => Some(decode_cursor(c)?),
        None => None,
    };
    let prefix = body.prefix;
    let sql = format!(
        "select o.name, jsonb_build_object('id', o.id, 'key', o.name, 'name', o.name, \
         'bucket_id', o.bucket_id, 'updated_at', o.updated_at, 'created_at', o.created_at, \
         'last_accessed_at', o.last_accessed_at, 'metadata', o.metadata) \
         from storage.objects o where o.bucket_id = $1 and starts_with(o.name, $2) \
         and ($3::text is null or o.name collate \"C\" {cmp} $3) \
         order by o.name collate \"C\" {order} limit $4",
        cmp = if desc { "<" } else { ">" },
        order = if desc { "desc" } else { "asc" },
    );
    let mut client = s.ctx.db.get().await?;
    let tx = caller.begin(&mut client).await?;
    let mut folders: Vec<Value> = Vec::new();
    let mut objects: Vec<Value> = Vec::new();
    let mut last_key: Option<String> = None;
    let mut has_next = false;
    'pages: loop {
        let rows = tx
            .query(&sql, &[&bucket, &prefix, &after, &((limit + 1) as i64)])
            .await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let name: String = row.get(0);
            if folders.len() + objects.len() == limit {
                has_next = true;
                break 'pages;
            }
            let rest = &name[prefix.len()..];
            match rest.find('/').filter(|_| body.with_delimiter) {
                Some(i) => {
                    let folder = format!("{prefix}{}", &rest[..=i]);
                    folders.push(serde_json::json!({
                        "id": null, "key": folder, "name": folder, "bucket_id": bucket,
                    }));
                    // Past everything inside the folder: its names sort after the folder
                    // itself and before the folder followed by the highest character.
                    after = Some(if desc {
                        folder.clone()
                    } else {
                        format!("{folder}\u{10FFFF}")
                    });
                    last_key = Some(folder);
                    continue 'pages;
                }
                None => {
                    objects.push(row.get(1));
                    after = Some(name.clone());
                    last_key = Some(name);
                }
            }
        }
        if rows.len() < limit + 1 {
            break;
        }
    }
    tx.commit().await?;
    let cursor = has_next
        .then(|| after.as_deref().map(encode_cursor))
        .flatten();
    Ok(Json(serde_json::json!({
        "hasNext": has_next,
        "nextCursor": cursor,
        "nextCursorKey": if has_next { last_key.map(Value::String) } else { None },
        "folders": folders,
        "objects": objects,
    })))
}

/// A page's cursor: where the next page starts (past the last key or folder shown), opaque.
fn encode_cursor(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("k:{key}"))
}

fn decode_cursor(cursor: &str) -> Result<String, StorageError> {
    use base64::Engine;
    let invalid = || StorageError::InvalidRequest("Invalid cursor".into());
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid())?;
    String::from_utf8(bytes)
        .ok()
        .and_then(|s| s.strip_prefix("k:").map(str::to_owned))
        .ok_or_else(invalid)
}
