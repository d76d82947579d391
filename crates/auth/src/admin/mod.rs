//! The admin API (§2.7): users listed, created, read, updated and deleted with a token whose
//! role is an admin role, links generated without mailing them, and invitations.

pub mod custom_provider;
mod factor;
mod link;
pub mod oauth_client;

pub use factor::{delete_factor, factors};
pub use link::{generate_link, invite};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::bearer::Admin;
use crate::body::{self, Body, OptionalBody};
use crate::error::AuthError;
use crate::otp;
use crate::user::{merge_metadata, NewUser, User};
use crate::{password, AuthState};

/// `?page=&per_page=` of the list.
#[derive(Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    per_page: Option<String>,
}

/// auth-js sends `page=&per_page=` when not given: empty means the default; anything but an
/// unsigned number is GoTrue's 400 (its wording carries Go's `strconv.ParseUint` error).
fn number(v: &Option<String>, default: i64) -> Result<i64, AuthError> {
    match v.as_deref() {
        None | Some("") => Ok(default),
        Some(s) => match s.parse::<u64>() {
            Ok(n) => Ok(i64::try_from(n).unwrap_or(i64::MAX)),
            Err(e) => {
                let why = if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) {
                    "value out of range"
                } else {
                    "invalid syntax"
                };
                Err(AuthError::Validation(format!(
                    "Bad Pagination Parameters: strconv.ParseUint: parsing {s:?}: {why}"
                )))
            }
        },
    }
}

/// `GET /admin/users`: a page of users, with `X-Total-Count` and a `Link` header whose entries
/// start with `page=` (auth-js reads the page number from just after the first `=`).
pub async fn list(
    State(state): State<AuthState>,
    _admin: Admin,
    Query(q): Query<ListQuery>,
) -> Result<Response, AuthError> {
    let page = number(&q.page, 1)?.clamp(1, i64::MAX / 1000);
    let per_page = number(&q.per_page, 50)?.clamp(1, 1000);
    let db = state.ctx.admin.get().await?;
    let total: i64 = db
        .query_one("select count(*) from auth.users", &[])
        .await?
        .get(0);
    let users = User::page(&db, per_page, (page - 1) * per_page).await?;
    let mut list = Vec::with_capacity(users.len());
    for u in &users {
        list.push(u.to_json(&db).await?);
    }
    let last = ((total + per_page - 1) / per_page).max(1);
    let mut links = Vec::new();
    if page < last {
        links.push(format!(
            "</admin/users?page={}&per_page={per_page}>; rel=\"next\"",
            page + 1
        ));
    }
    links.push(format!(
        "</admin/users?page={last}&per_page={per_page}>; rel=\"last\""
    ));
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(total));
    if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
        headers.insert("link", v);
    }
    let body = json!({"users": list, "aud": state.settings.jwt_aud});
    Ok((headers, Json(body)).into_response())
}

/// The body of create and update.
#[derive(Deserialize, Default)]
pub struct UserAttributes {
    id: Option<Uuid>,
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    password_hash: Option<String>,
    email_confirm: Option<bool>,
    user_metadata: Option<Map<String, Value>>,
    app_metadata: Option<Map<String, Value>>,
    role: Option<String>,
    ban_duration: Option<String>,
}

/// GoTrue's ban durations: `none`, or a Go duration such as `24h`, `1h30m` or `90s`.
fn ban_until(duration: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, AuthError> {
    if duration == "none" {
        return Ok(None);
    }
    let invalid = || AuthError::Validation("invalid format for ban duration".into());
    let mut seconds = 0f64;
    let mut number = String::new();
    for c in duration.chars() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let n: f64 = number.parse().map_err(|_| invalid())?;
        number.clear();
        seconds += n * match c {
            'h' => 3600.0,
            'm' => 60.0,
            's' => 1.0,
            _ => return Err(invalid()),
        };
    }
    if !number.is_empty() {
        return Err(invalid());
    }
    Ok(Some(
        chrono::Utc::now() + chrono::Duration::milliseconds((seconds * 1000.0) as i64),
    ))
}

