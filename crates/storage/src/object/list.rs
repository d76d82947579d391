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
