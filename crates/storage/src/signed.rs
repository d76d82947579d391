//! Signed URLs: a token signed with the project's JWT secret (HS256) naming one object
//! (`url: "<bucket>/<name>"`), scoped to download or upload, with an expiry. Minted for a caller
//! RLS lets see (download) or write (upload) the object; used by anyone holding it.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::caller::{Actor, Caller};
use crate::error::StorageError;
use crate::object::download::{find_as_owner, serve, DownloadParams};
use crate::object::upload::{check_row, receive};
use crate::object::ObjectRow;
use crate::Storage;

const DOWNLOAD: &str = "download";
const UPLOAD: &str = "upload";
/// How long a signed upload URL lives (storage-api's two hours).
const UPLOAD_LIFETIME: i64 = 2 * 3600;
/// Most paths one batch signing may name.
const MAX_PATHS: usize = 1000;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sign(s: &Storage, claims: Value) -> Result<String, StorageError> {
    craftbase_shared::keys::sign(&s.ctx.keys.jwt_secret, &claims)
        .map_err(|e| StorageError::Internal(format!("cannot sign a URL: {e}")))
}

fn download_token(s: &Storage, url: &str, expires_in: i64) -> Result<String, StorageError> {
    let iat = now();
    sign(
        s,
        json!({ "url": url, "scope": DOWNLOAD, "iat": iat, "exp": iat + expires_in }),
    )
}

/// The claims of a signed URL's token, checked for `scope` and for naming `bucket/name`.
fn verify(s: &Storage, token: &str, scope: &str, url: &str) -> Result<Value, StorageError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp"]);
    let key = DecodingKey::from_secret(s.ctx.keys.jwt_secret.as_bytes());
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map_err(|e| {
            StorageError::InvalidJwt(match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "jwt expired".into(),
                jsonwebtoken::errors::ErrorKind::InvalidSignature => "invalid signature".into(),
                _ => "jwt malformed".into(),
            })
        })?
        .claims;
    let has_upsert = claims.get("upsert").is_some();
    let scoped = match claims.get("scope").and_then(|v| v.as_str()) {
        Some(s) => s == scope,
        // Tokens from before scopes: upload ones carry `upsert`, download ones do not.
        None => (scope == UPLOAD) == has_upsert,
    };
    if !scoped {
        return Err(StorageError::InvalidSignature(format!(
            "Token is not scoped for {scope}"
        )));
    }
    if claims.get("url").and_then(|v| v.as_str()) != Some(url) {
        return Err(StorageError::InvalidSignature("Invalid signature".into()));
    }
    Ok(claims)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignBody {
    expires_in: i64,
}