/// A hash given by an admin must be one bcrypt can check.
fn checked_hash(attrs: &UserAttributes) -> Result<Option<String>, AuthError> {
    match &attrs.password_hash {
        Some(h) if h.starts_with("$2a$") || h.starts_with("$2b$") || h.starts_with("$2y$") => {
            Ok(Some(h.clone()))
        }
        Some(_) => Err(AuthError::Validation(
            "Invalid password hash: only bcrypt hashes are supported".into(),
        )),
        None => Ok(None),
    }
}

/// `POST /admin/users`.
pub async fn create(
    State(state): State<AuthState>,
    _admin: Admin,
    Body(attrs): Body<UserAttributes>,
) -> Result<Json<Value>, AuthError> {
    if attrs.phone.is_some() && attrs.email.is_none() {
        return Err(AuthError::Validation(
            "Phone users are not supported".into(),
        ));
    }
    let email = attrs.email.as_deref().map(body::email).transpose()?;
    let mut hash = checked_hash(&attrs)?;
    if let Some(pw) = &attrs.password {
        password::check_strength(&state.settings, pw)?;
        hash = Some(password::hash(pw.clone()).await?);
    }
    let banned_until = attrs
        .ban_duration
        .as_deref()
        .map(ban_until)
        .transpose()?
        .flatten();
    let meta = Value::Object(attrs.user_metadata.clone().unwrap_or_default());
    let app = Value::Object(attrs.app_metadata.clone().unwrap_or_default());
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    if let Some(email) = &email {
        if User::find_by_email(&tx, email).await?.is_some() {
            return Err(AuthError::EmailExists);
        }
    }
    let id = attrs.id.unwrap_or_else(Uuid::new_v4);
    if User::find(&tx, id).await?.is_some() {
        return Err(AuthError::Validation(
            "A user with this id already exists".into(),
        ));
    }
    let user = NewUser {
        id,
        aud: &state.settings.jwt_aud,
        email: email.as_deref(),
        encrypted_password: hash.as_deref(),
        confirmed: attrs.email_confirm.unwrap_or(false),
        user_metadata: &meta,
        app_metadata: &app,
        role: attrs.role.as_deref().unwrap_or("authenticated"),
        is_anonymous: email.is_none(),
        invited: false,
        provider: None,
    }
    .insert(&tx)
    .await?;
    if banned_until.is_some() {
        tx.execute(
            "update auth.users set banned_until = $2 where id = $1",
            &[&user.id, &banned_until],
        )
        .await?;
    }
    if let (Some(email), Some(true)) = (&email, attrs.email_confirm) {
        // The admin vouches for the address.
        crate::linking::record_proof(&tx, user.id, email, "admin").await?;
    }
    let user = User::find(&tx, user.id).await?.ok_or(AuthError::UserGone)?;
    let json = user.to_json(&tx).await?;
    tx.commit().await?;
    Ok(Json(json))
}

/// A path id that is no UUID names no user.
fn parse_id(id: &str) -> Result<Uuid, AuthError> {
    Uuid::parse_str(id).map_err(|_| AuthError::UserNotFound)
}

