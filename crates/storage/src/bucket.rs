//! `/bucket`: list, get, create, update, empty and delete buckets, each as the caller.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::caller::Caller;
use crate::error::StorageError;
use crate::key;
use crate::object::manage::delete_bytes;
use crate::Storage;

/// A bucket as the Storage API shows it.
const BUCKET_JSON: &str = "jsonb_build_object('id', b.id, 'name', b.name, 'owner', b.owner, \
     'public', b.public, 'type', b.type, 'file_size_limit', b.file_size_limit, \
     'allowed_mime_types', b.allowed_mime_types, 'created_at', b.created_at, \
     'updated_at', b.updated_at)";

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    limit: Option<i64>,
    offset: Option<i64>,
    search: Option<String>,
    sort_column: Option<String>,
    sort_order: Option<String>,
}

/// `GET /bucket`: the buckets the caller may see.
pub async fn list(
    State(s): State<Storage>,
    headers: HeaderMap,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, StorageError> {
    let caller = Caller::from_headers(&s.ctx, &headers)?;
    let column = match p.sort_column.as_deref() {
        None | Some("name") => "name",
        Some("id") => "id",
        Some("created_at") => "created_at",
        Some("updated_at") => "updated_at",
        Some(_) => return Err(StorageError::InvalidRequest("invalid sortColumn".into())),
    };
    let order = match p.sort_order.as_deref() {
        None | Some("asc") => "asc",
        Some("desc") => "desc",
        Some(_) => return Err(StorageError::InvalidRequest("invalid sortOrder".into())),
    };
    let sql = format!(
        "select coalesce(jsonb_agg(x.j order by x.k {order}), '[]') from \
         (select {BUCKET_JSON} as j, b.{column} as k from storage.buckets b \
          where $1::text is null or b.name ilike '%' || $1 || '%' \
          order by b.{column} {order} limit $2 offset $3) x"
    );
    let mut client = s.ctx.db.get().await?;
    let tx = caller.begin(&mut client).await?;
    let row = tx
        .query_one(
            &sql,
            &[
                &p.search,
                &p.limit.unwrap_or(i64::MAX).max(0),
                &p.offset.unwrap_or(0).max(0),
            ],
        )
        .await?;
    tx.commit().await?;
    Ok(Json(row.get(0)))
}

/// `GET /bucket/{id}`.
pub async fn get(
    State(s): State<Storage>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, StorageError> {
    let caller = Caller::from_headers(&s.ctx, &headers)?;
    let mut client = s.ctx.db.get().await?;
    let tx = caller.begin(&mut client).await?;
    let row = tx
        .query_opt(
            &format!("select {BUCKET_JSON} from storage.buckets b where b.id = $1"),
            &[&id],
        )
        .await?;
    tx.commit().await?;
    row.map(|r| Json(r.get(0)))
        .ok_or(StorageError::NoSuchBucket)
}

#[derive(Deserialize)]
pub struct CreateBody {
    name: String,
    id: Option<String>,
    public: Option<bool>,
    #[serde(default)]
    file_size_limit: Option<Value>,
    #[serde(default)]
    allowed_mime_types: Option<Vec<String>>,
}

/// `POST /bucket`: `{name}` once created.
pub async fn create(
    State(s): State<Storage>,
    headers: HeaderMap,
    Json(body): Json<CreateBody>,
) -> Result<Json<Value>, StorageError> {
    let caller = Caller::from_headers(&s.ctx, &headers)?;
    let id = body.id.clone().unwrap_or_else(|| body.name.clone());
    key::bucket_name(&id)?;
    key::bucket_name(&body.name)?;
    let limit = file_size_limit(body.file_size_limit.as_ref(), s.settings.file_size_limit)?;
    let mimes = mime_list(body.allowed_mime_types);
    let mut client = s.ctx.db.get().await?;
    let tx = caller.begin(&mut client).await?;
    tx.execute(
        "insert into storage.buckets (id, name, owner, owner_id, public, file_size_limit, allowed_mime_types) \
         values ($1, $2, $3::text::uuid, $3, $4, $5, $6)",
        &[&id, &body.name, &caller.owner().filter(|o| uuid::Uuid::parse_str(o).is_ok()),
          &body.public.unwrap_or(false), &limit, &mimes],
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({ "name": body.name })))
}

#[derive(Deserialize)]
pub struct UpdateBody {
    public: Option<bool>,
    #[serde(default)]
    file_size_limit: Option<Value>,
    #[serde(default)]
    allowed_mime_types: Option<Vec<String>>,
}

/// `PUT /bucket/{id}`: changes only what the body names.
pub async fn update(
    State(s): State<Storage>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, StorageError> {
    let caller = Caller::from_headers(&s.ctx, &headers)?;
    let has = |k: &str| body.get(k).is_some();
    let (set_limit, set_mimes) = (has("file_size_limit"), has("allowed_mime_types"));
    let body: UpdateBody =
        serde_json::from_value(body).map_err(|e| StorageError::InvalidRequest(e.to_string()))?;
    let limit = file_size_limit(body.file_size_limit.as_ref(), s.settings.file_size_limit)?;
    let mimes = mime_list(body.allowed_mime_types);
    let mut client = s.ctx.db.get().await?;
    let tx = caller.begin(&mut client).await?;
    let n = tx
        .execute(
            "update storage.buckets set public = coalesce($2, public), \
             file_size_limit = case when $3 then $4 else file_size_limit end, \
             allowed_mime_types = case when $5 then $6 else allowed_mime_types end, \
             updated_at = now() where id = $1",
            &[&id, &body.public, &set_limit, &limit, &set_mimes, &mimes],
        )
        .await?;
    tx.commit().await?;
    if n == 0 {
        return Err(StorageError::NoSuchBucket);
    }
    Ok(Json(json!({ "message": "Successfully updated" })))
}

/// The bucket `id` exists and the caller may see it (RLS on `storage.buckets`), else
/// `NoSuchBucket`.
async fn visible(tx: &tokio_postgres::Transaction<'_>, id: &str) -> Result<(), StorageError> {
    tx.query_opt("select 1 from storage.buckets where id = $1", &[&id])
        .await?
        .map(|_| ())
        .ok_or(StorageError::NoSuchBucket)
}

/// `POST /bucket/{id}/empty`: removes every object the caller may delete, rows then bytes.
pub async fn empty(
    State(s): State<Storage>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, StorageError> {
    let caller = Caller::from_headers(&s.ctx, &headers)?;
    let mut client = s.ctx.db.get().await?;
    let tx = caller.begin(&mut client).await?;
    visible(&tx, &id).await?;
    let rows = tx
        .query(
            "delete from storage.objects where bucket_id = $1 returning name, version",
            &[&id],
        )
        .await?;
    tx.commit().await?;
    let gone: Vec<(String, Option<String>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    delete_bytes(&s, &id, &gone).await;
    Ok(Json(json!({ "message": "Successfully emptied" })))
}

/// `DELETE /bucket/{id}`: only an empty bucket.
pub async fn delete(
    State(s): State<Storage>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, StorageError> {
    let caller = Caller::from_headers(&s.ctx, &headers)?;
    let mut client = s.ctx.db.get().await?;
    let tx = caller.begin(&mut client).await?;
    visible(&tx, &id).await?;
    let objects: i64 = tx
        .query_one(
            "select count(*) from (select 1 from storage.objects where bucket_id = $1 limit 1) o",
            &[&id],
        )
        .await?
        .get(0);
    if objects > 0 {
        return Err(StorageError::BucketNotEmpty);
    }
    let n = tx
        .execute("delete from storage.buckets where id = $1", &[&id])
        .await
        .map_err(|e| match e.as_db_error().map(|d| d.code().code()) {
            Some("23503") => StorageError::BucketNotEmpty,
            _ => StorageError::from(e),
        })?;
    tx.commit().await?;
    if n == 0 {
        return Err(StorageError::NoSuchBucket);
    }
    Ok(Json(json!({ "message": "Successfully deleted" })))
}

/// A bucket's limit: bytes as a number, or a string such as `"20MB"`, `"30KB"`, `"3B"`; no
/// larger than the global limit.
fn file_size_limit(value: Option<&Value>, global: u64) -> Result<Option<i64>, StorageError> {
    let invalid = || {
        StorageError::InvalidRequest(
            "Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B".into(),
        )
    };
    let bytes = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(invalid)?,
        Some(Value::String(s)) => parse_size(s).ok_or_else(invalid)?,
        Some(_) => return Err(invalid()),
    };
    if bytes > global {
        return Err(StorageError::InvalidRequest(
            "File size limit exceeds the global limit".into(),
        ));
    }
    Ok(Some(bytes as i64))
}

/// `"20MB"`, `"50MiB"`, `"3B"` or a plain number of bytes; units are binary (KB = KiB = 1024),
/// as the Storage API and the Supabase CLI read them.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return None,
    };
    Some((num * factor as f64) as u64)
}

/// Empty entries are dropped, as the Storage API drops them.
fn mime_list(list: Option<Vec<String>>) -> Option<Vec<String>> {
    list.map(|l| l.into_iter().filter(|m| !m.is_empty()).collect())
}

/// Whether `mime` is allowed by the list (`type/*` wildcards).
pub fn mime_allowed(mime: &str, allowed: &[String]) -> bool {
    let Some((kind, sub)) = mime.split(';').next().unwrap_or("").trim().split_once('/') else {
        return false;
    };
    allowed.iter().any(|a| match a.split_once('/') {
        Some((k, "*")) => k == kind,
        Some((k, s)) => k == kind && s == sub,
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("20MB"), Some(20 << 20));
        assert_eq!(parse_size("3B"), Some(3));
        assert_eq!(parse_size("1kb"), Some(1024));
        assert_eq!(parse_size("50MiB"), Some(50 << 20));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn wildcards_match() {
        let allowed = vec!["image/*".to_owned(), "text/plain".to_owned()];
        assert!(mime_allowed("image/png", &allowed));
        assert!(mime_allowed("text/plain;charset=UTF-8", &allowed));
        assert!(!mime_allowed("text/html", &allowed));
        assert!(!mime_allowed("nonsense", &allowed));
    }
}