/// `POST /object/sign/{bucket}/{*name}` `{expiresIn}`: `{signedURL}` for an object the caller
/// may see.
pub async fn sign_one(
    State(s): State<Storage>,
    Path((bucket, name)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<SignBody>,
) -> Result<Json<Value>, StorageError> {
    let caller = Caller::from_headers(&s.ctx, &headers)?;
    if body.expires_in < 1 {
        return Err(StorageError::InvalidRequest(
            "expiresIn must be >= 1".into(),
        ));
    }
    let mut client = s.ctx.db.get().await?;
    let tx = caller.begin(&mut client).await?;
    ObjectRow::find(&tx, &bucket, &name).await?;
    tx.commit().await?;
    let url = format!("{bucket}/{name}");
    let token = download_token(&s, &url, body.expires_in)?;
    Ok(Json(
        json!({ "signedURL": format!("/object/sign/{url}?token={token}") }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignManyBody {
    expires_in: i64,
    paths: Vec<String>,
}

/// `POST /object/sign/{bucket}` `{expiresIn, paths}`: one entry per path, an error for those the
/// caller cannot see.
pub async fn sign_many(
    State(s): State<Storage>,
    Path(bucket): Path<String>,
    headers: HeaderMap,
    Json(body): Json<SignManyBody>,
) -> Result<Json<Value>, StorageError> {
    let caller = Caller::from_headers(&s.ctx, &headers)?;
    if body.expires_in < 1 {
        return Err(StorageError::InvalidRequest(
            "expiresIn must be >= 1".into(),
        ));
    }
    if body.paths.len() > MAX_PATHS {
        return Err(StorageError::InvalidRequest(format!(
            "at most {MAX_PATHS} paths"
        )));
    }
    let mut client = s.ctx.db.get().await?;
    let tx = caller.begin(&mut client).await?;
    let rows = tx
        .query(
            "select name from storage.objects where bucket_id = $1 and name = any($2)",
            &[&bucket, &body.paths],
        )
        .await?;
    tx.commit().await?;
    let seen: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    let mut out = Vec::with_capacity(body.paths.len());
    for path in &body.paths {
        out.push(if seen.contains(path) {
            let url = format!("{bucket}/{path}");
            let token = download_token(&s, &url, body.expires_in)?;
            json!({ "error": null, "path": path, "signedURL": format!("/object/sign/{url}?token={token}") })
        } else {
            json!({
                "error": "Either the object does not exist or you do not have access to it",
                "path": path,
                "signedURL": null,
            })
        });
    }
    Ok(Json(Value::Array(out)))
}

#[derive(Deserialize)]
pub struct TokenParams {
    token: Option<String>,
    download: Option<String>,
}

fn token_of(params: &TokenParams) -> Result<&str, StorageError> {
    params.token.as_deref().ok_or_else(|| {
        StorageError::InvalidRequest("querystring must have required property 'token'".into())
    })
}

/// `GET /object/sign/{bucket}/{*name}?token=`: the object, for whoever holds the token.
pub async fn download(
    State(s): State<Storage>,
    Path((bucket, name)): Path<(String, String)>,
    Query(params): Query<TokenParams>,
    headers: HeaderMap,
) -> Result<Response, StorageError> {
    verify(
        &s,
        token_of(&params)?,
        DOWNLOAD,
        &format!("{bucket}/{name}"),
    )?;
    let row = find_as_owner(&s, &bucket, &name).await?;
    let params = DownloadParams {
        download: params.download,
    };
    serve(&s, &bucket, &name, &row, &headers, &params).await
}

/// `POST /object/upload/sign/{bucket}/{*name}`: `{url, token}` when the caller may write the
/// object (checked now, under RLS); `x-upsert: true` lets the upload replace it.
pub async fn sign_upload(
    State(s): State<Storage>,
    Path((bucket, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, StorageError> {
    let caller = Caller::from_headers(&s.ctx, &headers)?;
    crate::key::object_name(&name)?;
    let upsert = headers
        .get("x-upsert")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "true");
    let owner = caller.owner().map(str::to_owned);
    let actor = Actor::Caller(caller);
    crate::object::BucketRules::load(&s, &bucket).await?;
    check_row(&s, &actor, &bucket, &name, upsert).await?;
    let url = format!("{bucket}/{name}");
    let iat = now();
    let token = sign(
        &s,
        json!({ "owner": owner, "url": url, "upsert": upsert, "scope": UPLOAD,
                "iat": iat, "exp": iat + UPLOAD_LIFETIME }),
    )?;
    Ok(Json(
        json!({ "url": format!("/object/upload/sign/{url}?token={token}"), "token": token }),
    ))
}

/// `PUT /object/upload/sign/{bucket}/{*name}?token=`: the upload, written for the token's owner.
pub async fn upload(
    State(s): State<Storage>,
    Path((bucket, name)): Path<(String, String)>,
    Query(params): Query<TokenParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, StorageError> {
    let claims =
        token_of(&params).and_then(|token| verify(&s, token, UPLOAD, &format!("{bucket}/{name}")));
    let upsert = claims
        .as_ref()
        .ok()
        .and_then(|c| c.get("upsert"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let actor = claims.map(|c| Actor::Owner {
        sub: c.get("owner").and_then(|o| o.as_str()).map(str::to_owned),
    });
    receive(&s, actor, &bucket, &name, upsert, &headers, body).await
}