/// `GET /admin/users/{id}`.
pub async fn get(
    State(state): State<AuthState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, AuthError> {
    let id = parse_id(&id)?;
    let db = state.ctx.admin.get().await?;
    let user = User::find(&db, id).await?.ok_or(AuthError::UserNotFound)?;
    Ok(Json(user.to_json(&db).await?))
}

/// `PUT /admin/users/{id}`: any attribute, applied directly (no confirmation mails).
pub async fn update(
    State(state): State<AuthState>,
    _admin: Admin,
    Path(id): Path<String>,
    Body(attrs): Body<UserAttributes>,
) -> Result<Json<Value>, AuthError> {
    let id = parse_id(&id)?;
    let email = attrs.email.as_deref().map(body::email).transpose()?;
    let mut hash = checked_hash(&attrs)?;
    if let Some(pw) = &attrs.password {
        password::check_strength(&state.settings, pw)?;
        hash = Some(password::hash(pw.clone()).await?);
    }
    let ban = attrs.ban_duration.as_deref().map(ban_until).transpose()?;
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let user = User::lock(&tx, id).await?.ok_or(AuthError::UserNotFound)?;
    if let Some(email) = email.filter(|e| Some(e.as_str()) != user.email.as_deref()) {
        if User::find_by_email(&tx, &email).await?.is_some() {
            return Err(AuthError::EmailExists);
        }
        tx.execute(
            "update auth.users set email = $2, email_change = '' where id = $1",
            &[&id, &email],
        )
        .await?;
        otp::sync_email_identity(&tx, id, &email).await?;
    }
    if let Some(hash) = &hash {
        tx.execute(
            "update auth.users set encrypted_password = $2 where id = $1",
            &[&id, hash],
        )
        .await?;
    }
    if let Some(confirm) = attrs.email_confirm {
        let row = tx
            .query_one(
                "update auth.users set email_confirmed_at = case when $2 \
                   then coalesce(email_confirmed_at, now()) end where id = $1 returning email",
                &[&id, &confirm],
            )
            .await?;
        if let (true, Some(email)) = (confirm, row.get::<_, Option<String>>(0)) {
            crate::linking::record_proof(&tx, id, &email, "admin").await?;
        }
    }
    if let Some(meta) = &attrs.user_metadata {
        let merged = merge_metadata(&user.user_metadata, meta);
        tx.execute(
            "update auth.users set raw_user_meta_data = $2 where id = $1",
            &[&id, &merged],
        )
        .await?;
    }
    if let Some(app) = &attrs.app_metadata {
        let merged = merge_metadata(&user.app_metadata, app);
        tx.execute(
            "update auth.users set raw_app_meta_data = $2 where id = $1",
            &[&id, &merged],
        )
        .await?;
    }
    if let Some(role) = &attrs.role {
        tx.execute(
            "update auth.users set role = $2 where id = $1",
            &[&id, role],
        )
        .await?;
    }
    if let Some(until) = ban {
        tx.execute(
            "update auth.users set banned_until = $2 where id = $1",
            &[&id, &until],
        )
        .await?;
        if until.is_some() {
            tx.execute("delete from auth.sessions where user_id = $1", &[&id])
                .await?;
        }
    }
    tx.execute(
        "update auth.users set updated_at = now() where id = $1",
        &[&id],
    )
    .await?;
    let user = User::find(&tx, id).await?.ok_or(AuthError::UserNotFound)?;
    let json = user.to_json(&tx).await?;
    tx.commit().await?;
    Ok(Json(json))
}

/// The optional body of a delete.
#[derive(Deserialize, Default)]
pub struct DeleteOptions {
    should_soft_delete: Option<bool>,
}

/// `DELETE /admin/users/{id}` with `{"should_soft_delete": bool}`; answers `{}`.
pub async fn delete(
    State(state): State<AuthState>,
    _admin: Admin,
    Path(id): Path<String>,
    OptionalBody(opts): OptionalBody<DeleteOptions>,
) -> Result<Json<Value>, AuthError> {
    let id = parse_id(&id)?;
    let db = state.ctx.admin.get().await?;
    let changed = if opts.should_soft_delete.unwrap_or(false) {
        // The row stays for foreign keys; the account can no longer sign in or be found.
        db.execute("delete from auth.sessions where user_id = $1", &[&id])
            .await?;
        db.execute("delete from auth.identities where user_id = $1", &[&id])
            .await?;
        db.execute(
            "update auth.users set deleted_at = now(), email = null, phone = null, \
               encrypted_password = '', raw_app_meta_data = '{}', raw_user_meta_data = '{}' \
             where id = $1 and deleted_at is null",
            &[&id],
        )
        .await?
    } else {
        db.execute("delete from auth.users where id = $1", &[&id])
            .await?
    };
    if changed == 0 {
        return Err(AuthError::UserNotFound);
    }
    Ok(Json(json!({})))
}

#[cfg(test)]
mod tests {
    use super::ban_until;

    #[test]
    fn ban_durations_read_like_go_durations() {
        assert_eq!(ban_until("none").unwrap(), None);
        let until = ban_until("1h30m").unwrap().unwrap();
        let seconds = (until - chrono::Utc::now()).num_seconds();
        assert!((5390..=5400).contains(&seconds), "{seconds}");
        assert!(ban_until("forever").is_err());
        assert!(ban_until("10").is_err());
        assert!(ban_until("2d").is_err());
    }
}
