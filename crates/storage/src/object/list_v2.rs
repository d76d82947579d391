//! `POST /object/list-v2/{bucket}`: full keys under `prefix`, a page at a time (`cursor`),
//! sorted by name, `created_at` or `updated_at` (`sortBy`), each folder once when
//! `with_delimiter`, as the caller (RLS filters the rows).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_postgres::Transaction;

use super::list_sort::{Cursor, Sort, SortBy, SortColumn};
use crate::caller::Caller;
use crate::error::StorageError;
use crate::Storage;

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

/// One page: folders and objects in the order listed, and the cursor past the last one.
struct Page {
    folders: Vec<Value>,
    objects: Vec<Value>,
    /// The last entry shown (its name) and the cursor past it, when more follow.
    next: Option<(String, Cursor)>,
}

pub async fn list_v2(
    State(s): State<Storage>,
    Path(bucket): Path<String>,
    headers: HeaderMap,
    Json(body): Json<ListV2Body>,
) -> Result<Json<Value>, StorageError> {
    let caller = Caller::from_headers(&s.ctx, &headers)?;
    let requested = SortBy::parse(body.sort_by)?;
    let cursor = body.cursor.as_deref().map(Cursor::decode).transpose()?;
    // As storage-api: a cursor keeps the sort of the page that made it.
    let sort = cursor.as_ref().and_then(|c| c.sort).unwrap_or(requested);
    let limit = body
        .limit
        .unwrap_or(MAX_KEYS as i64)
        .clamp(1, MAX_KEYS as i64) as usize;
    let q = Query {
        bucket: &bucket,
        prefix: &body.prefix,
        delimiter: body.with_delimiter,
        limit,
        sort,
    };
    let mut client = s.ctx.db.get().await?;
    let tx = caller.begin(&mut client).await?;
    let page = match sort.column {
        SortColumn::Name => by_name(&tx, &q, cursor.map(|c| c.key)).await?,
        _ => by_time(&tx, &q, cursor).await?,
    };
    tx.commit().await?;
    let (key, cursor) = page.next.unzip();
    Ok(Json(json!({
        "hasNext": key.is_some(),
        "nextCursor": cursor.map(|c| c.encode()),
        "nextCursorKey": key,
        "folders": page.folders,
        "objects": page.objects,
    })))
}

struct Query<'a> {
    bucket: &'a str,
    prefix: &'a str,
    delimiter: bool,
    limit: usize,
    sort: Sort,
}

/// Name order: a seek on `(bucket_id, name)`, a folder shown once then skipped past.
async fn by_name(
    tx: &Transaction<'_>,
    q: &Query<'_>,
    mut after: Option<String>,
) -> Result<Page, StorageError> {
    let desc = q.sort.desc;
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
    let (limit, prefix) = (q.limit, q.prefix);
    let mut page = Page {
        folders: Vec::new(),
        objects: Vec::new(),
        next: None,
    };
    let mut last_key: Option<String> = None;
    'pages: loop {
        let rows = tx
            .query(&sql, &[&q.bucket, &prefix, &after, &((limit + 1) as i64)])
            .await?;
        for row in &rows {
            let name: String = row.get(0);
            if page.folders.len() + page.objects.len() == limit {
                let cursor = Cursor {
                    key: after.take().unwrap_or_default(),
                    sort: Some(q.sort),
                    at: None,
                };
                page.next = Some((last_key.take().unwrap_or_default(), cursor));
                break 'pages;
            }
            let rest = &name[prefix.len()..];
            match rest.find('/').filter(|_| q.delimiter) {
                Some(i) => {
                    let folder = format!("{prefix}{}", &rest[..=i]);
                    page.folders.push(json!({
                        "id": null, "key": folder, "name": folder, "bucket_id": q.bucket,
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
                    page.objects.push(row.get(1));
                    after = Some(name.clone());
                    last_key = Some(name);
                }
            }
        }
        if rows.len() < limit + 1 {
            break;
        }
    }
    Ok(page)
}

/// Timestamp order, as storage-api's `search_by_timestamp`: entries ordered by the column at
/// millisecond precision then name; a folder (with a delimiter) is one entry dated by the
/// earliest `created_at` inside it, for either column, and named without its slash for
/// ordering. Each page reads every row under the prefix (storage-api does the same).
async fn by_time(
    tx: &Transaction<'_>,
    q: &Query<'_>,
    cursor: Option<Cursor>,
) -> Result<Page, StorageError> {
    let (cmp, order) = if q.sort.desc {
        ("<", "desc")
    } else {
        (">", "asc")
    };
    let sql = format!(
        "with raw as ( \
           select o.*, case when $3 and strpos(substr(o.name, char_length($2) + 1), '/') > 0 \
             then left(o.name, char_length($2) + strpos(substr(o.name, char_length($2) + 1), '/')) \
             end as folder \
           from storage.objects o where o.bucket_id = $1 and starts_with(o.name, $2)), \
         entries as ( \
           select left(folder, -1) as k, true as is_folder, min(created_at) as ts, \
             jsonb_build_object('id', null, 'key', folder, 'name', folder, 'bucket_id', $1::text, \
               'updated_at', min(created_at), 'created_at', min(created_at), \
               'last_accessed_at', null, 'metadata', null) as entry \
           from raw where folder is not null group by folder \
           union all \
           select name, false, {col}, jsonb_build_object('id', id, 'key', name, 'name', name, \
               'bucket_id', bucket_id, 'updated_at', updated_at, 'created_at', created_at, \
               'last_accessed_at', last_accessed_at, 'metadata', metadata) \
           from raw where folder is null), \
         keyed as ( \
           select k, is_folder, entry, \
             coalesce(date_trunc('milliseconds', ts), 'epoch'::timestamptz) as at from entries) \
         select k, is_folder, entry, to_json(at) #>> '{{}}' from keyed \
         where $4::text is null or (at, k collate \"C\") {cmp} ($5::text::timestamptz, $4::text) \
         order by at {order}, k collate \"C\" {order} limit $6",
        col = q.sort.column.sql(),
    );
    let (after_key, after_at) = match cursor {
        Some(c) => (Some(c.key), Some(c.at.unwrap_or_else(|| "epoch".into()))),
        None => (None, None),
    };
    let rows = tx
        .query(
            &sql,
            &[
                &q.bucket,
                &q.prefix,
                &q.delimiter,
                &after_key,
                &after_at,
                &((q.limit + 1) as i64),
            ],
        )
        .await?;
    let mut page = Page {
        folders: Vec::new(),
        objects: Vec::new(),
        next: None,
    };
    for (i, row) in rows.iter().enumerate() {
        if i == q.limit {
            let last = &rows[i - 1];
            let entry: Value = last.get(2);
            let shown = entry["name"].as_str().unwrap_or_default().to_owned();
            let cursor = Cursor {
                key: last.get(0),
                sort: Some(q.sort),
                at: Some(last.get(3)),
            };
            page.next = Some((shown, cursor));
            break;
        }
        let is_folder: bool = row.get(1);
        let target = if is_folder {
            &mut page.folders
        } else {
            &mut page.objects
        };
        target.push(row.get(2));
    }
    Ok(page)
}
